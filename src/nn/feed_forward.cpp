// GEGLU feed-forward following diffusers v0.25 models/attention.py (FeedForward) and activations.py (GEGLU).
#include "nn/feed_forward.h"

#include <torch/torch.h>

namespace draft {

GEGLUImpl::GEGLUImpl(int64_t dim_in, int64_t dim_out) {
  proj = register_module("proj", torch::nn::Linear(dim_in, dim_out * 2));
}

at::Tensor GEGLUImpl::forward(const at::Tensor& x) {
  auto parts = proj(x).chunk(2, -1);
  // Exact GELU: 0.5 * g * (1 + erf(g / sqrt(2))), torch's default approximate="none".
  return parts[0] * torch::gelu(parts[1]);
}

FeedForwardImpl::FeedForwardImpl(int64_t dim, int64_t mult) {
  const int64_t inner = dim * mult;
  geglu_ = GEGLU(dim, inner);
  out_ = torch::nn::Linear(inner, dim);
  net = register_module("net", torch::nn::ModuleList(geglu_, torch::nn::Dropout(0.0), out_));
}

at::Tensor FeedForwardImpl::forward(const at::Tensor& x) { return out_(geglu_(x)); }

}  // namespace draft
