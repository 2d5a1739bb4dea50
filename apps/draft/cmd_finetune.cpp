// draft finetune: reward fine-tuning of a model's LoRA with a DRaFT-family method. Settings compose as
// defaults < the run's config.json (--resume) < --config FILE < flags; every config key has a flag.
#include <chrono>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "command.h"
#include "config_flags.h"
#include "finetune/trainer.h"
#include "io/json_file.h"
#include "util/error.h"
#include "util/threads.h"

namespace draft::cli {
namespace {

struct FinetuneFlags {
  std::unique_ptr<ConfigFlags> config;
  std::string config_file;
  std::string resume;
  std::string refl_range;
  bool no_checkpoint = false;
};

std::string default_run_dir() {
  const std::time_t now = std::time(nullptr);
  char buffer[64];
  std::strftime(buffer, sizeof(buffer), "runs/%Y%m%d-%H%M%S", std::localtime(&now));
  return buffer;
}

int run_finetune_command(FinetuneFlags& f) {
  nlohmann::json resolved = FinetuneConfig().to_json();
  nlohmann::json flags = f.config->overrides();
  if (!f.resume.empty()) {
    const std::string saved = f.resume + "/config.json";
    DRAFT_CHECK(std::filesystem::is_regular_file(saved), f.resume, " is not a run folder (no config.json); --resume takes the --run-dir of an earlier run");
    resolved.merge_patch(read_json_file(saved));
    flags["out_dir"] = f.resume;
  }
  if (!f.config_file.empty()) resolved.merge_patch(read_json_file(f.config_file));
  if (!f.refl_range.empty()) {
    MethodConfig range;
    parse_refl_range(f.refl_range, range);
    flags["method"]["refl_min"] = range.refl_min;
    flags["method"]["refl_max"] = range.refl_max;
  }
  if (f.no_checkpoint) flags["sampler"]["checkpoint"] = false;
  resolved.merge_patch(flags);
  if (resolved.value("out_dir", "").empty()) resolved["out_dir"] = default_run_dir();
  FinetuneConfig config = FinetuneConfig::from_json(resolved, "the resolved finetune config");
  config.validate();
  // The embedded model's small tensors run fastest with one OpenBLAS thread (docs/performance.md).
  if (config.model.find("fashion") != std::string::npos) use_small_tensor_threading();
  std::cout << "run folder: " << config.out_dir << '\n';
  const FinetuneSummary s = run_finetune(config, !f.resume.empty());
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
  f->config = std::make_unique<ConfigFlags>(sub);
  ConfigFlags& c = *f->config;
  const FinetuneConfig d;
  sub->add_option("--config", f->config_file, "JSON config (see configs/); flags override its keys");
  sub->add_option("--resume", f->resume, "continue the run in RUN_DIR from its last checkpoint (bit-identical on CPU)");
  c.add("--model", "/model", "model folder (diffusers layout)", d.model);
  c.add("--reward", "/reward", "reward spec (docs/rewards.md), e.g. classifier or classifier:1,jpeg-proxy:-0.1",
        d.reward);
  c.add("--prompt", "/prompts", "training prompt (repeat for several)", std::vector<std::string>{});
  c.add("--prompts", "/prompts_file", "file with one training prompt per line", d.prompts_file);
  c.add("--run-dir", "/out_dir", "run folder (default runs/<date-time>)", d.out_dir);
  c.add("--device", "/device", "cpu, cuda or cuda:N", d.device);
  c.add("--dtype", "/dtype", "compute dtype of the frozen model: f32, f16 or bf16", d.dtype);
  c.add("--method", "/method/name", "draft, draft-k, draft-lv, refl, alignprop or ddpo", d.method.name);
  c.add("--k", "/method/k", "draft-k: the last K steps keep gradients", d.method.k);
  c.add("--lv-n", "/method/lv_n", "draft-lv: re-noised copies of the last step", d.method.lv_n);
  sub->add_option("--refl-range", f->refl_range, "refl: stop-step range A:B (0-based step indices)");
  c.add("--refl-loss", "/method/refl_loss", "refl: neg or relu-margin", d.method.refl_loss);
  c.add("--refl-margin", "/method/refl_margin", "refl: margin of relu-margin", d.method.refl_margin);
  c.add("--refl-scale", "/method/refl_scale", "refl: scale of relu-margin", d.method.refl_scale);
  c.add("--alignprop-k-min", "/method/alignprop_k_min", "alignprop: smallest K", d.method.alignprop_k_min);
  c.add("--alignprop-k-max", "/method/alignprop_k_max", "alignprop: largest K", d.method.alignprop_k_max);
  c.add("--alignprop-distribution", "/method/alignprop_distribution", "alignprop: uniform or gaussian",
        d.method.alignprop_distribution);
  c.add("--alignprop-mean", "/method/alignprop_mean", "alignprop: mean of the gaussian K", d.method.alignprop_mean);
  c.add("--alignprop-std", "/method/alignprop_std", "alignprop: std of the gaussian K", d.method.alignprop_std);
  c.add("--ddpo-clip-range", "/method/ddpo_clip_range", "ddpo: PPO ratio clip range", d.method.ddpo_clip_range);
  c.add("--ddpo-adv-clip", "/method/ddpo_adv_clip", "ddpo: advantage clip", d.method.ddpo_adv_clip);
  c.add("--ddpo-timestep-fraction", "/method/ddpo_timestep_fraction", "ddpo: fraction of the steps trained on",
        d.method.ddpo_timestep_fraction);
  c.add("--ddpo-inner-epochs", "/method/ddpo_inner_epochs", "ddpo: optimizer steps per sample batch",
        d.method.ddpo_inner_epochs);
  c.add("--ddpo-per-prompt", "/method/ddpo_per_prompt", "ddpo: normalise advantages per prompt (true/false)",
        d.method.ddpo_per_prompt);
  c.add("--ddpo-buffer-size", "/method/ddpo_buffer_size", "ddpo: rewards kept per prompt", d.method.ddpo_buffer_size);
  c.add("--ddpo-min-count", "/method/ddpo_min_count", "ddpo: rewards a prompt needs before its own statistics",
        d.method.ddpo_min_count);
  c.add("--lora-rank", "/lora/rank", "LoRA rank", d.lora.rank);
  c.add("--lora-alpha", "/lora/alpha", "LoRA alpha (0: = rank)", d.lora.alpha);
  c.add("--lora-targets", "/lora/targets", "UNet module patterns to adapt", d.lora.targets);
  c.add("--sampling-steps", "/sampler/steps", "DDIM steps per sample", d.sampler.steps);
  c.add("--guidance", "/sampler/guidance", "classifier-free guidance scale", d.sampler.guidance_scale);
  c.add("--eta", "/sampler/eta", "DDIM eta", d.sampler.eta);
  sub->add_flag("--no-checkpoint", f->no_checkpoint, "keep every activation instead of recomputing (more memory)");
  c.add("--lr", "/optimizer/lr", "AdamW learning rate", d.optimizer.lr);
  c.add("--beta1", "/optimizer/beta1", "AdamW beta1", d.optimizer.beta1);
  c.add("--beta2", "/optimizer/beta2", "AdamW beta2", d.optimizer.beta2);
  c.add("--weight-decay", "/optimizer/weight_decay", "AdamW weight decay", d.optimizer.weight_decay);
  c.add("--adam-eps", "/optimizer/eps", "AdamW epsilon", d.optimizer.eps);
  c.add("--max-grad-norm", "/optimizer/max_grad_norm", "clip the global gradient norm (0: off)",
        d.optimizer.max_grad_norm);
  c.add("--schedule", "/optimizer/schedule", "constant or cosine after the warm-up", d.optimizer.schedule);
  c.add("--warmup-steps", "/optimizer/warmup_steps", "linear warm-up steps", d.optimizer.warmup_steps);
  c.add("--steps", "/train/steps", "optimizer steps", d.train.steps);
  c.add("--batch-size", "/train/batch_size", "samples per micro-batch", d.train.batch_size);
  c.add("--grad-accumulation", "/train/grad_accumulation", "micro-batches per optimizer step",
        d.train.grad_accumulation);
  c.add("--seed", "/train/seed", "seed of every draw (prompts, noise, method)", d.train.seed);
  c.add("--save-every", "/train/save_every", "write the LoRA and checkpoint every N steps", d.train.save_every);
  c.add("--max-bad-steps", "/train/max_bad_steps", "non-finite steps in a row that stop the run",
        d.train.max_bad_steps);
  c.add("--lora-format", "/train/lora_format", "diffusers or kohya", d.train.lora_format);
  c.add("--eval-every", "/eval/every", "held-out evaluation every N steps (0: never)", d.eval.every);
  c.add("--eval-prompt", "/eval/prompts", "held-out prompt (repeat; default: the training prompts)",
        std::vector<std::string>{});
  c.add("--eval-n", "/eval/images_per_prompt", "held-out images per prompt", d.eval.images_per_prompt);
  c.add("--eval-seed", "/eval/seed", "seed of the held-out noise", d.eval.seed);
  c.add("--eval-at", "/eval/at", "also evaluate at these steps (repeat)", std::vector<int64_t>{});
  c.add("--eval-reward", "/eval/reward", "reward spec of the evaluation (default: the training reward)",
        d.eval.reward);
  c.add("--eval-eta", "/eval/eta", "DDIM eta of the evaluation (-1: --eta)", d.eval.eta);
  return {sub, [f] { return run_finetune_command(*f); }};
}

}  // namespace draft::cli
