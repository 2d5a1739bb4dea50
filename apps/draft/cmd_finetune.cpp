// draft finetune: reward fine-tuning of a model's LoRA with a DRaFT-family method. Settings compose as
// defaults < the run's config.json (--resume) < --config FILE < flags; every config key has a flag, made
// from the config table (src/finetune/finetune_config.cpp; reference in docs/config.md).
#include <ctime>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "command.h"
#include "config_flags.h"
#include "finetune/trainer.h"
#include "model_threads.h"
#include "output_paths.h"
#include "rewards/reward_registry.h"
#include "train/process_group.h"
#include "util/error.h"

namespace draft::cli {
namespace {

struct FinetuneFlags {
  std::unique_ptr<ConfigFlags<FinetuneConfig>> config;
  RunFlags run;
  std::string refl_range;
  bool no_checkpoint = false;
  bool no_tensorboard = false;
};

std::string default_run_dir() {
  const std::time_t now = std::time(nullptr);
  char buffer[64];
  std::strftime(buffer, sizeof(buffer), "runs/%Y%m%d-%H%M%S", std::localtime(&now));
  return buffer;
}

int run_finetune_command(FinetuneFlags& f) {
  nlohmann::json extra = nlohmann::json::object();
  if (!f.refl_range.empty()) {
    MethodConfig range;
    parse_refl_range(f.refl_range, range);
    extra["method"]["refl_min"] = range.refl_min;
    extra["method"]["refl_max"] = range.refl_max;
  }
  if (f.no_checkpoint) extra["sampler"]["checkpoint"] = false;
  if (f.no_tensorboard) extra["train"]["tensorboard"] = false;
  FinetuneConfig config = f.config->resolve(FinetuneConfig(), f.run, extra);
  // A data-parallel run (torchrun, srun, draft launch): rank 0 writes and prints, the others only compute.
  const DistributedEnv env = read_distributed_env();
  const bool main_rank = !env.launched || env.rank == 0;
  if (config.out_dir.empty()) {
    DRAFT_CHECK(!env.launched || env.world_size == 1, "a data-parallel run needs --run-dir: its ", env.world_size,
                " processes must agree on one run folder, and each would make its own default name");
    config.out_dir = default_run_dir();
  }
  config.validate();
  // Typos in what the run needs, before the run folder is made: a reward name, where the run can write.
  check_reward_spec(config.reward);
  if (!config.eval.reward.empty()) check_reward_spec(config.eval.reward);
  if (main_rank) check_output_folder(config.out_dir, "--run-dir");
  use_model_threading(config.model, config.train.batch_size, config.device);
  if (main_rank) std::cout << "run folder: " << config.out_dir << '\n';
  const FinetuneSummary s = run_finetune(config, f.run.resuming());
  if (!main_rank) return 0;
  std::cout << "done: " << s.steps_done << " steps, " << s.reward_queries << " reward queries, " << s.skipped_steps
            << " skipped, " << static_cast<int64_t>(s.wall_time_s) << " s\n";
  if (!s.first_eval.is_null() && !s.last_eval.is_null()) {
    std::cout << "held-out reward: step " << s.first_eval["step"] << " " << s.first_eval["eval_reward_mean"]
              << " -> step " << s.last_eval["step"] << " " << s.last_eval["eval_reward_mean"] << '\n';
  }
  std::cout << "LoRA: " << s.lora_path << '\n';
  return 0;
}

}  // namespace

Command add_finetune_command(CLI::App& root) {
  auto f = std::make_shared<FinetuneFlags>();
  CLI::App* sub = root.add_subcommand("finetune", "Fine-tune a model's LoRA on a reward (DRaFT, DRaFT-K, "
                                                  "DRaFT-LV, ReFL, AlignProp; DDPO for any reward)");
  f->run.add(sub);
  f->config = std::make_unique<ConfigFlags<FinetuneConfig>>(sub, finetune_config_table(), FinetuneConfig());
  sub->add_option("--refl-range", f->refl_range, "refl: stop-step range A:B (0-based step indices; sets "
                  "method.refl_min and method.refl_max)");
  sub->add_flag("--no-checkpoint", f->no_checkpoint, "keep every activation instead of recomputing (more memory; "
                "sets sampler.checkpoint false)");
  sub->add_flag("--no-tensorboard", f->no_tensorboard, "write no TensorBoard events files (sets train.tensorboard "
                "false)");
  return {sub, [f] { return run_finetune_command(*f); }};
}

}  // namespace draft::cli
