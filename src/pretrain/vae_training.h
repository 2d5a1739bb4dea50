// Training the embedded model's autoencoder (`draft pretrain vae`): an AutoencoderKL on 32x32 images.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "io/config_json.h"
#include "io/config_table.h"
#include "models/autoencoder_kl.h"
#include "data/fashion_mnist.h"

namespace draft {

/// The autoencoder of the embedded model: 32x32x1 images <-> 8x8x4 latents (three levels of 16, 32 and
/// 64 channels, factor 4; narrow at full resolution, where a VAE spends most of its time).
VAEConfig fashion_vae_config();

/// Everything a VAE run depends on; written to the run folder as config.json.
struct VAETrainConfig {
  std::string data_dir = kFashionMNISTDir;  ///< folder with the IDX files
  std::string out_dir;                      ///< the run folder (required)
  int64_t epochs = 2;
  int64_t batch_size = 64;
  double lr = 1e-3;  ///< AdamW peak learning rate
  double weight_decay = 0.0;
  std::string lr_schedule = "cosine";  ///< "cosine" or "constant", after warmup_steps
  int64_t warmup_steps = 100;
  /// "l1" (sharper, as the LDM autoencoders) or "mse": the reconstruction term, a mean over pixels.
  std::string recon_loss = "l1";
  /// beta of the KL term, summed over latent elements and divided by the pixel count like the
  /// reconstruction term (LDM's KL-f4 autoencoder: 1e-6).
  double kl_weight = 1e-6;
  uint64_t seed = 0;
  int64_t limit = 0;  ///< > 0: the first `limit` train and test images only
  bool hflip = true;
  int64_t checkpoint_every = 500;
  int64_t log_every = 50;
  bool tensorboard = true;  ///< TensorBoard events files in out_dir/tensorboard/
  std::string device = "cpu";           ///< where the model trains: cpu, cuda or cuda:N
  int64_t eval_batch_size = 250;
  int64_t scaling_images = 10000;  ///< training images whose latents set scaling_factor = 1 / std
  int64_t stop_after_steps = 0;    ///< > 0: checkpoint and stop after this many steps of this invocation
  bool resume = false;             ///< a run option, not stored
  VAEConfig model = fashion_vae_config();

  /// Reads the keys present in `config` over `base`; unknown keys and wrong types throw.
  static VAETrainConfig from_json(const ConfigJson& config, const VAETrainConfig& base);
  nlohmann::json to_json() const;
  void validate() const;
};

/// Every `draft pretrain vae` key, declared once (docs/config.md is generated from this table).
const ConfigTable<VAETrainConfig>& vae_train_config_table();

/// Reconstruction quality on a set of images.
struct VAEEvaluation {
  double mse = 0.0;   ///< mean squared error of the posterior-mean reconstruction, images in [0, 1]
  double psnr = 0.0;  ///< 10 log10(1 / mse)
  double l1 = 0.0;    ///< mean absolute error, images in [0, 1]
};

/// Encodes (posterior mean) and decodes `images` ((N,C,H,W) in [0, 1]) in batches, without gradients.
VAEEvaluation evaluate_vae(AutoencoderKL& vae, const at::Tensor& images, int64_t batch_size = 250);

/// 1 / std of posterior samples of `images` ([0, 1]): the scaling_factor that gives the diffusion model
/// unit-variance latents (Rombach et al. 2022, section G, how SD's 0.18215 was chosen).
double measure_scaling_factor(AutoencoderKL& vae, const at::Tensor& images, uint64_t seed, int64_t batch_size = 250);

struct VAETrainResult {
  VAEEvaluation test;
  double scaling_factor = 0.0;
  int64_t steps = 0;
  bool stopped_early = false;
  double seconds = 0.0;
  std::string model_dir;  ///< `<out_dir>/model`: config.json + diffusion_pytorch_model.safetensors
};

/// Trains the VAE: AdamW on recon + kl_weight * KL (images scaled to [-1, 1], latents sampled with
/// the reparameterisation trick), a progress bar, metrics.jsonl, checkpoints and exact resume as
/// train_classifier; test PSNR after each epoch. On completion measures scaling_factor and writes the
/// diffusers vae/ folder to `<out_dir>/model`.
VAETrainResult train_vae(const VAETrainConfig& config);

}  // namespace draft
