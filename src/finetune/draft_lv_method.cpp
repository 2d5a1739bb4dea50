// DRaFT-LV (Clark et al.; DESIGN.md section 3): K = 1 with a lower-variance gradient: the last step is
// taken n times from fresh re-noisings of the no-grad sample x_0.
#include <torch/torch.h>

#include "finetune/method_support.h"
#include "util/error.h"
#include "util/seeds.h"

namespace draft {
namespace {

class DraftLVMethod : public Method {
 public:
  explicit DraftLVMethod(int64_t n) : n_(n) {}

  std::string name() const override { return "draft-lv"; }

  MethodStep run(MethodContext& c) override {
    check_context(c);
    const int64_t steps = c.sampler.steps;
    const EpsFn eps = context_eps(c);
    // 1. Run the whole chain without gradients: x_0 = sample(θ, c, x_T), detached.
    at::Tensor x0;
    {
      torch::NoGradGuard no_grad;
      RolloutOptions plain = rollout_options(c);
      x0 = ddim_rollout(*c.sd->scheduler, eps, c.x_T, plain, c.generators).x0.detach();
    }
    const int64_t t1 = c.sd->scheduler->timesteps(steps).back();
    const double alpha = c.sd->scheduler->alpha_cumprod_at(t1);
    RolloutOptions last = rollout_options(c);
    last.start_step = steps - 1;  // only the final step, from t_1
    last.grad_from_step = steps - 1;
    std::vector<at::Tensor> rewards;
    at::Tensor loss_sum;
    for (int64_t i = 0; i < n_; ++i) {
      // 2. Re-noise: x^i = √ᾱ_{t_1} x_0 + √(1−ᾱ_{t_1}) ε_i, ε_i ~ N(0, I) from each sample's generator.
      at::Tensor noise = randn_per_sample(c.generators, x0.sizes().slice(1)).to(x0.device(), x0.scalar_type());
      at::Tensor x_i = std::sqrt(alpha) * x0 + std::sqrt(1.0 - alpha) * noise;
      // 3. The last DDIM step from t_1 with gradients (through ε̂_θ only: x^i does not depend on θ).
      at::Tensor x0_i = ddim_rollout(*c.sd->scheduler, eps, x_i, last, c.generators).x0;
      // 4. Decode and score: r_i = r(D(x_0^i), c).
      at::Tensor r = score_images(c, decode_for_reward(c, x0_i));
      rewards.push_back(r);
      loss_sum = loss_sum.defined() ? loss_sum + r.mean() : r.mean();
    }
    // 5. loss = −(1/n) Σ_i mean r_i.
    MethodStep step;
    step.loss = -loss_sum / static_cast<double>(n_);
    step.rewards = torch::cat(rewards).detach();
    step.reward_queries = step.rewards.size(0);
    step.unet_evals = steps + n_;
    step.unet_evals_with_grad = n_;
    step.stats["lv_n"] = static_cast<double>(n_);
    return step;
  }

 private:
  int64_t n_;
};

}  // namespace

std::unique_ptr<Method> make_draft_lv_method(int64_t n) {
  DRAFT_CHECK(n >= 1, "method.lv_n must be at least 1, got ", n);
  return std::make_unique<DraftLVMethod>(n);
}

}  // namespace draft
