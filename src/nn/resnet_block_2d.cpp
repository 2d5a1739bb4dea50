// ResnetBlock2D, following diffusers v0.25 models/resnet.py (ResnetBlock2D.forward, default time norm).
#include "nn/resnet_block_2d.h"

#include <torch/torch.h>

#include "util/error.h"

namespace draft {

ResnetBlock2DImpl::ResnetBlock2DImpl(const ResnetBlock2DOptions& options_) : options(options_) {
  namespace nn = torch::nn;
  const int64_t in = options.in_channels(), out = options.out_channels();
  DRAFT_CHECK(in % options.groups() == 0 && out % options.groups() == 0, "ResnetBlock2D: channels ", in, "/", out,
              " are not divisible by the GroupNorm groups ", options.groups());
  norm1 = register_module("norm1", nn::GroupNorm(nn::GroupNormOptions(options.groups(), in).eps(options.eps())));
  conv1 = register_module("conv1", nn::Conv2d(nn::Conv2dOptions(in, out, 3).stride(1).padding(1)));
  if (options.temb_channels() > 0) {
    time_emb_proj = register_module("time_emb_proj", nn::Linear(options.temb_channels(), out));
  }
  norm2 = register_module("norm2", nn::GroupNorm(nn::GroupNormOptions(options.groups(), out).eps(options.eps())));
  conv2 = register_module("conv2", nn::Conv2d(nn::Conv2dOptions(out, out, 3).stride(1).padding(1)));
  if (in != out) {
    conv_shortcut = register_module("conv_shortcut", nn::Conv2d(nn::Conv2dOptions(in, out, 1).stride(1).padding(0)));
  }
}

at::Tensor ResnetBlock2DImpl::forward(const at::Tensor& x, const at::Tensor& temb) {
  // 1. h = conv1(SiLU(norm1(x)))
  at::Tensor h = conv1(torch::silu(norm1(x)));
  // 2. time conditioning, broadcast over H and W (resnet_skip_time_act=False: SiLU before the projection)
  if (time_emb_proj) {
    DRAFT_CHECK(temb.defined(), "ResnetBlock2D: this block needs a time embedding");
    h = h + time_emb_proj(torch::silu(temb)).unsqueeze(-1).unsqueeze(-1);
  }
  // 3. h = conv2(SiLU(norm2(h))); dropout is not applied (every supported config has dropout 0)
  h = conv2(torch::silu(norm2(h)));
  // 4. residual
  at::Tensor shortcut = conv_shortcut ? conv_shortcut(x) : x;
  at::Tensor out = shortcut + h;
  if (options.output_scale_factor() != 1.0) out = out / options.output_scale_factor();
  return out;
}

}  // namespace draft
