// DRaFT and DRaFT-K (Clark et al., "Directly Fine-Tuning Diffusion Models on Differentiable Rewards";
// DESIGN.md section 3): backpropagate the reward through the last K sampling steps (K = N: full DRaFT).
#include <torch/torch.h>

#include "finetune/method_support.h"
#include "util/error.h"

namespace draft {
namespace {

class DraftKMethod : public Method {
 public:
  DraftKMethod(std::string name, int64_t k) : name_(std::move(name)), k_(k) {}

  std::string name() const override { return name_; }

  MethodStep run(MethodContext& c) override {
    check_context(c);
    const int64_t n = c.sampler.steps;
    const int64_t k = k_ == 0 ? n : k_;
    DRAFT_CHECK(k >= 1 && k <= n, "method.k must be in [1, sampler.steps] (", n, "), got ", k);
    // 1. Sample x_T -> x_0 with DDIM: steps t_N ... t_{K+1} under no-grad, the last K steps t_K ... t_1
    //    with gradients through both the latents and ε̂_θ (x_prev = √ᾱ_prev x̂0 + √(1−ᾱ_prev−σ²) ε̂ + σz,
    //    DDIM eq. 12); every step with gradients is checkpointed when c.sampler.checkpoint.
    RolloutOptions options = rollout_options(c);
    options.grad_from_step = n - k;
    RolloutResult rollout = ddim_rollout(*c.sd->scheduler, context_eps(c), c.x_T, options, c.generators);
    // 2. Decode: image = D(x_0) in [0, 1].
    at::Tensor images = decode_for_reward(c, rollout.x0);
    // 3. Reward and loss: maximise J(θ) = E_{c, x_T}[r(D(x_0), c)], i.e. loss = −mean r.
    at::Tensor r = score_images(c, images);
    MethodStep step;
    step.loss = -r.mean();
    step.rewards = r.detach();
    step.reward_queries = r.size(0);
    step.unet_evals = n;
    step.unet_evals_with_grad = k;
    step.draws = {k};
    step.stats["k"] = static_cast<double>(k);
    return step;
  }

 private:
  std::string name_;
  int64_t k_;
};

}  // namespace

std::unique_ptr<Method> make_draft_k_method(const std::string& name, int64_t k) {
  DRAFT_CHECK(k >= 0, "method.k must be positive, got ", k);
  return std::make_unique<DraftKMethod>(name, k);
}

}  // namespace draft
