// The flags that choose a reward (--reward SPEC, --reward-weights DIR, --models-dir DIR), shared by the
// commands that score images.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "rewards/reward_registry.h"

namespace draft::cli {

struct RewardFlags {
  std::string spec;
  std::string weights_dir;
  std::string models_dir = "models";

  /// `dtype`: the command's compute dtype, which CLIP rewards run in unless their dtype= option says
  /// otherwise (RewardContext::dtype).
  RewardContext context(c10::Device device, c10::ScalarType dtype = c10::kFloat) const {
    RewardContext c;
    c.models_dir = models_dir;
    c.weights_dir = weights_dir;
    c.device = device;
    c.dtype = dtype;
    return c;
  }
};

/// One line per registered reward: "  name  summary [options]".
inline std::string reward_list_text() {
  std::string text;
  for (const auto& r : registered_rewards()) {
    text += "\n  " + r.name + ": " + r.summary + (r.options.empty() ? "" : " [" + r.options + "]");
  }
  return text;
}

/// The help text of --reward.
inline std::string reward_spec_help() {
  return "reward spec: NAME[:KEY=VALUE...][:WEIGHT], comma-separated terms are summed "
         "(e.g. classifier:1,jpeg-proxy:-0.1). Rewards:" + reward_list_text();
}

/// --reward-weights and --models-dir: where rewards find their weights (a command whose --reward takes
/// several specs registers that flag itself).
inline void add_reward_location_flags(CLI::App* sub, RewardFlags& flags) {
  sub->add_option("--reward-weights", flags.weights_dir,
                  "folder of reward weights (CLIP, PickScore, HPSv2, aesthetic head); default "
                  "$DRAFT_REWARD_WEIGHTS or models/rewards");
  sub->add_option("--models-dir", flags.models_dir, "folder of the shipped models (fashion-classifier/)")
      ->capture_default_str();
}

inline void add_reward_flags(CLI::App* sub, RewardFlags& flags) {
  sub->add_option("--reward", flags.spec, reward_spec_help())->required();
  add_reward_location_flags(sub, flags);
}

}  // namespace draft::cli
