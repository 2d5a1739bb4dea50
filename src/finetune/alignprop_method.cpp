// AlignProp-style randomized truncation (Prabhudesai et al. 2023; DESIGN.md section 3): DRaFT-K with K
// drawn once per trajectory (per sample) from a uniform or clipped Gaussian distribution.
#include <algorithm>
#include <cmath>

#include <torch/torch.h>

#include "finetune/method_support.h"
#include "util/error.h"

namespace draft {
namespace {

class AlignPropMethod : public Method {
 public:
  explicit AlignPropMethod(MethodConfig config) : config_(std::move(config)) {}

  std::string name() const override { return "alignprop"; }

  MethodStep run(MethodContext& c) override {
    check_context(c);
    const int64_t steps = c.sampler.steps;
    const int64_t batch = c.x_T.size(0);
    config_.validate(steps);
    // 1. Draw K_j for every trajectory j from its own generator: uniform integer in [k_min, k_max], or
    //    round(mean + std·z) clipped to [k_min, k_max], z ~ N(0, 1).
    std::vector<int64_t> ks(static_cast<std::size_t>(batch));
    for (int64_t j = 0; j < batch; ++j) {
      at::Generator& g = c.generators[static_cast<std::size_t>(j)];
      int64_t k = 0;
      if (config_.alignprop_distribution == "uniform") {
        k = torch::randint(config_.alignprop_k_min, config_.alignprop_k_max + 1, {1}, g, torch::kLong).item<int64_t>();
      } else {
        const double z = torch::randn({1}, g, torch::kFloat64).item<double>();
        k = static_cast<int64_t>(std::round(config_.alignprop_mean + config_.alignprop_std * z));
      }
      ks[static_cast<std::size_t>(j)] = std::clamp(k, config_.alignprop_k_min, config_.alignprop_k_max);
    }
    const int64_t k_max = *std::max_element(ks.begin(), ks.end());
    // 2. As DRaFT-K with K = max_j K_j for the batch; for a trajectory with a smaller K_j, ε̂ of the steps
    //    before its own cutoff N − K_j is detached. No θ-path reaches those latents (x_{t_{K_max}} comes from
    //    no-grad steps, the detached ε̂ carry none), so its θ-gradient is exactly DRaFT-K_j's.
    std::vector<int64_t> timesteps = c.sd->scheduler->timesteps(steps);
    std::vector<double> first_grad_step(ks.size());
    for (std::size_t j = 0; j < ks.size(); ++j) first_grad_step[j] = static_cast<double>(steps - ks[j]);
    at::Tensor first = torch::tensor(first_grad_step, torch::kFloat64).view({batch, 1, 1, 1});
    EpsFn eps = context_eps(c);
    EpsFn truncated = [eps, timesteps, first](const at::Tensor& x, int64_t t) {
      at::Tensor e = eps(x, t);
      if (!e.requires_grad()) return e;
      const auto it = std::find(timesteps.begin(), timesteps.end(), t);
      const double i = static_cast<double>(it - timesteps.begin());
      at::Tensor keep = (first <= i).to(e.device());
      return torch::where(keep, e, e.detach());
    };
    RolloutOptions options = rollout_options(c);
    options.grad_from_step = steps - k_max;
    RolloutResult rollout = ddim_rollout(*c.sd->scheduler, truncated, c.x_T, options, c.generators);
    // 3. image = D(x_0), loss = −mean r.
    at::Tensor r = score_images(c, decode_for_reward(c, rollout.x0));
    MethodStep step;
    step.loss = -r.mean();
    step.rewards = r.detach();
    step.reward_queries = r.size(0);
    step.unet_evals = steps;
    step.unet_evals_with_grad = k_max;
    step.draws = ks;
    double sum = 0;
    for (int64_t k : ks) sum += static_cast<double>(k);
    step.stats["k_mean"] = sum / static_cast<double>(batch);
    step.stats["k_max"] = static_cast<double>(k_max);
    return step;
  }

 private:
  MethodConfig config_;
};

}  // namespace

std::unique_ptr<Method> make_alignprop_method(const MethodConfig& config) {
  return std::make_unique<AlignPropMethod>(config);
}

}  // namespace draft
