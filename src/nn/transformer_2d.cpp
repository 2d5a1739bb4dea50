// Transformer2DModel following diffusers v0.25 models/transformer_2d.py (_operate_on_continuous_inputs).
#include "nn/transformer_2d.h"

#include <torch/torch.h>

#include "nn/basic_transformer_block.h"
#include "util/error.h"

namespace draft {

Transformer2DModelImpl::Transformer2DModelImpl(const Transformer2DOptions& options_) : options(options_) {
  namespace nn = torch::nn;
  const int64_t channels = options.in_channels(), heads = options.num_heads();
  DRAFT_CHECK(heads > 0 && channels % heads == 0, "Transformer2DModel: ", channels, " channels are not divisible into ",
              heads, " attention heads");
  // The input norm's eps is hard-coded to 1e-6 upstream, unlike the resnets' norm_eps.
  norm = register_module("norm", nn::GroupNorm(nn::GroupNormOptions(options.norm_num_groups(), channels).eps(1e-6)));
  auto projection = [&] {
    return options.use_linear_projection() ? nn::AnyModule(nn::Linear(channels, channels))
                                           : nn::AnyModule(nn::Conv2d(nn::Conv2dOptions(channels, channels, 1)));
  };
  proj_in_ = projection();
  register_module("proj_in", proj_in_.ptr());
  transformer_blocks = register_module("transformer_blocks", nn::ModuleList());
  for (int64_t i = 0; i < options.num_layers(); ++i) {
    transformer_blocks->push_back(BasicTransformerBlock(
        BasicTransformerBlockOptions(channels, heads, channels / heads, options.cross_attention_dim())
            .only_cross_attention(options.only_cross_attention())
            .upcast_attention(options.upcast_attention())));
  }
  proj_out_ = projection();
  register_module("proj_out", proj_out_.ptr());
}

at::Tensor Transformer2DModelImpl::forward(const at::Tensor& x, const at::Tensor& context) {
  const int64_t batch = x.size(0), channels = x.size(1), height = x.size(2), width = x.size(3);
  auto to_tokens = [&](const at::Tensor& t) {
    return t.permute({0, 2, 3, 1}).reshape({batch, height * width, channels});
  };
  auto to_nchw = [&](const at::Tensor& t) {
    return t.reshape({batch, height, width, channels}).permute({0, 3, 1, 2}).contiguous();
  };
  // 1. GroupNorm, then tokens (B, HW, C); the 1x1 conv projection runs before the reshape, the linear after
  at::Tensor h = norm(x);
  h = options.use_linear_projection() ? proj_in_.forward(to_tokens(h)) : to_tokens(proj_in_.forward(h));
  // 2. transformer blocks
  for (const auto& block : *transformer_blocks) h = block->as<BasicTransformerBlockImpl>()->forward(h, context);
  // 3. back to NCHW and residual
  h = options.use_linear_projection() ? to_nchw(proj_out_.forward(h)) : proj_out_.forward(to_nchw(h));
  return h + x;
}

}  // namespace draft
