// One fine-tuning step as the benchmarks run it: a method's forward and backward on one batch, without
// the optimizer (what `draft finetune` computes per micro-batch).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "diffusion/text_to_image.h"
#include "finetune/method.h"

namespace draft::bench {

/// Runs `method` on `prompts` (their `conditioning` already encoded) from x_T drawn with CPU seed `seed`
/// at the model's default size, backpropagates the loss into `params`, then clears their gradients.
void run_method_step(Method& method, const StableDiffusion& sd, Reward& reward, const std::vector<std::string>& prompts,
                     const Conditioning& conditioning, const std::vector<at::Tensor>& params,
                     const SamplerSettings& sampler, uint64_t seed);

}  // namespace draft::bench
