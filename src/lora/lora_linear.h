// LoRALinear: a frozen torch::nn::Linear plus one or more low-rank adapters (LoRA, Hu et al. 2021),
// y = W x + b + sum_i s_i (alpha_i / r_i) B_i A_i x, with merge/unmerge of the adapters into W.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

namespace draft {

/// A Linear layer with stacked LoRA adapters. The base weight and bias are the wrapped Linear's own
/// tensors, registered here under the same names ("weight", "bias") so a model's state-dict keys for
/// the base are unchanged; they are frozen (requires_grad off). Adapter i lives in lora_A.i.weight
/// (A, the "down" matrix, shape (r, in)) and lora_B.i.weight (B, the "up" matrix, shape (out, r)),
/// mirroring PEFT's lora_A.<adapter>.weight / lora_B.<adapter>.weight.
///
/// A fresh adapter has A Kaiming-uniform (a = sqrt(5), bound 1/sqrt(in), as PEFT and kohya initialise
/// it, so trained adapters and learning rates behave as in those tools) and B = 0, so it changes
/// nothing: the output is bit-identical to the base Linear's.
///
/// Adapters are master weights: float32 under a float32, bfloat16 or float16 base (float64 under a
/// float64 one), cast to the activations' dtype for the matmuls, so the optimizer and its state work in
/// float32 while the frozen base runs in half precision.
class LoRALinearImpl : public torch::nn::Module {
 public:
  /// Wraps `base` (its weight and bias are shared, not copied, and frozen).
  explicit LoRALinearImpl(const torch::nn::Linear& base);

  /// Adds a fresh adapter of rank `rank` (A Kaiming-uniform, drawn from LibTorch's default CPU generator
  /// whatever the device; B zero); returns its index. The adapter's tensors require grad.
  int64_t add_adapter(int64_t rank, double alpha, double scale = 1.0);
  /// Adds an adapter with the given A (rank, in) and B (out, rank), copied to the base's device in the
  /// master dtype (float32, or float64 under a float64 base), not requiring grad; returns its index.
  /// Throws draft::Error on shape mismatch.
  int64_t add_adapter(const at::Tensor& down, const at::Tensor& up, double alpha, double scale = 1.0);

  /// W x + b + sum_i s_i (alpha_i / r_i) B_i (A_i x); when merged, just W' x + b. In inference mode
  /// (c10::InferenceMode) the same sum as one product with W + the deltas, merged once per set of adapter
  /// values and kept (equal up to float rounding; bit-identical while every B is zero).
  at::Tensor forward(const at::Tensor& x);

  /// s_i (alpha_i / r_i) B_i A_i, shape (out, in), in the base's dtype.
  at::Tensor delta_weight(int64_t index) const;
  /// Folds every adapter's delta into W (in place, no grad); forward then skips the adapters.
  void merge();
  /// Subtracts the deltas folded by merge() (W is restored up to float rounding).
  void unmerge();
  bool merged() const { return merged_; }

  int64_t num_adapters() const { return static_cast<int64_t>(rank_.size()); }
  int64_t rank(int64_t index) const { return rank_.at(index); }
  double alpha(int64_t index) const { return alpha_.at(index); }
  double scale(int64_t index) const { return scale_.at(index); }
  /// Changes adapter `index`'s scale (refused while merged: unmerge first).
  void set_scale(int64_t index, double scale);
  at::Tensor lora_down(int64_t index) const;  ///< A of adapter `index`
  at::Tensor lora_up(int64_t index) const;    ///< B of adapter `index`

  /// A plain Linear holding the current weight (merged deltas included when merged) and bias.
  torch::nn::Linear to_linear() const;

  int64_t in_features() const { return in_features_; }
  int64_t out_features() const { return out_features_; }

  at::Tensor weight, bias;
  torch::nn::ModuleList lora_A{nullptr}, lora_B{nullptr};

 private:
  int64_t in_features_, out_features_;
  std::vector<int64_t> rank_;
  std::vector<double> alpha_, scale_;
  bool merged_ = false;
  /// forward in inference mode: W + the deltas, and what it was made from (merged_for_inference).
  at::Tensor merged_for_inference();
  at::Tensor inference_weight_;
  std::vector<double> inference_key_;
};
TORCH_MODULE(LoRALinear);

}  // namespace draft
