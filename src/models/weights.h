// Loading weights into a module by strict name lookup: the module's registered names mirror the
// diffusers / transformers state-dict keys, so no renaming table is needed.
#pragma once

#include <string>
#include <vector>

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>
#include <torch/nn/module.h>

namespace draft {

/// What a load found. `missing`: in the module, not in the files; `unexpected`: in the files, not in the
/// module; `mismatched`: present in both with different shapes ("name: file [a, b] vs model [c, d]").
struct WeightsReport {
  std::vector<std::string> missing;
  std::vector<std::string> unexpected;
  std::vector<std::string> mismatched;
  int64_t loaded = 0;

  bool ok() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  /// A multi-part summary listing the first few keys of each kind.
  std::string summary() const;
};

struct WeightsOptions {
  c10::ScalarType dtype = c10::kFloat;  ///< compute dtype for floating tensors
  c10::Device device = c10::Device(c10::kCPU);
  std::string prefix;  ///< prepended to module names to form file keys (e.g. "text_model.")
  /// File keys that may be present without a module counterpart (suffix match), e.g. "position_ids",
  /// which older transformers checkpoints contain.
  std::vector<std::string> ignore_suffixes;
};

/// Loads every parameter and buffer of `module` from the given .safetensors files (a model may be
/// sharded) and moves the module to options.device / options.dtype. Each tensor is read from the memory
/// map, converted and swapped in on its own, so at no point are two full copies of the weights held.
/// Throws draft::Error naming `what` (e.g. the folder) with the report when any key is missing,
/// unexpected or of the wrong shape. `.ckpt`, `.bin`, `.pt`, `.pth` files are refused with a conversion hint.
WeightsReport load_weights(torch::nn::Module& module, const std::vector<std::string>& files,
                           const WeightsOptions& options, const std::string& what);

/// Writes every parameter and buffer of `module` to the safetensors file `path` (float32 on the CPU for
/// floating tensors, keys `prefix` + module name, metadata {"format": "pt"} as transformers and diffusers
/// expect), atomically. Creates the parent folder.
void save_weights(const torch::nn::Module& module, const std::string& path, const std::string& prefix = "");

/// The weights file(s) of a diffusers/transformers model folder: `model.safetensors`,
/// `diffusion_pytorch_model.safetensors`, their sharded forms (`*-00001-of-00002.safetensors`), or the
/// fp16 variants. Throws draft::Error naming the folder; a folder with only pickle files gets the
/// conversion hint.
std::vector<std::string> find_weight_files(const std::string& folder);

/// Parses "f32" | "f16" | "bf16" | "f64" (also "float32", "float16", "bfloat16", "float64").
c10::ScalarType parse_compute_dtype(const std::string& name);
/// Parses "cpu" | "cuda" | "cuda:N"; throws when CUDA is asked for and this LibTorch has none.
c10::Device parse_device(const std::string& name);

}  // namespace draft
