// Shared by test_methods and test_gradient_checkpoint: the tiny Stable Diffusion of tests/data in float64,
// a brightness reward, a counting model callback and gradient comparison.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "diffusion/text_to_image.h"
#include "finetune/method.h"
#include "rewards/reward.h"
#include "util/threads.h"

namespace draft::test {

/// r = mean pixel value: simple, differentiable, and any method should raise it.
class BrightnessReward : public Reward {
 public:
  at::Tensor score(const at::Tensor& images, const std::vector<std::string>&) override {
    return images.mean({1, 2, 3});
  }
  std::string name() const override { return "brightness"; }
};

/// ε̂ calls seen by a callback: all of them, and those made with grad mode on.
struct CallCount {
  int calls = 0;
  int grad_calls = 0;
};

inline EpsFn counting(EpsFn inner, std::shared_ptr<CallCount> count) {
  return [inner, count](const at::Tensor& x, int64_t t) {
    ++count->calls;
    if (torch::GradMode::is_enabled()) ++count->grad_calls;
    return inner(x, t);
  };
}

/// The tiny SD pipeline (tests/data/sd_pipeline_tiny) in float64, loaded once per test program, with
/// the UNet's conv_out and one attention projection trainable (the tests' stand-in for LoRA weights),
/// restored to their loaded values by every TinySetup so optimizer steps of one test do not leak.
/// guidance <= 1 runs without classifier-free guidance (half the UNet work).
struct TinySetup {
  StableDiffusion& sd;
  std::vector<at::Tensor> params;
  Conditioning conditioning;
  std::vector<std::string> prompts;
  BrightnessReward reward;

  explicit TinySetup(int64_t batch = 2, double guidance = 3.0) : sd(shared()), guidance_(guidance) {
    static std::vector<at::Tensor> initial;
    auto named = sd.unet->named_parameters();
    const char* names[] = {"conv_out.weight", "conv_out.bias",
                           "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight"};
    torch::NoGradGuard no_grad;
    for (std::size_t i = 0; i < 3; ++i) {
      at::Tensor p = named[names[i]];
      if (initial.size() < 3) initial.push_back(p.detach().clone());
      p.copy_(initial[i]);
      p.set_requires_grad(true);
      p.mutable_grad() = at::Tensor();
      params.push_back(p);
    }
    prompts.assign(static_cast<std::size_t>(batch), "a photo");
    conditioning = encode_prompts(sd, prompts, {}, 1, 0, guidance > 1.0);
  }

  static StableDiffusion& shared() {
    static StableDiffusion loaded = [] {
      use_small_tensor_threading();  // OpenBLAS at 1 thread: its spinning pool slows these small calls
      WeightsOptions o;
      o.dtype = torch::kFloat64;
      return load_stable_diffusion(std::string(DRAFT_TEST_DATA) + "/sd_pipeline_tiny", o);
    }();
    return loaded;
  }

  EpsFn eps() const { return guided_eps(sd.unet, conditioning, guidance_); }

  /// x_T for `batch` samples from `seed`, float64.
  at::Tensor noise(uint64_t seed, int64_t batch = 2) const {
    return torch::randn({batch, 4, 16, 16}, at::detail::createCPUGenerator(seed), torch::kFloat64);
  }

  MethodContext context(const at::Tensor& x_T, int64_t steps, uint64_t seed = 1) {
    MethodContext c;
    c.sd = &sd;
    c.reward = &reward;
    c.prompts = prompts;
    c.conditioning = conditioning;
    c.x_T = x_T;
    c.params = params;
    seed_method_draws(c, seed, 0, 0);
    c.sampler.steps = steps;
    c.sampler.guidance_scale = guidance_;
    return c;
  }

  double guidance_;
};

/// d loss / d params (not accumulated into .grad), flattened into one vector (unused params: zeros).
inline at::Tensor flat_grad(const at::Tensor& loss, const std::vector<at::Tensor>& params) {
  auto grads = torch::autograd::grad({loss}, params, {}, false, false, true);
  std::vector<at::Tensor> flat;
  for (std::size_t i = 0; i < grads.size(); ++i) {
    flat.push_back(grads[i].defined() ? grads[i].reshape(-1) : torch::zeros({params[i].numel()}, params[i].options()));
  }
  return torch::cat(flat);
}

/// max |a − b| / max |b|.
inline double relative_error(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().max().item<double>() / std::max(b.abs().max().item<double>(), 1e-300);
}

}  // namespace draft::test
