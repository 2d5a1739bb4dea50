// The training noise schedule (betas, alphas_cumprod) and the inference timestep grid shared by the
// DDIM and DDPM schedulers, computed exactly as diffusers v0.25 does (float32 schedule, float32 cumprod,
// numpy rounding of the timestep grid).
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

#include "diffusion/scheduler_config.h"

namespace draft {

/// betas (float32, CPU, [num_train_timesteps]) for the config's trained_betas or beta_schedule, with
/// rescale_betas_zero_snr applied when set. scaled_linear is linspace(sqrt(b0), sqrt(b1), T)^2 in float32.
at::Tensor make_betas(const SchedulerConfig& config);

/// cumprod(1 - betas) in float32, like diffusers (rounding accumulates along the product; computing it in
/// double would differ by up to ~8e-7 relative).
at::Tensor make_alphas_cumprod(const at::Tensor& betas);

/// The descending inference timesteps for `num_inference_steps` under config.timestep_spacing:
///  leading:  arange(N) * (T // N), reversed, + steps_offset   (SD, N=50: 981 ... 1)
///  trailing: round(arange(T, 0, -T/N)) - 1                      (N=50: 999 ... 19)
///  linspace: round(linspace(0, T - 1, N)), reversed             (N=50: 999 ... 0)
/// Rounding is numpy's (half to even). Throws when N is outside [1, T] or a timestep falls outside [0, T).
std::vector<int64_t> inference_timesteps(const SchedulerConfig& config, int64_t num_inference_steps);

/// t - T // N, the previous timestep of a DDIM/DDPM step (diffusers uses this for every spacing, so for
/// trailing/linspace it need not be the next entry of the timesteps list). May be negative.
int64_t previous_timestep(const SchedulerConfig& config, int64_t t, int64_t num_inference_steps);

/// alphas_cumprod[t] for a batch of integer timesteps, on `like`'s device and in its dtype, shaped
/// [B, 1, ..., 1] to broadcast against `like` (a single timestep broadcasts over the whole batch).
/// Used by add_noise / get_velocity, which diffusers computes in the sample's dtype.
at::Tensor gather_alphas_cumprod(const at::Tensor& alphas_cumprod, const at::Tensor& timesteps,
                                 const at::Tensor& like);

}  // namespace draft
