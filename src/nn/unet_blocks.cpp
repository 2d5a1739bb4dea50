// UNet level blocks following diffusers v0.25 models/unet_2d_blocks.py (forward paths without FreeU,
// gradient checkpointing or additional residuals).
#include "nn/unet_blocks.h"

#include <torch/torch.h>

#include "nn/resampling.h"
#include "nn/resnet_block_2d.h"
#include "nn/transformer_2d.h"
#include "util/error.h"

namespace draft {
namespace {

ResnetBlock2D make_resnet(const UNetBlockOptions& o, int64_t in, int64_t out) {
  return ResnetBlock2D(ResnetBlock2DOptions(in, out)
                           .temb_channels(o.temb_channels)
                           .groups(o.resnet_groups)
                           .eps(o.resnet_eps)
                           .output_scale_factor(o.output_scale_factor));
}

// Transformer2DModel(num_heads, channels // num_heads, in_channels=channels, norm_num_groups=resnet_groups).
Transformer2DModel make_transformer(const UNetBlockOptions& o, int64_t channels) {
  return Transformer2DModel(Transformer2DOptions(channels, o.num_heads, o.cross_attention_dim)
                                .num_layers(o.transformer_layers)
                                .norm_num_groups(o.resnet_groups)
                                .use_linear_projection(o.use_linear_projection)
                                .only_cross_attention(o.only_cross_attention)
                                .upcast_attention(o.upcast_attention));
}

at::Tensor run_resnet(const torch::nn::ModuleList& list, size_t i, const at::Tensor& x, const at::Tensor& temb) {
  return list->ptr<ResnetBlock2DImpl>(i)->forward(x, temb);
}

at::Tensor run_transformer(const torch::nn::ModuleList& list, size_t i, const at::Tensor& x,
                           const at::Tensor& context) {
  return list->ptr<Transformer2DModelImpl>(i)->forward(x, context);
}

// Down path resnet i takes in_channels first, out_channels afterwards.
void add_down_resnets(torch::nn::ModuleList& resnets, const UNetBlockOptions& o) {
  for (int64_t i = 0; i < o.num_layers; ++i) {
    resnets->push_back(make_resnet(o, i == 0 ? o.in_channels : o.out_channels, o.out_channels));
  }
}

// Up path resnet i: main input prev_output_channels (i == 0) or out_channels; the skip it concatenates
// has in_channels for the last resnet (the level's input width) and out_channels otherwise.
void add_up_resnets(torch::nn::ModuleList& resnets, const UNetBlockOptions& o) {
  for (int64_t i = 0; i < o.num_layers; ++i) {
    const int64_t skip = i == o.num_layers - 1 ? o.in_channels : o.out_channels;
    const int64_t main = i == 0 ? o.prev_output_channels : o.out_channels;
    resnets->push_back(make_resnet(o, main + skip, o.out_channels));
  }
}

at::Tensor pop_and_concat(const at::Tensor& x, const std::vector<at::Tensor>& skips, size_t& remaining) {
  DRAFT_CHECK(remaining > 0, "UNet up block: ran out of skip connections");
  return torch::cat({x, skips[--remaining]}, 1);
}

}  // namespace

DownBlock2DImpl::DownBlock2DImpl(const UNetBlockOptions& o) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  add_down_resnets(resnets, o);
  if (o.add_resample) {
    downsamplers = register_module(
        "downsamplers", torch::nn::ModuleList(Downsample2D(o.out_channels, o.out_channels, o.downsample_padding)));
  }
}

DownBlockOutput DownBlock2DImpl::forward(const at::Tensor& x, const at::Tensor& temb) {
  DownBlockOutput out{x, {}};
  for (size_t i = 0; i < resnets->size(); ++i) {
    out.hidden = run_resnet(resnets, i, out.hidden, temb);
    out.skips.push_back(out.hidden);
  }
  if (downsamplers) {
    out.hidden = downsamplers->ptr<Downsample2DImpl>(0)->forward(out.hidden);
    out.skips.push_back(out.hidden);
  }
  return out;
}

CrossAttnDownBlock2DImpl::CrossAttnDownBlock2DImpl(const UNetBlockOptions& o) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  attentions = register_module("attentions", torch::nn::ModuleList());
  add_down_resnets(resnets, o);
  for (int64_t i = 0; i < o.num_layers; ++i) attentions->push_back(make_transformer(o, o.out_channels));
  if (o.add_resample) {
    downsamplers = register_module(
        "downsamplers", torch::nn::ModuleList(Downsample2D(o.out_channels, o.out_channels, o.downsample_padding)));
  }
}

DownBlockOutput CrossAttnDownBlock2DImpl::forward(const at::Tensor& x, const at::Tensor& temb,
                                                  const at::Tensor& context) {
  DownBlockOutput out{x, {}};
  for (size_t i = 0; i < resnets->size(); ++i) {
    out.hidden = run_resnet(resnets, i, out.hidden, temb);
    out.hidden = run_transformer(attentions, i, out.hidden, context);
    out.skips.push_back(out.hidden);
  }
  if (downsamplers) {
    out.hidden = downsamplers->ptr<Downsample2DImpl>(0)->forward(out.hidden);
    out.skips.push_back(out.hidden);
  }
  return out;
}

UNetMidBlock2DCrossAttnImpl::UNetMidBlock2DCrossAttnImpl(const UNetBlockOptions& o) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  attentions = register_module("attentions", torch::nn::ModuleList());
  resnets->push_back(make_resnet(o, o.in_channels, o.in_channels));
  for (int64_t i = 0; i < o.num_layers; ++i) {
    attentions->push_back(make_transformer(o, o.in_channels));
    resnets->push_back(make_resnet(o, o.in_channels, o.in_channels));
  }
}

at::Tensor UNetMidBlock2DCrossAttnImpl::forward(const at::Tensor& x, const at::Tensor& temb,
                                                const at::Tensor& context) {
  at::Tensor h = run_resnet(resnets, 0, x, temb);
  for (size_t i = 0; i < attentions->size(); ++i) {
    h = run_transformer(attentions, i, h, context);
    h = run_resnet(resnets, i + 1, h, temb);
  }
  return h;
}

UpBlock2DImpl::UpBlock2DImpl(const UNetBlockOptions& o) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  add_up_resnets(resnets, o);
  if (o.add_resample) {
    upsamplers = register_module("upsamplers", torch::nn::ModuleList(Upsample2D(o.out_channels, o.out_channels)));
  }
}

at::Tensor UpBlock2DImpl::forward(const at::Tensor& x, const std::vector<at::Tensor>& skips, const at::Tensor& temb,
                                  const std::vector<int64_t>& upsample_size) {
  DRAFT_CHECK(skips.size() == resnets->size(), "UpBlock2D: expected ", resnets->size(), " skip tensors, got ",
              skips.size());
  size_t remaining = skips.size();
  at::Tensor h = x;
  for (size_t i = 0; i < resnets->size(); ++i) h = run_resnet(resnets, i, pop_and_concat(h, skips, remaining), temb);
  if (upsamplers) h = upsamplers->ptr<Upsample2DImpl>(0)->forward(h, upsample_size);
  return h;
}

CrossAttnUpBlock2DImpl::CrossAttnUpBlock2DImpl(const UNetBlockOptions& o) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  attentions = register_module("attentions", torch::nn::ModuleList());
  add_up_resnets(resnets, o);
  for (int64_t i = 0; i < o.num_layers; ++i) attentions->push_back(make_transformer(o, o.out_channels));
  if (o.add_resample) {
    upsamplers = register_module("upsamplers", torch::nn::ModuleList(Upsample2D(o.out_channels, o.out_channels)));
  }
}

at::Tensor CrossAttnUpBlock2DImpl::forward(const at::Tensor& x, const std::vector<at::Tensor>& skips,
                                           const at::Tensor& temb, const at::Tensor& context,
                                           const std::vector<int64_t>& upsample_size) {
  DRAFT_CHECK(skips.size() == resnets->size(), "CrossAttnUpBlock2D: expected ", resnets->size(), " skip tensors, got ",
              skips.size());
  size_t remaining = skips.size();
  at::Tensor h = x;
  for (size_t i = 0; i < resnets->size(); ++i) {
    h = run_resnet(resnets, i, pop_and_concat(h, skips, remaining), temb);
    h = run_transformer(attentions, i, h, context);
  }
  if (upsamplers) h = upsamplers->ptr<Upsample2DImpl>(0)->forward(h, upsample_size);
  return h;
}

}  // namespace draft
