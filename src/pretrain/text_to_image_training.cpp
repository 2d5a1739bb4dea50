// The text-to-image training run: config I/O, latents of the dataset, the epsilon-loss loop with EMA,
// evaluations by the classifier, and the pipeline folder.
#include "pretrain/text_to_image_training.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>
#include <random>
#include <set>

#include <torch/torch.h>

#include "diffusion/ddpm_scheduler.h"
#include "diffusion/pipeline_folder.h"
#include "models/autoencoder_kl.h"
#include "models/clip_text_model.h"
#include "models/clip_tokenizer.h"
#include "models/clip_vocabulary.h"
#include "models/fashion_classifier.h"
#include "models/unet_2d_condition.h"
#include "pretrain/data_order.h"
#include "pretrain/ema.h"
#include "pretrain/image_folder.h"
#include "pretrain/run_folder.h"
#include "pretrain/run_settings.h"
#include "pretrain/sample_quality.h"
#include "pretrain/training_schedule.h"
#include "util/error.h"
#include "util/log.h"
#include "util/progress.h"

namespace draft {
namespace {

// The VAE posteriors of every training image (and of its mirror image): latents are drawn from them at
// each step, so the frozen encoder runs once per image instead of once per step.
struct LatentPosteriors {
  at::Tensor mean;    // (N or 2N, C, h, w); rows N.. are the flipped images
  at::Tensor stddev;  // same shape
};

LatentPosteriors encode_dataset(AutoencoderKL& vae, const at::Tensor& images, bool with_flips) {
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> means, stds;
  const at::Tensor all = with_flips ? torch::cat({images, images.flip({3})}) : images;
  ProgressBar bar(all.size(0), "encode");
  for (int64_t begin = 0; begin < all.size(0); begin += 500) {
    const int64_t n = std::min<int64_t>(500, all.size(0) - begin);
    const DiagonalGaussian posterior = vae->encode(all.narrow(0, begin, n) * 2.0 - 1.0);
    means.push_back(posterior.mean);
    stds.push_back(posterior.stddev());
    bar.update(begin + n);
  }
  bar.finish();
  return {torch::cat(means), torch::cat(stds)};
}

// The texts the tokenizer must encode as whole words: every template filled with every class name.
std::vector<std::string> caption_vocabulary(const std::vector<std::string>& templates,
                                            const std::vector<std::string>& classes) {
  std::vector<std::string> texts;
  for (const auto& t : templates) {
    for (const auto& name : classes) texts.push_back(fill_caption_template(t, name));
  }
  return texts;
}

}  // namespace

UNetConfig fashion_unet_config() {
  UNetConfig u;
  u.sample_size = 8;
  u.in_channels = 4;
  u.out_channels = 4;
  u.block_out_channels = {64, 128};
  u.down_block_types = {"CrossAttnDownBlock2D", "DownBlock2D"};
  u.up_block_types = {"UpBlock2D", "CrossAttnUpBlock2D"};
  u.layers_per_block = {1, 1};
  u.cross_attention_dim = {64, 64};
  u.transformer_layers_per_block = {1, 1};
  u.attention_head_dim = {1, 2};  // diffusers' name for the head count: 64 channels per head
  u.only_cross_attention = {false, false};
  u.norm_num_groups = 32;
  return u;
}

CLIPTextConfig fashion_text_encoder_config() {
  CLIPTextConfig c;
  c.vocab_size = 0;  // set from the tokenizer
  c.hidden_size = 64;
  c.intermediate_size = 256;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;
  c.max_position_embeddings = 16;
  c.projection_dim = 64;
  c.hidden_act = "quick_gelu";
  return c;
}

SchedulerConfig stable_diffusion_scheduler_config() {
  SchedulerConfig s;
  s.num_train_timesteps = 1000;
  s.beta_start = 0.00085;
  s.beta_end = 0.012;
  s.beta_schedule = "scaled_linear";
  s.clip_sample = false;
  s.set_alpha_to_one = false;
  s.steps_offset = 1;
  s.prediction_type = "epsilon";
  s.timestep_spacing = "leading";
  s.source = "Stable Diffusion scheduler settings";
  return s;
}

TextToImageTrainConfig TextToImageTrainConfig::from_json(const ConfigJson& c, const TextToImageTrainConfig& base) {
  std::set<std::string> known = run_setting_keys();
  known.insert({"vae_dir", "warmup_steps", "grad_clip", "ema_decay", "empty_caption_probability", "caption_templates",
                "max_length", "eval_every", "eval_per_class", "eval_steps", "eval_guidance", "classifier_dir", "unet",
                "text_encoder", "scheduler"});
  check_known_keys(c, known);
  TextToImageTrainConfig v = base;
  read_run_settings(c, v);
  v.vae_dir = c.get<std::string>("vae_dir", v.vae_dir);
  v.warmup_steps = c.get<int64_t>("warmup_steps", v.warmup_steps);
  v.grad_clip = c.get<double>("grad_clip", v.grad_clip);
  v.ema_decay = c.get<double>("ema_decay", v.ema_decay);
  v.empty_caption_probability = c.get<double>("empty_caption_probability", v.empty_caption_probability);
  v.caption_templates = c.get<std::vector<std::string>>("caption_templates", v.caption_templates);
  v.max_length = c.get<int64_t>("max_length", v.max_length);
  v.eval_every = c.get<int64_t>("eval_every", v.eval_every);
  v.eval_per_class = c.get<int64_t>("eval_per_class", v.eval_per_class);
  v.eval_steps = c.get<int64_t>("eval_steps", v.eval_steps);
  v.eval_guidance = c.get<double>("eval_guidance", v.eval_guidance);
  v.classifier_dir = c.get<std::string>("classifier_dir", v.classifier_dir);
  if (c.has("unet")) v.unet = UNetConfig::from_json(ConfigJson{c.json.at("unet"), c.source + " (unet)"});
  if (c.has("text_encoder")) {
    v.text_encoder = CLIPTextConfig::from_json(ConfigJson{c.json.at("text_encoder"), c.source + " (text_encoder)"});
  }
  if (c.has("scheduler")) {
    v.scheduler = SchedulerConfig::from_json(ConfigJson{c.json.at("scheduler"), c.source + " (scheduler)"});
  }
  return v;
}

nlohmann::json TextToImageTrainConfig::to_json() const {
  nlohmann::json j = write_run_settings(*this);
  j["vae_dir"] = vae_dir;
  j["warmup_steps"] = warmup_steps;
  j["grad_clip"] = grad_clip;
  j["ema_decay"] = ema_decay;
  j["empty_caption_probability"] = empty_caption_probability;
  j["caption_templates"] = caption_templates;
  j["max_length"] = max_length;
  j["eval_every"] = eval_every;
  j["eval_per_class"] = eval_per_class;
  j["eval_steps"] = eval_steps;
  j["eval_guidance"] = eval_guidance;
  j["classifier_dir"] = classifier_dir;
  j["unet"] = unet.to_json();
  j["text_encoder"] = text_encoder.to_json();
  j["scheduler"] = scheduler.to_json("DDIMScheduler");
  return j;
}

void TextToImageTrainConfig::validate() const {
  validate_run_settings(*this);
  DRAFT_CHECK(!vae_dir.empty(), "vae_dir is empty: give the trained VAE folder (--vae DIR, e.g. the model/ folder "
                                "of 'draft pretrain vae' or models/fashion-sd/vae)");
  DRAFT_CHECK(warmup_steps >= 0, "warmup_steps must be >= 0 (got ", warmup_steps, ")");
  DRAFT_CHECK(grad_clip >= 0, "grad_clip must be >= 0 (got ", grad_clip, ")");
  DRAFT_CHECK(ema_decay >= 0 && ema_decay < 1, "ema_decay must be in [0, 1) (got ", ema_decay, ")");
  CaptionOptions{caption_templates, empty_caption_probability}.validate();
  DRAFT_CHECK(max_length >= 3, "max_length must be at least 3 (got ", max_length, ")");
  DRAFT_CHECK(eval_every >= 0, "eval_every must be >= 0 (got ", eval_every, ")");
  DRAFT_CHECK(eval_per_class > 0 && eval_steps > 0, "eval_per_class and eval_steps must be positive");
  DRAFT_CHECK(text_encoder.max_position_embeddings >= max_length, "text_encoder.max_position_embeddings (",
              text_encoder.max_position_embeddings, ") must be at least max_length (", max_length, ")");
  unet.validate();
  scheduler.validate();
  for (int64_t d : unet.cross_attention_dim) {
    DRAFT_CHECK(d == text_encoder.hidden_size, "unet.cross_attention_dim (", d,
                ") must equal text_encoder.hidden_size (", text_encoder.hidden_size, ")");
  }
}

TextToImageTrainResult train_text_to_image(const TextToImageTrainConfig& config_in) {
  const auto started = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(); };
  TextToImageTrainConfig config = config_in;
  config.validate();

  // 1. Data and the frozen VAE (before the run folder, so a wrong path leaves nothing behind).
  const ImageDataset train = load_training_images(config.data_dir, "train", config.limit);
  const int64_t n = train.size();
  DRAFT_CHECK(n > 0, config.data_dir, ": the train split is empty");
  AutoencoderKL vae = load_vae(config.vae_dir);
  vae->eval();
  for (auto& p : vae->parameters()) p.set_requires_grad(false);
  const int64_t f = int64_t{1} << (vae->config().block_out_channels.size() - 1);
  DRAFT_CHECK(vae->config().in_channels == train.images.size(1), config.vae_dir, ": the VAE takes ",
              vae->config().in_channels, " channels but the images have ", train.images.size(1));
  DRAFT_CHECK(train.images.size(2) / f == config.unet.sample_size, "unet.sample_size is ", config.unet.sample_size,
              " but the VAE turns ", train.images.size(2), "-pixel images into ", train.images.size(2) / f,
              "-wide latents");
  DRAFT_CHECK(vae->config().latent_channels == config.unet.in_channels, "unet.in_channels (", config.unet.in_channels,
              ") must equal the VAE's latent_channels (", vae->config().latent_channels, ")");
  const double scaling = vae->config().scaling_factor;

  // 2. The run folder and the tokenizer, whose size fixes the text encoder's vocabulary.
  RunFolder run(config.out_dir);
  DRAFT_CHECK(config.resume || !run.has_checkpoint(), run.checkpoint_path(),
              " exists: pass --resume to continue that run, or choose another run folder");
  const bool resuming = config.resume && run.has_checkpoint();
  const std::string tokenizer_dir = run.file("tokenizer");
  const int64_t vocab = write_clip_tokenizer(tokenizer_dir, caption_vocabulary(config.caption_templates, train.classes), config.max_length);
  const auto tokenizer = std::make_shared<CLIPTokenizer>(CLIPTokenizer::from_folder(tokenizer_dir));
  config.text_encoder.vocab_size = vocab;
  config.text_encoder.bos_token_id = tokenizer->bos_id();
  config.text_encoder.eos_token_id = tokenizer->eos_id();
  config.text_encoder.pad_token_id = tokenizer->pad_id();
  config.text_encoder.validate();
  const nlohmann::json resolved = config.to_json();

  // 3. Models: the trained ones and their EMA copies (which start equal).
  torch::manual_seed(config.seed);
  UNet2DCondition unet(config.unet);
  CLIPTextModel text_encoder(config.text_encoder);
  UNet2DCondition ema_unet(config.unet);
  CLIPTextModel ema_text_encoder(config.text_encoder);
  copy_weights(*ema_unet, *unet);
  copy_weights(*ema_text_encoder, *text_encoder);
  for (auto& p : ema_unet->parameters()) p.set_requires_grad(false);
  for (auto& p : ema_text_encoder->parameters()) p.set_requires_grad(false);
  ema_unet->eval();
  ema_text_encoder->eval();
  unet->train();
  text_encoder->train();
  std::vector<at::Tensor> params = unet->parameters();
  for (const auto& p : text_encoder->parameters()) params.push_back(p);
  torch::optim::AdamW optimizer(params, torch::optim::AdamWOptions(config.lr).weight_decay(config.weight_decay));
  const std::vector<CheckpointModule> modules = {{"unet.", unet.ptr().get()},
                                                 {"text_encoder.", text_encoder.ptr().get()},
                                                 {"ema_unet.", ema_unet.ptr().get()},
                                                 {"ema_text_encoder.", ema_text_encoder.ptr().get()}};
  const int64_t steps_per_epoch = (n + config.batch_size - 1) / config.batch_size;
  const int64_t total_steps = steps_per_epoch * config.epochs;

  int64_t step = 0;
  if (resuming) {
    const CheckpointInfo info = read_checkpoint_info(run.checkpoint_path());
    std::vector<std::string> keys = {"vae_dir", "batch_size", "lr", "weight_decay", "lr_schedule", "warmup_steps",
                                     "grad_clip", "ema_decay", "empty_caption_probability", "caption_templates",
                                     "max_length", "seed", "limit", "hflip", "unet", "text_encoder", "scheduler"};
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

  // 4. The judge of evaluations, when there is one.
  FashionClassifier classifier{nullptr};
  if (!config.classifier_dir.empty() && std::filesystem::is_directory(config.classifier_dir)) {
    classifier = load_fashion_classifier(config.classifier_dir);
    if (classifier->config().labels != train.classes) {
      DRAFT_LOG_WARN("{}: the classifier's classes are not the dataset's; training without sample evaluations",
                     config.classifier_dir);
      classifier = nullptr;
    }
  } else if (!config.classifier_dir.empty()) {
    DRAFT_LOG_WARN("{}: no classifier there; training without sample evaluations", config.classifier_dir);
  }
  StableDiffusion ema_pipeline;
  ema_pipeline.folder = run.dir();
  ema_pipeline.tokenizer = tokenizer;
  ema_pipeline.text_encoder = ema_text_encoder;
  ema_pipeline.unet = ema_unet;
  ema_pipeline.vae = vae;
  ema_pipeline.scheduler = std::make_shared<DDIMScheduler>(config.scheduler);
  TextToImageTrainResult result;
  auto evaluate = [&] {
    if (!classifier) return;
    ClassSampleOptions o;
    o.per_class = config.eval_per_class;
    o.steps = config.eval_steps;
    o.guidance = config.eval_guidance;
    o.seed = derive_seed(config.seed, RandomStream::kNoise, ~uint64_t{0});
    o.prompt_template = config.caption_templates.front();
    const ClassSamples s = sample_and_judge(ema_pipeline, classifier, train.classes, o);
    nlohmann::json per_class = nlohmann::json::object();
    for (std::size_t c = 0; c < s.per_class_agreement.size(); ++c) {
      per_class[train.classes[c]] = s.per_class_agreement[c];
    }
    run.append_metrics({{"event", "eval"}, {"step", step}, {"epoch", double(step) / double(steps_per_epoch)},
                        {"agreement", s.agreement}, {"per_class_agreement", per_class},
                        {"guidance", config.eval_guidance}, {"sampling_steps", config.eval_steps},
                        {"elapsed_s", elapsed()}});
    result.agreement = s.agreement;
    DRAFT_LOG_INFO("step {}: classifier agreement of EMA samples {:.1f}%", step, 100.0 * s.agreement);
  };

  // 5. Latents of the dataset.
  DRAFT_LOG_INFO("encoding {} images{} with the VAE", n, config.hflip ? " and their mirror images" : "");
  const LatentPosteriors latents = encode_dataset(vae, train.images, config.hflip);
  const DDPMScheduler noise_schedule(config.scheduler);
  const CaptionOptions captions{config.caption_templates, config.empty_caption_probability};
  DRAFT_LOG_INFO("training the UNet and text encoder on {} images, {} epochs of {} steps, batch {}", n, config.epochs,
                 steps_per_epoch, config.batch_size);

  ProgressBar bar(total_steps, "unet");
  if (step > 0) bar.update(step);
  at::Tensor order;
  int64_t order_epoch = -1, interval_steps = 0, steps_this_run = 0, last_eval_step = -1;
  double interval_loss = 0.0, interval_grad = 0.0, shown_loss = std::nan("");
  bool stopped = false;
  while (step < total_steps && !stopped) {
    // a. The batch: indices in this epoch's order, mirrored with p = 1/2, latents drawn from the posteriors.
    const int64_t epoch = step / steps_per_epoch;
    if (epoch != order_epoch) {
      order = epoch_permutation(n, config.seed, epoch);
      order_epoch = epoch;
    }
    const int64_t begin = (step % steps_per_epoch) * config.batch_size;
    const at::Tensor index = order.narrow(0, begin, std::min(config.batch_size, n - begin));
    const int64_t b = index.size(0);
    at::Tensor source = index;
    if (config.hflip) {
      at::Generator flip_gen = cpu_generator(derive_seed(config.seed, RandomStream::kAugment, uint64_t(step)));
      source = index + (torch::rand({b}, flip_gen) < 0.5).to(torch::kLong) * n;
    }
    at::Generator noise_gen = cpu_generator(derive_seed(config.seed, RandomStream::kNoise, uint64_t(step)));
    const at::Tensor mean = latents.mean.index_select(0, source);
    const at::Tensor z0 = (mean + latents.stddev.index_select(0, source) * torch::randn(mean.sizes(), noise_gen)) * scaling;
    const at::Tensor noise = torch::randn(z0.sizes(), noise_gen);
    const at::Tensor t = torch::randint(0, config.scheduler.num_train_timesteps, {b}, noise_gen, torch::kLong);
    std::mt19937_64 caption_rng(derive_seed(config.seed, RandomStream::kCaption, uint64_t(step)));
    std::vector<std::string> texts;
    const at::Tensor labels = train.labels.index_select(0, index);
    for (int64_t i = 0; i < b; ++i) texts.push_back(class_caption(train.classes[labels[i].item<int64_t>()], caption_rng, captions));

    // b. Epsilon loss (Ho et al. 2020, eq. 14) on x_t = sqrt(abar_t) z0 + sqrt(1 - abar_t) eps (eq. 4).
    const double lr = scheduled_learning_rate(config.lr, config.lr_schedule, step, total_steps, config.warmup_steps);
    set_learning_rate(optimizer, lr);
    optimizer.zero_grad();
    const at::Tensor context = text_encoder->encode((*tokenizer)(texts).input_ids);
    const at::Tensor prediction = unet->forward(noise_schedule.add_noise(z0, noise, t), t, context);
    const at::Tensor loss = torch::mse_loss(prediction, noise_schedule.training_target(z0, noise, t));
    loss.backward();
    const double grad_norm =
        torch::nn::utils::clip_grad_norm_(params, config.grad_clip > 0 ? config.grad_clip : 1e30);
    optimizer.step();
    ema_update(*ema_unet, *unet, ema_decay_at(config.ema_decay, step));
    ema_update(*ema_text_encoder, *text_encoder, ema_decay_at(config.ema_decay, step));
    ++step;
    ++steps_this_run;

    // c. Metrics, evaluations, checkpoints.
    const double loss_value = loss.item<double>();
    DRAFT_CHECK(std::isfinite(loss_value), "UNet training diverged at step ", step,
                " (non-finite loss): lower --lr or resume from the last checkpoint");
    shown_loss = std::isnan(shown_loss) ? loss_value : 0.98 * shown_loss + 0.02 * loss_value;
    interval_loss += loss_value;
    interval_grad += grad_norm;
    ++interval_steps;
    bar.update(step, {{"loss", shown_loss}, {"lr", lr}});
    const bool epoch_end = step % steps_per_epoch == 0;
    if (step % config.log_every == 0 || epoch_end) {
      run.append_metrics({{"event", "train"}, {"step", step}, {"epoch", double(step) / double(steps_per_epoch)},
                          {"loss", interval_loss / double(interval_steps)},
                          {"grad_norm", interval_grad / double(interval_steps)}, {"lr", lr}, {"elapsed_s", elapsed()}});
      interval_loss = interval_grad = 0.0;
      interval_steps = 0;
    }
    if (config.eval_every > 0 ? step % config.eval_every == 0 : epoch_end) {
      evaluate();
      last_eval_step = step;
    }
    stopped = config.stop_after_steps > 0 && steps_this_run >= config.stop_after_steps && step < total_steps;
    if (epoch_end || stopped || step == total_steps ||
        (config.checkpoint_every > 0 && step % config.checkpoint_every == 0)) {
      save_checkpoint(run.checkpoint_path(), modules, &optimizer, {step, step / steps_per_epoch, config.seed},
                      resolved);
    }
  }
  bar.finish();

  result.steps = step;
  result.stopped_early = stopped;
  if (!stopped) {
    if (last_eval_step != step) evaluate();
    result.model_dir = run.file("model");
    save_pipeline_folder(result.model_dir, {ema_text_encoder, ema_unet, vae, config.scheduler, tokenizer_dir});
    run.append_metrics({{"event", "final"}, {"step", step}, {"model", result.model_dir}, {"elapsed_s", elapsed()}});
  }
  result.seconds = elapsed();
  return result;
}

}  // namespace draft
