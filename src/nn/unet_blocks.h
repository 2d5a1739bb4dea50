// The UNet's level blocks: CrossAttnDownBlock2D, DownBlock2D, UNetMidBlock2DCrossAttn, UpBlock2D and
// CrossAttnUpBlock2D (diffusers unet_2d_blocks.py), keyed resnets / attentions / downsamplers / upsamplers.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>

namespace draft {

/// What one UNet block is built from; the UNet fills it per level (diffusers get_down_block /
/// get_up_block / the mid block arguments). Fields a block type does not use are ignored.
struct UNetBlockOptions {
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  /// Up blocks: channels coming from the block below (the first resnet's main input).
  int64_t prev_output_channels = 0;
  int64_t temb_channels = 0;
  /// Resnets per block (up blocks get layers_per_block + 1; the mid block has num_layers attentions).
  int64_t num_layers = 1;
  double resnet_eps = 1e-5;
  int64_t resnet_groups = 32;
  double output_scale_factor = 1.0;
  /// Down blocks: add a Downsample2D; up blocks: add an Upsample2D.
  bool add_resample = true;
  int64_t downsample_padding = 1;
  // Cross-attention blocks only.
  int64_t num_heads = 8;
  int64_t cross_attention_dim = 768;
  int64_t transformer_layers = 1;
  bool use_linear_projection = false;
  bool only_cross_attention = false;
  bool upcast_attention = false;
};

/// Output of a down block: the hidden state and the skip tensors it adds (one per resnet, plus the
/// downsampler's output), in order.
struct DownBlockOutput {
  at::Tensor hidden;
  std::vector<at::Tensor> skips;
};

/// Resnets, no attention, optional downsampler. Keys: resnets.N, downsamplers.0.
class DownBlock2DImpl : public torch::nn::Module {
 public:
  explicit DownBlock2DImpl(const UNetBlockOptions& options);
  DownBlockOutput forward(const at::Tensor& x, const at::Tensor& temb);

  torch::nn::ModuleList resnets{nullptr}, downsamplers{nullptr};
};
TORCH_MODULE(DownBlock2D);

/// Each resnet is followed by a Transformer2DModel; optional downsampler.
/// Keys: resnets.N, attentions.N, downsamplers.0.
class CrossAttnDownBlock2DImpl : public torch::nn::Module {
 public:
  explicit CrossAttnDownBlock2DImpl(const UNetBlockOptions& options);
  DownBlockOutput forward(const at::Tensor& x, const at::Tensor& temb, const at::Tensor& context);

  torch::nn::ModuleList resnets{nullptr}, attentions{nullptr}, downsamplers{nullptr};
};
TORCH_MODULE(CrossAttnDownBlock2D);

/// resnet, then (attention, resnet) x num_layers at constant width in_channels.
/// Keys: resnets.N, attentions.N.
class UNetMidBlock2DCrossAttnImpl : public torch::nn::Module {
 public:
  explicit UNetMidBlock2DCrossAttnImpl(const UNetBlockOptions& options);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& temb, const at::Tensor& context);

  torch::nn::ModuleList resnets{nullptr}, attentions{nullptr};
};
TORCH_MODULE(UNetMidBlock2DCrossAttn);

/// Each resnet first concatenates the last remaining skip tensor on channels; optional upsampler.
/// `skips` holds this block's skip tensors in down-path order (the last one is consumed first);
/// upsample_size: target size of the upsampler (empty: 2x). Keys: resnets.N, upsamplers.0.
class UpBlock2DImpl : public torch::nn::Module {
 public:
  explicit UpBlock2DImpl(const UNetBlockOptions& options);
  at::Tensor forward(const at::Tensor& x, const std::vector<at::Tensor>& skips, const at::Tensor& temb,
                     const std::vector<int64_t>& upsample_size = {});

  torch::nn::ModuleList resnets{nullptr}, upsamplers{nullptr};
};
TORCH_MODULE(UpBlock2D);

/// As UpBlock2D with a Transformer2DModel after each resnet. Keys: resnets.N, attentions.N, upsamplers.0.
class CrossAttnUpBlock2DImpl : public torch::nn::Module {
 public:
  explicit CrossAttnUpBlock2DImpl(const UNetBlockOptions& options);
  at::Tensor forward(const at::Tensor& x, const std::vector<at::Tensor>& skips, const at::Tensor& temb,
                     const at::Tensor& context, const std::vector<int64_t>& upsample_size = {});

  torch::nn::ModuleList resnets{nullptr}, attentions{nullptr}, upsamplers{nullptr};
};
TORCH_MODULE(CrossAttnUpBlock2D);

}  // namespace draft
