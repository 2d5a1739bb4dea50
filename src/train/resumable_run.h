// Starting or resuming a training run, the same way for every trainer: a new run never overwrites an old
// one, and a resumed run keeps the settings its checkpoint depends on (only an explicit allow-list, such
// as the step budget and the evaluation and output settings, may change).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/optim/adamw.h>

#include "train/checkpoint.h"
#include "train/run_folder.h"
#include "train/run_lock.h"

namespace draft {

class TensorBoardWriter;

/// The settings that differ between a checkpoint's config (`saved`) and a resuming run's (`now`), as
/// "key: saved -> now" texts in key order. Keys are dotted paths of the leaves ("optimizer.lr"); lists are
/// compared whole. A key in `may_change`, or under a section named there ("eval" covers "eval.every"), is
/// not reported.
std::vector<std::string> changed_settings(const nlohmann::json& saved, const nlohmann::json& now,
                                          const std::vector<std::string>& may_change);

/// One training run in its folder. Use: construct (opens the folder), start() once the resolved config is
/// known, restore() when resuming() and the modules exist, then log() and save() while training. With
/// TensorBoard on, the writer also keeps RUN/tensorboard/ (train/tensorboard_writer.h) in step with
/// metrics.jsonl.
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
  ~ResumableRun();

  /// Fixes the run's resolved `config`. When resuming, throws draft::Error naming every setting that differs
  /// from the checkpoint's config, except those in `may_change`, and warns when this process has other thread
  /// counts than the one that wrote the checkpoint (the run then continues, but not bit for bit). A new run
  /// drops a metrics.jsonl (and TensorBoard files) left by a run that stopped before its first checkpoint.
  /// Writes config.json. With `tensorboard`, opens a new TensorBoard events file in RUN/tensorboard/ and
  /// writes the config into it as text (tag "config"); a resumed run first writes a session start at the
  /// first step it does again (the checkpoint's step + 1), so that TensorBoard drops what an earlier process
  /// logged after the checkpoint, as restore() drops it from metrics.jsonl.
  void start(const nlohmann::json& config, const std::vector<std::string>& may_change, bool tensorboard = false);

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

  /// Appends one record to metrics.jsonl (the writer only). With TensorBoard on, also writes each of its
  /// numbers (booleans as 0/1) as a scalar at the record's "step", tagged "<kind>/<key>": the kind is the
  /// record's "kind" or "event" ("eval", "final"), else "train"; "step", "epoch", "kind" and "event" are not
  /// scalars of their own.
  void log(const nlohmann::json& record) const;

  /// Writes `image` ((C,H,W) in [0, 1], C = 1 or 3) as a PNG into the TensorBoard file under `tag` at `step`
  /// (the writer with TensorBoard on only; else nothing). The sample grids written into the run folder.
  void log_image(const std::string& tag, const at::Tensor& image, int64_t step) const;

 private:
  RunFolder folder_;
  std::optional<RunLock> lock_;  // the writer's, held for the run's lifetime
  bool resuming_ = false;
  bool writer_ = true;
  bool started_ = false;
  nlohmann::json config_;
  std::unique_ptr<TensorBoardWriter> tensorboard_;  // null: TensorBoard off, or not the writer
};

}  // namespace draft
