// VAEEncoder following diffusers v0.25 models/vae.py (Encoder.__init__ / forward).
#include "models/vae_encoder.h"

#include <torch/torch.h>

namespace draft {

VAEEncoderImpl::VAEEncoderImpl(const VAEConfig& config) {
  namespace nn = torch::nn;
  config.validate();
  const auto& ch = config.block_out_channels;
  const size_t n = ch.size();
  conv_in = register_module("conv_in", nn::Conv2d(nn::Conv2dOptions(config.in_channels, ch[0], 3).padding(1)));
  down_blocks = register_module("down_blocks", nn::ModuleList());
  for (size_t i = 0; i < n; ++i) {
    VAEBlockOptions o;
    o.in_channels = ch[i == 0 ? 0 : i - 1];
    o.out_channels = ch[i];
    o.num_layers = config.layers_per_block;
    o.resnet_groups = config.norm_num_groups;
    o.add_resample = i + 1 < n;
    down_blocks->push_back(DownEncoderBlock2D(o));
  }
  mid_block = register_module("mid_block", UNetMidBlock2D(ch.back(), config.norm_num_groups));
  conv_norm_out = register_module("conv_norm_out",
                                  nn::GroupNorm(nn::GroupNormOptions(config.norm_num_groups, ch.back()).eps(1e-6)));
  conv_out =
      register_module("conv_out", nn::Conv2d(nn::Conv2dOptions(ch.back(), 2 * config.latent_channels, 3).padding(1)));
}

at::Tensor VAEEncoderImpl::forward(const at::Tensor& x, TensorTrace* trace, const std::string& prefix) {
  at::Tensor h = conv_in(x);
  record(trace, prefix + "conv_in", h);
  for (size_t i = 0; i < down_blocks->size(); ++i) {
    h = down_blocks->ptr<DownEncoderBlock2DImpl>(i)->forward(h);
    record(trace, prefix + "down_blocks." + std::to_string(i), h);
  }
  h = mid_block(h);
  record(trace, prefix + "mid_block", h);
  return conv_out(torch::silu(conv_norm_out(h)));
}

}  // namespace draft
