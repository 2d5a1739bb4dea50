// BasicTransformerBlock following diffusers v0.25 models/attention.py (layer_norm path).
#include "nn/basic_transformer_block.h"

#include <torch/torch.h>

namespace draft {

BasicTransformerBlockImpl::BasicTransformerBlockImpl(const BasicTransformerBlockOptions& options_) : options(options_) {
  namespace nn = torch::nn;
  const int64_t dim = options.dim();
  auto layer_norm = [&] { return nn::LayerNorm(nn::LayerNormOptions({dim}).eps(1e-5).elementwise_affine(true)); };
  auto attention = [&](int64_t cross_dim) {
    return Attention(AttentionOptions(dim, options.heads(), options.dim_head())
                         .cross_attention_dim(cross_dim)
                         .bias(false)
                         .out_bias(true)
                         .upcast_attention(options.upcast_attention()));
  };
  norm1 = register_module("norm1", layer_norm());
  attn1 = register_module("attn1", attention(options.only_cross_attention() ? options.cross_attention_dim() : 0));
  norm2 = register_module("norm2", layer_norm());
  attn2 = register_module("attn2", attention(options.cross_attention_dim()));
  norm3 = register_module("norm3", layer_norm());
  ff = register_module("ff", FeedForward(dim));
}

at::Tensor BasicTransformerBlockImpl::forward(const at::Tensor& x, const at::Tensor& context) {
  at::Tensor h = attn1(norm1(x), options.only_cross_attention() ? context : at::Tensor()) + x;
  h = attn2(norm2(h), context) + h;
  return ff(norm3(h)) + h;
}

}  // namespace draft
