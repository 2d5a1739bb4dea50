// The VAE's blocks: DownEncoderBlock2D, UpDecoderBlock2D and UNetMidBlock2D (resnets without time
// embedding, and the single-head self-attention of the mid block).
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>

namespace draft {

/// What a VAE block is built from (diffusers get_down_block / get_up_block arguments of Encoder / Decoder).
struct VAEBlockOptions {
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  int64_t num_layers = 1;
  int64_t resnet_groups = 32;
  /// Every VAE GroupNorm uses 1e-6.
  double resnet_eps = 1e-6;
  /// Add the Downsample2D (padding 0: right/bottom pad) or the Upsample2D.
  bool add_resample = true;
};

/// Resnets then an optional Downsample2D with padding 0. Keys: resnets.N, downsamplers.0.
class DownEncoderBlock2DImpl : public torch::nn::Module {
 public:
  explicit DownEncoderBlock2DImpl(const VAEBlockOptions& options);
  at::Tensor forward(const at::Tensor& x);

  torch::nn::ModuleList resnets{nullptr}, downsamplers{nullptr};
};
TORCH_MODULE(DownEncoderBlock2D);

/// Resnets (no skip connections) then an optional Upsample2D. Keys: resnets.N, upsamplers.0.
class UpDecoderBlock2DImpl : public torch::nn::Module {
 public:
  explicit UpDecoderBlock2DImpl(const VAEBlockOptions& options);
  at::Tensor forward(const at::Tensor& x);

  torch::nn::ModuleList resnets{nullptr}, upsamplers{nullptr};
};
TORCH_MODULE(UpDecoderBlock2D);

/// resnet, then (attention, resnet): the attention is one head of width in_channels with group_norm,
/// biased projections, a float32 softmax and a residual connection. Keys: resnets.{0,1}, attentions.0.
class UNetMidBlock2DImpl : public torch::nn::Module {
 public:
  UNetMidBlock2DImpl(int64_t channels, int64_t groups, double eps = 1e-6);
  at::Tensor forward(const at::Tensor& x);

  torch::nn::ModuleList resnets{nullptr}, attentions{nullptr};
};
TORCH_MODULE(UNetMidBlock2D);

}  // namespace draft
