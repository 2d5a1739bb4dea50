// VAEDecoder: the AutoencoderKL decoder (diffusers `Decoder`), latent -> image in about [-1, 1].
#pragma once

#include <string>

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include "models/vae_config.h"
#include "nn/tensor_trace.h"
#include "nn/vae_blocks.h"

namespace draft {

/// conv_in, mid_block, up_blocks (reversed widths, layers_per_block + 1 resnets, all but the last
/// upsample), conv_norm_out, SiLU, conv_out. Keys: conv_in, mid_block, up_blocks.N, conv_norm_out, conv_out.
class VAEDecoderImpl : public torch::nn::Module {
 public:
  explicit VAEDecoderImpl(const VAEConfig& config);
  /// z: (B, latent_channels, h, w) after post_quant_conv -> (B, out_channels, h * 2^(levels-1), ...).
  /// Records conv_in, mid_block, up_blocks.N under `prefix` when trace is non-null.
  at::Tensor forward(const at::Tensor& z, TensorTrace* trace = nullptr, const std::string& prefix = "");

  torch::nn::Conv2d conv_in{nullptr};
  UNetMidBlock2D mid_block{nullptr};
  torch::nn::ModuleList up_blocks{nullptr};
  torch::nn::GroupNorm conv_norm_out{nullptr};
  torch::nn::Conv2d conv_out{nullptr};
};
TORCH_MODULE(VAEDecoder);

}  // namespace draft
