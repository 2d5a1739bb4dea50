// UNet2DCondition following diffusers v0.25 UNet2DConditionModel (__init__ and forward without class /
// addition embeddings, adapters or ControlNet residuals).
#include "models/unet_2d_condition.h"

#include <algorithm>

#include <torch/torch.h>

#include "io/config_json.h"
#include "util/error.h"

namespace draft {

UNet2DConditionImpl::UNet2DConditionImpl(const UNetConfig& config) : config_(config) {
  namespace nn = torch::nn;
  config_.validate();
  const auto& ch = config_.block_out_channels;
  const size_t n = ch.size();
  const int64_t temb = config_.time_embed_dim();

  conv_in = register_module("conv_in", nn::Conv2d(nn::Conv2dOptions(config_.in_channels, ch[0], config_.conv_in_kernel)
                                                      .padding((config_.conv_in_kernel - 1) / 2)));
  time_embedding = register_module("time_embedding", TimestepEmbedding(ch[0], temb));

  // Options shared by every block; each level fills in its own part.
  UNetBlockOptions base;
  base.temb_channels = temb;
  base.resnet_eps = config_.norm_eps;
  base.resnet_groups = config_.norm_num_groups;
  base.output_scale_factor = config_.resnet_out_scale_factor;
  base.downsample_padding = config_.downsample_padding;
  base.use_linear_projection = config_.use_linear_projection;
  base.upcast_attention = config_.upcast_attention;

  // 1. down path: level i goes from ch[i-1] (ch[0] for the first) to ch[i]; all but the last downsample
  down_blocks = register_module("down_blocks", nn::ModuleList());
  for (size_t i = 0; i < n; ++i) {
    UNetBlockOptions o = base;
    o.in_channels = ch[i == 0 ? 0 : i - 1];
    o.out_channels = ch[i];
    o.num_layers = config_.layers_per_block[i];
    o.add_resample = i + 1 < n;
    o.num_heads = config_.attention_head_dim[i];
    o.cross_attention_dim = config_.cross_attention_dim[i];
    o.transformer_layers = config_.transformer_layers_per_block[i];
    o.only_cross_attention = config_.only_cross_attention[i];
    const bool attention = config_.down_block_types[i] == "CrossAttnDownBlock2D";
    down_has_attention_.push_back(attention);
    if (attention) {
      down_blocks->push_back(CrossAttnDownBlock2D(o));
    } else {
      down_blocks->push_back(DownBlock2D(o));
    }
  }

  // 2. mid block at the last level's width, with the last level's per-block options
  UNetBlockOptions mid = base;
  mid.in_channels = mid.out_channels = ch.back();
  mid.num_layers = 1;
  mid.output_scale_factor = config_.mid_block_scale_factor;
  mid.num_heads = config_.attention_head_dim.back();
  mid.cross_attention_dim = config_.cross_attention_dim.back();
  mid.transformer_layers = config_.transformer_layers_per_block.back();
  mid_block = register_module("mid_block", UNetMidBlock2DCrossAttn(mid));

  // 3. up path: up block i mirrors level j = n-1-i and uses its reversed per-block options
  up_blocks = register_module("up_blocks", nn::ModuleList());
  for (size_t i = 0; i < n; ++i) {
    const size_t j = n - 1 - i;
    UNetBlockOptions o = base;
    o.prev_output_channels = ch[std::min(j + 1, n - 1)];
    o.out_channels = ch[j];
    o.in_channels = ch[j == 0 ? 0 : j - 1];
    o.num_layers = config_.layers_per_block[j] + 1;
    o.add_resample = i + 1 < n;
    o.num_heads = config_.attention_head_dim[j];
    o.cross_attention_dim = config_.cross_attention_dim[j];
    o.transformer_layers = config_.transformer_layers_per_block[j];
    o.only_cross_attention = config_.only_cross_attention[j];
    const bool attention = config_.up_block_types[i] == "CrossAttnUpBlock2D";
    up_has_attention_.push_back(attention);
    if (attention) {
      up_blocks->push_back(CrossAttnUpBlock2D(o));
    } else {
      up_blocks->push_back(UpBlock2D(o));
    }
  }

  conv_norm_out = register_module(
      "conv_norm_out", nn::GroupNorm(nn::GroupNormOptions(config_.norm_num_groups, ch[0]).eps(config_.norm_eps)));
  conv_out =
      register_module("conv_out", nn::Conv2d(nn::Conv2dOptions(ch[0], config_.out_channels, config_.conv_out_kernel)
                                                 .padding((config_.conv_out_kernel - 1) / 2)));
}

at::Tensor UNet2DConditionImpl::forward(const at::Tensor& sample, const at::Tensor& timesteps,
                                        const at::Tensor& encoder_hidden_states) {
  return run(sample, timesteps, encoder_hidden_states, nullptr);
}

at::Tensor UNet2DConditionImpl::forward_traced(const at::Tensor& sample, const at::Tensor& timesteps,
                                               const at::Tensor& encoder_hidden_states, TensorTrace& trace) {
  return run(sample, timesteps, encoder_hidden_states, &trace);
}

at::Tensor UNet2DConditionImpl::run(const at::Tensor& sample, const at::Tensor& timesteps, const at::Tensor& context,
                                    TensorTrace* trace) {
  DRAFT_CHECK(sample.dim() == 4 && sample.size(1) == config_.in_channels, "UNet: sample must be (B, ",
              config_.in_channels, ", H, W), got ", sample.sizes());
  const int64_t batch = sample.size(0);
  DRAFT_CHECK(context.dim() == 3 && context.size(0) == batch, "UNet: encoder_hidden_states must be (", batch,
              ", M, D), got ", context.sizes());
  DRAFT_CHECK(timesteps.dim() <= 1 && (timesteps.numel() == 1 || timesteps.numel() == batch),
              "UNet: timesteps must be a scalar, (1) or (", batch, "), got ", timesteps.sizes());

  // 1. time: sinusoid in float32, cast to the model dtype, then the MLP
  at::Tensor t = timesteps.reshape({-1}).to(sample.device()).expand({batch});
  at::Tensor t_proj = timestep_embedding(t, config_.block_out_channels[0], config_.flip_sin_to_cos, config_.freq_shift)
                          .to(sample.scalar_type());
  at::Tensor emb = time_embedding(t_proj);
  record(trace, "time_proj", t_proj);
  record(trace, "time_embedding", emb);

  // 2. input
  at::Tensor h = config_.center_input_sample ? sample * 2.0 - 1.0 : sample;
  h = conv_in(h);
  record(trace, "conv_in", h);

  // 3. down path, collecting skip tensors (conv_in output first)
  std::vector<at::Tensor> skips{h};
  for (size_t i = 0; i < down_blocks->size(); ++i) {
    DownBlockOutput out = down_has_attention_[i]
                              ? down_blocks->ptr<CrossAttnDownBlock2DImpl>(i)->forward(h, emb, context)
                              : down_blocks->ptr<DownBlock2DImpl>(i)->forward(h, emb);
    h = out.hidden;
    skips.insert(skips.end(), out.skips.begin(), out.skips.end());
    record(trace, "down_blocks." + std::to_string(i), h);
  }

  // 4. mid block
  h = mid_block(h, emb, context);
  record(trace, "mid_block", h);

  // 5. up path: each block takes as many skips as it has resnets, from the end. When H or W is not a
  // multiple of 2^(number of upsamplers), the upsampler targets the next skip's size instead of 2x.
  const int64_t factor = int64_t{1} << (up_blocks->size() - 1);
  const bool forward_upsample_size = sample.size(2) % factor != 0 || sample.size(3) % factor != 0;
  for (size_t i = 0; i < up_blocks->size(); ++i) {
    const size_t take = up_has_attention_[i] ? up_blocks->ptr<CrossAttnUpBlock2DImpl>(i)->resnets->size()
                                             : up_blocks->ptr<UpBlock2DImpl>(i)->resnets->size();
    DRAFT_CHECK(skips.size() >= take, "UNet: skip connections exhausted at up block ", i);
    std::vector<at::Tensor> block_skips(skips.end() - static_cast<std::ptrdiff_t>(take), skips.end());
    skips.resize(skips.size() - take);
    std::vector<int64_t> upsample_size;
    if (i + 1 < up_blocks->size() && forward_upsample_size) {
      upsample_size = {skips.back().size(2), skips.back().size(3)};
    }
    h = up_has_attention_[i]
            ? up_blocks->ptr<CrossAttnUpBlock2DImpl>(i)->forward(h, block_skips, emb, context, upsample_size)
            : up_blocks->ptr<UpBlock2DImpl>(i)->forward(h, block_skips, emb, upsample_size);
    record(trace, "up_blocks." + std::to_string(i), h);
  }

  // 6. output
  h = conv_norm_out(h);
  record(trace, "conv_norm_out", h);
  h = conv_out(torch::silu(h));
  record(trace, "conv_out", h);
  return h;
}

UNet2DCondition load_unet(const std::string& folder, const WeightsOptions& options) {
  UNetConfig config = UNetConfig::from_json(ConfigJson::load(folder + "/config.json"));
  UNet2DCondition unet(config);
  load_weights(*unet, find_weight_files(folder), options, folder);
  return unet;
}

}  // namespace draft
