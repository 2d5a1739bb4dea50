// `draft bench efficiency`: fine-tunes the embedded model with every method of a preset on every task,
// for several seeds, and reports held-out reward against reward queries (efficiency_report.h). The
// preset (configs/bench-efficiency.json) composes each run's FinetuneConfig as JSON merge patches:
// defaults < base < the method's config < {task reward, eval.reward, train.seed, eval.at, out_dir}.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "efficiency/efficiency_report.h"

namespace draft {

/// A reward to fine-tune on: the training reward (per method, where one needs another, e.g. DDPO on the
/// true JPEG size instead of the differentiable proxy) and the held-out reward every method is judged by.
struct EfficiencyTask {
  std::string key;
  std::string label;
  std::string reward;                             ///< training reward spec
  std::string eval_reward;                        ///< eval.reward of every run
  std::map<std::string, std::string> reward_for;  ///< method key -> training reward instead of `reward`
};

/// A method of the comparison: a FinetuneConfig merge patch over the preset's base.
struct EfficiencyMethod {
  std::string key;
  std::string label;
  nlohmann::json config;
  /// Its learning-rate sweep (efficiency_sweep.h): the method's own "lr_sweep", else the preset's; one rate
  /// (a method's "lr_sweep": [] gives its config's optimizer.lr): not swept. Empty (no sweep anywhere in
  /// the preset): runs sit in <task>/<method>/seed<k>.
  std::vector<double> learning_rates;
  /// Evaluations at these steps besides the log-spaced ones (e.g. where DDPO has used 2,400 queries).
  std::vector<int64_t> extra_eval_steps;
  /// The preset's seeds this method runs (a costly method may run fewer); empty: all of them.
  std::vector<uint64_t> seeds;
};

/// A parsed preset (the keys of configs/bench-efficiency.json; docs/cli.md).
struct EfficiencyPreset {
  std::string source;  ///< the file, for error messages
  std::string out_dir;
  std::vector<uint64_t> seeds;
  int64_t eval_points = 10;               ///< log-spaced evaluations per run (step 0 comes on top)
  nlohmann::json base;                    ///< partial FinetuneConfig common to every run
  std::vector<EfficiencyTask> tasks;      ///< in task_order
  std::vector<EfficiencyMethod> methods;  ///< in method_order
  std::string reference;
  std::string second_reference;
  std::vector<std::string> k_ablation;
  std::vector<int64_t> reference_budgets;  ///< efficiency_report.h
  /// Every finished run's final LoRA is also judged at this DDIM η (e.g. 1, DDPO's own sampler), besides
  /// eval.eta; none: not.
  std::optional<double> second_eta;

  /// Reads a preset; with `quick`, its "quick" object is first merge-patched over the whole preset.
  /// Unknown keys, wrong types and order lists that do not match the tasks / methods throw draft::Error
  /// naming `source` and the key.
  static EfficiencyPreset from_json(nlohmann::json json, const std::string& source, bool quick);
  static EfficiencyPreset load(const std::string& path, bool quick);

  /// What the report covers: every task and method of the preset in <out_dir>.
  EfficiencyReportSpec report_spec() const;
};

/// One fine-tuning run of the benchmark.
struct EfficiencyRun {
  std::string task;
  std::string method;
  uint64_t seed = 0;
  std::optional<double> lr;  ///< the run's rate when the method has a learning-rate level
  std::string dir;        ///< <out_dir>/<task>/<method>[/lr<lr>]/seed<seed>
  nlohmann::json config;  ///< the resolved, validated FinetuneConfig as JSON
};

/// About `points` distinct integers geometrically spaced in [1, steps], increasing, the first 1 and the
/// last `steps` (min(points, steps) of them).
std::vector<int64_t> log_spaced_steps(int64_t steps, int64_t points);

/// Runs restricted to some seeds / tasks / methods; empty: all of the preset's. Seeds outside the
/// preset's list are allowed (more seeds later); unknown task and method keys throw, listing the known.
struct EfficiencySelection {
  std::vector<uint64_t> seeds;
  std::vector<std::string> tasks;
  std::vector<std::string> methods;
};

/// The selected runs that can be planned now, in the order they run: first the learning-rate sweeps (the
/// preset's first seed at every rate; task, method, rate), then seed by seed (task, method) the other
/// seeds, each at its method's chosen rate, which is known once the method's sweep has finished (until
/// then "<task>/<method>" is added to `waiting`). Every config is resolved and validated here, so a bad
/// preset fails before the first run; the error names the run.
std::vector<EfficiencyRun> plan_efficiency_runs(const EfficiencyPreset& preset,
                                                const EfficiencySelection& selection = {},
                                                std::vector<std::string>* waiting = nullptr);

/// Runs the planned runs one after another (skipping finished ones, continuing partial ones), planning
/// again after each, so that a method's other seeds follow its finished sweep; printing one line per run
/// to `out` and appending it to <out_dir>/progress.jsonl, and rewrites the report after each run. With a
/// second η, each finished run's final LoRA is also evaluated at it (kSecondEtaFile). `report_only`: no
/// training, only the report. Ends by printing the report's tables.
void run_efficiency_benchmark(const EfficiencyPreset& preset, const EfficiencySelection& selection, bool report_only,
                              std::ostream& out);

}  // namespace draft
