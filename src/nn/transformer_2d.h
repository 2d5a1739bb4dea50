// Transformer2DModel: the spatial transformer of the UNet's cross-attention blocks (GroupNorm, project
// to tokens, BasicTransformerBlocks, project back, residual).
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

namespace draft {

/// Options of Transformer2DModel (continuous input, norm_type="layer_norm").
struct Transformer2DOptions {
  Transformer2DOptions(int64_t in_channels, int64_t num_heads, int64_t cross_attention_dim)
      : in_channels_(in_channels), num_heads_(num_heads), cross_attention_dim_(cross_attention_dim) {}
  TORCH_ARG(int64_t, in_channels);
  /// Heads; head dim = in_channels / num_heads (diffusers passes in_channels // heads).
  TORCH_ARG(int64_t, num_heads);
  TORCH_ARG(int64_t, cross_attention_dim);
  /// transformer_blocks count (`transformer_layers_per_block`).
  TORCH_ARG(int64_t, num_layers) = 1;
  TORCH_ARG(int64_t, norm_num_groups) = 32;
  /// proj_in / proj_out are Linear on tokens (SD 2.x) instead of 1x1 convs on NCHW (SD 1.x).
  TORCH_ARG(bool, use_linear_projection) = false;
  TORCH_ARG(bool, only_cross_attention) = false;
  TORCH_ARG(bool, upcast_attention) = false;
};

/// out = proj_out(blocks(proj_in(norm(x)) as tokens, context)) + x, with `norm` a GroupNorm of eps 1e-6.
/// Keys: norm, proj_in, transformer_blocks.N, proj_out.
class Transformer2DModelImpl : public torch::nn::Module {
 public:
  explicit Transformer2DModelImpl(const Transformer2DOptions& options);
  /// x: (B, C, H, W); context: (B, M, cross_attention_dim).
  at::Tensor forward(const at::Tensor& x, const at::Tensor& context);

  Transformer2DOptions options;
  torch::nn::GroupNorm norm{nullptr};
  torch::nn::ModuleList transformer_blocks{nullptr};

 private:
  // Linear or 1x1 Conv2d depending on use_linear_projection; both take and return one tensor.
  torch::nn::AnyModule proj_in_, proj_out_;
};
TORCH_MODULE(Transformer2DModel);

}  // namespace draft
