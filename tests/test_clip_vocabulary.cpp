// write_clip_tokenizer: a CLIP tokenizer folder in which every caption word is one token and any other
// text still tokenizes (byte by byte), loadable by CLIPTokenizer.
#include <gtest/gtest.h>

#include "io/json_file.h"
#include "models/clip_tokenizer.h"
#include "models/clip_vocabulary.h"
#include "support.h"

namespace {

using draft::test::TempDir;

TEST(CLIPVocabulary, CaptionWordsAreSingleTokens) {
  TempDir dir;
  const std::vector<std::string> captions = {"a photo of a t-shirt", "an ankle boot", "a photo of a pullover",
                                             "sneaker", "a photo of a shirt", "trouser"};
  const int64_t size = draft::write_clip_tokenizer(dir.path(), captions, 16);
  const draft::CLIPTokenizer tok = draft::CLIPTokenizer::from_folder(dir.path());
  EXPECT_EQ(tok.vocab_size(), size);
  EXPECT_EQ(tok.max_length(), 16);
  EXPECT_EQ(tok.eos_id(), size - 1);
  EXPECT_EQ(tok.bos_id(), size - 2);
  EXPECT_EQ(tok.pad_id(), tok.eos_id());
  for (const auto& caption : captions) {
    const std::vector<std::string> tokens = tok.tokenize(caption);
    for (const auto& token : tokens) {
      EXPECT_EQ(token.substr(token.size() - 4), "</w>") << caption << ": '" << token << "' is a word piece";
    }
    // CLIP's decode joins words with spaces, so "t-shirt" comes back as "t - shirt".
    if (caption.find('-') == std::string::npos) {
      EXPECT_EQ(tok.decode(tok.encode(caption)), caption);
    }
  }
  EXPECT_EQ(tok.tokenize("a photo of a t-shirt").size(), 7u);  // a photo of a t - shirt
  // Text outside the captions falls back to byte symbols and still round-trips.
  EXPECT_EQ(tok.decode(tok.encode("zebra!")), "zebra!");
  const draft::TokenizerOutput out = tok({"an ankle boot"});
  EXPECT_EQ(out.input_ids.size(1), 16);
  EXPECT_EQ(out.input_ids[0][0].item<int64_t>(), tok.bos_id());
  EXPECT_EQ(out.input_ids[0][4].item<int64_t>(), tok.eos_id());
  EXPECT_EQ(draft::read_json_file(dir.file("tokenizer_config.json")).at("tokenizer_class"), "CLIPTokenizer");
}

TEST(CLIPVocabulary, RefusesTooShortMaxLength) {
  TempDir dir;
  const std::string message =
      draft::test::expect_error([&] { draft::write_clip_tokenizer(dir.path(), {"a bag"}, 2); });
  EXPECT_NE(message.find("max_length"), std::string::npos) << message;
}

}  // namespace
