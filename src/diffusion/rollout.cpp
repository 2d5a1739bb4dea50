// DDIM rollout.
#include "diffusion/rollout.h"

#include <torch/torch.h>

#include "diffusion/ddim_scheduler.h"
#include "nn/gradient_checkpoint.h"
#include "util/error.h"
#include "util/seeds.h"

namespace draft {

namespace {

// The noise z of one step for `like` (B, ...): from the batch's generator (undefined z: the scheduler draws
// it) or one row per sample's generator.
using NoiseFn = std::function<at::Tensor(const at::Tensor& like)>;

// A tensor made in inference mode cannot be saved for backward (e.g. by gradient checkpointing or a later
// log-probability with gradients): what leaves the no-grad steps is copied once into a normal tensor.
at::Tensor normal_tensor(const at::Tensor& t) { return t.defined() && t.is_inference() ? t.clone() : t; }

RolloutResult rollout(const DDIMScheduler& scheduler, const EpsFn& eps, const at::Tensor& x_T,
                      const RolloutOptions& options, c10::optional<at::Generator> generator, const NoiseFn& noise,
                      const StepCallback& on_step) {
  DRAFT_CHECK(options.steps >= 1, "sampler.steps must be at least 1, got ", options.steps);
  DRAFT_CHECK(options.eta >= 0.0, "sampler.eta must be non-negative, got ", options.eta);
  DRAFT_CHECK(!options.keep_log_probs || options.eta > 0.0,
              "per-step log-probabilities need a stochastic sampler: set sampler.eta > 0 (DDPO uses 1)");
  RolloutResult result;
  result.timesteps = scheduler.timesteps(options.steps);
  at::Tensor x = x_T;
  const auto n = std::min(static_cast<int64_t>(result.timesteps.size()), options.end_step);
  DRAFT_CHECK(options.start_step >= 0 && options.start_step < n, "rollout: start_step ", options.start_step,
              " must be in [0, ", n, ") (end_step ", options.end_step, ", ", options.steps, " steps)");
  const bool any_grad = options.grad_from_step < n && torch::GradMode::is_enabled();
  DRAFT_CHECK(!(options.checkpoint && any_grad && options.params.empty()),
              "rollout: checkpointing steps that keep gradients needs the trainable parameters "
              "(RolloutOptions.params); pass them, or set checkpoint = false");
  const EpsFn checkpointed_eps = options.checkpoint && any_grad ? checkpointed(eps, options.params) : eps;
  for (int64_t i = options.start_step; i < n; ++i) {
    const int64_t t = result.timesteps[static_cast<std::size_t>(i)];
    // Steps before grad_from_step contribute no gradient: run them without building a graph, in inference
    // mode, where LibTorch also skips autograd's per-op bookkeeping (version counters, view tracking) for
    // the model's many small operations.
    const bool keep_grad = i >= options.grad_from_step && torch::GradMode::is_enabled();
    if (keep_grad) x = normal_tensor(x);  // the chain's no-grad part handing over to the part with gradients
    torch::AutoGradMode grad_mode(keep_grad);
    c10::optional<c10::InferenceMode> inference;
    if (!keep_grad) inference.emplace();
    if (options.keep_latents) result.latents.push_back(x);
    at::Tensor eps_hat = keep_grad ? checkpointed_eps(x, t) : eps(x, t);
    const at::Tensor z = noise && options.eta > 0.0 ? noise(x) : at::Tensor();
    auto out = scheduler.step(eps_hat, t, options.steps, x, options.eta, z, z.defined() ? c10::nullopt : generator);
    if (options.keep_log_probs) result.log_probs.push_back(out.log_prob);
    if (i == n - 1) result.pred_x0_last = out.pred_original_sample;
    x = out.prev_sample;
    if (on_step) on_step(i + 1 - options.start_step, n - options.start_step);
  }
  if (options.keep_latents) result.latents.push_back(x);
  result.x0 = normal_tensor(x);
  result.pred_x0_last = normal_tensor(result.pred_x0_last);
  for (auto& latent : result.latents) latent = normal_tensor(latent);
  for (auto& log_prob : result.log_probs) log_prob = normal_tensor(log_prob);
  return result;
}

}  // namespace

RolloutResult ddim_rollout(const DDIMScheduler& scheduler, const EpsFn& eps, const at::Tensor& x_T,
                           const RolloutOptions& options, c10::optional<at::Generator> generator,
                           const StepCallback& on_step) {
  return rollout(scheduler, eps, x_T, options, generator, {}, on_step);
}

RolloutResult ddim_rollout(const DDIMScheduler& scheduler, const EpsFn& eps, const at::Tensor& x_T,
                           const RolloutOptions& options, std::vector<at::Generator>& generators) {
  DRAFT_CHECK(static_cast<int64_t>(generators.size()) == x_T.size(0), "rollout: ", generators.size(),
              " generators for a batch of ", x_T.size(0), "; pass one per sample");
  const NoiseFn noise = [&generators](const at::Tensor& like) {
    return randn_per_sample(generators, like.sizes().slice(1)).to(like.device(), like.scalar_type());
  };
  return rollout(scheduler, eps, x_T, options, c10::nullopt, noise, {});
}

}  // namespace draft
