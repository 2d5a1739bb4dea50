// The paper's claims judged per task (see efficiency_claims.h).
#include "efficiency/efficiency_claims.h"

#include <algorithm>
#include <optional>
#include <vector>

#include <fmt/format.h>

namespace draft {
namespace {

using nlohmann::json;

const json* method_of(const json& task, const std::string& key) {
  for (const auto& m : task["methods"]) {
    if (m["key"] == key) return &m;
  }
  return nullptr;
}

// The method's median final held-out reward at its chosen rate, when it has finished runs.
std::optional<double> final_median(const json& task, const std::string& key) {
  const json* m = method_of(task, key);
  if (!m || !(*m)["final"]["reward"].is_object()) return std::nullopt;
  return (*m)["final"]["reward"]["median"].get<double>();
}

std::string label_of(const json& task, const std::string& key) {
  const json* m = method_of(task, key);
  return m ? (*m)["label"].get<std::string>() : key;
}

// The reach table against `reference`'s final level, and `key`'s row in it.
const json* reach_table(const json& task, const std::string& reference) {
  for (const auto& r : task["reach"]) {
    if (r["reference"] == reference && r["budget"].is_null()) return &r;
  }
  return nullptr;
}
const json* reach_row(const json& table, const std::string& key) {
  for (const auto& row : table["methods"]) {
    if (row["key"] == key) return &row;
  }
  return nullptr;
}

json claim(const char* name, const char* paper, const std::string& criterion) {
  return {{"claim", name}, {"paper", paper}, {"criterion", criterion}, {"measured", ""}, {"verdict", "n/a"}};
}

// How fast `key` reaches `reference`'s final level, as a speed-up verdict: "reproduced" at `enough` or more,
// "weaker" above 1, else "not reproduced" (also when most seeds never reach the level).
void judge_speed_up(json& c, const json& task, const std::string& key, const std::string& reference, double enough) {
  const json* table = reach_table(task, reference);
  if (!table || !(*table)["level"].is_number()) {
    c["measured"] = fmt::format("{} has no finished run", label_of(task, reference));
    return;
  }
  const json* row = reach_row(*table, key);
  if (!row || (*row)["seeds"].get<int64_t>() == 0) {
    c["measured"] = fmt::format("{} has no finished run", label_of(task, key));
    return;
  }
  const int64_t seeds = (*row)["seeds"], reached = (*row)["reached"];
  const bool lower_bound = (*table)["q_ref_lower_bound"].get<bool>();
  const std::string level = fmt::format("{}'s final level {:.3f} ({:.0f} queries)", label_of(task, reference),
                                        (*table)["level"].get<double>(), (*table)["q_ref"].get<double>());
  if (2 * reached <= seeds || !(*row)["ratio"].is_object()) {
    c["measured"] = fmt::format("{} reaches {} in {} of {} seeds", label_of(task, key), level, reached, seeds);
    c["verdict"] = "not reproduced";
    return;
  }
  const double ratio = (*row)["ratio"]["median"];
  c["measured"] = fmt::format("{} reaches {} in {} of {} seeds, {}{:.1f}x fewer queries (median over seeds)",
                              label_of(task, key), level, reached, seeds, lower_bound ? "≥ " : "", ratio);
  c["verdict"] = ratio >= enough ? "reproduced" : ratio > 1.0 ? "weaker" : "not reproduced";
}

// A claim that DRaFT-LV reaches `reference`'s final held-out reward with at least `enough` times fewer queries.
json speed_up_claim(const char* name, const char* paper, const char* reference_label, const std::string& reference,
                    double enough, const json& task, const PaperClaimKeys& keys) {
  json c = claim(name, paper,
                 fmt::format("DRaFT-LV reaches {}'s final held-out reward with ≥ {:g}x fewer queries: reproduced; > 1x: "
                             "weaker",
                             reference_label, enough));
  judge_speed_up(c, task, keys.lv, reference, enough);
  return c;
}

// K = 1 (DRaFT-1, and DRaFT-LV, which also backpropagates through one step) against K = 5 and full DRaFT,
// each at its own chosen learning rate.
void judge_k1_best(json& c, const json& task, const PaperClaimKeys& keys) {
  std::vector<std::pair<std::string, double>> one, more;
  for (const std::string& key : {keys.k1, keys.lv}) {
    if (auto f = final_median(task, key)) one.emplace_back(key, *f);
  }
  for (const std::string& key : {keys.k_mid, keys.full}) {
    if (auto f = final_median(task, key)) more.emplace_back(key, *f);
  }
  if (one.empty() || more.empty()) {
    c["measured"] = "not every K has finished runs";
    return;
  }
  std::string measured;
  for (const auto& list : {one, more}) {
    for (const auto& [key, value] : list) {
      measured += fmt::format("{}{} {:.3f}", measured.empty() ? "" : ", ", label_of(task, key), value);
    }
  }
  const auto best = [](const auto& list) {
    return std::max_element(list.begin(), list.end(), [](auto& a, auto& b) { return a.second < b.second; })->second;
  };
  c["measured"] = "final held-out reward (median): " + measured;
  c["verdict"] = best(one) >= best(more) ? "reproduced" : "not reproduced";
}

// Full DRaFT is unstable when, at some learning rate of the sweep, it ends below the base model while
// DRaFT-1 at the same rate ends above it, or when it has non-finite (skipped) steps.
void judge_full_unstable(json& c, const json& task, const PaperClaimKeys& keys) {
  const json* full = method_of(task, keys.full);
  const json* k1 = method_of(task, keys.k1);
  if (!full || !k1 || !task["base_reward"].is_number()) {
    c["measured"] = "full DRaFT, DRaFT-1 or the base model has no finished run";
    return;
  }
  const double base = task["base_reward"];
  std::vector<std::string> collapses;
  int64_t compared = 0;
  if ((*full)["sweep"].is_object() && (*k1)["sweep"].is_object()) {
    const json& fs = (*full)["sweep"];
    const json& ks = (*k1)["sweep"];
    for (std::size_t i = 0; i < fs["lr"].size(); ++i) {
      for (std::size_t j = 0; j < ks["lr"].size(); ++j) {
        if (ks["lr"][j] != fs["lr"][i] || !fs["final_reward"][i].is_number() || !ks["final_reward"][j].is_number())
          continue;
        ++compared;
        const double f = fs["final_reward"][i], k = ks["final_reward"][j];
        if (f < base && k > base) collapses.push_back(fmt::format("lr {:g}: {:.3f} vs DRaFT-1 {:.3f}",
                                                                  fs["lr"][i].get<double>(), f, k));
      }
    }
  }
  int64_t skipped = 0;
  for (const auto& row : task["k_ablation"]) {
    if (row["key"] == keys.full) skipped = row["skipped_steps"];
  }
  if (compared == 0 && skipped == 0) {
    c["measured"] = "no learning rate with finished runs of both";
    return;
  }
  std::string measured = fmt::format("base {:.3f}; ", base);
  if (collapses.empty()) {
    measured += fmt::format("at none of {} rates does full DRaFT end below the base while DRaFT-1 ends above it",
                            compared);
  } else {
    measured += fmt::format("below the base while DRaFT-1 improves at {} of {} rates (", collapses.size(), compared);
    for (std::size_t i = 0; i < collapses.size(); ++i) measured += (i ? "; " : "") + collapses[i];
    measured += ")";
  }
  if (skipped > 0) measured += fmt::format("; {} non-finite steps skipped", skipped);
  c["measured"] = measured;
  c["verdict"] = !collapses.empty() || skipped > 0 ? "reproduced" : "not reproduced";
}

}  // namespace

json paper_claims_json(const json& task, const PaperClaimKeys& keys) {
  json claims = json::array();
  claims.push_back(speed_up_claim("DRaFT needs far fewer reward queries than DDPO",
                                  "over 200x faster than RL in some tests (aesthetic score, SD 1.4)", "DDPO", keys.ddpo,
                                  kFarFewerQueries, task, keys));
  claims.push_back(speed_up_claim("DRaFT-LV learns about 2x faster than ReFL", "about 2x faster (human-preference reward)",
                                  "ReFL", keys.refl, kAboutTwice, task, keys));
  json k1 = claim("K = 1 is the best truncation", "K = 1 is best; DRaFT-K beats full backpropagation at equal steps",
                  "the better of DRaFT-1 and DRaFT-LV ends at least as high as the better of DRaFT-K (K=5) and full "
                  "DRaFT, each at its own learning rate");
  judge_k1_best(k1, task, keys);
  claims.push_back(k1);
  json full = claim("Full backpropagation is unstable", "full backpropagation's gradients explode",
                    "at some learning rate of the sweep full DRaFT ends below the base model while DRaFT-1 ends above "
                    "it, or full DRaFT has non-finite steps");
  judge_full_unstable(full, task, keys);
  claims.push_back(full);
  return claims;
}

std::string paper_claims_markdown(const json& claims) {
  if (claims.empty()) return "";
  std::string md =
      "### The paper's claims on this task\n\n"
      "| claim | paper | measured | verdict | criterion |\n|---|---|---|---|---|\n";
  for (const auto& c : claims) {
    md += fmt::format("| {} | {} | {} | **{}** | {} |\n", c["claim"].get<std::string>(), c["paper"].get<std::string>(),
                      c["measured"].get<std::string>(), c["verdict"].get<std::string>(),
                      c["criterion"].get<std::string>());
  }
  return md + "\n";
}

}  // namespace draft
