// draft pretrain: train the embedded models from scratch (classifier, vae, unet), each with a run folder,
// periodic checkpoints, exact resume and a seed. Settings compose as defaults < the run's config.json
// (--resume) < --config < flags; the flags come from each recipe's config table (docs/config.md).
#include <cstdio>
#include <iostream>
#include <memory>

#include "command.h"
#include "config_flags.h"
#include "flag_checks.h"
#include "output_paths.h"
#include "pretrain/classifier_training.h"
#include "pretrain/text_to_image_training.h"
#include "pretrain/vae_training.h"
#include "util/error.h"
#include "util/threads.h"

namespace draft::cli {
namespace {

// One pretrain subcommand's flags: its config keys, --config/--resume, and --stop-after.
template <typename Config>
struct RecipeFlags {
  std::unique_ptr<ConfigFlags<Config>> config;
  RunFlags run;
  int64_t stop_after = 0;
  bool no_tensorboard = false;
  CLI::App* parser = nullptr;

  void add(CLI::App* sub, const ConfigTable<Config>& table) {
    parser = sub;
    run.add(sub);
    config = std::make_unique<ConfigFlags<Config>>(sub, table, Config(),
                                                   std::map<std::string, std::vector<std::string>>{{"--run-dir", {"--out"}}});
    sub->add_option("--stop-after", stop_after,
                    "stop with a checkpoint after N steps of this invocation (0: run to the end)")
        ->check(whole_number(0));
    sub->add_flag("--no-tensorboard", no_tensorboard, "write no TensorBoard events files (sets tensorboard false)");
  }

  Config resolve() const {
    nlohmann::json extra = nlohmann::json::object();
    if (no_tensorboard) extra["tensorboard"] = false;
    Config c = config->resolve(Config(), run, extra);
    c.stop_after_steps = stop_after;
    c.resume = run.resuming();
    check_output_folder(c.out_dir, "--run-dir");
    return c;
  }
};

int run_classifier(const RecipeFlags<ClassifierTrainConfig>& f) {
  ClassifierTrainResult r = train_classifier(f.resolve());
  if (r.stopped_early) {
    std::cout << "stopped after step " << r.steps << "; continue with --resume\n";
    return 0;
  }
  std::cout << format_class_accuracy_table(r.test, r.labels);
  std::printf("test accuracy %.2f%% after %lld steps (%.1f s); model written to %s\n", 100.0 * r.test_accuracy,
              static_cast<long long>(r.steps), r.seconds, r.model_dir.c_str());
  return 0;
}

int run_vae(const RecipeFlags<VAETrainConfig>& f) {
  VAETrainResult r = train_vae(f.resolve());
  if (r.stopped_early) {
    std::cout << "stopped after step " << r.steps << "; continue with --resume\n";
    return 0;
  }
  std::printf("test PSNR %.2f dB (MSE %.5f), scaling_factor %.5f after %lld steps (%.1f s); model written to %s\n",
              r.test.psnr, r.test.mse, r.scaling_factor, static_cast<long long>(r.steps), r.seconds,
              r.model_dir.c_str());
  return 0;
}

int run_unet(const RecipeFlags<TextToImageTrainConfig>& f) {
  TextToImageTrainResult r = train_text_to_image(f.resolve());
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
  auto classifier = std::make_shared<RecipeFlags<ClassifierTrainConfig>>();
  auto vae = std::make_shared<RecipeFlags<VAETrainConfig>>();
  auto unet = std::make_shared<RecipeFlags<TextToImageTrainConfig>>();
  classifier->add(sub->add_subcommand("classifier", "Train the Fashion-MNIST classifier (a reward, and the judge of "
                                                    "the embedded model's samples)"),
                  classifier_train_config_table());
  vae->add(sub->add_subcommand("vae", "Train the embedded model's autoencoder (32x32x1 images <-> 8x8x4 latents)"),
           vae_train_config_table());
  unet->add(sub->add_subcommand("unet", "Train the embedded model's UNet and text encoder on captioned images "
                                        "(DDPM epsilon loss, EMA), and write a diffusers pipeline folder"),
            text_to_image_train_config_table());
  return {sub, [classifier, vae, unet]() -> int {
            use_small_tensor_threading();  // the embedded recipes' tensors are small
            if (classifier->parser->parsed()) return run_classifier(*classifier);
            if (vae->parser->parsed()) return run_vae(*vae);
            if (unet->parser->parsed()) return run_unet(*unet);
            fail("draft pretrain: no model given (see 'draft pretrain --help')");
          }};
}

}  // namespace draft::cli
