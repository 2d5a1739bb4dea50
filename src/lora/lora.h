// LoRA on the UNet: the config (rank, alpha, targets), injection of LoRALinear adapters by module-name
// pattern, the resulting network of trainable tensors, and removing adapters (optionally merged).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>
#include <torch/nn/modules/container/any.h>

#include "io/config_table.h"
#include "models/unet_2d_condition.h"
#include "lora/lora_linear.h"

namespace draft {

/// What to adapt and how. JSON keys (under "lora" in a run config): rank, alpha, targets, text_encoder.
struct LoRAConfig {
  int64_t rank = 4;
  /// alpha of the alpha / r scaling; 0 means alpha = rank (scaling 1, diffusers' default).
  double alpha = 0.0;
  /// Module-name patterns: a UNet layer is adapted when its diffusers name equals a pattern or ends with
  /// "." + pattern (PEFT's target_modules rule). Supported layers: the attention projections to_q, to_k,
  /// to_v, to_out.0 and the feed-forward Linears ff.net.0.proj, ff.net.2.
  std::vector<std::string> targets = {"to_q", "to_k", "to_v", "to_out.0"};
  /// LoRA on the text encoder (not supported yet: validate() refuses it).
  bool text_encoder = false;

  /// alpha, or rank when alpha is 0.
  double effective_alpha() const { return alpha > 0 ? alpha : static_cast<double>(rank); }
  nlohmann::json to_json() const;
  /// Reads the keys present (others keep their defaults) and validates; unknown keys and wrong types throw,
  /// naming `source` and the key as lora.<key>.
  static LoRAConfig from_json(const nlohmann::json& json, const std::string& source = "lora config");
  /// Throws draft::Error naming the key ("lora.rank must be >= 1").
  void validate() const;
  /// The feed-forward targets, for adding to `targets`.
  static std::vector<std::string> feed_forward_targets() { return {"ff.net.0.proj", "ff.net.2"}; }
};

/// The `lora.*` keys, declared once (docs/config.md is generated from this table).
const ConfigTable<LoRAConfig>& lora_config_table();

/// A UNet Linear that can carry LoRA: its diffusers module name and the hooks of its owning module
/// (Attention::replace_projection / FeedForward::replace_projection).
struct LoRASlot {
  std::string name;
  std::function<const torch::nn::AnyModule&()> get;
  std::function<void(torch::nn::AnyModule)> set;
};

/// Every LoRA-capable layer of the UNet in module order (attention projections, feed-forward Linears).
std::vector<LoRASlot> lora_slots(UNet2DCondition& unet);

/// The LoRALinear at `slot`, wrapping the slot's Linear first if it is not wrapped yet.
LoRALinear ensure_lora_linear(const LoRASlot& slot);

/// One adapted layer: its diffusers module name, the wrapper, and which of its adapters this is.
struct LoRALayer {
  std::string name;
  LoRALinear module{nullptr};
  int64_t adapter = 0;

  at::Tensor down() const { return module->lora_down(adapter); }  ///< A (rank, in)
  at::Tensor up() const { return module->lora_up(adapter); }      ///< B (out, rank)
};

/// The adapters inject_lora added: what an optimizer trains and what a LoRA file stores.
struct LoRANetwork {
  LoRAConfig config;
  std::vector<LoRALayer> layers;

  /// A and B of every layer, in layer order (A first); they require grad.
  std::vector<at::Tensor> parameters() const;
  /// ("<module>.lora_A.weight", A), ("<module>.lora_B.weight", B) per layer.
  std::vector<std::pair<std::string, at::Tensor>> named_parameters() const;
  int64_t parameter_count() const;
  /// Sets every layer's scale for this adapter.
  void set_scale(double scale);
};

/// Freezes every UNet parameter and adds a fresh adapter (B = 0: the UNet's output is unchanged) to each
/// layer matching config.targets. Throws draft::Error naming the key when the config is invalid, when a
/// target names an unsupported kind of layer ("lora.targets: conv targets are not supported yet") or
/// matches no layer.
LoRANetwork inject_lora(UNet2DCondition& unet, const LoRAConfig& config);

/// inject_lora with the adapters' A drawn from LibTorch's default CPU generator seeded with `seed`, its
/// state restored after: the same seed gives the same adapter (a run and its resumed twin, `draft probe`
/// and a fine-tuning run with the same seed) whatever was drawn before.
LoRANetwork inject_lora(UNet2DCondition& unet, const LoRAConfig& config, uint64_t seed);

/// Every LoRALinear currently in the UNet, with its module name.
std::vector<std::pair<std::string, LoRALinear>> lora_modules(UNet2DCondition& unet);

/// Puts plain Linears back in place of every LoRALinear: with merge, holding W + the adapters' deltas
/// (a merged model, whose state dict is the base's), without, the base W. Returns the layer count.
int64_t remove_lora(UNet2DCondition& unet, bool merge);

}  // namespace draft
