// Downsample2D and Upsample2D: diffusers' resolution changes between UNet / VAE levels.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>

namespace draft {

/// diffusers `Downsample2D(use_conv=True)`: a 3x3 stride-2 conv named `conv`.
/// padding = 1 (UNet, `downsample_padding`) pads symmetrically inside the conv; padding = 0 (VAE
/// encoder) first zero-pads right and bottom by one (F.pad(x, (0, 1, 0, 1))) and convolves unpadded.
class Downsample2DImpl : public torch::nn::Module {
 public:
  Downsample2DImpl(int64_t channels, int64_t out_channels, int64_t padding);
  at::Tensor forward(const at::Tensor& x);

  torch::nn::Conv2d conv{nullptr};

 private:
  int64_t padding_;
};
TORCH_MODULE(Downsample2D);

/// diffusers `Upsample2D(use_conv=True)`: nearest-neighbour x2 then a 3x3 conv (padding 1) named `conv`.
class Upsample2DImpl : public torch::nn::Module {
 public:
  Upsample2DImpl(int64_t channels, int64_t out_channels);
  /// output_size: target (H, W) instead of 2x, as the UNet forwards when the input size is not a
  /// multiple of the overall upsampling factor; empty means exactly 2x.
  at::Tensor forward(const at::Tensor& x, const std::vector<int64_t>& output_size = {});

  torch::nn::Conv2d conv{nullptr};
};
TORCH_MODULE(Upsample2D);

}  // namespace draft
