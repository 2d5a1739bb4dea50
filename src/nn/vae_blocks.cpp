// VAE blocks following diffusers v0.25 models/unet_2d_blocks.py (DownEncoderBlock2D, UpDecoderBlock2D,
// UNetMidBlock2D with temb_channels=None and add_attention=True).
#include "nn/vae_blocks.h"

#include <torch/torch.h>

#include "nn/attention.h"
#include "nn/resampling.h"
#include "nn/resnet_block_2d.h"

namespace draft {
namespace {

ResnetBlock2D make_resnet(int64_t in, int64_t out, int64_t groups, double eps) {
  return ResnetBlock2D(ResnetBlock2DOptions(in, out).temb_channels(0).groups(groups).eps(eps));
}

at::Tensor run_resnets(const torch::nn::ModuleList& resnets, at::Tensor h) {
  for (size_t i = 0; i < resnets->size(); ++i) h = resnets->ptr<ResnetBlock2DImpl>(i)->forward(h);
  return h;
}

}  // namespace

DownEncoderBlock2DImpl::DownEncoderBlock2DImpl(const VAEBlockOptions& o) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.num_layers; ++i) {
    resnets->push_back(
        make_resnet(i == 0 ? o.in_channels : o.out_channels, o.out_channels, o.resnet_groups, o.resnet_eps));
  }
  if (o.add_resample) {
    downsamplers = register_module("downsamplers",
                                   torch::nn::ModuleList(Downsample2D(o.out_channels, o.out_channels, /*padding=*/0)));
  }
}

at::Tensor DownEncoderBlock2DImpl::forward(const at::Tensor& x) {
  at::Tensor h = run_resnets(resnets, x);
  if (downsamplers) h = downsamplers->ptr<Downsample2DImpl>(0)->forward(h);
  return h;
}

UpDecoderBlock2DImpl::UpDecoderBlock2DImpl(const VAEBlockOptions& o) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.num_layers; ++i) {
    resnets->push_back(
        make_resnet(i == 0 ? o.in_channels : o.out_channels, o.out_channels, o.resnet_groups, o.resnet_eps));
  }
  if (o.add_resample) {
    upsamplers = register_module("upsamplers", torch::nn::ModuleList(Upsample2D(o.out_channels, o.out_channels)));
  }
}

at::Tensor UpDecoderBlock2DImpl::forward(const at::Tensor& x) {
  at::Tensor h = run_resnets(resnets, x);
  if (upsamplers) h = upsamplers->ptr<Upsample2DImpl>(0)->forward(h);
  return h;
}

UNetMidBlock2DImpl::UNetMidBlock2DImpl(int64_t channels, int64_t groups, double eps) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  attentions = register_module("attentions", torch::nn::ModuleList());
  resnets->push_back(make_resnet(channels, channels, groups, eps));
  // attention_head_dim = channels upstream, so heads = 1 and dim_head = channels.
  attentions->push_back(Attention(AttentionOptions(channels, 1, channels)
                                      .bias(true)
                                      .out_bias(true)
                                      .upcast_softmax(true)
                                      .norm_num_groups(groups)
                                      .eps(eps)
                                      .residual_connection(true)
                                      .rescale_output_factor(1.0)));
  resnets->push_back(make_resnet(channels, channels, groups, eps));
}

at::Tensor UNetMidBlock2DImpl::forward(const at::Tensor& x) {
  at::Tensor h = resnets->ptr<ResnetBlock2DImpl>(0)->forward(x);
  h = attentions->ptr<AttentionImpl>(0)->forward(h);
  return resnets->ptr<ResnetBlock2DImpl>(1)->forward(h);
}

}  // namespace draft
