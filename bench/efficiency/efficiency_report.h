// The report of `draft bench efficiency`: reads the finished run folders <out>/<task>/<method>/seed<k>
// (with a learning-rate sweep: <out>/<task>/<method>/lr<η>/seed<k>, efficiency_sweep.h), computes held-out
// reward against reward queries per method (median and min..max over seeds), the queries each method needs
// to reach a reference method's final level, final numbers, a K ablation and the paper's claims judged per
// task (efficiency_claims.h), and writes results.json, results.md, one SVG per task and report.html (the
// same tables and plots in one self-contained page, efficiency_html.h). Partial benchmarks are fine:
// missing runs show as "n/a" or as fewer seeds.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace draft {

/// A task or method of the benchmark: its key (the folder name) and its label (tables, legends).
struct BenchEntry {
  std::string key;
  std::string label;
};

/// What the report covers.
struct EfficiencyReportSpec {
  std::string out_dir;                  ///< holds <task>/<method>/seed<k>/ run folders
  std::vector<BenchEntry> tasks;        ///< in table order
  std::vector<BenchEntry> methods;      ///< in table order
  std::string reference;                ///< method whose median final reward is the level of the reach table
  std::string second_reference;         ///< a second reach table ("": none)
  std::vector<std::string> k_ablation;  ///< methods of the K-ablation table
  /// Per method key, the learning rates of its sweep (one rate: not swept); the method's runs are those at
  /// the chosen rate. A method not in the map has its runs directly in <task>/<method>/seed<k>.
  std::map<std::string, std::vector<double>> learning_rates;
  uint64_t sweep_seed = 0;  ///< the seed of the sweep runs
  /// Extra reach tables at the reference's held-out reward after this many of its reward queries (the
  /// last evaluation at or below the budget), besides the one at its final level.
  std::vector<int64_t> reference_budgets;
  /// The DDIM η of the second held-out evaluation of every final LoRA (kSecondEtaFile); none: not made.
  std::optional<double> second_eta;
};

/// One held-out evaluation of a run (an "eval" record of metrics.jsonl).
struct EvalPoint {
  int64_t step = 0;
  int64_t reward_queries = 0;  ///< training totals at that step (0 at step 0)
  int64_t unet_evals = 0;
  double wall_time = 0;
  double reward = 0;  ///< eval_reward_mean
};

/// What the report reads from one finished run folder.
struct RunRecord {
  uint64_t seed = 0;
  int64_t steps = 0;               ///< train.steps of its config.json
  std::vector<EvalPoint> evals;    ///< in step order; the last one is at `steps`
  std::vector<double> grad_norms;  ///< pre-clipping global norms of the steps that were not skipped
  int64_t skipped_steps = 0;
  int64_t reward_queries = 0;  ///< totals of the last step record
  int64_t unet_evals = 0;
  double wall_time = 0;
  /// The final LoRA's held-out reward at the benchmark's second η (eval_second_eta.json), when measured.
  std::optional<double> second_eta_reward;
  /// DDPO's PPO diagnostics on the optimizer steps that re-use samples (ratio ≠ 1): clip fraction and
  /// approximate KL per step.
  std::vector<double> clip_fractions;
  std::vector<double> approx_kls;
};

/// The file in a finished run folder that holds its final LoRA's evaluation at the benchmark's second η
/// ({"eta": η, "eval_reward_mean": ...}).
inline constexpr const char* kSecondEtaFile = "eval_second_eta.json";

/// True when `run_dir` holds a finished run: config.json, a step record and an eval record at
/// train.steps in metrics.jsonl, and lora_final.safetensors.
bool run_is_finished(const std::string& run_dir);

/// The finished runs among the seed<k> folders of `method_dir` (<out>/<task>/<method>), by seed.
/// Unfinished ones (running, interrupted) are left out.
std::vector<RunRecord> read_finished_runs(const std::string& method_dir);

/// The training reward queries at the first evaluation whose held-out reward is >= level; none when no
/// evaluation reaches it.
std::optional<int64_t> first_reach_queries(const RunRecord& run, double level);

/// Reads the runs and computes every number of the report (the content of results.json).
nlohmann::json compute_efficiency_report(const EfficiencyReportSpec& spec);

/// The Markdown tables of a computed report (the content of results.md; efficiency_markdown.cpp).
std::string efficiency_report_markdown(const nlohmann::json& report);

/// compute_efficiency_report, then writes <out>/results.json, <out>/results.md, for each task with finished
/// runs <out>/efficiency_<task>.svg, and <out>/report.html (efficiency_html.h). Returns the report.
nlohmann::json write_efficiency_report(const EfficiencyReportSpec& spec);

}  // namespace draft
