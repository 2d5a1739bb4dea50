// Which kernel the attention layers (UNet, VAE, CLIP) compute softmax(q kᵀ/√d + mask) v with: the math
// path (two matmuls and a softmax, bit-compatible with diffusers' AttnProcessor on LibTorch 1.13) or
// LibTorch 2.x's fused scaled_dot_product_attention (flash / memory-efficient kernels on CUDA).
#pragma once

#include <string>

#include <ATen/core/Tensor.h>

namespace draft {

enum class AttentionKernel { kMath, kFused };

/// The kernel in use: kFused where LibTorch has it (has_fused_attention()), else kMath. The environment
/// variable DRAFT_ATTENTION=math (or fused) chooses at start-up; set_attention_kernel overrides it.
AttentionKernel attention_kernel();

/// Chooses the kernel for every attention layer of the process (tests compare the two). kFused where
/// LibTorch lacks it throws draft::Error.
void set_attention_kernel(AttentionKernel kernel);

/// "math" or "fused".
std::string attention_kernel_name(AttentionKernel kernel);

}  // namespace draft
