// Classifier-free guidance.
#include "diffusion/guidance.h"

#include <torch/torch.h>

namespace draft {

EpsFn guided_eps(UNet2DCondition unet, Conditioning conditioning, double guidance_scale) {
  // diffusers: do_classifier_free_guidance = guidance_scale > 1.
  const bool cfg = guidance_scale > 1.0 && conditioning.uncond.defined();
  at::Tensor context = cfg ? torch::cat({conditioning.uncond, conditioning.cond}) : conditioning.cond;
  return [unet, context, cfg, guidance_scale](const at::Tensor& x, int64_t t) mutable {
    at::Tensor x_in = cfg ? torch::cat({x, x}) : x;
    at::Tensor timesteps = torch::full({x_in.size(0)}, t, torch::TensorOptions().dtype(torch::kLong).device(x.device()));
    at::Tensor eps = unet->forward(x_in, timesteps, context);
    if (!cfg) return eps;
    auto halves = eps.chunk(2);
    return halves[0] + guidance_scale * (halves[1] - halves[0]);
  };
}

}  // namespace draft
