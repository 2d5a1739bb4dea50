// FinetuneRun's setup, restore and save: everything of a fine-tuning run that is not the step itself or
// the held-out evaluation.
#include "finetune/finetune_run.h"

#include <algorithm>
#include <cstdio>

#include <torch/torch.h>

#include "diffusion/text_to_image.h"
#include "train/metrics.h"
#include "finetune/data_parallel.h"
#include "util/error.h"
#include "util/log.h"
#include "util/seeds.h"

namespace draft {
namespace {

// The LoRA tensors as parameters of one module, so the run checkpoint stores them under stable names.
class LoRAHolder : public torch::nn::Module {
 public:
  explicit LoRAHolder(const LoRANetwork& network) {
    for (const auto& [name, tensor] : network.named_parameters()) {
      std::string key = name;
      std::replace(key.begin(), key.end(), '.', '_');
      register_parameter(key, tensor);
    }
  }
};

std::string step_name(int64_t step) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%06lld", static_cast<long long>(step));
  return buffer;
}

const FinetuneConfig& validated(const FinetuneConfig& config) {
  config.validate();
  return config;
}

}  // namespace

FinetuneRun::FinetuneRun(const FinetuneConfig& config, bool resume)
    : config_(validated(config)),
      group_(join_finetune_group(config_)),
      shard_(micro_batch_shard(*group_, config_.train.batch_size)),
      prompts_(config_.training_prompts()),
      run_(config_.out_dir, resume, group_->is_main()) {
  if (group_->size() > 1) {
    // Rank 0 decided whether the folder holds a run; every rank must see the same checkpoint.
    const double resuming = group_->all_reduce_sum(run_.resuming() ? 1.0 : 0.0);
    DRAFT_CHECK(resuming == 0 || resuming == group_->size(), "--resume: ", group_->where(), run_.resuming() ? " sees"
                : " does not see", " the checkpoint in ", config_.out_dir, ", unlike other ranks: a run on several "
                "machines needs its run folder on a file system every machine shares");
  }
  run_.start(config_.to_json(), config_.resumable_keys(), config_.train.tensorboard);
  WeightsOptions weights;
  weights.dtype = parse_compute_dtype(config_.dtype);
  weights.device = parse_device(rank_device(config_.device));
  sd_ = load_stable_diffusion(config_.model, weights);
  RewardContext reward_context;
  reward_context.device = weights.device;
  reward_context.dtype = weights.dtype;
  reward_ = make_reward(config_.reward, reward_context);
  method_ = make_method(config_.method);
  method_name_ = method_->name();
  // sampler.eta left unset: the method's own η (config.json keeps it unset, which resolves the same on resume).
  if (config_.sampler.eta < 0.0) config_.sampler.eta = method_->default_eta();
  DRAFT_CHECK(!method_->needs_differentiable_reward() || reward_->differentiable(), "reward '", reward_->name(),
              "' is not differentiable: method ", method_->name(), " backpropagates through it; use a differentiable "
              "reward (e.g. jpeg-proxy instead of jpeg) or --method ddpo, which needs only reward values");
  // The held-out evaluation may measure another reward than the one trained on (e.g. train on jpeg-proxy,
  // report the true jpeg size).
  if (!config_.eval.reward.empty()) eval_reward_ = make_reward(config_.eval.reward, reward_context);
  // LoRA's A is drawn from a generator seeded from the run's seed, so that a run and its resumed twin start
  // from the same adapter.
  network_ = inject_lora(sd_.unet, config_.lora, derive_seed(config_.train.seed, 0, -1));
  params_ = network_.parameters();
  lora_holder_ = std::make_shared<LoRAHolder>(network_);
  optimizer_ = std::make_unique<torch::optim::AdamW>(
      params_, torch::optim::AdamWOptions(config_.optimizer.lr)
                   .betas({config_.optimizer.beta1, config_.optimizer.beta2})
                   .weight_decay(config_.optimizer.weight_decay)
                   .eps(config_.optimizer.eps));
  lora_format_ = parse_lora_format(config_.train.lora_format);
  progress_.seed = config_.train.seed;
}

std::vector<CheckpointModule> FinetuneRun::checkpoint_modules(torch::nn::Module& method_state) {
  return {{"lora.", lora_holder_.get()}, {"method.", &method_state}};
}

void FinetuneRun::restore() {
  const std::string path = run_.folder().checkpoint_path();
  StateTensors state(checkpoint_tensors_with_prefix(path, "method.", sd_.weights.device));
  progress_ = run_.restore(checkpoint_modules(state), optimizer_.get());
  method_->load_state(state.tensors(), shard_);
  for (const auto& record : read_metrics(run_.folder().metrics_path())) {
    if (record.value("kind", "") == "eval") {
      if (summary_.first_eval.is_null()) summary_.first_eval = record;
      summary_.last_eval = record;
      continue;
    }
    summary_.reward_queries = record.value("reward_queries", int64_t{0});
    summary_.unet_evals = record.value("unet_evals", int64_t{0});
    summary_.skipped_steps = record.value("skipped_total", int64_t{0});
    wall_offset_ = record.value("wall_time", 0.0);
  }
  DRAFT_LOG_INFO("resuming {} at step {} of {}", run_.folder().dir(), progress_.step, config_.train.steps);
}

void FinetuneRun::synchronize_start() { group_->broadcast(params_, 0); }

void FinetuneRun::save(int64_t step, bool final) {
  StateTensors state(method_->state(shard_));  // a collective: every rank gathers, rank 0 writes
  run_.save(checkpoint_modules(state), optimizer_.get(), progress_);
  if (!run_.writer()) return;
  const std::string lora_file =
      run_.folder().file(final ? "lora_final.safetensors" : "lora_step_" + step_name(step) + ".safetensors");
  save_lora(network_, lora_file, lora_format_);
  summary_.lora_path = lora_file;
}

}  // namespace draft
