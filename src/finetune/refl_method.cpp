// ReFL (ImageReward, Xu et al. 2023; DESIGN.md section 3): stop the chain at a random late step, take one
// UNet call with gradients and score the one-step prediction x̂0.
#include <torch/torch.h>

#include "finetune/method_support.h"
#include "util/error.h"

namespace draft {
namespace {

class ReFLMethod : public Method {
 public:
  explicit ReFLMethod(MethodConfig config) : config_(std::move(config)) {}

  std::string name() const override { return "refl"; }

  MethodStep run(MethodContext& c) override {
    check_context(c);
    const int64_t steps = c.sampler.steps;
    config_.validate(steps);
    // 1. Draw the stop step s uniformly from [A, B] (step indices; ImageReward: 30..39 of 40), once per
    //    optimizer step (ImageReward draws one per iteration), from the step's generator: every micro-batch
    //    and every process of a data-parallel run stops at the same s.
    auto [a, b] = config_.refl_range(steps);
    const int64_t s = torch::randint(a, b + 1, {1}, c.step_generator, torch::kLong).item<int64_t>();
    // 2. Steps 0 ... s−1 under no-grad, then the single UNet call at step s (t_{N−s}) with gradients.
    RolloutOptions options = rollout_options(c);
    options.end_step = s + 1;
    options.grad_from_step = s;
    RolloutResult rollout = ddim_rollout(*c.sd->scheduler, context_eps(c), c.x_T, options, c.generators);
    // 3. Score the one-step prediction x̂0 = (x_t − √(1−ᾱ_t) ε̂_θ) / √ᾱ_t, not the chain's end: r(D(x̂0), c).
    at::Tensor r = score_images(c, decode_for_reward(c, rollout.pred_x0_last));
    // 4. loss = −mean r ("neg"), or ImageReward's mean relu(margin − r) · scale ("relu-margin").
    MethodStep step;
    step.loss = config_.refl_loss == "neg" ? -r.mean() : torch::relu(config_.refl_margin - r).mean() * config_.refl_scale;
    step.rewards = r.detach();
    step.reward_queries = r.size(0);
    step.unet_evals = s + 1;
    step.unet_evals_with_grad = 1;
    step.draws = {s};
    step.stats["stop_step"] = static_cast<double>(s);
    return step;
  }

 private:
  MethodConfig config_;
};

}  // namespace

std::unique_ptr<Method> make_refl_method(const MethodConfig& config) { return std::make_unique<ReFLMethod>(config); }

}  // namespace draft
