// ResnetBlock2D: diffusers' residual conv block (GroupNorm, SiLU, 3x3 conv, optional time embedding),
// shared by the UNet and the VAE.
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

namespace draft {

/// Options of ResnetBlock2D (diffusers `ResnetBlock2D` with time_embedding_norm="default").
struct ResnetBlock2DOptions {
  ResnetBlock2DOptions(int64_t in_channels, int64_t out_channels)
      : in_channels_(in_channels), out_channels_(out_channels) {}
  TORCH_ARG(int64_t, in_channels);
  TORCH_ARG(int64_t, out_channels);
  /// Width of the time embedding; 0 means no `time_emb_proj` (the VAE's resnets).
  TORCH_ARG(int64_t, temb_channels) = 0;
  /// GroupNorm groups for norm1 and norm2.
  TORCH_ARG(int64_t, groups) = 32;
  /// GroupNorm eps: 1e-5 in the SD UNet (norm_eps), 1e-6 in the VAE.
  TORCH_ARG(double, eps) = 1e-6;
  /// The block returns (shortcut + h) / output_scale_factor.
  TORCH_ARG(double, output_scale_factor) = 1.0;
};

/// h = conv1(SiLU(norm1(x))) [+ time_emb_proj(SiLU(temb))[:, :, None, None]];
/// h = conv2(SiLU(norm2(h))); out = (shortcut(x) + h) / output_scale_factor, where shortcut is the
/// 1x1 `conv_shortcut` when in_channels != out_channels and the identity otherwise.
/// State-dict keys: norm1, conv1, time_emb_proj (optional), norm2, conv2, conv_shortcut (optional).
class ResnetBlock2DImpl : public torch::nn::Module {
 public:
  explicit ResnetBlock2DImpl(const ResnetBlock2DOptions& options);

  /// x: (B, in_channels, H, W); temb: (B, temb_channels), required iff temb_channels > 0.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& temb = at::Tensor());

  ResnetBlock2DOptions options;
  torch::nn::GroupNorm norm1{nullptr};
  torch::nn::Conv2d conv1{nullptr};
  torch::nn::Linear time_emb_proj{nullptr};
  torch::nn::GroupNorm norm2{nullptr};
  torch::nn::Conv2d conv2{nullptr};
  torch::nn::Conv2d conv_shortcut{nullptr};
};
TORCH_MODULE(ResnetBlock2D);

}  // namespace draft
