// The VAE's training run: config I/O, reconstruction metrics, the AdamW loop and the scaling factor.
#include "pretrain/vae_training.h"

#include <chrono>
#include <cmath>
#include <memory>

#include <torch/torch.h>

#include "data/augmentation.h"
#include "data/image_folder.h"
#include "io/json_file.h"
#include "pretrain/recipe_run.h"
#include "train/lr_schedule.h"
#include "util/error.h"
#include "util/log.h"
#include "util/progress.h"
#include "util/seeds.h"

namespace draft {
namespace {

// KL(N(mean, var) || N(0, I)) summed over each image's latent elements (Kingma & Welling 2014, appendix B).
at::Tensor kl_per_image(const DiagonalGaussian& posterior) {
  const at::Tensor kl = 0.5 * (posterior.mean.square() + posterior.logvar.exp() - 1.0 - posterior.logvar);
  return kl.flatten(1).sum(1);
}

}  // namespace

VAEConfig fashion_vae_config() {
  VAEConfig v;
  v.in_channels = 1;
  v.out_channels = 1;
  v.block_out_channels = {16, 32, 64};
  v.down_block_types = {"DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"};
  v.up_block_types = {"UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"};
  v.layers_per_block = 1;
  v.latent_channels = 4;
  v.norm_num_groups = 8;
  v.sample_size = 32;
  v.scaling_factor = 1.0;  // measured after training
  return v;
}

const ConfigTable<VAETrainConfig>& vae_train_config_table() {
  static const ConfigTable<VAETrainConfig> table = [] {
    ConfigTable<VAETrainConfig> t;
    add_run_settings(t);
    t.add("warmup_steps", "--warmup-steps", "linear learning-rate warm-up", DRAFT_MEMBER(warmup_steps),
          check_non_negative());
    t.add("recon_loss", "--recon-loss", "reconstruction term: l1 (sharper, as the LDM autoencoders) or mse",
          DRAFT_MEMBER(recon_loss), check_one_of({"l1", "mse"}));
    t.add("kl_weight", "--kl-weight", "weight of the KL term, per pixel like the reconstruction term (LDM: 1e-6)",
          DRAFT_MEMBER(kl_weight), check_non_negative());
    t.add("eval_batch_size", "--eval-batch-size", "images per evaluation batch", DRAFT_MEMBER(eval_batch_size),
          check_at_least(1), true);
    t.add("scaling_images", "--scaling-images", "training images whose latents set scaling_factor = 1 / std",
          DRAFT_MEMBER(scaling_images), check_at_least(1));
    t.add_object("model", "the autoencoder's architecture (a diffusers AutoencoderKL config.json)",
                 [](const VAETrainConfig& c) { return c.model.to_json(); },
                 [](VAETrainConfig& c, const nlohmann::json& j) { c.model = VAEConfig::from_json(ConfigJson{j, "model"}); });
    return t;
  }();
  return table;
}

VAETrainConfig VAETrainConfig::from_json(const ConfigJson& c, const VAETrainConfig& base) {
  VAETrainConfig v = base;
  vae_train_config_table().read(c.json, c.source, v);
  return v;
}

nlohmann::json VAETrainConfig::to_json() const { return vae_train_config_table().to_json(*this); }

void VAETrainConfig::validate() const {
  vae_train_config_table().validate(*this);
  try {
    model.validate();
  } catch (const Error& e) {
    fail("model.", e.what());
  }
  DRAFT_CHECK(model.in_channels == model.out_channels, "model.in_channels (", model.in_channels,
              ") and model.out_channels (", model.out_channels, ") must be equal for an autoencoder");
}

VAEEvaluation evaluate_vae(AutoencoderKL& vae, const at::Tensor& images, int64_t batch_size) {
  torch::NoGradGuard no_grad;
  const bool was_training = vae->is_training();
  vae->eval();
  const c10::Device device = vae->quant_conv->weight.device();
  double squared = 0.0, absolute = 0.0;
  const int64_t n = images.size(0);
  for (int64_t begin = 0; begin < n; begin += batch_size) {
    const at::Tensor x = images.narrow(0, begin, std::min(batch_size, n - begin)).to(device);
    const at::Tensor recon = (vae->decode(vae->encode(x * 2.0 - 1.0).mean) / 2.0 + 0.5).clamp(0.0, 1.0);
    squared += (recon - x).square().sum().item<double>();
    absolute += (recon - x).abs().sum().item<double>();
  }
  vae->train(was_training);
  VAEEvaluation e;
  const double count = static_cast<double>(images.numel());
  e.mse = squared / count;
  e.l1 = absolute / count;
  e.psnr = 10.0 * std::log10(1.0 / std::max(e.mse, 1e-12));
  return e;
}

double measure_scaling_factor(AutoencoderKL& vae, const at::Tensor& images, uint64_t seed, int64_t batch_size) {
  torch::NoGradGuard no_grad;
  const bool was_training = vae->is_training();
  vae->eval();
  const c10::Device device = vae->quant_conv->weight.device();
  at::Generator gen = cpu_generator(seed);
  std::vector<at::Tensor> latents;
  for (int64_t begin = 0; begin < images.size(0); begin += batch_size) {
    const at::Tensor x = images.narrow(0, begin, std::min(batch_size, images.size(0) - begin)).to(device);
    const DiagonalGaussian posterior = vae->encode(x * 2.0 - 1.0);
    const at::Tensor noise = torch::randn(posterior.mean.sizes(), gen).to(device);
    latents.push_back(posterior.sample(noise).cpu());
  }
  vae->train(was_training);
  const double std = torch::cat(latents).std().item<double>();
  DRAFT_CHECK(std::isfinite(std) && std > 0, "the latents of the trained VAE have std ", std,
              ": the run diverged; retrain with a lower --lr");
  return 1.0 / std;
}

namespace {

// One VAE run: its data and model besides what every recipe holds (train_vae drives it).
struct VAERun : RecipeRun<VAETrainConfig> {
  ImageDataset train, test;
  AutoencoderKL vae{nullptr};
};

void set_up(VAERun& r) {
  const VAETrainConfig& config = r.config;
  config.validate();
  r.train = load_training_images(config.data_dir, "train", config.limit);
  r.test = load_training_images(config.data_dir, "test", config.limit);
  DRAFT_CHECK(r.train.size() > 0 && r.test.size() > 0, config.data_dir, ": the train or test split is empty");
  DRAFT_CHECK(r.train.images.size(1) == config.model.in_channels, "model.in_channels is ", config.model.in_channels,
              " but the images in ", config.data_dir, " have ", r.train.images.size(1), " channel(s)");
  DRAFT_CHECK(r.train.images.size(2) == config.model.sample_size, "model.sample_size is ", config.model.sample_size,
              " but the images are ", r.train.images.size(2), " pixels wide");
  const c10::Device device = r.device();  // checked before the run folder is made
  r.open(vae_train_config_table());
  torch::manual_seed(config.seed);
  r.vae = AutoencoderKL(config.model);  // drawn on the CPU, then moved: the same weights on any device
  r.vae->to(device);
  r.vae->train();
  r.begin(r.vae->parameters(), {{"model.", r.vae.ptr().get()}}, r.train.size());
  DRAFT_LOG_INFO("training the VAE on {} images, {} epochs of {} steps, batch {}", r.train.size(), config.epochs,
                 r.loop->steps_per_epoch(), config.batch_size);
}

// loss = recon(decode(z), x) + kl_weight * KL / D, z = mean + std * noise (the reparameterisation trick).
void train_step(VAERun& r, IntervalMeans& interval, double& shown_recon) {
  const VAETrainConfig& config = r.config;
  const int64_t step = r.loop->step();
  at::Tensor x = r.train.images.index_select(0, r.loop->batch());
  if (config.hflip) x = random_hflip(x, derive_seed(config.seed, RandomStream::kAugment, step));
  const c10::Device device = r.vae->quant_conv->weight.device();
  x = x.to(device) * 2.0 - 1.0;
  const double lr = scheduled_learning_rate(config.lr, config.lr_schedule, step, r.loop->total_steps(),
                                            config.warmup_steps);
  set_learning_rate(*r.optimizer, lr);
  r.optimizer->zero_grad();
  const DiagonalGaussian posterior = r.vae->encode(x);
  at::Generator noise_gen = cpu_generator(derive_seed(config.seed, RandomStream::kNoise, step));
  const at::Tensor recon =
      r.vae->decode(posterior.sample(torch::randn(posterior.mean.sizes(), noise_gen).to(device)));
  const at::Tensor recon_term = config.recon_loss == "l1" ? (recon - x).abs().mean() : (recon - x).square().mean();
  const double pixels = static_cast<double>(x[0].numel());
  const at::Tensor kl_term = kl_per_image(posterior).mean() / pixels;
  (recon_term + config.kl_weight * kl_term).backward();
  r.optimizer->step();
  r.loop->advance();

  const double recon_value = recon_term.item<double>();
  DRAFT_CHECK(std::isfinite(recon_value), "VAE training diverged at step ", r.loop->step(),
              " (non-finite loss): lower --lr or resume from the last checkpoint");
  shown_recon = std::isnan(shown_recon) ? recon_value : 0.95 * shown_recon + 0.05 * recon_value;
  interval.add("recon", recon_value);
  interval.add("kl", kl_term.item<double>() * pixels);
  r.log_train(lr, interval);
}

VAEEvaluation evaluate_and_log(VAERun& r) {
  const VAEEvaluation e = evaluate_vae(r.vae, r.test.images, r.config.eval_batch_size);
  r.run->log({{"event", "eval"}, {"step", r.loop->step()}, {"epoch", r.loop->epoch_progress()}, {"split", "test"},
              {"mse", e.mse}, {"l1", e.l1}, {"psnr", e.psnr}});
  return e;
}

// The end of a finished run: the scaling factor, and the diffusers vae/ folder.
void write_model(VAERun& r, VAETrainResult& result) {
  const int64_t m = std::min(r.config.scaling_images, r.train.size());
  result.scaling_factor = measure_scaling_factor(r.vae, r.train.images.narrow(0, 0, m),
                                                 derive_seed(r.config.seed, RandomStream::kNoise, -1),
                                                 r.config.eval_batch_size);
  VAEConfig shipped = r.vae->config();
  shipped.scaling_factor = result.scaling_factor;
  result.model_dir = r.run->folder().file("model");
  save_weights(*r.vae, result.model_dir + "/diffusion_pytorch_model.safetensors");
  write_json_file(result.model_dir + "/config.json", shipped.to_json());
}

}  // namespace

VAETrainResult train_vae(const VAETrainConfig& config_in) {
  VAERun r;
  r.config = config_in;
  set_up(r);
  ProgressBar bar(r.loop->total_steps(), "vae");
  if (r.loop->step() > 0) bar.update(r.loop->step());
  IntervalMeans interval;
  double shown_recon = std::nan("");
  VAEEvaluation last_eval;
  int64_t last_eval_step = -1;
  while (r.loop->running()) {
    train_step(r, interval, shown_recon);
    bar.update(r.loop->step(), {{r.config.recon_loss, shown_recon}});
    if (r.loop->epoch_end()) {
      last_eval = evaluate_and_log(r);
      last_eval_step = r.loop->step();
      DRAFT_LOG_INFO("epoch {}: test PSNR {:.2f} dB (MSE {:.5f})", r.loop->progress().epoch, last_eval.psnr,
                     last_eval.mse);
    }
    r.save_if_due();
  }
  bar.finish();

  VAETrainResult result;
  result.steps = r.loop->step();
  result.stopped_early = r.loop->stopped();
  if (!result.stopped_early) {
    if (last_eval_step != result.steps) last_eval = evaluate_and_log(r);
    write_model(r, result);
    result.test = last_eval;
    r.run->log({{"event", "final"}, {"step", result.steps}, {"psnr", last_eval.psnr}, {"mse", last_eval.mse},
                {"scaling_factor", result.scaling_factor}, {"model", result.model_dir}});
  }
  result.seconds = r.elapsed();
  return result;
}

}  // namespace draft
