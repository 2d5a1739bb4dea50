// Training the embedded text-to-image model (`draft pretrain unet`): the UNet and the CLIP text encoder
// jointly on captioned images in a frozen VAE's latent space (Rombach et al. 2022), with the DDPM
// epsilon loss (Ho et al. 2020, eq. 14), an EMA of the weights, and a diffusers pipeline folder at the end.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "diffusion/scheduler_config.h"
#include "io/config_json.h"
#include "io/config_table.h"
#include "models/clip_config.h"
#include "models/unet_config.h"
#include "data/fashion_mnist.h"

namespace draft {

/// The embedded model's UNet: 8x8x4 latents, two levels of 64 and 128 channels, cross-attention at
/// 8x8 and in the mid block, heads of 64 channels (sized so that 16 images x 50 guided steps take
/// a few seconds on 2 cores; docs/performance.md).
UNetConfig fashion_unet_config();
/// The embedded model's text encoder (vocab_size is set from the tokenizer when training starts).
CLIPTextConfig fashion_text_encoder_config();
/// Stable Diffusion's noise schedule and DDIM settings (scaled_linear 0.00085..0.012, 1000 steps).
SchedulerConfig stable_diffusion_scheduler_config();

/// Everything a text-to-image run depends on; written to the run folder as config.json.
struct TextToImageTrainConfig {
  std::string data_dir = kFashionMNISTDir;
  std::string vae_dir;  ///< a trained VAE folder (config.json with its scaling_factor + weights); required
  std::string out_dir;
  int64_t epochs = 8;
  int64_t batch_size = 128;
  double lr = 5e-4;
  double weight_decay = 0.0;
  std::string lr_schedule = "cosine";
  int64_t warmup_steps = 500;
  double grad_clip = 1.0;   ///< max global gradient norm (0: off)
  double ema_decay = 0.999;  ///< EMA decay, warmed up as min(decay, (1 + step) / (10 + step))
  double empty_caption_probability = 0.1;
  std::vector<std::string> caption_templates = CaptionOptions().templates;
  int64_t max_length = 16;  ///< tokenizer model_max_length = text encoder positions
  uint64_t seed = 0;
  int64_t limit = 0;
  bool hflip = true;  ///< latents of flipped images too (each example flipped with p = 1/2)
  int64_t checkpoint_every = 500;
  int64_t log_every = 50;
  bool tensorboard = true;  ///< TensorBoard events files in out_dir/tensorboard/
  std::string device = "cpu";           ///< where the model trains: cpu, cuda or cuda:N
  int64_t eval_every = 0;  ///< steps between sample evaluations (0: epoch ends); needs classifier_dir
  int64_t eval_per_class = 10;
  int64_t eval_steps = 50;
  double eval_guidance = 3.0;
  std::string classifier_dir = "models/fashion-classifier";  ///< "" or missing folder: no evaluation
  int64_t stop_after_steps = 0;
  bool resume = false;
  UNetConfig unet = fashion_unet_config();
  CLIPTextConfig text_encoder = fashion_text_encoder_config();
  SchedulerConfig scheduler = stable_diffusion_scheduler_config();

  static TextToImageTrainConfig from_json(const ConfigJson& config, const TextToImageTrainConfig& base);
  nlohmann::json to_json() const;
  void validate() const;
};

/// Every `draft pretrain unet` key, declared once (docs/config.md is generated from this table).
const ConfigTable<TextToImageTrainConfig>& text_to_image_train_config_table();

struct TextToImageTrainResult {
  int64_t steps = 0;
  bool stopped_early = false;
  double seconds = 0.0;
  double agreement = -1.0;  ///< classifier agreement of the last evaluation (-1: none ran)
  std::string model_dir;    ///< `<out_dir>/model`: the diffusers pipeline folder (EMA weights)
};

/// Trains as the header comment says: per step a batch in this epoch's order, latents sampled from the
/// VAE posteriors (computed once) and scaled by the VAE's scaling_factor, captions drawn from the
/// templates with empty_caption_probability empty ones, t uniform in [0, T), the noised latent
/// (DDPM eq. 4), the UNet's prediction conditioned on the text encoder's output, MSE to the scheduler's
/// target, AdamW with gradient clipping, then the EMA update. The tokenizer (word-level merges over the
/// caption words) is written to `<out_dir>/tokenizer`. Evaluations sample eval_per_class images per class
/// from the EMA weights and log the classifier's agreement; the end writes the pipeline folder.
TextToImageTrainResult train_text_to_image(const TextToImageTrainConfig& config);

}  // namespace draft
