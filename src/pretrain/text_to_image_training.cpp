// The text-to-image training run: config I/O, latents of the dataset, the epsilon-loss loop with EMA,
// evaluations by the classifier, and the pipeline folder.
#include "pretrain/text_to_image_training.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>
#include <random>

#include <torch/torch.h>

#include "diffusion/ddpm_scheduler.h"
#include "diffusion/pipeline_folder.h"
#include "models/autoencoder_kl.h"
#include "models/clip_text_model.h"
#include "models/clip_tokenizer.h"
#include "models/clip_vocabulary.h"
#include "models/fashion_classifier.h"
#include "models/unet_2d_condition.h"
#include "data/image_folder.h"
#include "pretrain/recipe_run.h"
#include "pretrain/sample_quality.h"
#include "train/ema.h"
#include "train/lr_schedule.h"
#include "util/error.h"
#include "util/log.h"
#include "util/progress.h"
#include "util/seeds.h"

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
  const c10::Device device = vae->quant_conv->weight.device();
  const at::Tensor all = with_flips ? torch::cat({images, images.flip({3})}) : images;
  ProgressBar bar(all.size(0), "encode");
  for (int64_t begin = 0; begin < all.size(0); begin += 500) {
    const int64_t n = std::min<int64_t>(500, all.size(0) - begin);
    const DiagonalGaussian posterior = vae->encode(all.narrow(0, begin, n).to(device) * 2.0 - 1.0);
    means.push_back(posterior.mean.cpu());  // the dataset's latents stay in host memory, like its images
    stds.push_back(posterior.stddev().cpu());
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

const ConfigTable<TextToImageTrainConfig>& text_to_image_train_config_table() {
  static const ConfigTable<TextToImageTrainConfig> table = [] {
    ConfigTable<TextToImageTrainConfig> t;
    add_run_settings(t);
    t.add("vae_dir", "--vae", "the trained VAE folder (draft pretrain vae's <run>/model, or models/fashion-sd/vae)",
          DRAFT_MEMBER(vae_dir), check_not_empty());
    t.add("warmup_steps", "--warmup-steps", "linear learning-rate warm-up", DRAFT_MEMBER(warmup_steps),
          check_non_negative());
    t.add("grad_clip", "--grad-clip", "max global gradient norm (0: off)", DRAFT_MEMBER(grad_clip), check_non_negative());
    t.add("ema_decay", "--ema-decay", "EMA decay of the shipped weights, warmed up as min(decay, (1 + step) / (10 + step))",
          DRAFT_MEMBER(ema_decay), check_range(0, 1, false));
    t.add("empty_caption_probability", "--empty-caption-probability",
          "share of empty captions (trains the unconditional branch for guidance)",
          DRAFT_MEMBER(empty_caption_probability), check_range(0, 1));
    t.add("caption_templates", "--caption-template", "caption templates with one {class} (repeat)",
          DRAFT_MEMBER(caption_templates), check_not_empty());
    t.add("max_length", "--max-length", "tokenizer model_max_length = text encoder positions", DRAFT_MEMBER(max_length),
          check_at_least(3));
    t.add("eval_every", "--eval-every", "steps between sample evaluations (0: epoch ends)", DRAFT_MEMBER(eval_every),
          check_non_negative(), true);
    t.add("eval_per_class", "--eval-per-class", "evaluation images per class", DRAFT_MEMBER(eval_per_class),
          check_at_least(1), true);
    t.add("eval_steps", "--eval-steps", "DDIM steps of the evaluation samples", DRAFT_MEMBER(eval_steps),
          check_at_least(1), true);
    t.add("eval_guidance", "--eval-guidance", "guidance scale of the evaluation samples", DRAFT_MEMBER(eval_guidance),
          {}, true);
    t.add("classifier_dir", "--classifier", "classifier that judges the evaluation samples (\"\": none)",
          DRAFT_MEMBER(classifier_dir), {}, true);
    t.add_object("unet", "the UNet's architecture (a diffusers UNet2DConditionModel config.json)",
                 [](const TextToImageTrainConfig& c) { return c.unet.to_json(); },
                 [](TextToImageTrainConfig& c, const nlohmann::json& j) {
                   c.unet = UNetConfig::from_json(ConfigJson{j, "unet"});
                 });
    t.add_object("text_encoder", "the text encoder's architecture (a transformers CLIPTextConfig; vocab_size from the tokenizer)",
                 [](const TextToImageTrainConfig& c) { return c.text_encoder.to_json(); },
                 [](TextToImageTrainConfig& c, const nlohmann::json& j) {
                   c.text_encoder = CLIPTextConfig::from_json(ConfigJson{j, "text_encoder"});
                 });
    t.add_object("scheduler", "the noise schedule (a diffusers DDIMScheduler config)",
                 [](const TextToImageTrainConfig& c) { return c.scheduler.to_json("DDIMScheduler"); },
                 [](TextToImageTrainConfig& c, const nlohmann::json& j) {
                   c.scheduler = SchedulerConfig::from_json(ConfigJson{j, "scheduler"});
                 });
    return t;
  }();
  return table;
}

TextToImageTrainConfig TextToImageTrainConfig::from_json(const ConfigJson& c, const TextToImageTrainConfig& base) {
  TextToImageTrainConfig v = base;
  text_to_image_train_config_table().read(c.json, c.source, v);
  return v;
}

nlohmann::json TextToImageTrainConfig::to_json() const { return text_to_image_train_config_table().to_json(*this); }

void TextToImageTrainConfig::validate() const {
  text_to_image_train_config_table().validate(*this);
  CaptionOptions{caption_templates, empty_caption_probability}.validate();
  DRAFT_CHECK(text_encoder.max_position_embeddings >= max_length, "text_encoder.max_position_embeddings (",
              text_encoder.max_position_embeddings, ") must be at least max_length (", max_length, ")");
  unet.validate();
  scheduler.validate();
  for (int64_t d : unet.cross_attention_dim) {
    DRAFT_CHECK(d == text_encoder.hidden_size, "unet.cross_attention_dim (", d,
                ") must equal text_encoder.hidden_size (", text_encoder.hidden_size, ")");
  }
}

namespace {

// One text-to-image run (train_text_to_image drives it).
struct TextToImageRun : RecipeRun<TextToImageTrainConfig> {
  ImageDataset train;
  AutoencoderKL vae{nullptr};
  std::string tokenizer_dir;
  std::shared_ptr<CLIPTokenizer> tokenizer;
  UNet2DCondition unet{nullptr}, ema_unet{nullptr};
  CLIPTextModel text_encoder{nullptr}, ema_text_encoder{nullptr};
  std::vector<at::Tensor> params;
  FashionClassifier classifier{nullptr};  // the judge of evaluations; null: none
  StableDiffusion ema_pipeline;
};

// 1. Data and the frozen VAE (before the run folder, so a wrong path leaves nothing behind).
void load_data_and_vae(TextToImageRun& r) {
  const TextToImageTrainConfig& config = r.config;
  r.train = load_training_images(config.data_dir, "train", config.limit);
  DRAFT_CHECK(r.train.size() > 0, config.data_dir, ": the train split is empty");
  WeightsOptions on_device;
  on_device.device = r.device();
  r.vae = load_vae(config.vae_dir, on_device);
  r.vae->eval();
  for (auto& p : r.vae->parameters()) p.set_requires_grad(false);
  const int64_t f = int64_t{1} << (r.vae->config().block_out_channels.size() - 1);
  const int64_t pixels = r.train.images.size(2);
  DRAFT_CHECK(r.vae->config().in_channels == r.train.images.size(1), config.vae_dir, ": the VAE takes ",
              r.vae->config().in_channels, " channels but the images have ", r.train.images.size(1));
  DRAFT_CHECK(pixels / f == config.unet.sample_size, "unet.sample_size is ", config.unet.sample_size,
              " but the VAE turns ", pixels, "-pixel images into ", pixels / f, "-wide latents");
  DRAFT_CHECK(r.vae->config().latent_channels == config.unet.in_channels, "unet.in_channels (", config.unet.in_channels,
              ") must equal the VAE's latent_channels (", r.vae->config().latent_channels, ")");
}

// 2. The run folder and the tokenizer, whose size fixes the text encoder's vocabulary; then the config is
// complete and the run starts (a changed config is refused on resume).
void open_run(TextToImageRun& r) {
  TextToImageTrainConfig& config = r.config;
  r.open_folder();
  r.tokenizer_dir = r.run->folder().file("tokenizer");
  const int64_t vocab = write_clip_tokenizer(
      r.tokenizer_dir, caption_vocabulary(config.caption_templates, r.train.classes), config.max_length);
  r.tokenizer = std::make_shared<CLIPTokenizer>(CLIPTokenizer::from_folder(r.tokenizer_dir));
  config.text_encoder.vocab_size = vocab;
  config.text_encoder.bos_token_id = r.tokenizer->bos_id();
  config.text_encoder.eos_token_id = r.tokenizer->eos_id();
  config.text_encoder.pad_token_id = r.tokenizer->pad_id();
  config.text_encoder.validate();
  r.start(text_to_image_train_config_table());
}

// 3. The trained models and their EMA copies (which start equal), the optimizer, and the checkpoint.
void build_models(TextToImageRun& r) {
  const TextToImageTrainConfig& config = r.config;
  torch::manual_seed(config.seed);
  r.unet = UNet2DCondition(config.unet);
  r.text_encoder = CLIPTextModel(config.text_encoder);
  r.ema_unet = UNet2DCondition(config.unet);
  r.ema_text_encoder = CLIPTextModel(config.text_encoder);
  copy_weights(*r.ema_unet, *r.unet);
  copy_weights(*r.ema_text_encoder, *r.text_encoder);
  // Drawn on the CPU, then moved (before the optimizer and the checkpoint see them): the same weights on
  // any device.
  const c10::Device device = r.device();
  r.unet->to(device);
  r.text_encoder->to(device);
  r.ema_unet->to(device);
  r.ema_text_encoder->to(device);
  for (auto& p : r.ema_unet->parameters()) p.set_requires_grad(false);
  for (auto& p : r.ema_text_encoder->parameters()) p.set_requires_grad(false);
  r.ema_unet->eval();
  r.ema_text_encoder->eval();
  r.unet->train();
  r.text_encoder->train();
  r.params = r.unet->parameters();
  for (const auto& p : r.text_encoder->parameters()) r.params.push_back(p);
  r.begin(r.params,
          {{"unet.", r.unet.ptr().get()},
           {"text_encoder.", r.text_encoder.ptr().get()},
           {"ema_unet.", r.ema_unet.ptr().get()},
           {"ema_text_encoder.", r.ema_text_encoder.ptr().get()}},
          r.train.size());
}

// 4. The judge of evaluations, when there is one, and the EMA pipeline it judges.
void set_up_evaluation(TextToImageRun& r) {
  const std::string& dir = r.config.classifier_dir;
  if (!dir.empty() && std::filesystem::is_directory(dir)) {
    r.classifier = load_fashion_classifier(dir);
    r.classifier->to(r.device());
    if (r.classifier->config().labels != r.train.classes) {
      DRAFT_LOG_WARN("{}: the classifier's classes are not the dataset's; training without sample evaluations", dir);
      r.classifier = nullptr;
    }
  } else if (!dir.empty()) {
    DRAFT_LOG_WARN("{}: no classifier there; training without sample evaluations", dir);
  }
  r.ema_pipeline.folder = r.run->folder().dir();
  r.ema_pipeline.tokenizer = r.tokenizer;
  r.ema_pipeline.text_encoder = r.ema_text_encoder;
  r.ema_pipeline.unet = r.ema_unet;
  r.ema_pipeline.vae = r.vae;
  r.ema_pipeline.scheduler = std::make_shared<DDIMScheduler>(r.config.scheduler);
  r.ema_pipeline.weights.device = r.device();
}

// Samples eval_per_class images per class from the EMA weights; logs the classifier's agreement.
void evaluate(TextToImageRun& r, TextToImageTrainResult& result) {
  if (!r.classifier) return;
  ClassSampleOptions o;
  o.per_class = r.config.eval_per_class;
  o.steps = r.config.eval_steps;
  o.guidance = r.config.eval_guidance;
  o.seed = derive_seed(r.config.seed, RandomStream::kNoise, -1);
  o.prompt_template = r.config.caption_templates.front();
  const ClassSamples s = sample_and_judge(r.ema_pipeline, r.classifier, r.train.classes, o);
  nlohmann::json per_class = nlohmann::json::object();
  for (std::size_t c = 0; c < s.per_class_agreement.size(); ++c) per_class[r.train.classes[c]] = s.per_class_agreement[c];
  r.run->log({{"event", "eval"}, {"step", r.loop->step()}, {"epoch", r.loop->epoch_progress()},
              {"agreement", s.agreement}, {"per_class_agreement", per_class}, {"guidance", r.config.eval_guidance},
              {"sampling_steps", r.config.eval_steps}, {"elapsed_s", r.elapsed()}});
  result.agreement = s.agreement;
  DRAFT_LOG_INFO("step {}: classifier agreement of EMA samples {:.1f}%", r.loop->step(), 100.0 * s.agreement);
}

// One step: the batch in this epoch's order (mirrored with p = 1/2), latents drawn from the posteriors, the
// epsilon loss (Ho et al. 2020, eq. 14) on x_t = sqrt(abar_t) z0 + sqrt(1 - abar_t) eps (eq. 4), AdamW with
// clipping, the EMA update. Returns the loss and the gradient norm.
std::pair<double, double> train_step(TextToImageRun& r, const LatentPosteriors& latents,
                                     const DDPMScheduler& noise_schedule, const CaptionOptions& captions, double lr) {
  const TextToImageTrainConfig& config = r.config;
  const int64_t step = r.loop->step(), n = r.train.size();
  const at::Tensor index = r.loop->batch();
  const int64_t b = index.size(0);
  at::Tensor source = index;
  if (config.hflip) {
    at::Generator flip_gen = cpu_generator(derive_seed(config.seed, RandomStream::kAugment, step));
    source = index + (torch::rand({b}, flip_gen) < 0.5).to(torch::kLong) * n;
  }
  at::Generator noise_gen = cpu_generator(derive_seed(config.seed, RandomStream::kNoise, step));
  // Drawn on the CPU from the step's generator, then moved: a seed gives the same batch on any device.
  const c10::Device device = r.vae->quant_conv->weight.device();
  const at::Tensor mean = latents.mean.index_select(0, source);
  const at::Tensor z0 =
      ((mean + latents.stddev.index_select(0, source) * torch::randn(mean.sizes(), noise_gen)) *
       r.vae->config().scaling_factor).to(device);
  const at::Tensor noise = torch::randn(z0.sizes(), noise_gen).to(device);
  const at::Tensor t =
      torch::randint(0, config.scheduler.num_train_timesteps, {b}, noise_gen, torch::kLong).to(device);
  std::mt19937_64 caption_rng(derive_seed(config.seed, RandomStream::kCaption, step));
  std::vector<std::string> texts;
  const at::Tensor labels = r.train.labels.index_select(0, index);
  for (int64_t i = 0; i < b; ++i) {
    texts.push_back(class_caption(r.train.classes[labels[i].item<int64_t>()], caption_rng, captions));
  }
  set_learning_rate(*r.optimizer, lr);
  r.optimizer->zero_grad();
  const at::Tensor context = r.text_encoder->encode((*r.tokenizer)(texts).input_ids.to(device));
  const at::Tensor prediction = r.unet->forward(noise_schedule.add_noise(z0, noise, t), t, context);
  const at::Tensor loss = torch::mse_loss(prediction, noise_schedule.training_target(z0, noise, t));
  loss.backward();
  const double grad_norm = torch::nn::utils::clip_grad_norm_(r.params, config.grad_clip > 0 ? config.grad_clip : 1e30);
  r.optimizer->step();
  ema_update(*r.ema_unet, *r.unet, ema_decay_at(config.ema_decay, step));
  ema_update(*r.ema_text_encoder, *r.text_encoder, ema_decay_at(config.ema_decay, step));
  r.loop->advance();
  const double loss_value = loss.item<double>();
  DRAFT_CHECK(std::isfinite(loss_value), "UNet training diverged at step ", r.loop->step(),
              " (non-finite loss): lower --lr or resume from the last checkpoint");
  return {loss_value, grad_norm};
}

}  // namespace

TextToImageTrainResult train_text_to_image(const TextToImageTrainConfig& config_in) {
  TextToImageRun r;
  r.config = config_in;
  r.config.validate();
  load_data_and_vae(r);
  open_run(r);
  build_models(r);
  set_up_evaluation(r);
  DRAFT_LOG_INFO("encoding {} images{} with the VAE", r.train.size(), r.config.hflip ? " and their mirror images" : "");
  const LatentPosteriors latents = encode_dataset(r.vae, r.train.images, r.config.hflip);
  const DDPMScheduler noise_schedule(r.config.scheduler);
  const CaptionOptions captions{r.config.caption_templates, r.config.empty_caption_probability};
  DRAFT_LOG_INFO("training the UNet and text encoder on {} images, {} epochs of {} steps, batch {}", r.train.size(),
                 r.config.epochs, r.loop->steps_per_epoch(), r.config.batch_size);
  TextToImageTrainResult result;
  ProgressBar bar(r.loop->total_steps(), "unet");
  if (r.loop->step() > 0) bar.update(r.loop->step());
  IntervalMeans interval;
  double shown_loss = std::nan("");
  int64_t last_eval_step = -1;
  while (r.loop->running()) {
    const double lr = scheduled_learning_rate(r.config.lr, r.config.lr_schedule, r.loop->step(), r.loop->total_steps(),
                                              r.config.warmup_steps);
    const auto [loss, grad_norm] = train_step(r, latents, noise_schedule, captions, lr);
    shown_loss = std::isnan(shown_loss) ? loss : 0.98 * shown_loss + 0.02 * loss;
    interval.add("loss", loss);
    interval.add("grad_norm", grad_norm);
    bar.update(r.loop->step(), {{"loss", shown_loss}, {"lr", lr}});
    r.log_train(lr, interval);
    if (r.config.eval_every > 0 ? r.loop->step() % r.config.eval_every == 0 : r.loop->epoch_end()) {
      evaluate(r, result);
      last_eval_step = r.loop->step();
    }
    r.save_if_due();
  }
  bar.finish();
  result.steps = r.loop->step();
  result.stopped_early = r.loop->stopped();
  if (!result.stopped_early) {
    if (last_eval_step != result.steps) evaluate(r, result);
    result.model_dir = r.run->folder().file("model");
    save_pipeline_folder(result.model_dir, {r.ema_text_encoder, r.ema_unet, r.vae, r.config.scheduler, r.tokenizer_dir});
    r.run->log({{"event", "final"}, {"step", result.steps}, {"model", result.model_dir}, {"elapsed_s", r.elapsed()}});
  }
  result.seconds = r.elapsed();
  return result;
}

}  // namespace draft
