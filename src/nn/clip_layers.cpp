// CLIP transformer blocks (transformers v4.36 modeling_clip.py: CLIPAttention, CLIPMLP,
// CLIPEncoderLayer, CLIPEncoder) and the additive attention masks they take.
#include "nn/clip_layers.h"

#include <cmath>
#include <limits>

#include <torch/torch.h>

#include "nn/attention_kernel.h"
#include "util/error.h"
#include "util/torch_compat.h"

namespace draft {

CLIPActivation parse_clip_activation(const std::string& name, const std::string& what) {
  if (name == "quick_gelu") return CLIPActivation::kQuickGELU;
  if (name == "gelu") return CLIPActivation::kGELU;
  fail(what, " '", name, "' is not supported by the CLIP port (supported: quick_gelu, gelu)");
}

double finfo_min(c10::ScalarType dtype) {
  switch (dtype) {
    case c10::kDouble: return std::numeric_limits<double>::lowest();
    case c10::kFloat: return std::numeric_limits<float>::lowest();
    case c10::kHalf: return -65504.0;
    case c10::kBFloat16: return static_cast<double>(std::numeric_limits<c10::BFloat16>::lowest());
    default: fail("finfo_min: ", dtype, " is not a floating-point dtype");
  }
}

at::Tensor clip_causal_mask(int64_t length, c10::ScalarType dtype, c10::Device device) {
  auto options = torch::TensorOptions().dtype(dtype).device(device);
  // Upper triangle (key j > query i) is masked; the diagonal and below stay 0.
  return torch::full({length, length}, finfo_min(dtype), options).triu(1).view({1, 1, length, length});
}

at::Tensor clip_padding_mask(const at::Tensor& attention_mask, c10::ScalarType dtype) {
  DRAFT_CHECK(attention_mask.dim() == 2, "attention_mask must be [batch, length], got ",
              attention_mask.sizes());
  auto inverted = 1.0 - attention_mask.to(dtype);
  // masked_fill on every non-zero entry, as _prepare_4d_attention_mask does (not a multiplication).
  auto additive = inverted.masked_fill(inverted != 0, finfo_min(dtype));
  return additive.unsqueeze(1).unsqueeze(1);
}

CLIPAttentionImpl::CLIPAttentionImpl(int64_t hidden_size, int64_t num_heads)
    : num_heads_(num_heads), head_dim_(hidden_size / num_heads) {
  DRAFT_CHECK(num_heads > 0 && hidden_size % num_heads == 0, "CLIP attention: hidden_size ", hidden_size,
              " is not divisible by num_attention_heads ", num_heads);
  scale_ = 1.0 / std::sqrt(static_cast<double>(head_dim_));
  k_proj = register_module("k_proj", torch::nn::Linear(hidden_size, hidden_size));
  v_proj = register_module("v_proj", torch::nn::Linear(hidden_size, hidden_size));
  q_proj = register_module("q_proj", torch::nn::Linear(hidden_size, hidden_size));
  out_proj = register_module("out_proj", torch::nn::Linear(hidden_size, hidden_size));
}

at::Tensor CLIPAttentionImpl::forward(const at::Tensor& x, const at::Tensor& causal_mask,
                                      const at::Tensor& attention_mask) {
  const int64_t batch = x.size(0), length = x.size(1);
  auto heads = [&](const at::Tensor& t) {  // [B, T, D] -> [B, H, T, d]
    return t.view({batch, length, num_heads_, head_dim_}).transpose(1, 2);
  };
  at::Tensor out;
  if (attention_kernel() == AttentionKernel::kFused) {
    // softmax(q k^T / √d + mask) v in one kernel; its default scale is CLIP's head_dim^-0.5.
    at::Tensor mask = causal_mask;
    if (attention_mask.defined()) mask = mask.defined() ? mask + attention_mask : attention_mask;
    out = fused_attention(heads(q_proj(x)), heads(k_proj(x)), heads(v_proj(x)), mask);
  } else {
    // 1. q is scaled by head_dim^-0.5 before the product (CLIPAttention.forward), not the scores.
    auto q = heads(q_proj(x) * scale_);
    auto k = heads(k_proj(x));
    auto v = heads(v_proj(x));
    // 2. scores = q k^T (+ causal) (+ padding); matmul, not baddbmm (DESIGN.md 6, LibTorch 1.13 trap).
    auto scores = torch::matmul(q, k.transpose(-1, -2));
    if (causal_mask.defined()) scores = scores + causal_mask;
    if (attention_mask.defined()) scores = scores + attention_mask;
    // 3. softmax in the working dtype, weighted sum of values.
    out = torch::matmul(torch::softmax(scores, -1), v);
  }
  // 4. merge heads, out_proj.
  return out_proj(out.transpose(1, 2).reshape({batch, length, num_heads_ * head_dim_}));
}

CLIPMLPImpl::CLIPMLPImpl(int64_t hidden_size, int64_t intermediate_size, CLIPActivation activation)
    : activation_(activation) {
  fc1 = register_module("fc1", torch::nn::Linear(hidden_size, intermediate_size));
  fc2 = register_module("fc2", torch::nn::Linear(intermediate_size, hidden_size));
}

at::Tensor CLIPMLPImpl::forward(const at::Tensor& x) {
  auto h = fc1(x);
  switch (activation_) {
    case CLIPActivation::kQuickGELU: h = h * torch::sigmoid(1.702 * h); break;  // transformers QuickGELUActivation
    case CLIPActivation::kGELU: h = torch::gelu(h); break;                      // erf form (approximate="none")
  }
  return fc2(h);
}

CLIPEncoderLayerImpl::CLIPEncoderLayerImpl(const CLIPEncoderOptions& options) {
  auto ln = [&] {
    return torch::nn::LayerNorm(torch::nn::LayerNormOptions({options.hidden_size}).eps(options.layer_norm_eps));
  };
  self_attn = register_module("self_attn", CLIPAttention(options.hidden_size, options.num_attention_heads));
  layer_norm1 = register_module("layer_norm1", ln());
  mlp = register_module("mlp", CLIPMLP(options.hidden_size, options.intermediate_size, options.activation));
  layer_norm2 = register_module("layer_norm2", ln());
}

at::Tensor CLIPEncoderLayerImpl::forward(const at::Tensor& x, const at::Tensor& causal_mask,
                                         const at::Tensor& attention_mask) {
  auto h = x + self_attn(layer_norm1(x), causal_mask, attention_mask);
  return h + mlp(layer_norm2(h));
}

CLIPEncoderImpl::CLIPEncoderImpl(const CLIPEncoderOptions& options) {
  list_ = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < options.num_hidden_layers; ++i) {
    layers_.emplace_back(options);
    list_->push_back(layers_.back());
  }
}

at::Tensor CLIPEncoderImpl::forward(const at::Tensor& x, const at::Tensor& causal_mask,
                                    const at::Tensor& attention_mask, std::vector<at::Tensor>* hidden_states,
                                    int64_t num_layers) {
  const int64_t n = num_layers < 0 ? size() : num_layers;
  DRAFT_CHECK(n <= size(), "CLIP encoder: asked for ", n, " layers, the model has ", size());
  auto h = x;
  if (hidden_states) hidden_states->push_back(h);
  for (int64_t i = 0; i < n; ++i) {
    h = layers_[static_cast<std::size_t>(i)]->forward(h, causal_mask, attention_mask);
    if (hidden_states) hidden_states->push_back(h);
  }
  return h;
}

}  // namespace draft
