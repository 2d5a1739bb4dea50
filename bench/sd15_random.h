// A Stable Diffusion 1.5-shaped pipeline with random weights, for benchmarks: speed and memory depend on
// the shapes, not on the weights, and no download is needed.
#pragma once

#include "diffusion/stable_diffusion.h"

namespace draft::bench {

/// The real SD 1.5 configs (UNet, VAE, CLIP ViT-L/14 text tower, scaled-linear DDIM schedule) with
/// weights drawn from LibTorch's default CPU generator, then moved to `options`' device and dtype; the
/// tokenizer is the test CLIP tokenizer (its vocabulary fits the text encoder). Modules in eval mode,
/// frozen.
StableDiffusion random_sd15(const WeightsOptions& options = {});

}  // namespace draft::bench
