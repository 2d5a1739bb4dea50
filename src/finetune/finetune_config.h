// FinetuneConfig: every setting of a `draft finetune` run, as nested JSON objects (model, reward,
// prompts, method, lora, sampler, optimizer, train, eval). Layers compose as JSON merge patches:
// defaults < the run's config.json (resume) < --config FILE < flags.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lora/lora.h"
#include "finetune/method.h"
#include "rewards/reward_evaluation.h"

namespace draft {

/// The `optimizer.*` keys: AdamW and its learning-rate schedule.
struct OptimizerConfig {
  double lr = 4e-4;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double weight_decay = 0.1;
  double eps = 1e-8;
  double max_grad_norm = 1.0;     ///< gradient clipping by global norm; 0 disables it
  std::string schedule = "constant";  ///< constant | cosine (after the warm-up)
  int64_t warmup_steps = 0;
};

/// The `train.*` keys: the loop itself.
struct TrainConfig {
  int64_t steps = 100;            ///< optimizer steps
  int64_t batch_size = 4;         ///< samples per micro-batch, over all processes of a data-parallel run
  int64_t grad_accumulation = 1;  ///< micro-batches per optimizer step
  uint64_t seed = 0;              ///< every draw of step s derives from (seed, s): resume is exact
  int64_t save_every = 50;        ///< LoRA + checkpoint every N steps (and at the end)
  int64_t max_bad_steps = 5;      ///< non-finite steps in a row that stop the run
  std::string lora_format = "diffusers";  ///< diffusers | kohya, for the LoRA files written
  bool tensorboard = true;                ///< TensorBoard events files in the run folder's tensorboard/
};

/// The `eval.*` keys: held-out evaluation at fixed seeds and prompts, and the sample grids.
struct EvalConfig {
  int64_t every = 25;              ///< evaluate every N steps (and at step 0 and at the end); 0: not periodically
  std::vector<int64_t> at;         ///< evaluate at these steps too (e.g. log-spaced ones for a benchmark)
  std::vector<std::string> prompts;  ///< empty: the training prompts
  int64_t images_per_prompt = 2;
  uint64_t seed = 1000000;         ///< distinct from the training seeds
  std::string reward;              ///< reward spec of the evaluation; empty: the training reward
  double eta = -1;                 ///< DDIM η of the evaluation; < 0: sampler.eta

  /// Whether step `step` (1-based, of `total`) is evaluated: every N, listed in `at`, or the last step
  /// when any evaluation is configured. Step 0 (the base model) follows the same rule as the last.
  bool due(int64_t step, int64_t total) const;
};

/// The `dist.*` keys: data-parallel runs (docs/distributed.md). Used only when launched by torchrun, srun
/// or `draft launch`; a run's numbers do not depend on them or on the number of processes.
struct DistConfig {
  std::string backend = "auto";  ///< auto | gloo | nccl (auto: NCCL on CUDA when built with it, else Gloo)
  double timeout_s = 600;        ///< a collective or the start that waits longer for a rank fails
};

struct FinetuneConfig {
  std::string model;                 ///< diffusers-layout model folder
  std::string reward = "classifier";  ///< reward spec (docs/rewards.md)
  std::vector<std::string> prompts;  ///< training prompts (or prompts_file)
  std::string prompts_file;
  std::string out_dir;               ///< the run folder
  std::string device = "cpu";
  std::string dtype = "f32";
  MethodConfig method;
  LoRAConfig lora;
  /// sampler.eta < 0 (the default): the method's own, Method::default_eta() (0; DDPO 1).
  SamplerSettings sampler = [] {
    SamplerSettings s;
    s.eta = -1.0;
    return s;
  }();
  OptimizerConfig optimizer;
  TrainConfig train;
  EvalConfig eval;
  DistConfig dist;

  nlohmann::json to_json() const;
  /// Reads a complete or partial config over the defaults; unknown keys and wrong types throw
  /// draft::Error naming `source` and the key ("optimizer.lr").
  static FinetuneConfig from_json(const nlohmann::json& json, const std::string& source);
  /// The keys a resumed run may change: those the table marks, less train.steps under a cosine schedule.
  std::vector<std::string> resumable_keys() const;
  /// Throws draft::Error naming the first key out of range.
  void validate() const;
  /// `prompts`, or the lines of prompts_file.
  std::vector<std::string> training_prompts() const;
};

/// The held-out evaluation (`eval.*`) as options of evaluate_reward: eval.prompts (else `training_prompts`),
/// images per prompt, the sampler's steps and guidance, eval.eta (else sampler.eta) and eval.seed. The
/// trainer's evaluations and the benchmark's judgement at a second η share it.
RewardEvalOptions held_out_eval_options(const FinetuneConfig& config,
                                        const std::vector<std::string>& training_prompts);

/// Every `draft finetune` key, declared once: reading, writing, checks, the CLI flags and docs/config.md
/// come from this table.
const ConfigTable<FinetuneConfig>& finetune_config_table();

}  // namespace draft
