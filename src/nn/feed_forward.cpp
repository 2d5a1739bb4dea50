// GEGLU feed-forward following diffusers v0.25 models/attention.py (FeedForward) and activations.py (GEGLU).
#include "nn/feed_forward.h"

#include <utility>

#include <torch/torch.h>

#include "util/error.h"

namespace draft {

GEGLUImpl::GEGLUImpl(int64_t dim_in, int64_t dim_out) {
  proj = register_module("proj", torch::nn::Linear(dim_in, dim_out * 2));
  proj_any_ = torch::nn::AnyModule(proj);
}

void GEGLUImpl::replace_proj(torch::nn::AnyModule module) {
  replace_module("proj", module.ptr());
  proj_any_ = std::move(module);
}

at::Tensor GEGLUImpl::forward(const at::Tensor& x) {
  auto parts = proj_any_.forward<at::Tensor>(x).chunk(2, -1);
  // Exact GELU: 0.5 * g * (1 + erf(g / sqrt(2))), torch's default approximate="none".
  // The gate is a strided half of the projection: LibTorch's vectorised GELU runs only on contiguous
  // memory, and on the view it took 4x as long as the copy plus the contiguous GELU (8 x 64 x 256 floats,
  // 2 cores; docs/performance.md). Equal up to the last bits of erf.
  return parts[0] * torch::gelu(parts[1].contiguous());
}

FeedForwardImpl::FeedForwardImpl(int64_t dim, int64_t mult) {
  const int64_t inner = dim * mult;
  geglu_ = GEGLU(dim, inner);
  torch::nn::Linear out(inner, dim);
  out_ = torch::nn::AnyModule(out);
  net = register_module("net", torch::nn::ModuleList(geglu_, torch::nn::Dropout(0.0), out));
}

void FeedForwardImpl::replace_projection(const std::string& name, torch::nn::AnyModule module) {
  if (name == "net.0.proj") {
    geglu_->replace_proj(std::move(module));
  } else if (name == "net.2") {
    net->replace_module("2", module.ptr());
    out_ = std::move(module);
  } else {
    fail("FeedForward: no projection named '", name, "' (use net.0.proj or net.2)");
  }
}

const torch::nn::AnyModule& FeedForwardImpl::projection(const std::string& name) const {
  if (name == "net.0.proj") return geglu_->proj_module();
  if (name == "net.2") return out_;
  fail("FeedForward: no projection named '", name, "' (use net.0.proj or net.2)");
}

at::Tensor FeedForwardImpl::forward(const at::Tensor& x) { return out_.forward<at::Tensor>(geglu_(x)); }

}  // namespace draft
