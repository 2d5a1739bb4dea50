// libFuzzer target over a CLIP tokenizer folder (CLIPTokenizer::from_folder: vocab.json, merges.txt,
// tokenizer_config.json, special_tokens_map.json of a model's tokenizer/). The input holds the four files in
// that order, separated by lines "--8<--"; a file with no part is absent (the last two are optional). The
// loaded tokenizer then tokenizes prompts that meet its special tokens, Unicode and invalid UTF-8, and decodes
// the ids back. A pass: draft::Error, or ids that decode; never a crash, a sanitizer report or another
// exception (nlohmann's type errors and std::stoll's included).
#include <array>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string_view>

#include "fuzz_support.h"
#include "models/clip_tokenizer.h"
#include "util/error.h"

namespace {

constexpr std::string_view kSeparator = "\n--8<--\n";
constexpr std::array<const char*, 4> kFiles = {"vocab.json", "merges.txt", "tokenizer_config.json",
                                               "special_tokens_map.json"};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  draft::fuzz::quiet_single_threaded_torch();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static const std::string dir = draft::fuzz::scratch_file("tokenizer");
  std::filesystem::create_directories(dir);
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::size_t start = 0;
  for (std::size_t i = 0; i < kFiles.size(); ++i) {
    const std::string path = dir + "/" + kFiles[i];
    if (start > input.size()) {
      std::filesystem::remove(path);
      continue;
    }
    const std::size_t end = std::min(input.find(kSeparator, start), input.size());
    draft::fuzz::write_file(path, input.data() + start, end - start);
    start = end + kSeparator.size();
  }
  try {
    const draft::CLIPTokenizer tok = draft::CLIPTokenizer::from_folder(dir);
    static const char* const kPrompts[] = {
        "a photo of a cat", "<|startoftext|>a<|endoftext|>!!", "Ünïcödé ΣΑΣ İ 東京 don't", "  \t\n ", "",
        "\xff\xfe broken \xc3", "the a to in of and photo cat"};
    for (const char* prompt : kPrompts) {
      try {
        const std::vector<int64_t> ids = tok.encode(prompt);
        (void)tok.decode(ids);
        (void)tok.decode(ids, /*skip_special_tokens=*/true);
      } catch (const draft::Error&) {
      }
    }
    const draft::TokenizerOutput out = tok({"a photo of a cat", ""});
    if (out.input_ids.size(1) != tok.max_length()) std::abort();
  } catch (const draft::Error&) {
  }
  return 0;
}
