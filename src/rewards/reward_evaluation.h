// Reward evaluation of a text-to-image model: the reward's mean, spread and 95% interval over fixed
// seeds and prompts, and two reward-hacking monitors: diversity (are samples for one prompt collapsing?)
// and drift (how far did the images move from the base model's images for the same seeds?).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "diffusion/stable_diffusion.h"
#include "rewards/reward.h"

namespace draft {

struct RewardEvalOptions {
  std::vector<std::string> prompts;
  int64_t images_per_prompt = 4;  ///< n: samples per prompt (diversity needs at least 2)
  int64_t steps = 50;
  double guidance_scale = 7.5;
  double eta = 0.0;
  uint64_t seed = 0;       ///< prompt i draws its x_T from a CPU generator seeded with seed + i
  int64_t batch_size = 8;  ///< images per pipeline call (memory), not part of the result
  /// Feature space of the monitors: "auto" (the reward's own features, else the shipped classifier for
  /// 1-channel 32x32 images when models_dir holds it, else pixels), "reward", "classifier" or "pixels".
  std::string features = "auto";
  std::string models_dir = "models";  ///< where the shipped classifier lives (features "classifier")
};

/// Mean, sample standard deviation and the 95% interval of the mean (Student t) of a set of scores.
struct RewardStats {
  int64_t count = 0;
  double mean = 0;
  double std = 0;
  double ci_low = 0;
  double ci_high = 0;
};

/// Stats of a (N) tensor of scores.
RewardStats reward_stats(const at::Tensor& scores);

struct PromptEval {
  std::string prompt;
  RewardStats stats;
};

struct RewardEvalResult {
  std::string reward;
  RewardStats overall;
  std::vector<PromptEval> per_prompt;
  std::string feature_space;        ///< the space the monitors were measured in
  std::optional<double> diversity;  ///< mean pairwise L2 feature distance within a prompt (n >= 2)
  std::optional<double> drift;      ///< mean L2 feature distance to the base model's image, same seed
  std::optional<RewardStats> base;  ///< the base model's reward, when a base model was given
  at::Tensor images;                ///< (B, C, H, W) on the CPU, prompt-major
  at::Tensor scores;                ///< (B)
};

/// Samples options.images_per_prompt images per prompt with `model` (and, for drift, with `base` from
/// the same initial noise), scores them and computes the monitors. Runs under no-grad.
RewardEvalResult evaluate_reward(const StableDiffusion& model, Reward& reward, const RewardEvalOptions& options,
                                 const StableDiffusion* base = nullptr);

/// Mean pairwise L2 distance between rows of `features` (N, D) within consecutive groups of `group`
/// rows; undefined (nullopt) when group < 2.
std::optional<double> mean_pairwise_distance(const at::Tensor& features, int64_t group);

}  // namespace draft
