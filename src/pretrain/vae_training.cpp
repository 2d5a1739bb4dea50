// The VAE's training run: config I/O, reconstruction metrics, the AdamW loop and the scaling factor.
#include "pretrain/vae_training.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <set>

#include <torch/torch.h>

#include "io/json_file.h"
#include "pretrain/data_order.h"
#include "pretrain/image_folder.h"
#include "pretrain/run_folder.h"
#include "pretrain/run_settings.h"
#include "pretrain/training_schedule.h"
#include "util/error.h"
#include "util/log.h"
#include "util/progress.h"

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

VAETrainConfig VAETrainConfig::from_json(const ConfigJson& c, const VAETrainConfig& base) {
  std::set<std::string> known = run_setting_keys();
  known.insert({"warmup_steps", "recon_loss", "kl_weight", "eval_batch_size", "scaling_images", "model"});
  check_known_keys(c, known);
  VAETrainConfig v = base;
  read_run_settings(c, v);
  v.warmup_steps = c.get<int64_t>("warmup_steps", v.warmup_steps);
  v.recon_loss = c.get<std::string>("recon_loss", v.recon_loss);
  v.kl_weight = c.get<double>("kl_weight", v.kl_weight);
  v.eval_batch_size = c.get<int64_t>("eval_batch_size", v.eval_batch_size);
  v.scaling_images = c.get<int64_t>("scaling_images", v.scaling_images);
  if (c.has("model")) v.model = VAEConfig::from_json(ConfigJson{c.json.at("model"), c.source + " (model)"});
  return v;
}

nlohmann::json VAETrainConfig::to_json() const {
  nlohmann::json j = write_run_settings(*this);
  j["warmup_steps"] = warmup_steps;
  j["recon_loss"] = recon_loss;
  j["kl_weight"] = kl_weight;
  j["eval_batch_size"] = eval_batch_size;
  j["scaling_images"] = scaling_images;
  j["model"] = model.to_json();
  return j;
}

void VAETrainConfig::validate() const {
  validate_run_settings(*this);
  DRAFT_CHECK(warmup_steps >= 0, "warmup_steps must be >= 0 (got ", warmup_steps, ")");
  DRAFT_CHECK(recon_loss == "l1" || recon_loss == "mse", "recon_loss '", recon_loss, "' is not supported (l1 or mse)");
  DRAFT_CHECK(std::isfinite(kl_weight) && kl_weight >= 0, "kl_weight must be >= 0 (got ", kl_weight, ")");
  DRAFT_CHECK(eval_batch_size > 0, "eval_batch_size must be positive (got ", eval_batch_size, ")");
  DRAFT_CHECK(scaling_images > 0, "scaling_images must be positive (got ", scaling_images, ")");
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

VAETrainResult train_vae(const VAETrainConfig& config_in) {
  const auto started = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(); };
  VAETrainConfig config = config_in;
  config.validate();
  const nlohmann::json resolved = config.to_json();

  const ImageDataset train = load_training_images(config.data_dir, "train", config.limit);
  const ImageDataset test = load_training_images(config.data_dir, "test", config.limit);
  const int64_t n = train.size();
  DRAFT_CHECK(n > 0 && test.size() > 0, config.data_dir, ": the train or test split is empty");
  DRAFT_CHECK(train.images.size(1) == config.model.in_channels, "model.in_channels is ", config.model.in_channels,
              " but the images in ", config.data_dir, " have ", train.images.size(1), " channel(s)");
  DRAFT_CHECK(train.images.size(2) == config.model.sample_size, "model.sample_size is ", config.model.sample_size,
              " but the images are ", train.images.size(2), " pixels wide");

  RunFolder run(config.out_dir);
  DRAFT_CHECK(config.resume || !run.has_checkpoint(), run.checkpoint_path(),
              " exists: pass --resume to continue that run, or choose another run folder");
  const bool resuming = config.resume && run.has_checkpoint();
  const int64_t steps_per_epoch = (n + config.batch_size - 1) / config.batch_size;
  const int64_t total_steps = steps_per_epoch * config.epochs;

  torch::manual_seed(config.seed);
  AutoencoderKL vae(config.model);
  vae->train();
  torch::optim::AdamW optimizer(vae->parameters(),
                                torch::optim::AdamWOptions(config.lr).weight_decay(config.weight_decay));
  const std::vector<CheckpointModule> modules = {{"model.", vae.ptr().get()}};

  int64_t step = 0;
  if (resuming) {
    const CheckpointInfo info = read_checkpoint_info(run.checkpoint_path());
    std::vector<std::string> keys = {"batch_size", "lr",        "weight_decay", "lr_schedule", "warmup_steps",
                                     "recon_loss", "kl_weight", "seed",         "limit",       "hflip", "model"};
    if (config.lr_schedule == "cosine") keys.push_back("epochs");
    check_resumable(info.config, resolved, keys, run.dir(), run.checkpoint_path());
    load_checkpoint(run.checkpoint_path(), modules, &optimizer);
    step = info.progress.step;
    DRAFT_CHECK(step <= total_steps, run.checkpoint_path(), " is at step ", step, ", beyond the run's ", total_steps);
    run.truncate_metrics_after(step);
    DRAFT_LOG_INFO("resuming {} at step {} of {}", run.dir(), step, total_steps);
  } else {
    std::filesystem::remove(run.metrics_path());
  }
  run.write_config(resolved);
  DRAFT_LOG_INFO("training the VAE on {} images, {} epochs of {} steps, batch {}", n, config.epochs, steps_per_epoch,
                 config.batch_size);

  ProgressBar bar(total_steps, "vae");
  if (step > 0) bar.update(step);
  at::Tensor order;
  int64_t order_epoch = -1, interval_steps = 0, steps_this_run = 0;
  double interval_recon = 0.0, interval_kl = 0.0, shown_recon = std::nan("");
  VAEEvaluation last_eval;
  int64_t last_eval_step = -1;
  bool stopped = false;
  auto log_eval = [&](const VAEEvaluation& e) {
    run.append_metrics({{"event", "eval"}, {"step", step}, {"epoch", double(step) / double(steps_per_epoch)},
                        {"split", "test"}, {"mse", e.mse}, {"l1", e.l1}, {"psnr", e.psnr}});
  };

  while (step < total_steps && !stopped) {
    const int64_t epoch = step / steps_per_epoch;
    if (epoch != order_epoch) {
      order = epoch_permutation(n, config.seed, epoch);
      order_epoch = epoch;
    }
    const int64_t begin = (step % steps_per_epoch) * config.batch_size;
    const at::Tensor index = order.narrow(0, begin, std::min(config.batch_size, n - begin));
    at::Tensor x = train.images.index_select(0, index);
    if (config.hflip) x = random_hflip(x, derive_seed(config.seed, RandomStream::kAugment, static_cast<uint64_t>(step)));
    x = x * 2.0 - 1.0;

    // loss = recon(decode(z), x) + kl_weight * KL / D, z = mean + std * noise (reparameterisation).
    const double lr = scheduled_learning_rate(config.lr, config.lr_schedule, step, total_steps, config.warmup_steps);
    set_learning_rate(optimizer, lr);
    optimizer.zero_grad();
    const DiagonalGaussian posterior = vae->encode(x);
    at::Generator noise_gen = cpu_generator(derive_seed(config.seed, RandomStream::kNoise, static_cast<uint64_t>(step)));
    const at::Tensor z = posterior.sample(torch::randn(posterior.mean.sizes(), noise_gen));
    const at::Tensor recon = vae->decode(z);
    const at::Tensor recon_term =
        config.recon_loss == "l1" ? (recon - x).abs().mean() : (recon - x).square().mean();
    const double pixels = static_cast<double>(x[0].numel());
    const at::Tensor kl_term = kl_per_image(posterior).mean() / pixels;
    const at::Tensor loss = recon_term + config.kl_weight * kl_term;
    loss.backward();
    optimizer.step();
    ++step;
    ++steps_this_run;

    const double recon_value = recon_term.item<double>();
    DRAFT_CHECK(std::isfinite(recon_value), "VAE training diverged at step ", step,
                " (non-finite loss): lower --lr or resume from the last checkpoint");
    shown_recon = std::isnan(shown_recon) ? recon_value : 0.95 * shown_recon + 0.05 * recon_value;
    interval_recon += recon_value;
    interval_kl += kl_term.item<double>() * pixels;
    ++interval_steps;
    bar.update(step, {{config.recon_loss, shown_recon}});
    const bool epoch_end = step % steps_per_epoch == 0;
    if (step % config.log_every == 0 || epoch_end) {
      run.append_metrics({{"event", "train"}, {"step", step}, {"epoch", double(step) / double(steps_per_epoch)},
                          {"recon", interval_recon / double(interval_steps)},
                          {"kl", interval_kl / double(interval_steps)}, {"lr", lr}, {"elapsed_s", elapsed()}});
      interval_recon = interval_kl = 0.0;
      interval_steps = 0;
    }
    if (epoch_end) {
      last_eval = evaluate_vae(vae, test.images, config.eval_batch_size);
      last_eval_step = step;
      log_eval(last_eval);
      DRAFT_LOG_INFO("epoch {}: test PSNR {:.2f} dB (MSE {:.5f})", step / steps_per_epoch, last_eval.psnr, last_eval.mse);
    }
    stopped = config.stop_after_steps > 0 && steps_this_run >= config.stop_after_steps && step < total_steps;
    if (epoch_end || stopped || step == total_steps ||
        (config.checkpoint_every > 0 && step % config.checkpoint_every == 0)) {
      save_checkpoint(run.checkpoint_path(), modules, &optimizer, {step, step / steps_per_epoch, config.seed},
                      resolved);
    }
  }
  bar.finish();

  VAETrainResult result;
  result.steps = step;
  result.stopped_early = stopped;
  if (!stopped) {
    if (last_eval_step != step) {
      last_eval = evaluate_vae(vae, test.images, config.eval_batch_size);
      log_eval(last_eval);
    }
    const int64_t m = std::min(config.scaling_images, n);
    result.scaling_factor =
        measure_scaling_factor(vae, train.images.narrow(0, 0, m), derive_seed(config.seed, RandomStream::kNoise, ~0ULL),
                               config.eval_batch_size);
    VAEConfig shipped = vae->config();
    shipped.scaling_factor = result.scaling_factor;
    result.model_dir = run.file("model");
    save_weights(*vae, result.model_dir + "/diffusion_pytorch_model.safetensors");
    write_json_file(result.model_dir + "/config.json", shipped.to_json());
    result.test = last_eval;
    run.append_metrics({{"event", "final"}, {"step", step}, {"psnr", last_eval.psnr}, {"mse", last_eval.mse},
                        {"scaling_factor", result.scaling_factor}, {"model", result.model_dir}});
  }
  result.seconds = elapsed();
  return result;
}

}  // namespace draft
