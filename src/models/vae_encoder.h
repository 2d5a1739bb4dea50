// VAEEncoder: the AutoencoderKL encoder (diffusers `Encoder`, double_z=True), image -> latent moments.
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

/// conv_in, down_blocks (all but the last downsample), mid_block, conv_norm_out, SiLU, conv_out to
/// 2 * latent_channels (mean and log-variance). Keys: conv_in, down_blocks.N, mid_block, conv_norm_out,
/// conv_out.
class VAEEncoderImpl : public torch::nn::Module {
 public:
  explicit VAEEncoderImpl(const VAEConfig& config);
  /// x: (B, in_channels, H, W) in [-1, 1] -> (B, 2 * latent_channels, H / 2^(levels-1), ...).
  /// Records conv_in, down_blocks.N, mid_block under `prefix` when trace is non-null.
  at::Tensor forward(const at::Tensor& x, TensorTrace* trace = nullptr, const std::string& prefix = "");

  torch::nn::Conv2d conv_in{nullptr};
  torch::nn::ModuleList down_blocks{nullptr};
  UNetMidBlock2D mid_block{nullptr};
  torch::nn::GroupNorm conv_norm_out{nullptr};
  torch::nn::Conv2d conv_out{nullptr};
};
TORCH_MODULE(VAEEncoder);

}  // namespace draft
