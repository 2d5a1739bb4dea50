// draft pretrain: train the embedded models from scratch. `classifier` now; `vae` and `unet` join it as
// further sub-subcommands over the same run-folder machinery.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>

#include "command.h"
#include "io/config_json.h"
#include "pretrain/classifier_training.h"
#include "util/error.h"

namespace draft::cli {
namespace {

// Flag values; a flag overrides the config only when given (defaults < --config < flags).
struct ClassifierFlags {
  ClassifierTrainConfig values;
  std::string config_file;
  CLI::Option* data = nullptr;
  CLI::Option* out = nullptr;
  CLI::Option* epochs = nullptr;
  CLI::Option* batch_size = nullptr;
  CLI::Option* lr = nullptr;
  CLI::Option* weight_decay = nullptr;
  CLI::Option* seed = nullptr;
  CLI::Option* limit = nullptr;
  CLI::Option* checkpoint_every = nullptr;
  CLI::Option* stop_after = nullptr;
};

bool set(const CLI::Option* option) { return option != nullptr && option->count() > 0; }

ClassifierTrainConfig resolve_classifier_config(const ClassifierFlags& f) {
  ClassifierTrainConfig c;
  // A resumed run starts from the settings it was started with, so `--out DIR --resume` is enough.
  if (f.values.resume && set(f.out) && std::filesystem::is_regular_file(f.values.out_dir + "/config.json")) {
    c = ClassifierTrainConfig::from_json(ConfigJson::load(f.values.out_dir + "/config.json"), c);
  }
  if (!f.config_file.empty()) c = ClassifierTrainConfig::from_json(ConfigJson::load(f.config_file), c);
  const ClassifierTrainConfig& v = f.values;
  if (set(f.data)) c.data_dir = v.data_dir;
  if (set(f.out)) c.out_dir = v.out_dir;
  if (set(f.epochs)) c.epochs = v.epochs;
  if (set(f.batch_size)) c.batch_size = v.batch_size;
  if (set(f.lr)) c.lr = v.lr;
  if (set(f.weight_decay)) c.weight_decay = v.weight_decay;
  if (set(f.seed)) c.seed = v.seed;
  if (set(f.limit)) c.limit = v.limit;
  if (set(f.checkpoint_every)) c.checkpoint_every = v.checkpoint_every;
  c.stop_after_steps = v.stop_after_steps;
  c.resume = v.resume;
  return c;
}

int run_classifier(const ClassifierFlags& f) {
  ClassifierTrainResult r = train_classifier(resolve_classifier_config(f));
  if (r.stopped_early) {
    std::cout << "stopped after step " << r.steps << "; continue with --resume\n";
    return 0;
  }
  std::cout << format_class_accuracy_table(r.test, r.labels);
  std::printf("test accuracy %.2f%% after %lld steps (%.1f s); model written to %s\n", 100.0 * r.test_accuracy,
              static_cast<long long>(r.steps), r.seconds, r.model_dir.c_str());
  return 0;
}

void add_classifier(CLI::App& pretrain, ClassifierFlags& f) {
  CLI::App* sub = pretrain.add_subcommand(
      "classifier", "Train the Fashion-MNIST classifier (a reward, and the judge of the embedded model's samples)");
  ClassifierTrainConfig& v = f.values;
  f.data = sub->add_option("--data", v.data_dir, "folder with the Fashion-MNIST IDX files (.gz or plain)")
               ->capture_default_str();
  f.out = sub->add_option("--out", v.out_dir, "run folder: config.json, metrics.jsonl, checkpoint, model/");
  f.epochs = sub->add_option("--epochs", v.epochs, "passes over the training set")
                 ->check(CLI::PositiveNumber)->capture_default_str();
  f.batch_size = sub->add_option("--batch-size", v.batch_size, "images per step")
                     ->check(CLI::PositiveNumber)->capture_default_str();
  f.lr = sub->add_option("--lr", v.lr, "AdamW peak learning rate (cosine schedule)")
             ->check(CLI::PositiveNumber)->capture_default_str();
  f.weight_decay = sub->add_option("--weight-decay", v.weight_decay, "AdamW weight decay")
                       ->check(CLI::NonNegativeNumber)->capture_default_str();
  f.seed = sub->add_option("--seed", v.seed, "seed of the initial weights, data order and augmentation")
               ->capture_default_str();
  f.limit = sub->add_option("--limit", v.limit, "use only the first N train and test images (0: all)")
                ->check(CLI::NonNegativeNumber)->capture_default_str();
  f.checkpoint_every = sub->add_option("--checkpoint-every", v.checkpoint_every,
                                       "steps between checkpoints (0: epoch ends only)")
                           ->check(CLI::NonNegativeNumber)->capture_default_str();
  f.stop_after = sub->add_option("--stop-after", v.stop_after_steps,
                                 "stop with a checkpoint after N steps of this invocation (0: run to the end)")
                     ->check(CLI::NonNegativeNumber);
  sub->add_flag("--resume", v.resume, "continue the run in --out from its checkpoint, with its settings");
  sub->add_option("--config", f.config_file, "JSON config (keys as in the run's config.json); flags override it")
      ->check(CLI::ExistingFile);
}

}  // namespace

Command add_pretrain_command(CLI::App& root) {
  auto classifier = std::make_shared<ClassifierFlags>();
  CLI::App* sub =
      root.add_subcommand("pretrain", "Train the embedded models from scratch, with checkpoints and resume");
  sub->require_subcommand(1);
  add_classifier(*sub, *classifier);
  CLI::App* classifier_parser = sub->get_subcommand("classifier");
  return {sub, [classifier, classifier_parser]() -> int {
            if (classifier_parser->parsed()) return run_classifier(*classifier);
            fail("draft pretrain: no model given (see 'draft pretrain --help')");
          }};
}

}  // namespace draft::cli
