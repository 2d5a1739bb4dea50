// libFuzzer target over prompt files (read_prompt_file: --prompts FILE of sample, eval, score, finetune) and what
// every command does next with the prompts: tokenize them with Stable Diffusion 1.5's CLIP tokenizer (the
// tests/data/tokenizer_clip fixture) as a padded batch, and decode the ids back. The input is the file's bytes,
// invalid UTF-8 included. A pass: draft::Error (no prompt, a prompt that is not UTF-8), or prompts with no
// newline, a (B, 77) batch of ids inside the vocabulary that decode; never a crash, a sanitizer report or
// another exception.
#include <cstdint>
#include <cstdlib>

#include "data/prompt_file.h"
#include "fuzz_support.h"
#include "models/clip_tokenizer.h"
#include "util/error.h"

namespace {

const draft::CLIPTokenizer& tokenizer() {
  static const draft::CLIPTokenizer tok =
      draft::CLIPTokenizer::from_folder(std::string(DRAFT_SOURCE_DIR) + "/tests/data/tokenizer_clip");
  return tok;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  draft::fuzz::quiet_single_threaded_torch();
  (void)tokenizer();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static const std::string path = draft::fuzz::scratch_file("prompts.txt");
  draft::fuzz::write_file(path, data, size);
  std::vector<std::string> prompts;
  try {
    prompts = draft::read_prompt_file(path);
  } catch (const draft::Error&) {
    return 0;
  }
  if (prompts.empty()) std::abort();
  for (const auto& p : prompts) {
    if (p.empty() || p.find('\n') != std::string::npos) std::abort();
  }
  const auto& tok = tokenizer();
  draft::TokenizerOutput out;
  try {
    out = tok(prompts);
  } catch (const draft::Error&) {
    return 0;  // a prompt that is not valid UTF-8
  }
  if (out.input_ids.size(0) != static_cast<int64_t>(prompts.size()) || out.input_ids.size(1) != tok.max_length()) {
    std::abort();
  }
  if (out.input_ids.min().item<int64_t>() < 0 || out.input_ids.max().item<int64_t>() >= tok.vocab_size()) std::abort();
  for (int64_t b = 0; b < out.input_ids.size(0); ++b) {
    const int64_t n = out.attention_mask[b].sum().item<int64_t>();
    const at::Tensor row = out.input_ids[b].slice(0, 0, n).contiguous();
    std::vector<int64_t> ids(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + n);
    (void)tok.decode(ids, /*skip_special_tokens=*/true);
  }
  return 0;
}
