// Pieces every `draft pretrain` loop shares: the learning-rate schedule, the flip augmentation and the
// check that a resumed run keeps the settings its checkpoint depends on.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>
#include <torch/optim/adamw.h>

namespace draft {

/// The learning rate at `step` (0-based) of a run of `total_steps`: a linear warm-up from 0 over
/// `warmup_steps`, then `schedule` "constant" (peak) or "cosine" (annealed to 0 at the end; Loshchilov &
/// Hutter 2017, SGDR eq. 5 with eta_min = 0 and no restarts, over the steps after the warm-up).
double scheduled_learning_rate(double peak, const std::string& schedule, int64_t step, int64_t total_steps,
                               int64_t warmup_steps = 0);

/// Sets the learning rate of every parameter group of `optimizer`.
void set_learning_rate(torch::optim::AdamW& optimizer, double lr);

/// Flips each image of (N, C, H, W) left-right with probability 1/2, the draws coming from `seed` alone.
at::Tensor random_hflip(const at::Tensor& images, uint64_t seed);

/// Throws draft::Error when a setting in `keys` differs between the config a checkpoint was written with
/// (`saved`) and the resolved config of the resuming run (`now`): the error names the key, both values
/// and what to do.
void check_resumable(const nlohmann::json& saved, const nlohmann::json& now, const std::vector<std::string>& keys,
                     const std::string& run_dir, const std::string& checkpoint);

}  // namespace draft
