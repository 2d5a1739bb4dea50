// Downsample2D / Upsample2D following diffusers v0.25 models/downsampling.py and upsampling.py.
#include "nn/resampling.h"

#include <torch/torch.h>

#include "util/error.h"

namespace draft {

Downsample2DImpl::Downsample2DImpl(int64_t channels, int64_t out_channels, int64_t padding) : padding_(padding) {
  DRAFT_CHECK(padding >= 0, "Downsample2D: padding must be >= 0, got ", padding);
  conv = register_module(
      "conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, out_channels, 3).stride(2).padding(padding)));
}

at::Tensor Downsample2DImpl::forward(const at::Tensor& x) {
  namespace F = torch::nn::functional;
  if (padding_ == 0) {
    // Asymmetric padding of the original LDM VAE: one zero column right, one zero row bottom.
    return conv(F::pad(x, F::PadFuncOptions({0, 1, 0, 1}).mode(torch::kConstant).value(0)));
  }
  return conv(x);
}

Upsample2DImpl::Upsample2DImpl(int64_t channels, int64_t out_channels) {
  conv = register_module("conv",
                         torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, out_channels, 3).stride(1).padding(1)));
}

at::Tensor Upsample2DImpl::forward(const at::Tensor& x, const std::vector<int64_t>& output_size) {
  namespace F = torch::nn::functional;
  // Nearest upsampling has no bfloat16 CPU kernel in older torch; diffusers computes it in float32 too.
  const bool bf16 = x.scalar_type() == torch::kBFloat16;
  at::Tensor h = bf16 ? x.to(torch::kFloat) : x;
  auto options = F::InterpolateFuncOptions().mode(torch::kNearest);
  if (output_size.empty()) {
    options.scale_factor(std::vector<double>{2.0, 2.0});
  } else {
    DRAFT_CHECK(output_size.size() == 2, "Upsample2D: output_size must be (H, W)");
    options.size(output_size);
  }
  h = F::interpolate(h, options);
  if (bf16) h = h.to(torch::kBFloat16);
  return conv(h);
}

}  // namespace draft
