// The HTML report of one or several training runs (`draft report`): one self-contained file that opens
// offline, with reward and held-out reward curves (against steps and reward queries, one colour per run),
// loss, gradient norm and learning rate, the evaluation grids of every run in step order, the config and
// method, timings, and the reward-hacking monitors (diversity, with a warning when it falls by more than a
// threshold from its step-0 value; drift when measured). Pretraining runs get curves of every number their
// records have.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "train/run_history.h"

namespace draft {

struct RunReportOptions {
  std::string title;  ///< the page's title; empty: "draft report: " + the run labels
  /// The warning level of the diversity monitor: a fall of more than this fraction of the run's step-0
  /// diversity (0.1: below 90% of it) is flagged as possible reward hacking.
  double diversity_warning = 0.1;
};

/// The diversity monitor of one run: its evaluations' "diversity" against the first one's (step 0, the
/// base model, in a fine-tuning run).
struct DiversityCheck {
  bool measured = false;  ///< at least one evaluation has a diversity
  int64_t base_step = 0;  ///< the step of the reference value (0 unless the run has no step-0 evaluation)
  double base = 0;        ///< the reference diversity
  int64_t last_step = 0;
  double last = 0;         ///< the diversity of the last evaluation that has one
  int64_t lowest_step = 0;
  double lowest = 0;        ///< the lowest diversity of any evaluation
  double largest_fall = 0;  ///< (base - lowest) / base; 0 when base <= 0
  bool warn = false;        ///< largest_fall > threshold
  int64_t first_warn_step = -1;  ///< the first evaluation whose fall exceeds the threshold; -1: none
};

/// The diversity monitor of `evals` (evaluation records, any order) at `threshold` (a fraction in [0, 1];
/// 0 flags any fall). Throws draft::Error for a threshold outside [0, 1].
DiversityCheck check_diversity(const std::vector<nlohmann::json>& evals, double threshold);

/// The report of `runs` as a complete HTML page (the sample grids are read from disk and embedded).
/// Throws draft::Error when `runs` is empty, the threshold is outside [0, 1], or a grid cannot be read.
std::string render_run_report(const std::vector<RunHistory>& runs, const RunReportOptions& options);

/// Reads every folder of `run_dirs` (train/run_history.h: a folder that is not a run is refused, naming it),
/// renders the report and writes it to `path` atomically.
void write_run_report(const std::vector<std::string>& run_dirs, const std::string& path,
                      const RunReportOptions& options);

}  // namespace draft
