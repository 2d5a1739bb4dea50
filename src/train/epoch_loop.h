// The step bookkeeping of the epoch-based trainers (the pretraining recipes): epochs of batches in a
// per-epoch shuffled order, and when to log, checkpoint and stop early. A trainer asks the loop for the
// next batch, does its step, calls advance(), and follows the *_due() answers.
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

#include "train/checkpoint.h"

namespace draft {

struct EpochLoopOptions {
  int64_t examples = 0;          ///< training examples (n)
  int64_t batch_size = 1;
  int64_t epochs = 1;
  int64_t checkpoint_every = 0;  ///< steps between checkpoints (0: epoch ends only); always at the end
  int64_t log_every = 1;         ///< steps between metrics records (and at epoch ends)
  int64_t stop_after_steps = 0;  ///< > 0: stop (with a checkpoint) after this many steps of this invocation
  uint64_t seed = 0;             ///< the epoch permutations derive from (seed, epoch)
};

class EpochLoop {
 public:
  /// A loop whose first step is `start_step` (a resumed run's checkpoint step); throws draft::Error when
  /// it lies beyond the run's last step.
  EpochLoop(const EpochLoopOptions& options, int64_t start_step);

  int64_t steps_per_epoch() const { return steps_per_epoch_; }
  int64_t total_steps() const { return total_steps_; }
  int64_t step() const { return step_; }  ///< steps done
  double epoch_progress() const { return double(step_) / double(steps_per_epoch_); }
  /// True while steps remain and the loop has not stopped early.
  bool running() const { return step_ < total_steps_ && !stopped_; }

  /// The example indices (int64) of the next step's batch: the epoch's permutation, sliced.
  at::Tensor batch();
  /// Marks the step done.
  void advance();

  bool epoch_end() const { return step_ % steps_per_epoch_ == 0; }
  bool finished() const { return step_ == total_steps_; }
  bool stopped() const { return stopped_; }
  bool log_due() const { return step_ % options_.log_every == 0 || epoch_end(); }
  bool checkpoint_due() const {
    return epoch_end() || stopped_ || finished() ||
           (options_.checkpoint_every > 0 && step_ % options_.checkpoint_every == 0);
  }
  /// What the checkpoint records: step, epoch and seed.
  TrainingProgress progress() const { return {step_, step_ / steps_per_epoch_, options_.seed}; }

 private:
  EpochLoopOptions options_;
  int64_t steps_per_epoch_ = 1, total_steps_ = 0, step_ = 0, steps_this_run_ = 0, order_epoch_ = -1;
  at::Tensor order_;
  bool stopped_ = false;
};

}  // namespace draft
