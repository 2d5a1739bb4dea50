// LoRA files: writing and reading the diffusers/PEFT layout (pytorch_lora_weights.safetensors, lora_A /
// lora_B) and the kohya layout (lora_unet_..., lora_down / lora_up / alpha), with key-name mapping.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "lora/lora.h"
#include "models/unet_config.h"

namespace draft {

/// The file name diffusers' save_lora_weights writes and load_lora_weights looks for in a folder.
inline constexpr const char* kLoRAWeightName = "pytorch_lora_weights.safetensors";

enum class LoRAFormat {
  /// diffusers >= 0.21 with PEFT: "unet.<module>.lora_A.weight" (A, (r, in)) and ".lora_B.weight"
  /// (B, (out, r)); rank/alpha in the safetensors metadata "lora_adapter_metadata" as JSON
  /// {"unet.r": r, "unet.lora_alpha": alpha, ...} (files without it: alpha = rank, as diffusers assumes).
  kDiffusers,
  /// kohya sd-scripts: "lora_unet_<module with '.' -> '_'>.lora_down.weight" (A), ".lora_up.weight"
  /// (B) and ".alpha" (a float32 scalar).
  kKohya,
};

/// "diffusers" (also "peft") or "kohya"; throws draft::Error naming --lora-format otherwise.
LoRAFormat parse_lora_format(const std::string& name);
const char* lora_format_name(LoRAFormat format);

/// One layer's adapter as stored in a file.
struct LoRAFileLayer {
  std::string module;  ///< diffusers module name, e.g. down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q
  at::Tensor down;     ///< A, (rank, in)
  at::Tensor up;       ///< B, (out, rank)
  double alpha = 0;
  int64_t rank() const { return down.size(0); }
};

/// A LoRA file read and resolved against a UNet.
struct LoRAFile {
  std::string path;
  LoRAFormat format = LoRAFormat::kDiffusers;
  std::vector<LoRAFileLayer> layers;  ///< in the UNet's module order
  std::optional<LoRAConfig> config;   ///< the config draft wrote into the metadata, if any
};

/// "lora_unet_" + module with dots replaced by underscores (kohya's naming for SD 1.x/2.x UNets, which
/// use diffusers module names).
std::string kohya_lora_name(const std::string& module);
/// The original LDM (CompVis) name of a UNet attention-path module ("down_blocks.0.attentions.1.X" ->
/// "input_blocks.2.1.X", "mid_block.attentions.0.X" -> "middle_block.1.X", "up_blocks.1.attentions.2.X"
/// -> "output_blocks.5.1.X" for SD 1.x), or "" for modules outside the attention blocks.
std::string ldm_module_name(const std::string& module, const UNetConfig& config);

/// Writes `layers` to `path` in `format` (float32), atomically. `config` goes into the metadata so rank,
/// alpha and targets round-trip. Throws draft::Error naming the file.
void save_lora_file(const std::string& path, const std::vector<LoRAFileLayer>& layers, LoRAFormat format,
                    const LoRAConfig& config);
/// Writes a network's adapters (see save_lora_file).
void save_lora(const LoRANetwork& network, const std::string& path, LoRAFormat format);

/// Reads a LoRA file (or a folder holding pytorch_lora_weights.safetensors), detecting the layout:
/// diffusers/PEFT (lora_A/lora_B), older diffusers attention processors (processor.to_q_lora.down), or
/// kohya (lora_unet_..., with diffusers or LDM module names). Every key must name a LoRA-capable layer
/// of `unet` with matching shapes; otherwise draft::Error names the key and the file.
LoRAFile read_lora_file(const std::string& path, UNet2DCondition& unet);

}  // namespace draft
