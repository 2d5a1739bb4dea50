// A training run on disk: the folder with the resolved config, the metrics log and the checkpoint that
// lets `--resume` continue exactly where a run stopped. Shared by every `draft pretrain` command.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/nn/module.h>
#include <torch/optim/adamw.h>

namespace draft {

/// A run folder:
///   config.json              the resolved config (defaults < --config < flags)
///   metrics.jsonl            one JSON object per logged step or evaluation, each with a "step"
///   checkpoint.safetensors   modules, AdamW state and progress (see save_checkpoint)
class RunFolder {
 public:
  /// Creates `dir` (and its parents) when missing; throws draft::Error naming it when that fails.
  explicit RunFolder(std::string dir);

  const std::string& dir() const { return dir_; }
  std::string file(const std::string& name) const { return dir_ + "/" + name; }
  std::string config_path() const { return file("config.json"); }
  std::string metrics_path() const { return file("metrics.jsonl"); }
  std::string checkpoint_path() const { return file("checkpoint.safetensors"); }
  bool has_checkpoint() const;

  /// Writes config.json (atomically).
  void write_config(const nlohmann::json& config) const;
  /// Appends `record` as one line of metrics.jsonl and flushes it.
  void append_metrics(const nlohmann::json& record) const;
  /// Drops the records whose "step" is above `step`: a resumed run logs them again from its checkpoint.
  void truncate_metrics_after(int64_t step) const;

 private:
  std::string dir_;
};

/// Every record of a metrics.jsonl file, in order; throws draft::Error naming the file and line.
std::vector<nlohmann::json> read_metrics(const std::string& path);

/// A module a checkpoint holds, its parameters and buffers stored under `prefix` + name ("model.", "ema.").
struct CheckpointModule {
  std::string prefix;
  torch::nn::Module* module = nullptr;
};

/// Where a run stands, besides its tensors.
struct TrainingProgress {
  int64_t step = 0;   ///< optimizer steps done
  int64_t epoch = 0;  ///< the epoch the next step belongs to
  uint64_t seed = 0;  ///< the run's seed: data order and augmentation derive from (seed, epoch / step)
};

/// What read_checkpoint_info and load_checkpoint return.
struct CheckpointInfo {
  TrainingProgress progress;
  nlohmann::json config;  ///< the resolved config of the run that wrote the checkpoint
};

/// Writes a checkpoint (atomically: a .tmp file renamed into place). Keys: `<prefix><name>` for every
/// parameter and buffer of each module; for every parameter with AdamW state
/// `optimizer.<prefix><name>.step` (int64 scalar), `.exp_avg`, `.exp_avg_sq` (and `.max_exp_avg_sq` with
/// amsgrad). Metadata: format, step, epoch, seed and the config as JSON text. `optimizer` may be null.
/// Throws draft::Error when the optimizer holds a parameter that none of the modules has.
void save_checkpoint(const std::string& path, const std::vector<CheckpointModule>& modules,
                     const torch::optim::AdamW* optimizer, const TrainingProgress& progress,
                     const nlohmann::json& config);

/// The progress and config of a checkpoint, without loading tensors.
CheckpointInfo read_checkpoint_info(const std::string& path);

/// Restores the modules' tensors (strictly: every key present with the same shape, no unknown module
/// keys) and, when `optimizer` is not null, replaces its state with the saved one. Throws draft::Error
/// naming the file and key on any mismatch.
CheckpointInfo load_checkpoint(const std::string& path, const std::vector<CheckpointModule>& modules,
                               torch::optim::AdamW* optimizer);

}  // namespace draft
