// CLIPTextConfig / CLIPVisionConfig: transformers' CLIP tower configs, read from a tower's own
// config.json or from the "text_config" / "vision_config" object of a full CLIPModel config.json.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "io/config_json.h"
#include "nn/clip_layers.h"

namespace draft {

/// transformers' CLIPTextConfig; defaults are transformers v4.36's (openai ViT-B/32 text tower).
struct CLIPTextConfig {
  int64_t vocab_size = 49408;
  int64_t hidden_size = 512;
  int64_t intermediate_size = 2048;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 8;
  int64_t max_position_embeddings = 77;
  int64_t projection_dim = 512;
  std::string hidden_act = "quick_gelu";
  double layer_norm_eps = 1e-5;
  int64_t eos_token_id = 49407;  ///< 2 in old openai configs: pooling then takes argmax(ids)
  int64_t bos_token_id = 49406;
  int64_t pad_token_id = 1;

  /// Reads a CLIPTextModel config (model_type "clip_text_model") or a CLIPModel config (model_type
  /// "clip"), whose "text_config" object is used. As transformers does, a legacy "text_config_dict"
  /// (completed with defaults) takes precedence over "text_config", and for a CLIPModel config the
  /// top-level "projection_dim" (the size of its text_projection) is used. Missing keys get defaults.
  static CLIPTextConfig from_json(const ConfigJson& config);
  /// The config.json transformers writes for a CLIPTextModel (model_type "clip_text_model").
  nlohmann::json to_json() const;
  /// Throws draft::Error naming the key when a value is out of range or unsupported.
  void validate() const;
  /// The encoder sizes (validates first).
  CLIPEncoderOptions encoder_options() const;
};

/// transformers' CLIPVisionConfig; defaults are transformers v4.36's (openai ViT-B/32 vision tower).
struct CLIPVisionConfig {
  int64_t hidden_size = 768;
  int64_t intermediate_size = 3072;
  int64_t projection_dim = 512;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t num_channels = 3;
  int64_t image_size = 224;
  int64_t patch_size = 32;
  std::string hidden_act = "quick_gelu";
  double layer_norm_eps = 1e-5;

  /// Reads a CLIPVisionModel(WithProjection) config (model_type "clip_vision_model") or a CLIPModel
  /// config's "vision_config" (legacy "vision_config_dict" and top-level "projection_dim" as for text).
  static CLIPVisionConfig from_json(const ConfigJson& config);
  void validate() const;
  CLIPEncoderOptions encoder_options() const;
  /// (image_size / patch_size)^2 patches plus the class token.
  int64_t num_positions() const { return (image_size / patch_size) * (image_size / patch_size) + 1; }
};

}  // namespace draft
