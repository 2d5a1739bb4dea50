// Training checkpoints: the modules' tensors, the AdamW state, the progress and the resolved config in one
// safetensors file, written atomically, so `--resume` continues exactly where a run stopped.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/nn/module.h>
#include <torch/optim/adamw.h>

namespace draft {

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
  /// LibTorch's and OpenBLAS's thread counts in the process that wrote it (0: not recorded, an older
  /// checkpoint; -1 for OpenBLAS: not in use). Reductions split over another number of threads round
  /// differently, so only a resume with the same counts continues bit for bit (ResumableRun warns).
  int threads = 0;
  int blas_threads = 0;
};

/// Named tensors kept as the buffers of one module, so a checkpoint stores them under a prefix and restores
/// them strictly (a fine-tuning method's state: DDPO's samples and per-prompt buffers).
class StateTensors : public torch::nn::Module {
 public:
  explicit StateTensors(const std::vector<std::pair<std::string, at::Tensor>>& tensors);
  std::map<std::string, at::Tensor> tensors() const;
};

/// The entries of checkpoint `path` whose names start with `prefix` (prefix stripped), loaded on `device`:
/// the tensors to build a StateTensors that load_checkpoint then matches strictly against the file.
std::vector<std::pair<std::string, at::Tensor>> checkpoint_tensors_with_prefix(const std::string& path,
                                                                               const std::string& prefix,
                                                                               c10::Device device);

/// Writes a checkpoint (atomically: a .tmp file renamed into place). Keys: `<prefix><name>` for every
/// parameter and buffer of each module; for every parameter with AdamW state
/// `optimizer.<prefix><name>.step` (int64 scalar), `.exp_avg`, `.exp_avg_sq` (and `.max_exp_avg_sq` with
/// amsgrad). Metadata: format, step, epoch, seed, the config as JSON text and the thread counts
/// (CheckpointInfo). `optimizer` may be null.
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
