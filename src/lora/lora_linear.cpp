// LoRALinear following Hu et al. 2021 (LoRA), eq. (3): h = W0 x + dW x = W0 x + B A x, with the
// alpha / r scaling of section 4.1 and PEFT's per-adapter `scale` multiplier.
#include "lora/lora_linear.h"

#include <cmath>

#include <torch/torch.h>

#include "util/error.h"

namespace draft {

namespace {

/// The dtype adapters are kept in: float32 master weights under a float32, bfloat16 or float16 base (mixed
/// precision: the optimizer's updates, often far below a bf16 ulp of the weight, are not rounded away),
/// float64 under a float64 base (exactness checks).
c10::ScalarType master_dtype(c10::ScalarType base) { return base == torch::kDouble ? torch::kDouble : torch::kFloat; }

}  // namespace

LoRALinearImpl::LoRALinearImpl(const torch::nn::Linear& base)
    : in_features_(base->options.in_features()), out_features_(base->options.out_features()) {
  weight = register_parameter("weight", base->weight, /*requires_grad=*/false);
  if (base->bias.defined()) bias = register_parameter("bias", base->bias, /*requires_grad=*/false);
  lora_A = register_module("lora_A", torch::nn::ModuleList());
  lora_B = register_module("lora_B", torch::nn::ModuleList());
}

int64_t LoRALinearImpl::add_adapter(int64_t rank, double alpha, double scale) {
  DRAFT_CHECK(rank >= 1, "LoRALinear: rank must be >= 1, got ", rank);
  DRAFT_CHECK(!merged_, "LoRALinear: cannot add an adapter while merged (unmerge first)");
  // A is drawn on the CPU, from LibTorch's default CPU generator, in the master dtype, then moved: a seed gives
  // the same adapter on the CPU and on any GPU, and under an f32, bf16 or f16 base alike.
  auto options = torch::TensorOptions().dtype(master_dtype(weight.scalar_type()));
  at::Tensor down = torch::empty({rank, in_features_}, options);
  {
    torch::NoGradGuard no_grad;
    // PEFT / kohya: kaiming_uniform_(a=sqrt(5)), i.e. U(-1/sqrt(in), 1/sqrt(in)) as torch's Linear init.
    torch::nn::init::kaiming_uniform_(down, std::sqrt(5.0));
  }
  const int64_t index = add_adapter(down, torch::zeros({out_features_, rank}, options), alpha, scale);
  lora_A[index]->as<torch::nn::LinearImpl>()->weight.set_requires_grad(true);
  lora_B[index]->as<torch::nn::LinearImpl>()->weight.set_requires_grad(true);
  return index;
}

int64_t LoRALinearImpl::add_adapter(const at::Tensor& down, const at::Tensor& up, double alpha, double scale) {
  DRAFT_CHECK(!merged_, "LoRALinear: cannot add an adapter while merged (unmerge first)");
  DRAFT_CHECK(down.dim() == 2 && up.dim() == 2 && down.size(0) == up.size(1) && down.size(1) == in_features_ &&
                  up.size(0) == out_features_,
              "LoRALinear: adapter shapes down ", down.sizes(), " / up ", up.sizes(), " do not fit a Linear(",
              in_features_, " -> ", out_features_, "): expected down (r, ", in_features_, ") and up (",
              out_features_, ", r)");
  DRAFT_CHECK(std::isfinite(alpha) && alpha > 0, "LoRALinear: alpha must be a positive number, got ", alpha);
  const int64_t rank = down.size(0);
  auto make = [&](const at::Tensor& value, int64_t in, int64_t out) {
    torch::nn::Linear layer(torch::nn::LinearOptions(in, out).bias(false));
    layer->to(weight.device(), master_dtype(weight.scalar_type()));
    torch::NoGradGuard no_grad;
    layer->weight.copy_(value);
    layer->weight.set_requires_grad(false);
    return layer;
  };
  lora_A->push_back(make(down, in_features_, rank));
  lora_B->push_back(make(up, rank, out_features_));
  rank_.push_back(rank);
  alpha_.push_back(alpha);
  scale_.push_back(scale);
  return num_adapters() - 1;
}

at::Tensor LoRALinearImpl::lora_down(int64_t index) const {
  return lora_A->at<torch::nn::LinearImpl>(index).weight;
}

at::Tensor LoRALinearImpl::lora_up(int64_t index) const {
  return lora_B->at<torch::nn::LinearImpl>(index).weight;
}

at::Tensor LoRALinearImpl::forward(const at::Tensor& x) {
  if (merged_) return torch::linear(x, weight, bias);
  // In inference mode (sampling, the no-grad steps of a DRaFT chain: rollout.h): one product with W + the
  // deltas, merged once for the adapters' current values, instead of the base product plus two rank-r
  // products, a scale and an add per adapter on every call; a chain calls each layer N times with the same
  // weights. The merged copy costs one weight's memory per adapted layer. Plain no-grad calls keep the
  // unmerged sum, so that gradient checkpointing recomputes exactly what its forward computed.
  if (c10::InferenceMode::is_enabled() && num_adapters() > 0) {
    return torch::linear(x, merged_for_inference(), bias);
  }
  // 1. base: W x + b, the same call torch::nn::Linear makes, so with no (or zero) delta the result is
  //    bit-identical to the wrapped layer's
  at::Tensor y = torch::linear(x, weight, bias);
  // 2. eq. (3) with scaling: + s (alpha / r) B (A x) per adapter; the rank-r bottleneck costs
  //    r (in + out) per token instead of forming the (out, in) delta. Mixed precision: the float32 master
  //    A and B are cast to the activations' dtype for the matmuls (a no-op when they match); their
  //    gradients flow back through the cast and arrive in float32.
  for (int64_t i = 0; i < num_adapters(); ++i) {
    const double factor = scale_[i] * alpha_[i] / static_cast<double>(rank_[i]);
    if (factor == 0.0) continue;
    const at::Tensor down = lora_down(i).to(x.scalar_type()), up = lora_up(i).to(x.scalar_type());
    y = y + torch::linear(torch::linear(x, down), up) * factor;
  }
  return y;
}

at::Tensor LoRALinearImpl::merged_for_inference() {
  // What the merged weight was made from: a changed value (an optimizer step bumps a tensor's version), a
  // replaced tensor (load, move to another device) or a new scale makes it again.
  std::vector<double> key = {static_cast<double>(weight._version()),
                             static_cast<double>(reinterpret_cast<uintptr_t>(weight.data_ptr()))};
  for (int64_t i = 0; i < num_adapters(); ++i) {
    for (const at::Tensor& t : {lora_down(i), lora_up(i)}) {
      key.push_back(static_cast<double>(t._version()));
      key.push_back(static_cast<double>(reinterpret_cast<uintptr_t>(t.data_ptr())));
    }
    key.push_back(scale_[i]);
  }
  if (!inference_weight_.defined() || key != inference_key_) {
    at::Tensor merged = weight;
    for (int64_t i = 0; i < num_adapters(); ++i) {
      if (scale_[i] != 0.0) merged = merged + delta_weight(i);
    }
    inference_weight_ = merged;
    inference_key_ = std::move(key);
  }
  return inference_weight_;
}

at::Tensor LoRALinearImpl::delta_weight(int64_t index) const {
  const double factor = scale_.at(index) * alpha_.at(index) / static_cast<double>(rank_.at(index));
  // Product in float32 at least, so merging a half-precision model does not lose the small delta.
  const auto compute = weight.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
  return (torch::matmul(lora_up(index).to(compute), lora_down(index).to(compute)) * factor)
      .to(weight.scalar_type());
}

void LoRALinearImpl::merge() {
  DRAFT_CHECK(!merged_, "LoRALinear: already merged");
  torch::NoGradGuard no_grad;
  for (int64_t i = 0; i < num_adapters(); ++i) weight.add_(delta_weight(i));
  merged_ = true;
}

void LoRALinearImpl::unmerge() {
  DRAFT_CHECK(merged_, "LoRALinear: not merged");
  torch::NoGradGuard no_grad;
  for (int64_t i = num_adapters() - 1; i >= 0; --i) weight.sub_(delta_weight(i));
  merged_ = false;
}

void LoRALinearImpl::set_scale(int64_t index, double scale) {
  DRAFT_CHECK(index >= 0 && index < num_adapters(), "LoRALinear: no adapter ", index);
  DRAFT_CHECK(!merged_, "LoRALinear: cannot change a scale while merged (unmerge first)");
  scale_[index] = scale;
}

torch::nn::Linear LoRALinearImpl::to_linear() const {
  torch::nn::Linear out(torch::nn::LinearOptions(in_features_, out_features_).bias(bias.defined()));
  out->to(weight.device(), weight.scalar_type());
  torch::NoGradGuard no_grad;
  out->weight.copy_(weight);
  out->weight.set_requires_grad(weight.requires_grad());
  if (bias.defined()) {
    out->bias.copy_(bias);
    out->bias.set_requires_grad(bias.requires_grad());
  }
  return out;
}

}  // namespace draft
