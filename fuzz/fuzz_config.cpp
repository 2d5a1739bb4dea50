// libFuzzer target over --config files: the input is one JSON file, read as every training command and the
// benchmark read theirs. `draft finetune` and each `draft pretrain classifier|vae|unet` resolve it exactly as the
// CLI does (ConfigFlags::resolve of apps/draft/config_flags.h: defaults < --config FILE < flags, through the
// command's config table) and validate it; `draft bench efficiency` loads it as a preset (EfficiencyPreset::load,
// with and without --quick). A pass: each reader raises draft::Error or returns a config; never a crash, a
// sanitizer report (a float-to-integer overflow included) or another exception, such as nlohmann's.
#include <cstdint>
#include <memory>

#include <CLI/CLI.hpp>

#include "config_flags.h"
#include "efficiency/efficiency_benchmark.h"
#include "finetune/finetune_config.h"
#include "fuzz_support.h"
#include "pretrain/classifier_training.h"
#include "pretrain/text_to_image_training.h"
#include "pretrain/vae_training.h"
#include "util/error.h"

namespace {

// One command's flags, made once: the CLI makes them from the config table in the same way.
template <typename Config>
struct Command {
  CLI::App app;
  std::unique_ptr<draft::cli::ConfigFlags<Config>> flags;
  explicit Command(const draft::ConfigTable<Config>& table)
      : flags(std::make_unique<draft::cli::ConfigFlags<Config>>(&app, table, Config())) {}

  // What `draft <command> --config FILE` does before training starts.
  void read(const std::string& path) const {
    draft::cli::RunFlags run;
    run.config_file = path;
    try {
      Config c = flags->resolve(Config(), run);
      if constexpr (std::is_same_v<Config, draft::FinetuneConfig>) {
        if (c.out_dir.empty()) c.out_dir = "runs/fuzz";  // the CLI's dated default
      }
      c.validate();
    } catch (const draft::Error&) {
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  draft::fuzz::quiet_single_threaded_torch();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static const Command<draft::FinetuneConfig> finetune(draft::finetune_config_table());
  static const Command<draft::ClassifierTrainConfig> classifier(draft::classifier_train_config_table());
  static const Command<draft::VAETrainConfig> vae(draft::vae_train_config_table());
  static const Command<draft::TextToImageTrainConfig> unet(draft::text_to_image_train_config_table());
  static const std::string path = draft::fuzz::scratch_file("config.json");
  draft::fuzz::write_file(path, data, size);
  finetune.read(path);
  classifier.read(path);
  vae.read(path);
  unet.read(path);
  for (bool quick : {false, true}) {
    try {
      (void)draft::EfficiencyPreset::load(path, quick);
    } catch (const draft::Error&) {
    }
  }
  return 0;
}
