// FinetuneConfig: the table of every key (read, write, checks, flags and docs come from it) and the checks
// that involve several keys.
#include "finetune/finetune_config.h"

#include <algorithm>

#include "data/prompt_file.h"
#include "util/error.h"

namespace draft {

const ConfigTable<FinetuneConfig>& finetune_config_table() {
  static const ConfigTable<FinetuneConfig> table = [] {
    ConfigTable<FinetuneConfig> t;
    t.add("model", "--model", "model folder (diffusers layout)", DRAFT_MEMBER(model));
    t.add("reward", "--reward", "reward spec (docs/rewards.md), e.g. classifier or classifier:1,jpeg-proxy:-0.1",
          DRAFT_MEMBER(reward));
    t.add("prompts", "--prompt", "training prompt (repeat for several)", DRAFT_MEMBER(prompts));
    t.add("prompts_file", "--prompts", "file with one training prompt per line", DRAFT_MEMBER(prompts_file));
    t.add("out_dir", "--run-dir", "run folder (default runs/<date-time>)", DRAFT_MEMBER(out_dir), {}, true);
    t.add("device", "--device", "cpu, cuda or cuda:N", DRAFT_MEMBER(device), {}, true);
    t.add("dtype", "--dtype", "compute dtype of the frozen model: f32, f16, bf16 or f64 (exactness checks)",
          DRAFT_MEMBER(dtype), check_one_of({"f32", "f16", "bf16", "f64"}));
    t.add_section("method", method_config_table(), DRAFT_MEMBER(method));
    t.add_section("lora", lora_config_table(), DRAFT_MEMBER(lora));
    t.add("sampler.steps", "--sampling-steps", "DDIM steps per sample", DRAFT_MEMBER(sampler.steps), check_at_least(1));
    t.add("sampler.guidance", "--guidance", "classifier-free guidance scale (<= 1: none)",
          DRAFT_MEMBER(sampler.guidance_scale));
    t.add("sampler.eta", "--eta", "DDIM eta (-1: the method's own, 0; ddpo 1)", DRAFT_MEMBER(sampler.eta),
          check_at_least(-1.0));
    t.add("sampler.checkpoint", "--grad-checkpoint",
          "gradient checkpointing of every UNet call and VAE decode with gradients (--no-checkpoint: false)",
          DRAFT_MEMBER(sampler.checkpoint));
    t.add("optimizer.lr", "--lr", "AdamW learning rate", DRAFT_MEMBER(optimizer.lr), check_positive());
    t.add("optimizer.beta1", "--beta1", "AdamW beta1", DRAFT_MEMBER(optimizer.beta1), check_range(0, 1, false));
    t.add("optimizer.beta2", "--beta2", "AdamW beta2", DRAFT_MEMBER(optimizer.beta2), check_range(0, 1, false));
    t.add("optimizer.weight_decay", "--weight-decay", "AdamW weight decay", DRAFT_MEMBER(optimizer.weight_decay),
          check_non_negative());
    t.add("optimizer.eps", "--adam-eps", "AdamW epsilon", DRAFT_MEMBER(optimizer.eps), check_positive());
    t.add("optimizer.max_grad_norm", "--max-grad-norm", "clip the global gradient norm (0: off)",
          DRAFT_MEMBER(optimizer.max_grad_norm), check_non_negative());
    t.add("optimizer.schedule", "--schedule", "constant or cosine after the warm-up", DRAFT_MEMBER(optimizer.schedule),
          check_one_of({"constant", "cosine"}));
    t.add("optimizer.warmup_steps", "--warmup-steps", "linear warm-up steps", DRAFT_MEMBER(optimizer.warmup_steps),
          check_non_negative());
    t.add("train.steps", "--steps",
          "optimizer steps (a resumed run may change it unless optimizer.schedule is cosine, which spans it)",
          DRAFT_MEMBER(train.steps), check_at_least(1), true);
    t.add("train.batch_size", "--batch-size",
          "samples per micro-batch, over all processes (a data-parallel run splits it; a multiple of their number)",
          DRAFT_MEMBER(train.batch_size), check_at_least(1));
    t.add("train.grad_accumulation", "--grad-accumulation", "micro-batches per optimizer step",
          DRAFT_MEMBER(train.grad_accumulation), check_at_least(1));
    t.add("train.seed", "--seed", "seed of every draw (prompts, noise, method)", DRAFT_MEMBER(train.seed));
    t.add("train.save_every", "--save-every", "write the LoRA and checkpoint every N steps",
          DRAFT_MEMBER(train.save_every), check_at_least(1), true);
    t.add("train.max_bad_steps", "--max-bad-steps", "non-finite steps in a row that stop the run",
          DRAFT_MEMBER(train.max_bad_steps), check_at_least(1), true);
    t.add("train.lora_format", "--lora-format", "diffusers or kohya, for the LoRA files written",
          DRAFT_MEMBER(train.lora_format), check_one_of({"diffusers", "kohya"}), true);
    t.add("train.tensorboard", "--tensorboard", "write TensorBoard events files into the run folder's tensorboard/ "
          "(--no-tensorboard: false)", DRAFT_MEMBER(train.tensorboard), {}, true);
    t.add("eval.every", "--eval-every", "held-out evaluation every N steps (and at step 0 and the end; 0: never)",
          DRAFT_MEMBER(eval.every), check_non_negative(), true);
    t.add("eval.at", "--eval-at", "also evaluate at these steps (repeat)", DRAFT_MEMBER(eval.at), {}, true);
    t.add("eval.prompts", "--eval-prompt", "held-out prompt (repeat; default: the training prompts)",
          DRAFT_MEMBER(eval.prompts), {}, true);
    t.add("eval.images_per_prompt", "--eval-n", "held-out images per prompt", DRAFT_MEMBER(eval.images_per_prompt),
          check_at_least(1), true);
    t.add("eval.seed", "--eval-seed", "seed of the held-out noise (distinct from the training seeds)",
          DRAFT_MEMBER(eval.seed), {}, true);
    t.add("eval.reward", "--eval-reward", "reward spec of the evaluation (default: the training reward)",
          DRAFT_MEMBER(eval.reward), {}, true);
    t.add("eval.eta", "--eval-eta", "DDIM eta of the evaluation (-1: sampler.eta)", DRAFT_MEMBER(eval.eta), {}, true);
    t.add("dist.backend", "--dist-backend", "data-parallel backend: auto (NCCL on CUDA, else Gloo), gloo or nccl",
          DRAFT_MEMBER(dist.backend), check_one_of({"auto", "gloo", "nccl"}), true);
    t.add("dist.timeout", "--dist-timeout",
          "seconds a data-parallel run waits for a rank (at start and in every collective) before failing",
          DRAFT_MEMBER(dist.timeout_s), check_positive(), true);
    return t;
  }();
  return table;
}

nlohmann::json FinetuneConfig::to_json() const { return finetune_config_table().to_json(*this); }

FinetuneConfig FinetuneConfig::from_json(const nlohmann::json& json, const std::string& source) {
  FinetuneConfig c;
  finetune_config_table().read(json, source, c);
  return c;
}

std::vector<std::string> FinetuneConfig::resumable_keys() const {
  std::vector<std::string> keys = finetune_config_table().resumable_paths();
  if (optimizer.schedule == "cosine") keys.erase(std::remove(keys.begin(), keys.end(), "train.steps"), keys.end());
  return keys;
}

bool EvalConfig::due(int64_t step, int64_t total) const {
  if (every <= 0 && at.empty()) return false;
  if (step == 0 || step == total) return true;
  if (every > 0 && step % every == 0) return true;
  return std::find(at.begin(), at.end(), step) != at.end();
}

void FinetuneConfig::validate() const {
  DRAFT_CHECK(!model.empty(), "model is required: a diffusers-layout folder (--model DIR)");
  DRAFT_CHECK(!reward.empty(), "reward is required (--reward SPEC, see docs/rewards.md)");
  DRAFT_CHECK(!prompts.empty() || !prompts_file.empty(), "prompts are required: --prompt TEXT or --prompts FILE");
  DRAFT_CHECK(prompts.empty() || prompts_file.empty(), "give prompts or prompts_file, not both");
  DRAFT_CHECK(!out_dir.empty(), "out_dir is required (--run-dir DIR)");
  finetune_config_table().validate(*this);
  method.validate(sampler.steps);
  DRAFT_CHECK(method.name != "ddpo" || sampler.eta != 0.0, "method ddpo needs a stochastic sampler for its "
              "log-probabilities: sampler.eta must be > 0; leave it unset for DDPO's 1, got 0");
  lora.validate();
  for (int64_t s : eval.at) DRAFT_CHECK(s >= 1, "eval.at holds step ", s, "; steps are >= 1 (step 0 is always evaluated)");
}

std::vector<std::string> FinetuneConfig::training_prompts() const {
  if (!prompts.empty()) return prompts;
  return read_prompt_file(prompts_file);
}

RewardEvalOptions held_out_eval_options(const FinetuneConfig& config,
                                        const std::vector<std::string>& training_prompts) {
  RewardEvalOptions eval;
  eval.prompts = config.eval.prompts.empty() ? training_prompts : config.eval.prompts;
  eval.images_per_prompt = config.eval.images_per_prompt;
  eval.steps = config.sampler.steps;
  eval.guidance_scale = config.sampler.guidance_scale;
  eval.eta = config.eval.eta >= 0 ? config.eval.eta : config.sampler.eta;
  eval.seed = config.eval.seed;
  return eval;
}

}  // namespace draft
