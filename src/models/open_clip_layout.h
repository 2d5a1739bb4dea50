// The OpenCLIP / OpenAI CLIP checkpoint layout (`visual.conv1.weight`, `visual.transformer.resblocks.N
// .attn.in_proj_weight`, `visual.proj`, `token_embedding.weight`, `ln_final`, `text_projection`, ...):
// detection, the model config (from open_clip_config.json or the tensor shapes) and the renaming into
// transformers' CLIPModel keys. HPSv2 and the original OpenAI / LAION checkpoints use this layout.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "io/config_json.h"
#include "models/clip_model.h"

namespace draft {

/// True when `keys` hold an OpenCLIP / OpenAI state dict (a "visual.conv1.weight" key, possibly under
/// a "module." prefix as DistributedDataParallel saves it).
bool is_open_clip_layout(const std::vector<std::string>& keys);

/// The prefix in front of "visual.conv1.weight" ("" or e.g. "module."); throws when there is none.
std::string open_clip_prefix(const std::vector<std::string>& keys);

/// How one transformers tensor is made from an OpenCLIP one.
struct OpenCLIPSource {
  enum class Op {
    kCopy,       ///< same tensor
    kTranspose,  ///< `proj` / `text_projection` are (width, embed) matrices used as x @ P; Linear wants P^T
    kChunk,      ///< `in_proj_weight` / `in_proj_bias` stack q, k, v along dim 0; take part `chunk`
  };
  std::string key;  ///< the OpenCLIP key, prefix included
  Op op = Op::kCopy;
  int64_t chunk = 0;

  /// The transformers tensor from the OpenCLIP one (contiguous).
  at::Tensor apply(const at::Tensor& source) const;
  /// The shape apply() gives for a source of shape `shape`.
  std::vector<int64_t> result_shape(const std::vector<int64_t>& shape) const;
};

/// Where each transformers CLIPModel key of a model with `config` comes from (layer counts from the
/// config; `prefix` as open_clip_prefix). Keys: text_model.*, vision_model.*, visual_projection.weight,
/// text_projection.weight, logit_scale.
std::map<std::string, OpenCLIPSource> open_clip_sources(const CLIPModelConfig& config, const std::string& prefix);

/// OpenCLIP / OpenAI keys that have no transformers counterpart and are skipped when loading: the causal
/// `attn_mask` buffer and the scalar `input_resolution`, `context_length`, `vocab_size` entries of
/// OpenAI's checkpoints. `key` is given without the prefix.
bool is_ignored_open_clip_key(const std::string& key);

/// The config from OpenCLIP's model-config JSON: {embed_dim, quick_gelu?, vision_cfg{image_size, layers,
/// width, head_width, mlp_ratio, patch_size}, text_cfg{context_length, vocab_size, width, heads, layers,
/// mlp_ratio}}, or the same wrapped in "model_cfg" (the open_clip_config.json of Hugging Face repos).
/// Missing keys get OpenCLIP's defaults (head_width 64, mlp_ratio 4, LayerNorm eps 1e-5, exact GELU
/// unless quick_gelu). Options OpenCLIP has but this port lacks (layer scale, attentional pooling, ...)
/// are an error naming the key.
CLIPModelConfig open_clip_config_from_json(const ConfigJson& config);

/// The config inferred from tensor shapes (key without prefix -> shape), for checkpoints without a
/// config file. Sizes, layer counts, patch and image size are read off the shapes; the attention head
/// count is not visible in them: the vision tower takes OpenCLIP's head width for its known widths
/// (1280 -> 80 for ViT-H-14, 1408 -> 88 for ViT-g-14, 1664 -> 104 for ViT-bigG-14, else 64) and the text
/// tower width / 64. The activation is not visible either: exact GELU (OpenCLIP's LAION models, HPSv2)
/// unless the OpenAI marker entries (`input_resolution`, ...) are present, which means quick_gelu.
/// `source` names the file in errors. Write an open_clip_config.json when a model differs.
CLIPModelConfig infer_open_clip_config(const std::map<std::string, std::vector<int64_t>>& shapes,
                                       const std::string& source);

/// Converts a whole in-memory OpenCLIP state dict (any prefix) to transformers CLIPModel keys. Throws
/// naming `source` when a tensor is missing or an unknown key is left over (shapes are checked when the
/// result is loaded into a CLIPModel).
std::map<std::string, at::Tensor> convert_open_clip_state_dict(const std::map<std::string, at::Tensor>& state,
                                                               const CLIPModelConfig& config,
                                                               const std::string& source = "state dict");

}  // namespace draft
