// UNetConfig: the UNet2DConditionModel options draft supports, read from a diffusers unet/config.json.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/config_json.h"

namespace draft {

/// The architecture of a UNet2DConditionModel (diffusers v0.25 semantics). Per-level options are stored
/// resolved to one value per down block (diffusers accepts an int or a list for them); the up path uses
/// them reversed, the mid block uses the last one.
struct UNetConfig {
  int64_t sample_size = 64;
  int64_t in_channels = 4;
  int64_t out_channels = 4;
  bool center_input_sample = false;
  bool flip_sin_to_cos = true;
  double freq_shift = 0.0;
  std::vector<std::string> down_block_types;  ///< CrossAttnDownBlock2D | DownBlock2D
  std::string mid_block_type = "UNetMidBlock2DCrossAttn";
  std::vector<std::string> up_block_types;  ///< UpBlock2D | CrossAttnUpBlock2D
  std::vector<int64_t> block_out_channels;
  std::vector<int64_t> layers_per_block;  ///< resnets per down block; up blocks have one more
  int64_t downsample_padding = 1;
  double mid_block_scale_factor = 1.0;
  double resnet_out_scale_factor = 1.0;
  std::string act_fn = "silu";
  int64_t norm_num_groups = 32;
  double norm_eps = 1e-5;
  std::vector<int64_t> cross_attention_dim;
  std::vector<int64_t> transformer_layers_per_block;
  /// diffusers' `attention_head_dim`, which for these models is the NUMBER OF HEADS per level
  /// (num_attention_heads = num_attention_heads or attention_head_dim; head dim = channels / value).
  std::vector<int64_t> attention_head_dim;
  std::vector<bool> only_cross_attention;
  bool use_linear_projection = false;
  bool upcast_attention = false;
  int64_t time_embedding_dim = 0;  ///< 0: 4 * block_out_channels[0]
  int64_t conv_in_kernel = 3;
  int64_t conv_out_kernel = 3;
  double dropout = 0.0;

  /// Reads config.json. Options draft does not implement (class/addition embeddings, dual cross
  /// attention, other activations or time embeddings, ...) throw draft::Error naming the file, option
  /// and value. The result is validated.
  static UNetConfig from_json(const ConfigJson& config);
  /// The diffusers config.json form (for writing model folders).
  nlohmann::json to_json() const;
  /// Throws draft::Error naming the key when the options are inconsistent or unsupported.
  void validate() const;

  /// Stable Diffusion 1.x (runwayml/stable-diffusion-v1-5 unet/config.json).
  static UNetConfig sd15();
  /// A tiny SD-1.x-shaped UNet for tests (the unet_sd15_tiny fixture's config).
  static UNetConfig tiny();

  /// Time embedding width: time_embedding_dim or 4 * block_out_channels[0].
  int64_t time_embed_dim() const;
};

}  // namespace draft
