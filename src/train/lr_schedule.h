// The learning rate of every trainer: a linear warm-up, then constant or cosine.
#pragma once

#include <cstdint>
#include <string>

#include <torch/optim/adamw.h>

namespace draft {

/// The learning rate at `step` (0-based) of a run of `total_steps`: a linear warm-up from 0 over
/// `warmup_steps`, then `schedule` "constant" (peak) or "cosine" (annealed to 0 at the end; Loshchilov &
/// Hutter 2017, SGDR eq. 5 with eta_min = 0 and no restarts, over the steps after the warm-up).
double scheduled_learning_rate(double peak, const std::string& schedule, int64_t step, int64_t total_steps,
                               int64_t warmup_steps = 0);

/// Sets the learning rate of every parameter group of `optimizer`.
void set_learning_rate(torch::optim::AdamW& optimizer, double lr);

}  // namespace draft
