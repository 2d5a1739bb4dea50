// The Markdown of the efficiency benchmark's report (efficiency_report.h): one section per task with its
// plot, the paper's claims, the learning-rate sweep, final numbers, PPO diagnostics, reach tables and the
// K ablation, from the JSON that compute_efficiency_report makes.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "efficiency/efficiency_claims.h"
#include "efficiency/efficiency_report.h"

namespace draft {
namespace {

// Markdown cells.
std::string reward_cell(const nlohmann::json& s) {
  if (s.is_null()) return "n/a";
  return fmt::format("{:.3f} [{:.3f}, {:.3f}]", s["median"].get<double>(), s["min"].get<double>(),
                     s["max"].get<double>());
}
std::string count(double v) { return v == std::floor(v) ? fmt::format("{:.0f}", v) : fmt::format("{:.1f}", v); }
std::string count_cell(const nlohmann::json& s) {
  if (s.is_null()) return "n/a";
  return fmt::format("{} [{}, {}]", count(s["median"].get<double>()), count(s["min"].get<double>()),
                     count(s["max"].get<double>()));
}
// A lower bound (the reference did not reach the level, so its queries are at least what it used) is
// written "≥".
std::string ratio_cell(const nlohmann::json& s, bool lower_bound = false) {
  if (s.is_null()) return "n/a";
  return fmt::format("{}{:.2f}x [{:.2f}, {:.2f}]", lower_bound ? "≥ " : "", s["median"].get<double>(),
                     s["min"].get<double>(), s["max"].get<double>());
}
std::string number_cell(const nlohmann::json& v, const char* format) {
  return v.is_number() ? fmt::format(fmt::runtime(format), v.get<double>()) : "n/a";
}

bool any_method_has(const nlohmann::json& task, const char* key) {
  for (const auto& m : task["methods"]) {
    if (!m[key].is_null()) return true;
  }
  return false;
}

// The learning-rate sweep of a task: final held-out reward of the sweep seed per method and rate, the
// chosen rate in bold.
std::string sweep_markdown(const nlohmann::json& task, const nlohmann::json& sweep_seed) {
  std::vector<double> rates;
  for (const auto& m : task["methods"]) {
    if (m["sweep"].is_null()) continue;
    for (const auto& lr : m["sweep"]["lr"]) rates.push_back(lr.get<double>());
  }
  if (rates.empty()) return "";
  std::sort(rates.begin(), rates.end());
  rates.erase(std::unique(rates.begin(), rates.end()), rates.end());
  std::string md = fmt::format(
      "### Learning-rate sweep\n\nFinal held-out reward of seed {} at each learning rate; the method's rate "
      "(bold) is the best, and its other seeds run at it. \"-\": not in the method's sweep.\n\n| method |",
      sweep_seed.get<uint64_t>());
  for (double lr : rates) md += fmt::format(" lr {:g} |", lr);
  md += "\n|---|";
  for (std::size_t i = 0; i < rates.size(); ++i) md += "---|";
  md += "\n";
  for (const auto& m : task["methods"]) {
    if (m["sweep"].is_null()) continue;
    md += "| " + m["label"].get<std::string>() + " |";
    for (double lr : rates) {
      std::string cell = "-";
      const nlohmann::json& s = m["sweep"];
      for (std::size_t i = 0; i < s["lr"].size(); ++i) {
        if (s["lr"][i].get<double>() != lr) continue;
        cell = number_cell(s["final_reward"][i], "{:.3f}");
        if (s["chosen"].is_number() && s["chosen"].get<double>() == lr) cell = "**" + cell + "**";
      }
      md += " " + cell + " |";
    }
    md += "\n";
  }
  return md + "\n";
}

// DDPO's PPO diagnostics: the ratio leaves 1 only on steps that re-use samples (inner epochs >= 2), where
// the clip then acts.
std::string ppo_markdown(const nlohmann::json& task) {
  std::string rows;
  for (const auto& m : task["methods"]) {
    const nlohmann::json& f = m["final"];
    if (!f["clip_fraction"].is_number()) continue;
    rows += fmt::format("| {} | {} | {:.3f} | {:.3g} |\n", m["label"].get<std::string>(), f["ppo_seeds"].get<int64_t>(),
                        f["clip_fraction"].get<double>(), f["approx_kl"].get<double>());
  }
  if (rows.empty()) return "";
  return "\nPPO diagnostics on the optimizer steps that re-use sampled trajectories (mean per run, median over "
         "seeds):\n\n| method | seeds | clip fraction | approx. KL |\n|---|---|---|---|\n" + rows;
}

}  // namespace

std::string efficiency_report_markdown(const nlohmann::json& report) {
  std::string md =
      "# Efficiency benchmark: held-out reward against reward queries\n\n"
      "Medians over the finished seeds, [min, max] over seeds. Reward queries: images scored during "
      "training; held-out reward: the evaluation prompts at fixed noise.\n";
  for (const auto& task : report["tasks"]) {
    const std::string key = task["key"];
    md += fmt::format("\n## {} (`{}`)\n\n", task["label"].get<std::string>(), key);
    bool any = false;
    for (const auto& m : task["methods"]) any = any || !m["seeds"].empty();
    if (!any) {
      md += "No finished runs yet.\n";
      continue;
    }
    md += fmt::format("![{}](efficiency_{}.svg)\n\n", task["label"].get<std::string>(), key);
    if (task.contains("claims")) md += paper_claims_markdown(task["claims"]);
    md += sweep_markdown(task, report["sweep_seed"]);
    const bool with_lr = any_method_has(task, "lr");
    const bool with_eta = report["second_eta"].is_number();
    md += fmt::format(
        "### Final held-out reward and cost per run\n\n"
        "| method |{} seeds | final held-out reward |{} reward queries | UNet evals | train time (s) |\n"
        "|---|{}---|---|{}---|---|---|\n",
        with_lr ? " lr |" : "", with_eta ? fmt::format(" at η = {} |", report["second_eta"].get<double>()) : "",
        with_lr ? "---|" : "", with_eta ? "---|" : "");
    md += fmt::format("| base model (step 0) |{} {} runs | {} |{} 0 | 0 | 0 |\n", with_lr ? " |" : "",
                      task["base_runs"].get<int64_t>(), number_cell(task["base_reward"], "{:.3f}"),
                      with_eta ? " |" : "");
    for (const auto& m : task["methods"]) {
      const nlohmann::json& f = m["final"];
      md += fmt::format("| {} |{} {} | {} |{} {} | {} | {} |\n", m["label"].get<std::string>(),
                        with_lr ? " " + number_cell(m["lr"], "{:g}") + " |" : "", m["seeds"].size(),
                        reward_cell(f["reward"]), with_eta ? " " + reward_cell(f["second_eta_reward"]) + " |" : "",
                        number_cell(f["reward_queries"], "{:.0f}"), number_cell(f["unet_evals"], "{:.0f}"),
                        number_cell(f["wall_time"], "{:.0f}"));
    }
    md += ppo_markdown(task);
    for (const auto& reach : task["reach"]) {
      const std::string ref = reach["reference_label"];
      const std::string which = reach["budget"].is_null()
                                    ? "final"
                                    : fmt::format("after {} queries", reach["budget"].get<int64_t>());
      md += reach["budget"].is_null()
                ? fmt::format("\n### Reward queries to reach {}'s final level\n\n", ref)
                : fmt::format("\n### Reward queries to reach {}'s level after {} queries\n\n", ref,
                              reach["budget"].get<int64_t>());
      if (!reach["level"].is_number()) {
        md += fmt::format("n/a: {} has no finished run yet.\n", ref);
        continue;
      }
      const bool lower_bound = reach["q_ref_lower_bound"].get<bool>();
      md += fmt::format(
          "Level L = {:.3f} (median {} held-out reward of {} over {} seeds); {} reaches it after q_ref = {}{} "
          "queries (median over its seeds; a seed that never reaches L counts all its queries{}). Speed-up = "
          "q_ref / a seed's first-reach queries, over the seeds that reach L.\n\n"
          "| method | seeds reaching L | queries to reach L | speed-up vs {} |\n|---|---|---|---|\n",
          reach["level"].get<double>(), which, ref, reach["reference_seeds"].get<int64_t>(), ref,
          lower_bound ? "≥ " : "", count(reach["q_ref"].get<double>()),
          lower_bound ? ", so q_ref and the speed-ups are lower bounds" : "", ref);
      for (const auto& row : reach["methods"]) {
        const int64_t seeds = row["seeds"], reached = row["reached"];
        std::string queries = count_cell(row["reward_queries"]);
        if (seeds > 0 && reached == 0) queries = "not reached";
        md += fmt::format("| {} | {}/{} | {} | {} |\n", row["label"].get<std::string>(), reached, seeds, queries,
                          ratio_cell(row["ratio"], lower_bound));
      }
    }
    if (!task["k_ablation"].empty()) {
      md +=
          "\n### K ablation\n\nGradient norms before clipping, over every step of every seed.\n\n"
          "| method | seeds | final held-out reward | grad norm median | grad norm max | skipped steps |\n"
          "|---|---|---|---|---|---|\n";
      for (const auto& row : task["k_ablation"]) {
        md +=
            fmt::format("| {} | {} | {} | {} | {} | {} |\n", row["label"].get<std::string>(),
                        row["seeds"].get<int64_t>(), reward_cell(row["reward"]),
                        number_cell(row["grad_norm_median"], "{:.3g}"), number_cell(row["grad_norm_max"], "{:.3g}"),
                        row["seeds"].get<int64_t>() == 0 ? "n/a" : std::to_string(row["skipped_steps"].get<int64_t>()));
      }
    }
  }
  return md;
}

}  // namespace draft
