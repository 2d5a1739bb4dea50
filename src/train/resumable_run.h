// Starting or resuming a training run, the same way for every trainer: a new run never overwrites an old
// one, and a resumed run keeps the settings its checkpoint depends on (only an explicit allow-list, such
// as the step budget and the evaluation and output settings, may change).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/optim/adamw.h>

#include "train/checkpoint.h"
#include "train/run_folder.h"
#include "train/run_lock.h"

namespace draft {

/// The settings that differ between a checkpoint's config (`saved`) and a resuming run's (`now`), as
/// "key: saved -> now" texts in key order. Keys are dotted paths of the leaves ("optimizer.lr"); lists are
/// compared whole. A key in `may_change`, or under a section named there ("eval" covers "eval.every"), is
/// not reported.
std::vector<std::string> changed_settings(const nlohmann::json& saved, const nlohmann::json& now,
                                          const std::vector<std::string>& may_change);

/// One training run in its folder. Use: construct (opens the folder), start() once the resolved config is
/// known, restore() when resuming() and the modules exist, then log() and save() while training.
class ResumableRun {
 public:
  /// Opens (creates) the run folder `dir` and locks it (train/run_lock.h: a second process on the folder is
  /// refused), then removes the temporary files of writes a killed process left. Without `resume`, a folder
  /// that already holds a run (a checkpoint or metrics.jsonl) is refused with an error that says to pass
  /// --resume or choose another folder. With `resume` and no checkpoint there, the run starts anew (it
  /// stopped before its first checkpoint).
  /// A run that is not the `writer` (a data-parallel rank other than 0) only reads: it neither creates nor
  /// checks the folder (the writer does), and its start(), save() and log() write nothing.
  ResumableRun(const std::string& dir, bool resume, bool writer = true);

  /// Fixes the run's resolved `config`. When resuming, throws draft::Error naming every setting that differs
  /// from the checkpoint's config, except those in `may_change`, and warns when this process has other thread
  /// counts than the one that wrote the checkpoint (the run then continues, but not bit for bit). A new run
  /// drops a metrics.jsonl left by a run that stopped before its first checkpoint. Writes config.json.
  void start(const nlohmann::json& config, const std::vector<std::string>& may_change);

  const RunFolder& folder() const { return folder_; }
  bool resuming() const { return resuming_; }
  bool writer() const { return writer_; }
  const nlohmann::json& config() const { return config_; }

  /// Restores the modules (and the optimizer when not null) from the checkpoint and drops the metrics
  /// logged after it (the resumed run logs them again); returns the checkpoint's progress.
  TrainingProgress restore(const std::vector<CheckpointModule>& modules, torch::optim::AdamW* optimizer) const;

  /// Writes the checkpoint (atomically) with the run's config. When the write fails (a full disk), the
  /// previous checkpoint stays as it was and the error says so, naming the file and the step to resume from.
  void save(const std::vector<CheckpointModule>& modules, const torch::optim::AdamW* optimizer,
            const TrainingProgress& progress) const;

  /// Appends one record to metrics.jsonl (the writer only).
  void log(const nlohmann::json& record) const {
    if (writer_) folder_.append_metrics(record);
  }

 private:
  RunFolder folder_;
  std::optional<RunLock> lock_;  // the writer's, held for the run's lifetime
  bool resuming_ = false;
  bool writer_ = true;
  bool started_ = false;
  nlohmann::json config_;
};

}  // namespace draft
