// draft pretrain: train the embedded models from scratch (classifier, vae, unet), each with a run folder,
// periodic checkpoints, exact resume and a seed. Settings compose as defaults < --config < flags.
#include <cstdio>
#include <iostream>
#include <memory>

#include "command.h"
#include "config_flags.h"
#include "pretrain/classifier_training.h"
#include "pretrain/text_to_image_training.h"
#include "pretrain/vae_training.h"
#include "util/error.h"
#include "util/threads.h"

namespace draft::cli {
namespace {

// What every pretrain subcommand has besides its config keys.
struct RunFlags {
  std::unique_ptr<ConfigFlags> flags;
  std::string config_file;
  int64_t stop_after = 0;
  bool resume = false;
  CLI::App* parser = nullptr;
};

// The options all three trainers share, then the run options.
void add_common(CLI::App* sub, RunFlags& f, int64_t epochs, int64_t batch_size, double lr, double weight_decay) {
  f.parser = sub;
  f.flags = std::make_unique<ConfigFlags>(sub);
  ConfigFlags& c = *f.flags;
  c.add<std::string>("--data", "data_dir", "folder with the Fashion-MNIST IDX files (.gz or plain)", kFashionMNISTDir);
  c.add<std::string>("--out", "out_dir", "run folder: config.json, metrics.jsonl, checkpoint, model/", "");
  c.add<int64_t>("--epochs", "epochs", "passes over the training set", epochs)->check(CLI::PositiveNumber);
  c.add<int64_t>("--batch-size", "batch_size", "images per step", batch_size)->check(CLI::PositiveNumber);
  c.add<double>("--lr", "lr", "AdamW peak learning rate", lr)->check(CLI::PositiveNumber);
  c.add<double>("--weight-decay", "weight_decay", "AdamW weight decay", weight_decay)->check(CLI::NonNegativeNumber);
  c.add<std::string>("--lr-schedule", "lr_schedule", "cosine (to 0 at the end) or constant", "cosine")
      ->check(CLI::IsMember({"cosine", "constant"}));
  c.add<uint64_t>("--seed", "seed", "seed of the initial weights, data order, augmentation and noise", 0);
  c.add<int64_t>("--limit", "limit", "use only the first N train and test images (0: all)", 0)
      ->check(CLI::NonNegativeNumber);
  c.add<int64_t>("--checkpoint-every", "checkpoint_every", "steps between checkpoints (0: epoch ends only)", 500)
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--stop-after", f.stop_after,
                  "stop with a checkpoint after N steps of this invocation (0: run to the end)")
      ->check(CLI::NonNegativeNumber);
  sub->add_flag("--resume", f.resume, "continue the run in --out from its checkpoint, with its settings");
  sub->add_option("--config", f.config_file, "JSON config (keys as in the run's config.json); flags override it")
      ->check(CLI::ExistingFile);
}

template <typename Config>
Config resolve(const RunFlags& f) {
  Config c = f.flags->resolve(Config(), f.config_file, f.resume);
  c.stop_after_steps = f.stop_after;
  c.resume = f.resume;
  return c;
}

int run_classifier(const RunFlags& f) {
  ClassifierTrainResult r = train_classifier(resolve<ClassifierTrainConfig>(f));
  if (r.stopped_early) {
    std::cout << "stopped after step " << r.steps << "; continue with --resume\n";
    return 0;
  }
  std::cout << format_class_accuracy_table(r.test, r.labels);
  std::printf("test accuracy %.2f%% after %lld steps (%.1f s); model written to %s\n", 100.0 * r.test_accuracy,
              static_cast<long long>(r.steps), r.seconds, r.model_dir.c_str());
  return 0;
}

int run_vae(const RunFlags& f) {
  VAETrainResult r = train_vae(resolve<VAETrainConfig>(f));
  if (r.stopped_early) {
    std::cout << "stopped after step " << r.steps << "; continue with --resume\n";
    return 0;
  }
  std::printf("test PSNR %.2f dB (MSE %.5f), scaling_factor %.5f after %lld steps (%.1f s); model written to %s\n",
              r.test.psnr, r.test.mse, r.scaling_factor, static_cast<long long>(r.steps), r.seconds,
              r.model_dir.c_str());
  return 0;
}

int run_unet(const RunFlags& f) {
  TextToImageTrainResult r = train_text_to_image(resolve<TextToImageTrainConfig>(f));
  if (r.stopped_early) {
    std::cout << "stopped after step " << r.steps << "; continue with --resume\n";
    return 0;
  }
  std::printf("%lld steps (%.1f s); pipeline written to %s\n", static_cast<long long>(r.steps), r.seconds,
              r.model_dir.c_str());
  if (r.agreement >= 0) std::printf("classifier agreement of the last evaluation: %.2f%%\n", 100.0 * r.agreement);
  return 0;
}

}  // namespace

Command add_pretrain_command(CLI::App& root) {
  CLI::App* sub =
      root.add_subcommand("pretrain", "Train the embedded models from scratch, with checkpoints and resume");
  sub->require_subcommand(1);
  auto classifier = std::make_shared<RunFlags>();
  auto vae = std::make_shared<RunFlags>();
  auto unet = std::make_shared<RunFlags>();

  add_common(sub->add_subcommand(
                 "classifier", "Train the Fashion-MNIST classifier (a reward, and the judge of the embedded model's samples)"),
             *classifier, 3, 128, 1e-3, 1e-2);

  add_common(sub->add_subcommand("vae", "Train the embedded model's autoencoder (32x32x1 images <-> 8x8x4 latents)"),
             *vae, 2, 64, 1e-3, 0.0);
  vae->flags->add<double>("--kl-weight", "kl_weight", "weight of the KL term (LDM: 1e-6)", 1e-6)
      ->check(CLI::NonNegativeNumber);
  vae->flags->add<std::string>("--recon-loss", "recon_loss", "l1 or mse", "l1")->check(CLI::IsMember({"l1", "mse"}));

  add_common(sub->add_subcommand("unet", "Train the embedded model's UNet and text encoder on captioned images "
                                         "(DDPM epsilon loss, EMA), and write a diffusers pipeline folder"),
             *unet, 8, 128, 5e-4, 0.0);
  ConfigFlags& u = *unet->flags;
  u.add<std::string>("--vae", "vae_dir", "the trained VAE folder (draft pretrain vae's <out>/model)", "");
  u.add<double>("--ema-decay", "ema_decay", "EMA decay of the shipped weights", 0.999)->check(CLI::Range(0.0, 1.0));
  u.add<int64_t>("--warmup-steps", "warmup_steps", "linear learning-rate warm-up", 500)->check(CLI::NonNegativeNumber);
  u.add<double>("--empty-caption-probability", "empty_caption_probability",
                "share of empty captions (trains the unconditional branch for guidance)", 0.1)
      ->check(CLI::Range(0.0, 1.0));
  u.add<std::string>("--classifier", "classifier_dir", "classifier that judges the evaluation samples (\"\": none)",
                     "models/fashion-classifier");
  u.add<int64_t>("--eval-every", "eval_every", "steps between sample evaluations (0: epoch ends)", 0)
      ->check(CLI::NonNegativeNumber);

  return {sub, [sub, classifier, vae, unet]() -> int {
    use_small_tensor_threading();  // the embedded models' tensors are small
            if (classifier->parser->parsed()) return run_classifier(*classifier);
            if (vae->parser->parsed()) return run_vae(*vae);
            if (unet->parser->parsed()) return run_unet(*unet);
            fail("draft pretrain: no model given (see 'draft pretrain --help')");
          }};
}

}  // namespace draft::cli
