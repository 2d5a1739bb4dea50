// DDIMScheduler: the deterministic / eta-stochastic DDIM sampling step (Song et al. 2021) with the
// Gaussian log-probability of each stochastic step that DDPO needs.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <c10/util/Optional.h>

#include "diffusion/scheduler_config.h"

namespace draft {

/// What one DDIM step returns.
struct DDIMStepOutput {
  at::Tensor prev_sample;           ///< x_{t_prev}
  at::Tensor pred_original_sample;  ///< x̂0 (after clip_sample, if set)
  at::Tensor pred_epsilon;          ///< ε̂ used for the direction term
  /// log N(prev_sample; mean, σ²) summed over all dims but the batch, shape [B]; undefined when eta == 0
  /// (and when σ == 0, i.e. the last step with set_alpha_to_one, where the step is deterministic).
  at::Tensor log_prob;
};

/// diffusers v0.25 DDIMScheduler without its mutable set_timesteps state: the number of inference steps
/// is passed to each call. The schedule and all step coefficients are float32 0-d CPU tensors exactly as
/// in diffusers (PyTorch treats a 0-d CPU tensor as a scalar with tensors of any device, so nothing is
/// copied per step); the step arithmetic happens in the sample's dtype on its device.
class DDIMScheduler {
 public:
  /// Validates the config and builds the float32 schedule.
  explicit DDIMScheduler(SchedulerConfig config);

  /// Descending timesteps for N inference steps (SD config, N = 50: 981, 961, ..., 1).
  std::vector<int64_t> timesteps(int64_t num_inference_steps) const;
  /// t - T // N (may be negative: then the step lands on final_alpha_cumprod).
  int64_t previous_timestep(int64_t t, int64_t num_inference_steps) const;

  /// betas, float32 [T].
  const at::Tensor& betas() const { return betas_; }
  /// alphas_cumprod (ᾱ), float32 [T].
  const at::Tensor& alphas_cumprod() const { return alphas_cumprod_; }
  /// ᾱ_t as a double; t < 0 gives the final alpha (1 if set_alpha_to_one, else ᾱ_0).
  double alpha_cumprod_at(int64_t t) const;

  /// One DDIM step x_t -> x_prev (DDIM paper eq. 12 / 16; DESIGN.md section 3):
  ///   x̂0 = (x_t − √(1−ᾱ_t) ε̂) / √ᾱ_t                     (epsilon; v and sample converted to x̂0, ε̂)
  ///   σ  = η √((1−ᾱ_prev)/(1−ᾱ_t)) √(1−ᾱ_t/ᾱ_prev)
  ///   x_prev = √ᾱ_prev x̂0 + √(1−ᾱ_prev−σ²) ε̂ + σ z
  /// Differentiable w.r.t. sample and model_output (plain out-of-place tensor ops). `variance_noise` is z
  /// for eta > 0; when undefined it is drawn from `generator` (or the default generator). Passing both is
  /// an error, as in diffusers. With eta > 0 the output also carries log_prob (see DDIMStepOutput).
  /// use_clipped_model_output re-derives ε̂ from the clipped x̂0 (only matters with clip_sample).
  DDIMStepOutput step(const at::Tensor& model_output, int64_t t, int64_t num_inference_steps,
                      const at::Tensor& sample, double eta = 0.0, const at::Tensor& variance_noise = {},
                      c10::optional<at::Generator> generator = c10::nullopt,
                      bool use_clipped_model_output = false) const;

  /// log N(prev_sample; mean, σ²) summed over all dims but the batch, shape [B], with the mean and σ of
  /// step() (ddpo-pytorch's ddim_step_with_logprob definitions). prev_sample is treated as data (detached);
  /// the result is differentiable w.r.t. model_output and sample through the mean. Needs eta > 0 and
  /// σ > 0 (throws otherwise). Note: ddpo-pytorch averages over the dims instead of summing.
  at::Tensor log_prob(const at::Tensor& model_output, int64_t t, int64_t num_inference_steps,
                      const at::Tensor& sample, const at::Tensor& prev_sample, double eta,
                      bool use_clipped_model_output = false) const;

  const SchedulerConfig& config() const { return config_; }

 private:
  /// The Gaussian x_prev ~ N(mean, std²) of one step, shared by step() and log_prob().
  struct Moments {
    at::Tensor pred_original_sample;
    at::Tensor pred_epsilon;
    at::Tensor mean;  ///< in the sample's dtype and device
    at::Tensor std;   ///< σ, float32 0-d CPU
  };
  Moments moments(const at::Tensor& model_output, int64_t t, int64_t num_inference_steps, const at::Tensor& sample,
                  double eta, bool use_clipped_model_output) const;
  /// ᾱ_t as a float32 0-d CPU tensor (t < 0: final_alpha_cumprod_).
  at::Tensor alpha_tensor(int64_t t) const;

  SchedulerConfig config_;
  at::Tensor betas_;
  at::Tensor alphas_cumprod_;
  at::Tensor final_alpha_cumprod_;
};

}  // namespace draft
