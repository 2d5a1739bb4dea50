// Epoch loops.
#include "train/epoch_loop.h"

#include <algorithm>

#include "data/data_order.h"
#include "util/error.h"

namespace draft {

EpochLoop::EpochLoop(const EpochLoopOptions& options, int64_t start_step) : options_(options), step_(start_step) {
  DRAFT_CHECK(options.examples > 0 && options.batch_size > 0 && options.epochs > 0 && options.log_every > 0,
              "epoch loop: examples, batch_size, epochs and log_every must be positive");
  steps_per_epoch_ = (options.examples + options.batch_size - 1) / options.batch_size;
  total_steps_ = steps_per_epoch_ * options.epochs;
  DRAFT_CHECK(start_step >= 0 && start_step <= total_steps_, "the checkpoint is at step ", start_step,
              ", beyond the run's ", total_steps_, " steps");
}

at::Tensor EpochLoop::batch() {
  const int64_t epoch = step_ / steps_per_epoch_;
  if (epoch != order_epoch_) {
    order_ = epoch_permutation(options_.examples, options_.seed, epoch);
    order_epoch_ = epoch;
  }
  const int64_t begin = (step_ % steps_per_epoch_) * options_.batch_size;
  return order_.narrow(0, begin, std::min(options_.batch_size, options_.examples - begin));
}

void EpochLoop::advance() {
  ++step_;
  ++steps_this_run_;
  stopped_ = options_.stop_after_steps > 0 && steps_this_run_ >= options_.stop_after_steps && step_ < total_steps_;
}

}  // namespace draft
