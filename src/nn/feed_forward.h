// FeedForward with GEGLU: the MLP of diffusers' BasicTransformerBlock (keys net.0.proj, net.2).
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

namespace draft {

/// GEGLU (Shazeer 2020, "GLU Variants Improve Transformer"): proj(x) = [h, gate], out = h * GELU(gate)
/// with the exact erf GELU. Key: proj.
class GEGLUImpl : public torch::nn::Module {
 public:
  GEGLUImpl(int64_t dim_in, int64_t dim_out);
  at::Tensor forward(const at::Tensor& x);

  torch::nn::Linear proj{nullptr};
};
TORCH_MODULE(GEGLU);

/// diffusers `FeedForward(dim, activation_fn="geglu")`: net.0 = GEGLU(dim -> mult*dim), net.1 = dropout
/// (no weights, not applied), net.2 = Linear(mult*dim -> dim).
class FeedForwardImpl : public torch::nn::Module {
 public:
  explicit FeedForwardImpl(int64_t dim, int64_t mult = 4);
  at::Tensor forward(const at::Tensor& x);

  torch::nn::ModuleList net{nullptr};

 private:
  GEGLU geglu_{nullptr};
  torch::nn::Linear out_{nullptr};
};
TORCH_MODULE(FeedForward);

}  // namespace draft
