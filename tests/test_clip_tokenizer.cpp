// CLIPTokenizer against transformers' CLIPTokenizer (slow, v4.36) ids from tests/data/tokenizer_clip.
//
// Reference path: the fixture's primary ids (input_ids, input_ids_pad0, tokens) were made WITHOUT ftfy
// installed, the usual diffusers install: the text goes through BasicTokenizer(strip_accents=False,
// do_split_on_punc=False) (drop control/format chars, whitespace -> ' ', spaces around CJK, NFC,
// lower-case), then CLIP's regex and byte-level BPE. That is the path draft::CLIPTokenizer implements.
// The *_ftfy ids (ftfy.fix_text + whitespace_clean + lower) are a different normalisation; we only
// check that they equal ours exactly where the fixture says ftfy changes nothing (ftfy_differs).
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "io/json_file.h"
#include "io/safetensors.h"
#include "models/clip_pre_tokenizer.h"
#include "models/clip_tokenizer.h"
#include "support.h"
#include "util/error.h"

namespace {

using draft::CLIPTokenizer;
using draft::test::TempDir;

const std::string kDir = std::string(DRAFT_TEST_DATA) + "/tokenizer_clip";

const CLIPTokenizer& sd1_tokenizer() {
  static const CLIPTokenizer tok = CLIPTokenizer::from_folder(kDir);
  return tok;
}

const nlohmann::json& cases() {
  static const nlohmann::json j = draft::read_json_file(kDir + "/prompts_ids.json");
  return j.at("cases");
}

std::vector<std::string> all_prompts() {
  std::vector<std::string> prompts;
  for (const auto& c : cases()) prompts.push_back(c.at("prompt").get<std::string>());
  return prompts;
}

std::vector<int64_t> strip_bos_eos(std::vector<int64_t> ids) {
  return std::vector<int64_t>(ids.begin() + 1, ids.end() - 1);
}

void copy_file(const std::string& name, const TempDir& dir) {
  std::filesystem::copy_file(kDir + "/" + name, dir.file(name));
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const draft::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no draft::Error thrown";
  return "";
}

TEST(CLIPTokenizer, LoadsSpecialTokensAndLength) {
  const auto& tok = sd1_tokenizer();
  EXPECT_EQ(tok.bos_id(), 49406);
  EXPECT_EQ(tok.eos_id(), 49407);
  EXPECT_EQ(tok.pad_id(), 49407);
  EXPECT_EQ(tok.max_length(), 77);
  EXPECT_EQ(tok.vocab_size(), 49408);
}

TEST(CLIPTokenizer, EveryPromptGivesTheReferenceTokensAndIds) {
  const auto& tok = sd1_tokenizer();
  ASSERT_EQ(cases().size(), 33u);
  for (const auto& c : cases()) {
    std::string prompt = c.at("prompt").get<std::string>();
    auto tokens = c.at("tokens").get<std::vector<std::string>>();
    auto ids = c.at("input_ids_untruncated").get<std::vector<int64_t>>();
    EXPECT_EQ(tok.tokenize(prompt), std::vector<std::string>(tokens.begin() + 1, tokens.end() - 1))
        << "prompt: " << prompt;
    EXPECT_EQ(tok.encode(prompt), strip_bos_eos(ids)) << "prompt: " << prompt;
  }
}

TEST(CLIPTokenizer, BatchEqualsReferenceInputIdsAndMask) {
  draft::SafeTensorsFile ref(kDir + "/cases.safetensors");
  draft::TokenizerOutput out = sd1_tokenizer()(all_prompts());
  EXPECT_EQ(out.input_ids.scalar_type(), torch::kLong);
  EXPECT_EQ(out.attention_mask.scalar_type(), torch::kLong);
  EXPECT_TRUE(draft::test::tensors_close(out.input_ids, ref.load("input_ids"), 0.0));
  EXPECT_TRUE(draft::test::tensors_close(out.attention_mask, ref.load("attention_mask"), 0.0));
  // The JSON copy of the same ids, row by row, so a failure names the prompt.
  for (size_t i = 0; i < cases().size(); ++i) {
    auto expected = cases()[i].at("input_ids").get<std::vector<int64_t>>();
    auto row = out.input_ids[static_cast<int64_t>(i)].contiguous();
    std::vector<int64_t> got(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel());
    EXPECT_EQ(got, expected) << "prompt: " << cases()[i].at("prompt").get<std::string>();
  }
}

TEST(CLIPTokenizer, SD2PadTokenIsZeroAndSplitsExclamationMarks) {
  // stabilityai SD 2.x tokenizers set pad_token "!" (id 0). transformers then treats "!" as an added
  // token, so a "!" inside a prompt is split out as id 0 too (the fixture shows "!!!" -> 0 0 0).
  TempDir dir;
  copy_file("vocab.json", dir);
  copy_file("merges.txt", dir);
  copy_file("tokenizer_config.json", dir);
  nlohmann::json map = draft::read_json_file(kDir + "/special_tokens_map.json");
  map["pad_token"] = "!";
  draft::write_json_file(dir.file("special_tokens_map.json"), map);
  auto tok = CLIPTokenizer::from_folder(dir.path());
  EXPECT_EQ(tok.pad_id(), 0);
  draft::SafeTensorsFile ref(kDir + "/cases.safetensors");
  EXPECT_TRUE(draft::test::tensors_close(tok(all_prompts()).input_ids, ref.load("input_ids_pad0"), 0.0));
}

TEST(CLIPTokenizer, FtfyIdsAgreeWhereFtfyChangesNothing) {
  // We implement the no-ftfy path; ftfy's fix_text only matters for the prompts marked ftfy_differs.
  const auto& tok = sd1_tokenizer();
  int differing = 0;
  for (const auto& c : cases()) {
    auto ftfy_ids = c.at("input_ids_ftfy").get<std::vector<int64_t>>();
    auto out = tok({c.at("prompt").get<std::string>()}).input_ids[0].contiguous();
    std::vector<int64_t> ours(out.data_ptr<int64_t>(), out.data_ptr<int64_t>() + out.numel());
    if (c.at("ftfy_differs").get<bool>()) {
      ++differing;
      EXPECT_NE(ours, ftfy_ids);
    } else {
      EXPECT_EQ(ours, ftfy_ids) << "prompt: " << c.at("prompt").get<std::string>();
    }
  }
  EXPECT_EQ(differing, 9);
}

TEST(CLIPTokenizer, TruncatesToBosPlus75PlusEos) {
  const auto& tok = sd1_tokenizer();
  std::string prompt;
  for (int i = 0; i < 100; ++i) prompt += "a photo ";
  std::vector<int64_t> ids = tok.encode(prompt);
  ASSERT_EQ(ids.size(), 200u);
  draft::TokenizerOutput out = tok({prompt, "a photo"});
  ASSERT_EQ(out.input_ids.sizes(), (std::vector<int64_t>{2, 77}));
  auto row = out.input_ids[0];
  EXPECT_EQ(row[0].item<int64_t>(), 49406);
  for (int i = 0; i < 75; ++i) EXPECT_EQ(row[i + 1].item<int64_t>(), ids[i]);
  EXPECT_EQ(row[76].item<int64_t>(), 49407);
  EXPECT_EQ(out.attention_mask[0].sum().item<int64_t>(), 77);
  // The short prompt: bos, 2 ids, eos, then 73 pads with mask 0.
  EXPECT_EQ(out.attention_mask[1].sum().item<int64_t>(), 4);
  EXPECT_TRUE(out.input_ids[1].slice(0, 4).eq(tok.pad_id()).all().item<bool>());
}

TEST(CLIPTokenizer, SpecialTokenStringsInsideThePrompt) {
  const auto& tok = sd1_tokenizer();
  EXPECT_EQ(tok.encode("<|startoftext|>a photo<|endoftext|> of a dog"),
            (std::vector<int64_t>{49406, 320, 1125, 49407, 539, 320, 1929}));
  // Not an exact match for the added token, but lower-cased text meets the regex's special-token
  // alternatives and the reference's BPE cache returns them whole.
  EXPECT_EQ(tok.encode("a<|EndOfText|>"), (std::vector<int64_t>{320, 49407}));
  // Without the closing '>' it is ordinary punctuation and letters.
  EXPECT_EQ(tok.tokenize("<|endoftext|"), (std::vector<std::string>{"<", "|</w>", "endof", "text</w>", "|</w>"}));
}

TEST(CLIPTokenizer, TextNormalisationOfTheNoFtfyPath) {
  // Format characters vanish, CJK ideographs are spaced, Python's lower() handles final sigma and U+0130.
  EXPECT_EQ(draft::clip_normalize_text("a\u200bb c\xc2\xad" "d"), "ab cd");
  EXPECT_EQ(draft::clip_normalize_text("\xe4\xb8\xad\xe6\x96\x87x"), "\xe4\xb8\xad \xe6\x96\x87 x");
  EXPECT_EQ(draft::clip_normalize_text("\xce\x9f\xce\x94\xce\x9f\xce\xa3 \xce\xa3"),  // "ΟΔΟΣ Σ"
            "\xce\xbf\xce\xb4\xce\xbf\xcf\x82 \xcf\x83");                          // "οδος σ"
  EXPECT_EQ(draft::clip_normalize_text("\xc4\xb0"), "i\xcc\x87");
  EXPECT_EQ(draft::clip_normalize_text("e\xcc\x81"), "\xc3\xa9");  // NFC
  EXPECT_EQ(draft::clip_pre_tokenize("it's o'neil 12 ab--c"),
            (std::vector<std::string>{"it", "'s", "o", "'", "neil", "1", "2", "ab", "--", "c"}));
  EXPECT_THROW(sd1_tokenizer().encode("bad \xff utf8"), draft::Error);
}

TEST(CLIPTokenizer, MissingFilesAreNamed) {
  TempDir dir;
  copy_file("merges.txt", dir);
  std::string msg = error_of([&] { CLIPTokenizer::from_folder(dir.path()); });
  EXPECT_NE(msg.find("vocab.json"), std::string::npos) << msg;
  TempDir dir2;
  copy_file("vocab.json", dir2);
  msg = error_of([&] { CLIPTokenizer::from_folder(dir2.path()); });
  EXPECT_NE(msg.find("merges.txt"), std::string::npos) << msg;
  msg = error_of([&] { CLIPTokenizer::from_folder(dir.file("nope")); });
  EXPECT_NE(msg.find("nope"), std::string::npos) << msg;
}

TEST(CLIPTokenizer, DecodeRoundTrip) {
  const auto& tok = sd1_tokenizer();
  for (const std::string text : {"a photo of a cat.", "caf\xc3\xa9 na\xc3\xafve \xf0\x9f\x98\x80 ok", "hello, world!"}) {
    EXPECT_EQ(tok.decode(tok.encode(text)), text);
  }
  std::vector<int64_t> ids = {49406, 320, 1125, 539, 320, 2368, 49407};
  EXPECT_EQ(tok.decode(ids), "<|startoftext|>a photo of a cat <|endoftext|>");
  EXPECT_EQ(tok.decode(ids, /*skip_special_tokens=*/true), "a photo of a cat");
  EXPECT_THROW(tok.decode({49408}), draft::Error);
}

// Found by fuzz/fuzz_tokenizer.cpp (seed fuzz/corpus/tokenizer/typed_fields): a tokenizer_config.json field of
// the wrong JSON type ("special": 1, "errors": 1) escaped as nlohmann's type_error, and an id key "9x" was read
// as 9.
TEST(CLIPTokenizer, ConfigFieldsOfTheWrongTypeAreNamed) {
  const std::string vocab = R"({"a</w>": 0, "c": 1, "<|startoftext|>": 2, "<|endoftext|>": 3, "z": 4})";
  auto load_with = [&](const std::string& config) {
    TempDir dir;
    draft::test::write_bytes(dir.file("vocab.json"), vocab);
    draft::test::write_bytes(dir.file("merges.txt"), "#version: 0.2\nc a\n");
    draft::test::write_bytes(dir.file("tokenizer_config.json"), config);
    return error_of([&] { CLIPTokenizer::from_folder(dir.path()); });
  };
  std::string msg = load_with(R"({"added_tokens_decoder": {"4": {"content": "z", "special": 1}}})");
  EXPECT_NE(msg.find("added_tokens_decoder.4: special must be true or false, got 1"), std::string::npos) << msg;
  msg = load_with(R"({"added_tokens_decoder": {"4": {"content": "z", "lstrip": "yes"}}})");
  EXPECT_NE(msg.find("lstrip must be true or false"), std::string::npos) << msg;
  msg = load_with(R"({"added_tokens_decoder": {"9x": {"content": "z"}}})");
  EXPECT_NE(msg.find("added_tokens_decoder.9x: the key is not an integer id"), std::string::npos) << msg;
  msg = load_with(R"({"added_tokens_decoder": ["z"]})");
  EXPECT_NE(msg.find("added_tokens_decoder must be an object"), std::string::npos) << msg;
  msg = load_with(R"({"errors": 1})");
  EXPECT_NE(msg.find("errors must be a string"), std::string::npos) << msg;
}

}  // namespace
