// Transformer blocks shared by CLIP's text and vision towers, named like transformers' modeling_clip.py
// (v4.36) so that state-dict keys match: CLIPAttention, CLIPMLP, CLIPEncoderLayer, CLIPEncoder.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/ScalarType.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

namespace draft {

/// The MLP activation named by a CLIP config's "hidden_act".
enum class CLIPActivation {
  kQuickGELU,  ///< "quick_gelu": x * sigmoid(1.702 x) (openai CLIP, SD 1.x)
  kGELU,       ///< "gelu": exact erf GELU (OpenCLIP ViT-H / bigG, SD 2.x)
};

/// Parses a "hidden_act" value; anything else throws draft::Error naming `what` and the value.
CLIPActivation parse_clip_activation(const std::string& name, const std::string& what = "hidden_act");

/// torch.finfo(dtype).min: the value transformers fills masked attention scores with (not -inf).
double finfo_min(c10::ScalarType dtype);

/// The additive causal mask [1, 1, T, T] in `dtype`: 0 where key j <= query i, finfo_min(dtype) above
/// the diagonal (transformers' _create_4d_causal_attention_mask).
at::Tensor clip_causal_mask(int64_t length, c10::ScalarType dtype, c10::Device device);

/// The additive padding mask [B, 1, 1, S] from a [B, S] attention mask (1 = attend, 0 = padding):
/// (1 - mask) with every non-zero entry set to finfo_min(dtype) (transformers' _prepare_4d_attention_mask).
at::Tensor clip_padding_mask(const at::Tensor& attention_mask, c10::ScalarType dtype);

/// Sizes of a CLIP encoder (one tower).
struct CLIPEncoderOptions {
  int64_t hidden_size = 512;
  int64_t intermediate_size = 2048;
  int64_t num_attention_heads = 8;
  int64_t num_hidden_layers = 12;
  CLIPActivation activation = CLIPActivation::kQuickGELU;
  double layer_norm_eps = 1e-5;
};

/// Multi-head self-attention with biased q/k/v/out projections.
class CLIPAttentionImpl : public torch::nn::Module {
 public:
  CLIPAttentionImpl(int64_t hidden_size, int64_t num_heads);
  /// x: [B, T, D]. causal_mask [1, 1, T, T] and attention_mask [B, 1, 1|T, T] are additive and optional;
  /// they are added one after the other, as the reference does.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& causal_mask = {},
                     const at::Tensor& attention_mask = {});

  torch::nn::Linear k_proj{nullptr};
  torch::nn::Linear v_proj{nullptr};
  torch::nn::Linear q_proj{nullptr};
  torch::nn::Linear out_proj{nullptr};

 private:
  int64_t num_heads_;
  int64_t head_dim_;
  double scale_;
};
TORCH_MODULE(CLIPAttention);

/// fc1 -> activation -> fc2.
class CLIPMLPImpl : public torch::nn::Module {
 public:
  CLIPMLPImpl(int64_t hidden_size, int64_t intermediate_size, CLIPActivation activation);
  at::Tensor forward(const at::Tensor& x);

  torch::nn::Linear fc1{nullptr};
  torch::nn::Linear fc2{nullptr};

 private:
  CLIPActivation activation_;
};
TORCH_MODULE(CLIPMLP);

/// Pre-LayerNorm transformer layer: x += attn(LN1(x)); x += mlp(LN2(x)).
class CLIPEncoderLayerImpl : public torch::nn::Module {
 public:
  explicit CLIPEncoderLayerImpl(const CLIPEncoderOptions& options);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& causal_mask = {},
                     const at::Tensor& attention_mask = {});

  CLIPAttention self_attn{nullptr};
  torch::nn::LayerNorm layer_norm1{nullptr};
  CLIPMLP mlp{nullptr};
  torch::nn::LayerNorm layer_norm2{nullptr};
};
TORCH_MODULE(CLIPEncoderLayer);

/// The stack of encoder layers, registered as "layers.N".
class CLIPEncoderImpl : public torch::nn::Module {
 public:
  explicit CLIPEncoderImpl(const CLIPEncoderOptions& options);
  /// Runs the first `num_layers` layers (all when negative). When `hidden_states` is given, it receives
  /// the input followed by each layer's output (transformers' output_hidden_states).
  at::Tensor forward(const at::Tensor& x, const at::Tensor& causal_mask = {},
                     const at::Tensor& attention_mask = {}, std::vector<at::Tensor>* hidden_states = nullptr,
                     int64_t num_layers = -1);

  int64_t size() const { return static_cast<int64_t>(layers_.size()); }
  CLIPEncoderLayer& layer(int64_t i) { return layers_.at(static_cast<std::size_t>(i)); }

 private:
  torch::nn::ModuleList list_{nullptr};
  std::vector<CLIPEncoderLayer> layers_;
};
TORCH_MODULE(CLIPEncoder);

}  // namespace draft
