// Classifier-free guidance around a UNet: one batched call for the unconditional and conditional halves.
#pragma once

#include <ATen/core/Tensor.h>

#include "diffusion/rollout.h"
#include "models/unet_2d_condition.h"

namespace draft {

/// Text conditioning for a batch of B samples: `cond` (B,77,D) and, for guidance, `uncond` (B,77,D).
struct Conditioning {
  at::Tensor cond;
  at::Tensor uncond;  ///< undefined: no classifier-free guidance
};

/// ε̂(x, t) = ε_u + w (ε_c − ε_u) with both halves in one UNet call, unconditional half first (as diffusers).
/// With w <= 1 or no `uncond`, the plain conditional prediction (one half the work).
EpsFn guided_eps(UNet2DCondition unet, Conditioning conditioning, double guidance_scale);

}  // namespace draft
