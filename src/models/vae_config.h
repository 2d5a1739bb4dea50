// VAEConfig: the AutoencoderKL options draft supports, read from a diffusers vae/config.json.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/config_json.h"

namespace draft {

/// The architecture of an AutoencoderKL (diffusers v0.25): encoder DownEncoderBlock2D levels, a
/// mid block with attention, decoder UpDecoderBlock2D levels (layers_per_block + 1 resnets each).
struct VAEConfig {
  int64_t in_channels = 3;
  int64_t out_channels = 3;
  std::vector<std::string> down_block_types;  ///< DownEncoderBlock2D only
  std::vector<std::string> up_block_types;    ///< UpDecoderBlock2D only
  std::vector<int64_t> block_out_channels;
  int64_t layers_per_block = 1;
  std::string act_fn = "silu";
  int64_t latent_channels = 4;
  int64_t norm_num_groups = 32;
  int64_t sample_size = 32;
  /// Latents are multiplied by this after encoding and divided by it before decoding (0.18215 for SD).
  double scaling_factor = 0.18215;

  /// Reads config.json; unsupported options (shift_factor, latents_mean, no quant convs, ...) throw
  /// draft::Error naming the file, option and value. The result is validated.
  static VAEConfig from_json(const ConfigJson& config);
  /// The diffusers config.json form.
  nlohmann::json to_json() const;
  /// Throws draft::Error naming the key when the options are inconsistent or unsupported.
  void validate() const;

  /// Stable Diffusion 1.x / 2.x VAE (stable-diffusion-v1-5 vae/config.json).
  static VAEConfig sd15();
  /// The tiny VAE of the vae_tiny fixture (2 levels, spatial factor 2).
  static VAEConfig tiny();
};

}  // namespace draft
