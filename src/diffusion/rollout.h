// The DDIM sampling loop ("rollout"): x_T -> x_0 with the model given as a callback. Training methods
// reach it only through RolloutOptions (which steps keep gradients, eta, what to record): no method names
// here (DESIGN.md section 2).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <c10/util/Optional.h>

namespace draft {

class DDIMScheduler;

/// The (guided) noise prediction ε̂(x_t, t). Classifier-free guidance lives inside it (see guidance.h).
using EpsFn = std::function<at::Tensor(const at::Tensor& x_t, int64_t t)>;

struct RolloutOptions {
  int64_t steps = 50;  ///< N, the number of DDIM steps
  double eta = 0.0;    ///< DDIM η: 0 deterministic, 1 DDPM-like (DDPO samples with 1)
  /// Index of the first step that keeps gradients: steps [0, grad_from_step) run under no-grad, the rest
  /// with grad. N (or more) keeps none (plain sampling); 0 keeps all (full DRaFT); N-K is DRaFT-K.
  int64_t grad_from_step = INT64_MAX;
  /// Wrap the model call of every step that keeps gradients in gradient checkpointing
  /// (nn/gradient_checkpoint.h): memory O(1) in the number of such steps, one extra model call each in
  /// backward. Needs `params`.
  bool checkpoint = true;
  /// The trainable tensors the model callback uses (e.g. LoRA weights): what a checkpointed step
  /// differentiates besides x_t. Required when checkpointing a step that keeps gradients.
  std::vector<at::Tensor> params;
  /// Run only steps [start_step, end_step) of the N-step schedule; x_T is then the latent at
  /// timesteps[start_step] (DRaFT-LV's last step, ReFL's stop step).
  int64_t start_step = 0;
  int64_t end_step = INT64_MAX;
  bool keep_latents = false;  ///< record x_t before every step and the final x_0
  bool keep_log_probs = false;  ///< record log p(x_prev | x_t) per step (needs eta > 0)
};

struct RolloutResult {
  at::Tensor x0;                    ///< the final latent (x at end_step)
  at::Tensor pred_x0_last;          ///< x̂0 predicted at the last step run
  std::vector<int64_t> timesteps;   ///< t_N ... t_1 (all N, whatever start_step / end_step)
  std::vector<at::Tensor> latents;  ///< x_{t_N}, ..., x_{t_1}, x_0 when keep_latents
  std::vector<at::Tensor> log_probs;  ///< one (B) tensor per step when keep_log_probs
};

/// Called after each step with (steps done, total).
using StepCallback = std::function<void(int64_t done, int64_t total)>;

/// Runs N DDIM steps from x_T (DESIGN.md section 3: x_prev = √ᾱ_prev x̂0 + √(1−ᾱ_prev−σ²) ε̂ + σ z).
/// For eta > 0 the noise z of each step is drawn from `generator` (diffusers' order: after x_T).
RolloutResult ddim_rollout(const DDIMScheduler& scheduler, const EpsFn& eps, const at::Tensor& x_T,
                           const RolloutOptions& options, c10::optional<at::Generator> generator = c10::nullopt,
                           const StepCallback& on_step = {});

/// The same with one generator per sample (training): row j of each step's z comes from generators[j], so
/// a sample's trajectory does not depend on the other samples of its batch (data-parallel runs).
RolloutResult ddim_rollout(const DDIMScheduler& scheduler, const EpsFn& eps, const at::Tensor& x_T,
                           const RolloutOptions& options, std::vector<at::Generator>& generators);

}  // namespace draft
