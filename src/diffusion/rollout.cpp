// DDIM rollout.
#include "diffusion/rollout.h"

#include <torch/torch.h>

#include "diffusion/ddim_scheduler.h"
#include "nn/gradient_checkpoint.h"
#include "util/error.h"

namespace draft {

RolloutResult ddim_rollout(const DDIMScheduler& scheduler, const EpsFn& eps, const at::Tensor& x_T,
                           const RolloutOptions& options, c10::optional<at::Generator> generator,
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
    // Steps before grad_from_step contribute no gradient: run them without building a graph.
    const bool keep_grad = i >= options.grad_from_step && torch::GradMode::is_enabled();
    torch::AutoGradMode grad_mode(keep_grad);
    if (options.keep_latents) result.latents.push_back(x);
    at::Tensor eps_hat = keep_grad ? checkpointed_eps(x, t) : eps(x, t);
    auto out = scheduler.step(eps_hat, t, options.steps, x, options.eta, {}, generator);
    if (options.keep_log_probs) result.log_probs.push_back(out.log_prob);
    if (i == n - 1) result.pred_x0_last = out.pred_original_sample;
    x = out.prev_sample;
    if (on_step) on_step(i + 1 - options.start_step, n - options.start_step);
  }
  if (options.keep_latents) result.latents.push_back(x);
  result.x0 = x;
  return result;
}

}  // namespace draft
