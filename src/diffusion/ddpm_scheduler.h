// DDPMScheduler: the training side of diffusion (forward noising, v-targets) and the DDPM ancestral step.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <c10/util/Optional.h>

#include "diffusion/scheduler_config.h"

namespace draft {

/// What one DDPM ancestral step returns.
struct DDPMStepOutput {
  at::Tensor prev_sample;           ///< x_{t_prev}
  at::Tensor pred_original_sample;  ///< x̂0 (after clip_sample, if set)
};

/// diffusers v0.25 DDPMScheduler (variance_type fixed_small / fixed_large) without set_timesteps state.
/// Batched-timestep functions index alphas_cumprod on the input's device and compute in its dtype, as
/// diffusers' add_noise does; all are differentiable w.r.t. their tensor inputs.
class DDPMScheduler {
 public:
  /// Validates the config and builds the float32 schedule.
  explicit DDPMScheduler(SchedulerConfig config);

  /// Descending timesteps for N inference steps (same spacing rules as DDIM; N = T is classic DDPM).
  std::vector<int64_t> timesteps(int64_t num_inference_steps) const;
  /// t - T // N (may be negative: then ᾱ_prev = 1).
  int64_t previous_timestep(int64_t t, int64_t num_inference_steps) const;

  const at::Tensor& betas() const { return betas_; }
  /// alphas_cumprod (ᾱ), float32 [T].
  const at::Tensor& alphas_cumprod() const { return alphas_cumprod_; }

  /// Forward process q(x_t | x_0): √ᾱ_t x0 + √(1−ᾱ_t) ε, with one integer timestep per batch element
  /// (or one for the whole batch). DDPM paper eq. 4.
  at::Tensor add_noise(const at::Tensor& x0, const at::Tensor& noise, const at::Tensor& timesteps) const;
  /// v = √ᾱ_t ε − √(1−ᾱ_t) x0 (Salimans & Ho 2022, section 4; diffusers get_velocity(sample, noise, t)).
  at::Tensor get_velocity(const at::Tensor& x0, const at::Tensor& noise, const at::Tensor& timesteps) const;
  /// The regression target for the config's prediction_type: ε (epsilon), v (v_prediction) or x0 (sample).
  at::Tensor training_target(const at::Tensor& x0, const at::Tensor& noise, const at::Tensor& timesteps) const;

  /// One ancestral step (DDPM paper eq. 6-7, diffusers DDPMScheduler.step): posterior mean
  ///   μ = √ᾱ_prev β_t / (1−ᾱ_t) x̂0 + √α_t (1−ᾱ_prev) / (1−ᾱ_t) x_t,  α_t = ᾱ_t / ᾱ_prev, β_t = 1 − α_t,
  /// plus σ z for t > 0 with σ² = (1−ᾱ_prev)/(1−ᾱ_t) β_t (fixed_small, clamped at 1e-20) or β_t (fixed_large).
  /// z is `variance_noise` when given, else drawn from `generator` (passing both is an error).
  DDPMStepOutput step(const at::Tensor& model_output, int64_t t, int64_t num_inference_steps,
                      const at::Tensor& sample, const at::Tensor& variance_noise = {},
                      c10::optional<at::Generator> generator = c10::nullopt) const;

  const SchedulerConfig& config() const { return config_; }

 private:
  /// Checks shapes and gathers ᾱ_t for a batch (see gather_alphas_cumprod).
  at::Tensor batch_alphas(const at::Tensor& x0, const at::Tensor& noise, const at::Tensor& timesteps,
                          const char* what) const;

  SchedulerConfig config_;
  at::Tensor betas_;
  at::Tensor alphas_cumprod_;
};

}  // namespace draft
