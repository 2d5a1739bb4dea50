// VAEDecoder following diffusers v0.25 models/vae.py (Decoder.__init__ / forward, no latent_embeds).
#include "models/vae_decoder.h"

#include <torch/torch.h>

namespace draft {

VAEDecoderImpl::VAEDecoderImpl(const VAEConfig& config) {
  namespace nn = torch::nn;
  config.validate();
  const auto& ch = config.block_out_channels;
  const size_t n = ch.size();
  conv_in = register_module("conv_in", nn::Conv2d(nn::Conv2dOptions(config.latent_channels, ch.back(), 3).padding(1)));
  mid_block = register_module("mid_block", UNetMidBlock2D(ch.back(), config.norm_num_groups));
  up_blocks = register_module("up_blocks", nn::ModuleList());
  // Up block i runs at width ch[n-1-i], taking the previous block's width as input.
  for (size_t i = 0; i < n; ++i) {
    VAEBlockOptions o;
    o.in_channels = ch[n - 1 - (i == 0 ? 0 : i - 1)];
    o.out_channels = ch[n - 1 - i];
    o.num_layers = config.layers_per_block + 1;
    o.resnet_groups = config.norm_num_groups;
    o.add_resample = i + 1 < n;
    up_blocks->push_back(UpDecoderBlock2D(o));
  }
  conv_norm_out =
      register_module("conv_norm_out", nn::GroupNorm(nn::GroupNormOptions(config.norm_num_groups, ch[0]).eps(1e-6)));
  conv_out = register_module("conv_out", nn::Conv2d(nn::Conv2dOptions(ch[0], config.out_channels, 3).padding(1)));
}

at::Tensor VAEDecoderImpl::forward(const at::Tensor& z, TensorTrace* trace, const std::string& prefix) {
  at::Tensor h = conv_in(z);
  record(trace, prefix + "conv_in", h);
  h = mid_block(h);
  record(trace, prefix + "mid_block", h);
  for (size_t i = 0; i < up_blocks->size(); ++i) {
    h = up_blocks->ptr<UpDecoderBlock2DImpl>(i)->forward(h);
    record(trace, prefix + "up_blocks." + std::to_string(i), h);
  }
  return conv_out(torch::silu(conv_norm_out(h)));
}

}  // namespace draft
