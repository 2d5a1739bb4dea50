// A Stable Diffusion 1.x/2.x pipeline folder in the diffusers layout, loaded: tokenizer, text encoder, UNet,
// VAE and the DDIM scheduler. The embedded model (models/fashion-sd) has the same layout and loader.
#pragma once

#include <memory>
#include <string>

#include "diffusion/ddim_scheduler.h"
#include "models/autoencoder_kl.h"
#include "models/clip_text_model.h"
#include "models/clip_tokenizer.h"
#include "models/unet_2d_condition.h"
#include "models/weights.h"

namespace draft {

/// The components of a text-to-image pipeline. Frozen parts are in eval mode with requires_grad off.
struct StableDiffusion {
  std::string folder;
  WeightsOptions weights;  ///< dtype and device everything was loaded with
  std::shared_ptr<CLIPTokenizer> tokenizer;
  CLIPTextModel text_encoder = nullptr;
  UNet2DCondition unet = nullptr;
  AutoencoderKL vae = nullptr;
  std::shared_ptr<DDIMScheduler> scheduler;

  /// 2^(number of VAE resolution levels - 1): 8 for SD.
  int64_t vae_scale_factor() const;
  /// The image size the UNet was trained for: unet sample_size * vae_scale_factor (512 for SD 1.5).
  int64_t default_image_size() const;
};

/// The image size a pipeline folder's UNet was trained for, read from its unet/ and vae/ config.json files
/// without loading weights (what default_image_size() gives once loaded).
int64_t pipeline_image_size(const std::string& folder);

/// Loads `<folder>/model_index.json` and the subfolders unet/, vae/, text_encoder/, tokenizer/, scheduler/.
/// The scheduler folder's config is used with DDIM whatever scheduler class it names (as
/// `DDIMScheduler.from_config(pipe.scheduler.config)` in diffusers). Errors name the folder or file that
/// is missing or wrong and say what was expected.
StableDiffusion load_stable_diffusion(const std::string& folder, const WeightsOptions& options);

}  // namespace draft
