// Attention following diffusers v0.25 models/attention_processor.py (Attention + AttnProcessor,
// get_attention_scores); scores are computed as matmul(q, k^T) * scale (DESIGN.md section 6).
#include "nn/attention.h"

#include <cmath>
#include <utility>

#include <torch/torch.h>

#include "nn/attention_kernel.h"
#include "util/error.h"
#include "util/torch_compat.h"

namespace draft {

AttentionImpl::AttentionImpl(const AttentionOptions& options_) : options(options_) {
  namespace nn = torch::nn;
  const int64_t inner = options.heads() * options.dim_head();
  const int64_t kv_dim = options.cross_attention_dim() > 0 ? options.cross_attention_dim() : options.query_dim();
  DRAFT_CHECK(options.heads() > 0 && options.dim_head() > 0, "Attention: heads and dim_head must be positive");
  if (options.norm_num_groups() > 0) {
    group_norm = register_module(
        "group_norm",
        nn::GroupNorm(nn::GroupNormOptions(options.norm_num_groups(), options.query_dim()).eps(options.eps())));
  }
  to_q_ = nn::AnyModule(nn::Linear(nn::LinearOptions(options.query_dim(), inner).bias(options.bias())));
  to_k_ = nn::AnyModule(nn::Linear(nn::LinearOptions(kv_dim, inner).bias(options.bias())));
  to_v_ = nn::AnyModule(nn::Linear(nn::LinearOptions(kv_dim, inner).bias(options.bias())));
  to_out0_ = nn::AnyModule(nn::Linear(nn::LinearOptions(inner, options.query_dim()).bias(options.out_bias())));
  register_module("to_q", to_q_.ptr());
  register_module("to_k", to_k_.ptr());
  register_module("to_v", to_v_.ptr());
  to_out = register_module("to_out", nn::ModuleList());
  to_out->push_back(to_out0_.ptr());
  to_out->push_back(nn::Dropout(0.0));
}

void AttentionImpl::replace_projection(const std::string& name, torch::nn::AnyModule module) {
  if (name == "to_q" || name == "to_k" || name == "to_v") {
    replace_module(name, module.ptr());
    (name == "to_q" ? to_q_ : name == "to_k" ? to_k_ : to_v_) = std::move(module);
  } else if (name == "to_out.0") {
    to_out->replace_module("0", module.ptr());
    to_out0_ = std::move(module);
  } else {
    fail("Attention: no projection named '", name, "' (use to_q, to_k, to_v or to_out.0)");
  }
}

const torch::nn::AnyModule& AttentionImpl::projection(const std::string& name) const {
  if (name == "to_q") return to_q_;
  if (name == "to_k") return to_k_;
  if (name == "to_v") return to_v_;
  if (name == "to_out.0") return to_out0_;
  fail("Attention: no projection named '", name, "' (use to_q, to_k, to_v or to_out.0)");
}

at::Tensor AttentionImpl::forward(const at::Tensor& x, const at::Tensor& context) {
  const bool spatial = x.dim() == 4;
  DRAFT_CHECK(spatial || x.dim() == 3, "Attention: input must be (B, N, C) or (B, C, H, W), got ", x.sizes());
  const int64_t batch = x.size(0);
  // 1. NCHW -> (B, HW, C) tokens
  at::Tensor h = spatial ? x.reshape({batch, x.size(1), -1}).transpose(1, 2) : x;
  // 2. optional GroupNorm over channels (input as (B, C, N))
  if (group_norm) h = group_norm(h.transpose(1, 2)).transpose(1, 2);
  const at::Tensor& ctx = context.defined() ? context : h;

  // 3. projections, split into heads: (B, N, heads*d) -> (B, heads, N, d)
  const int64_t heads = options.heads(), d = options.dim_head();
  auto split = [&](const at::Tensor& t) { return t.reshape({batch, t.size(1), heads, d}).permute({0, 2, 1, 3}); };
  at::Tensor q = split(to_q_.forward<at::Tensor>(h));
  at::Tensor k = split(to_k_.forward<at::Tensor>(ctx));
  at::Tensor v = split(to_v_.forward<at::Tensor>(ctx));

  // 4.-5. softmax(q k^T * d^-0.5) v, heads merged back: (B, heads, N, d) -> (B, N, heads*d), then to_out.0.
  //    The fused kernel keeps its softmax in float32 internally, which is what the upcast options ask of
  //    the math path (diffusers' AttnProcessor2_0 likewise ignores them).
  at::Tensor out = attention_kernel() == AttentionKernel::kFused ? fused_attention(q, k, v, at::Tensor())
                                                                 : math_attention(q, k, v);
  out = to_out0_.forward<at::Tensor>(out.permute({0, 2, 1, 3}).reshape({batch, -1, heads * d}));

  // 6. back to NCHW, residual, rescale
  if (spatial) out = out.transpose(1, 2).reshape(x.sizes());
  if (options.residual_connection()) out = out + x;
  if (options.rescale_output_factor() != 1.0) out = out / options.rescale_output_factor();
  return out;
}

at::Tensor AttentionImpl::math_attention(at::Tensor q, at::Tensor k, const at::Tensor& v) const {
  // probs = softmax(q k^T * d^-0.5) over keys; upcast variants compute in float32 and cast back
  const auto dtype = q.scalar_type();
  if (options.upcast_attention()) {
    q = q.to(torch::kFloat);
    k = k.to(torch::kFloat);
  }
  // Scaled in place: the score tensor is the largest in the UNet (B·heads·N·M), and a second full-size
  // buffer for the scaled copy cost more than the product itself (profiled on the tiny test UNet). The
  // product's backward does not need its output, so the in-place scale is autograd-safe.
  at::Tensor scores =
      torch::matmul(q, k.transpose(-1, -2)).mul_(std::pow(static_cast<double>(options.dim_head()), -0.5));
  if (options.upcast_softmax()) scores = scores.to(torch::kFloat);
  at::Tensor probs = scores.softmax(-1).to(dtype);
  return torch::matmul(probs, v);  // (B, heads, N, d)
}

}  // namespace draft
