// The reward registry: builds a Reward from a spec string such as "classifier",
// "classifier:target=coat" or the weighted sum "classifier:1.0,jpeg-proxy:-0.1", and lets user code add
// rewards with one line (DRAFT_REGISTER_REWARD).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "rewards/reward.h"

namespace draft {

/// How the registry builds one reward.
struct RewardFactory {
  std::string name;     ///< the name used in specs, e.g. "jpeg-proxy"
  std::string summary;  ///< one line for `draft eval --help` and error messages
  std::string options;  ///< the options it accepts, e.g. "quality=Q (default 95)"; empty if none
  bool differentiable = true;
  std::function<RewardPtr(const RewardOptions&, const RewardContext&)> make;
};

/// Adds a reward. Throws draft::Error when the name is empty, already taken, or not made of lower-case
/// letters, digits, '-' and '_'. Returns true so that it can initialise a static (see the macro).
bool register_reward(RewardFactory factory);

/// Every registered reward (the built-in ones first), sorted by name.
std::vector<RewardFactory> registered_rewards();

/// One term of a spec: name, key=value options and the weight (1 when not given).
struct RewardTerm {
  std::string name;
  std::map<std::string, std::string> options;
  double weight = 1.0;
};

/// Parses "name[:key=value...][:weight],name2..." into its terms. Throws draft::Error naming the term
/// that is malformed.
std::vector<RewardTerm> parse_reward_spec(const std::string& spec);

/// Throws what make_reward would for a malformed spec or an unknown name, without building anything: a
/// typo is reported before a command creates its run folder or loads a model.
void check_reward_spec(const std::string& spec);

/// Builds the reward a spec names. One term with weight 1 gives that reward itself; otherwise a
/// WeightedSumReward. An unknown name lists the available ones.
RewardPtr make_reward(const std::string& spec, const RewardContext& context = {});

}  // namespace draft

#define DRAFT_REWARD_CONCAT_INNER(a, b) a##b
#define DRAFT_REWARD_CONCAT(a, b) DRAFT_REWARD_CONCAT_INNER(a, b)

/// Registers a reward from a translation unit of the program (not of a static library, whose unused
/// objects the linker drops):
///   DRAFT_REGISTER_REWARD("brightness", "mean pixel value", [](const draft::RewardOptions& o,
///                         const draft::RewardContext&) { return std::make_shared<Brightness>(o); });
#define DRAFT_REGISTER_REWARD(name, summary, ...)                                                      \
  static const bool DRAFT_REWARD_CONCAT(draft_reward_registered_, __LINE__) =                          \
      ::draft::register_reward(::draft::RewardFactory{name, summary, "", true, __VA_ARGS__})
