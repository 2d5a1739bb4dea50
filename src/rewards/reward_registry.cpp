// The reward registry: the built-in rewards, user registrations, and the spec parser.
#include "rewards/reward_registry.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <mutex>

#include "rewards/builtin_rewards.h"
#include "rewards/weighted_sum_reward.h"
#include "util/error.h"

namespace draft {
namespace {

std::map<std::string, RewardFactory>& registry() {
  static std::map<std::string, RewardFactory> factories;
  return factories;
}

std::mutex& registry_mutex() {
  static std::mutex mutex;
  return mutex;
}

void check_factory(const RewardFactory& factory) {
  DRAFT_CHECK(!factory.name.empty(), "a reward needs a name");
  for (char c : factory.name) {
    DRAFT_CHECK(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) ||
                    c == '-' || c == '_',
                "reward name '", factory.name, "' may only hold lower-case letters, digits, '-' and '_'");
  }
  DRAFT_CHECK(static_cast<bool>(factory.make), "reward '", factory.name, "' has no make function");
}

void add_locked(RewardFactory factory) {
  check_factory(factory);
  auto& factories = registry();
  DRAFT_CHECK(factories.count(factory.name) == 0, "a reward named '", factory.name,
              "' is already registered; choose another name");
  factories.emplace(factory.name, std::move(factory));
}

// Built-ins are added on first use rather than by static initialisers, which a static library would
// drop from the link.
void ensure_builtins_locked() {
  static bool done = false;
  if (done) return;
  done = true;
  for (auto make : {classifier_reward_factory, jpeg_reward_factory, compressibility_reward_factory,
                    incompressibility_reward_factory, jpeg_proxy_reward_factory, detail_reward_factory,
                    aesthetic_reward_factory, pickscore_reward_factory, hpsv2_reward_factory,
                    clip_score_reward_factory}) {
    add_locked(make());
  }
}

std::string trim(const std::string& text) {
  const auto begin = text.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  const auto end = text.find_last_not_of(" \t");
  return text.substr(begin, end - begin + 1);
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    const auto at = text.find(separator, start);
    parts.push_back(text.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) return parts;
    start = at + 1;
  }
}

bool parse_number(const std::string& text, double& value) {
  try {
    std::size_t end = 0;
    value = std::stod(text, &end);
    return end == text.size();
  } catch (const std::exception&) {
    return false;
  }
}

std::string available_names_locked() {
  std::string names;
  for (const auto& [name, factory] : registry()) names += (names.empty() ? "" : ", ") + name;
  return names;
}

}  // namespace

bool register_reward(RewardFactory factory) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  ensure_builtins_locked();
  add_locked(std::move(factory));
  return true;
}

std::vector<RewardFactory> registered_rewards() {
  std::lock_guard<std::mutex> lock(registry_mutex());
  ensure_builtins_locked();
  std::vector<RewardFactory> out;
  for (const auto& [name, factory] : registry()) out.push_back(factory);
  return out;
}

std::vector<RewardTerm> parse_reward_spec(const std::string& spec) {
  DRAFT_CHECK(!trim(spec).empty(), "the reward is empty: give a name such as 'classifier' (see 'draft eval --help')");
  std::vector<RewardTerm> terms;
  for (const std::string& raw_term : split(spec, ',')) {
    const std::string term_text = trim(raw_term);
    DRAFT_CHECK(!term_text.empty(), "reward '", spec, "' has an empty term (two commas in a row?)");
    const auto parts = split(term_text, ':');
    RewardTerm term;
    term.name = trim(parts[0]);
    DRAFT_CHECK(!term.name.empty(), "reward term '", term_text, "' has no name before ':'");
    bool weight_seen = false;
    for (std::size_t i = 1; i < parts.size(); ++i) {
      const std::string part = trim(parts[i]);
      const auto equals = part.find('=');
      if (equals != std::string::npos) {
        const std::string key = trim(part.substr(0, equals));
        DRAFT_CHECK(!key.empty(), "reward term '", term_text, "': option '", part, "' has no key before '='");
        DRAFT_CHECK(term.options.count(key) == 0, "reward term '", term_text, "' sets option ", key, " twice");
        term.options[key] = trim(part.substr(equals + 1));
        continue;
      }
      double weight = 0;
      DRAFT_CHECK(parse_number(part, weight), "reward term '", term_text, "': '", part,
                  "' is neither key=value nor a weight (a number)");
      DRAFT_CHECK(!weight_seen, "reward term '", term_text, "' has two weights");
      term.weight = weight;
      weight_seen = true;
    }
    terms.push_back(std::move(term));
  }
  return terms;
}

namespace {

RewardFactory find_factory(const std::string& name) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  ensure_builtins_locked();
  auto it = registry().find(name);
  DRAFT_CHECK(it != registry().end(), "unknown reward '", name, "'; available: ", available_names_locked());
  return it->second;
}

}  // namespace

void check_reward_spec(const std::string& spec) {
  for (const auto& term : parse_reward_spec(spec)) find_factory(term.name);
}

RewardPtr make_reward(const std::string& spec, const RewardContext& context) {
  const auto terms = parse_reward_spec(spec);
  std::vector<std::pair<double, RewardPtr>> built;
  for (const auto& term : terms) {
    const RewardFactory factory = find_factory(term.name);
    RewardOptions options(term.name, term.options);
    RewardPtr reward = factory.make(options, context);
    options.check_all_used();
    built.emplace_back(term.weight, std::move(reward));
  }
  if (built.size() == 1 && built.front().first == 1.0) return built.front().second;
  return std::make_shared<WeightedSumReward>(std::move(built));
}

}  // namespace draft
