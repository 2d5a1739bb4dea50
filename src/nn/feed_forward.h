// FeedForward with GEGLU: the MLP of diffusers' BasicTransformerBlock (keys net.0.proj, net.2).
#pragma once

#include <cstdint>
#include <string>

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/any.h>
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

  /// Swaps `proj` for another module with a Tensor(const Tensor&) forward (e.g. a LoRA wrapper), registered
  /// under the same name so state-dict keys keep their prefix. The `proj` member keeps the original.
  void replace_proj(torch::nn::AnyModule module);
  /// The module forward uses for proj (the original Linear unless replaced).
  const torch::nn::AnyModule& proj_module() const { return proj_any_; }

  torch::nn::Linear proj{nullptr};

 private:
  torch::nn::AnyModule proj_any_;
};
TORCH_MODULE(GEGLU);

/// diffusers `FeedForward(dim, activation_fn="geglu")`: net.0 = GEGLU(dim -> mult*dim), net.1 = dropout
/// (no weights, not applied), net.2 = Linear(mult*dim -> dim).
class FeedForwardImpl : public torch::nn::Module {
 public:
  explicit FeedForwardImpl(int64_t dim, int64_t mult = 4);
  at::Tensor forward(const at::Tensor& x);

  /// Swaps a Linear ("net.0.proj" or "net.2") for another module with a Tensor(const Tensor&) forward,
  /// e.g. a LoRA wrapper; state-dict keys keep their prefix (as Attention::replace_projection).
  void replace_projection(const std::string& name, torch::nn::AnyModule module);
  /// The module currently used for "net.0.proj" or "net.2".
  const torch::nn::AnyModule& projection(const std::string& name) const;

  torch::nn::ModuleList net{nullptr};

 private:
  GEGLU geglu_{nullptr};
  torch::nn::AnyModule out_;
};
TORCH_MODULE(FeedForward);

}  // namespace draft
