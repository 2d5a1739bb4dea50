// draft config: every key of a training command's config, from the same tables that read, write and check
// the configs and make the flags: the defaults as a JSON config (a starting point for --config), or the
// markdown reference of docs/config.md (a test checks that the docs hold exactly this output).
#include <iostream>
#include <memory>

#include "command.h"
#include "finetune/finetune_config.h"
#include "pretrain/classifier_training.h"
#include "pretrain/text_to_image_training.h"
#include "pretrain/vae_training.h"
#include "util/error.h"

namespace draft::cli {
namespace {

struct ConfigCommandFlags {
  std::string name;
  bool markdown = false;
};

template <typename Config>
int print(const ConfigTable<Config>& table, bool markdown) {
  const Config defaults;
  if (markdown) {
    std::cout << table.markdown(defaults);
  } else {
    std::cout << table.to_json(defaults).dump(2) << '\n';
  }
  return 0;
}

int run_config(const ConfigCommandFlags& f) {
  if (f.name == "finetune") return print(finetune_config_table(), f.markdown);
  if (f.name == "pretrain-classifier") return print(classifier_train_config_table(), f.markdown);
  if (f.name == "pretrain-vae") return print(vae_train_config_table(), f.markdown);
  if (f.name == "pretrain-unet") return print(text_to_image_train_config_table(), f.markdown);
  fail("draft config: '", f.name, "' is not a config (finetune, pretrain-classifier, pretrain-vae or pretrain-unet)");
}

}  // namespace

Command add_config_command(CLI::App& root) {
  auto f = std::make_shared<ConfigCommandFlags>();
  CLI::App* sub = root.add_subcommand("config", "Print a training command's default config (JSON), or its key "
                                                "reference (--markdown, as in docs/config.md)");
  sub->add_option("name", f->name, "finetune, pretrain-classifier, pretrain-vae or pretrain-unet")->required();
  sub->add_flag("--markdown", f->markdown, "the reference table: key, flag, type, default, resume rule, meaning");
  return {sub, [f] { return run_config(*f); }};
}

}  // namespace draft::cli
