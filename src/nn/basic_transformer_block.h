// BasicTransformerBlock: self-attention, cross-attention and GEGLU feed-forward with pre-LayerNorms,
// the unit inside every UNet Transformer2DModel.
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include "nn/attention.h"
#include "nn/feed_forward.h"

namespace draft {

/// Options of BasicTransformerBlock (diffusers defaults: norm_type="layer_norm", attention_bias=False,
/// activation_fn="geglu", double_self_attention=False).
struct BasicTransformerBlockOptions {
  BasicTransformerBlockOptions(int64_t dim, int64_t heads, int64_t dim_head, int64_t cross_attention_dim)
      : dim_(dim), heads_(heads), dim_head_(dim_head), cross_attention_dim_(cross_attention_dim) {}
  TORCH_ARG(int64_t, dim);
  TORCH_ARG(int64_t, heads);
  TORCH_ARG(int64_t, dim_head);
  TORCH_ARG(int64_t, cross_attention_dim);
  /// attn1 attends to the context instead of to itself.
  TORCH_ARG(bool, only_cross_attention) = false;
  TORCH_ARG(bool, upcast_attention) = false;
};

/// x = attn1(norm1(x)) + x; x = attn2(norm2(x), context) + x; x = ff(norm3(x)) + x.
/// LayerNorms use eps 1e-5. Keys: norm1, attn1, norm2, attn2, norm3, ff.
class BasicTransformerBlockImpl : public torch::nn::Module {
 public:
  explicit BasicTransformerBlockImpl(const BasicTransformerBlockOptions& options);
  /// x: (B, N, dim); context: (B, M, cross_attention_dim).
  at::Tensor forward(const at::Tensor& x, const at::Tensor& context);

  BasicTransformerBlockOptions options;
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr}, norm3{nullptr};
  Attention attn1{nullptr}, attn2{nullptr};
  FeedForward ff{nullptr};
};
TORCH_MODULE(BasicTransformerBlock);

}  // namespace draft
