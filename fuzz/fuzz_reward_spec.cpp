// libFuzzer target over reward specs (--reward SPEC of eval, score, probe, finetune and the bench preset's
// rewards): parse_reward_spec, then make_reward with the embedded rewards (the shipped fashion classifier, true
// JPEG size, jpeg-proxy, detail, weighted sums), and a score of one 32x32 gray image. The CLIP-based rewards are
// given a weights folder that does not exist, so their options are read and they fail at the weights with
// draft::Error; terms that name a path (model=, clip=, head=, tokenizer=) are only parsed, so that no input loads
// a file of its choosing. The input is the spec string. A pass: draft::Error, or a reward whose score is one
// number; never a crash, a sanitizer report (a float-to-integer overflow included) or another exception.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "fuzz_support.h"
#include "rewards/reward_registry.h"
#include "util/error.h"

namespace {

bool names_a_path(const std::vector<draft::RewardTerm>& terms) {
  for (const auto& term : terms) {
    for (const char* key : {"model", "clip", "head", "tokenizer"}) {
      if (term.options.count(key)) return true;
    }
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  draft::fuzz::quiet_single_threaded_torch();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string spec(reinterpret_cast<const char*>(data), size);
  draft::RewardContext context;
  context.models_dir = std::string(DRAFT_SOURCE_DIR) + "/models";
  context.weights_dir = draft::fuzz::scratch_file("no-reward-weights");
  static const at::Tensor image = torch::full({1, 1, 32, 32}, 0.5f);
  torch::NoGradGuard no_grad;
  try {
    const std::vector<draft::RewardTerm> terms = draft::parse_reward_spec(spec);
    if (terms.empty()) std::abort();
    if (names_a_path(terms)) return 0;
    const draft::RewardPtr reward = draft::make_reward(spec, context);
    if (!reward) std::abort();
    (void)reward->name();
    const at::Tensor score = reward->score(image, {"a photo of a coat"});
    if (score.numel() != 1) std::abort();
  } catch (const draft::Error&) {
  }
  return 0;
}
