// Attention: diffusers' multi-head attention module (the UNet's self/cross attention and the VAE
// mid-block attention), with the projections swappable for wrappers such as LoRA.
#pragma once

#include <cstdint>
#include <string>

#include <ATen/core/Tensor.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

namespace draft {

/// Options of Attention (diffusers `Attention` with the default AttnProcessor).
struct AttentionOptions {
  AttentionOptions(int64_t query_dim, int64_t heads, int64_t dim_head)
      : query_dim_(query_dim), heads_(heads), dim_head_(dim_head) {}
  TORCH_ARG(int64_t, query_dim);
  TORCH_ARG(int64_t, heads);
  TORCH_ARG(int64_t, dim_head);
  /// Width of the key/value input; 0 means self-attention (= query_dim).
  TORCH_ARG(int64_t, cross_attention_dim) = 0;
  /// Bias of to_q / to_k / to_v (false in the UNet, true in the VAE).
  TORCH_ARG(bool, bias) = false;
  /// Bias of to_out.0.
  TORCH_ARG(bool, out_bias) = true;
  /// Compute q, k, scores and softmax in float32 (SD 2.x `upcast_attention`).
  TORCH_ARG(bool, upcast_attention) = false;
  /// Compute the softmax in float32 (the VAE's attention).
  TORCH_ARG(bool, upcast_softmax) = false;
  /// > 0: a `group_norm` (this many groups) on the input before the projections (VAE mid block).
  TORCH_ARG(int64_t, norm_num_groups) = 0;
  /// eps of `group_norm`.
  TORCH_ARG(double, eps) = 1e-5;
  /// Add the (un-normalised) input to the output (VAE mid block).
  TORCH_ARG(bool, residual_connection) = false;
  /// The output is divided by this.
  TORCH_ARG(double, rescale_output_factor) = 1.0;
};

/// softmax(q k^T * dim_head^-0.5) v over `heads` heads, with q = to_q(x), k = to_k(ctx), v = to_v(ctx),
/// followed by to_out.0. Keys: group_norm (optional), to_q, to_k, to_v, to_out.0 (to_out.1 is a weightless
/// dropout, as in diffusers). The math kernel computes scores with matmul then scale, not baddbmm on an
/// empty buffer (DESIGN.md 6); on LibTorch 2.x the fused kernel is used instead (attention_kernel.h).
class AttentionImpl : public torch::nn::Module {
 public:
  explicit AttentionImpl(const AttentionOptions& options);

  /// x: (B, N, query_dim) or (B, query_dim, H, W) (then treated as N = H*W tokens and returned in NCHW);
  /// context: (B, M, cross_attention_dim), or undefined for self-attention.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& context = at::Tensor());

  /// Swaps one projection ("to_q", "to_k", "to_v" or "to_out.0") for another module with a
  /// Tensor(const Tensor&) forward, e.g. a LoRA wrapper around the original Linear. The new module is
  /// registered under the same name, so state-dict keys keep their prefix. (For to_out.0 the ModuleList's
  /// own iteration still yields the original; use projection("to_out.0").)
  void replace_projection(const std::string& name, torch::nn::AnyModule module);
  /// The module currently used for a projection (the original torch::nn::Linear unless replaced).
  const torch::nn::AnyModule& projection(const std::string& name) const;

  AttentionOptions options;
  torch::nn::GroupNorm group_norm{nullptr};
  torch::nn::ModuleList to_out{nullptr};

 private:
  /// softmax(q k^T * dim_head^-0.5) v with two matmuls (the math kernel); q, k, v (B, heads, N|M, d).
  at::Tensor math_attention(at::Tensor q, at::Tensor k, const at::Tensor& v) const;

  torch::nn::AnyModule to_q_, to_k_, to_v_, to_out0_;
};
TORCH_MODULE(Attention);

}  // namespace draft
