// The method-agnostic fine-tuning loop of `draft finetune`: LoRA on the UNet, a Method for the loss,
// AdamW with warm-up and clipping, gradient accumulation, a NaN guard, held-out evaluation with sample
// grids, metrics, atomic LoRA checkpoints and exact resume.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "finetune/finetune_config.h"

namespace draft {

/// What a finished (or stopped) run reports.
struct FinetuneSummary {
  int64_t steps_done = 0;
  int64_t skipped_steps = 0;       ///< steps skipped for a non-finite loss, reward or gradient
  int64_t reward_queries = 0;      ///< images scored during training (all methods' extra images included)
  int64_t unet_evals = 0;          ///< UNet evaluations during training
  double wall_time_s = 0;          ///< training time, over every session of the run
  nlohmann::json first_eval;       ///< the eval record at the first evaluated step (null when none)
  nlohmann::json last_eval;        ///< the eval record at the last evaluated step
  std::string lora_path;           ///< the final LoRA file
};

struct FinetuneHooks {
  /// Called after every optimizer step with its metrics record (tests, benchmarks).
  std::function<void(const nlohmann::json&)> on_step;
  /// Replaces the progress bar's output; null: a progress bar on stdout.
  bool quiet = false;
};

/// Runs (or, with `resume`, continues) the run described by `config` in config.out_dir:
///   config.json                the resolved config
///   metrics.jsonl              per step: step, reward_mean, reward_std, loss, grad_norm, lr, reward_queries,
///                              unet_evals, wall_time (seconds of optimizer steps, evaluation excluded), skipped,
///                              and the method's stats (DDPO: approx_kl, clip_frac, ...); per evaluation (step 0,
///                              eval.every, eval.at, the last step): kind "eval", step, eval_reward_mean/std/ci95,
///                              diversity, and the training totals reward_queries, unet_evals, wall_time
///   checkpoint.safetensors     LoRA, AdamW state, step and the method's state (every train.save_every steps and
///                              at the end)
///   lora_step_NNNNNN.safetensors, lora_final.safetensors   LoRA files in train.lora_format
///   samples/step_NNNNNN.png    the evaluation grid, one row per eval prompt (step 0: the base model)
/// Every random draw of step s comes from generators seeded by (train.seed, s), so a resumed run continues
/// bit-identically on the CPU. Throws draft::Error for invalid settings, and when train.max_bad_steps
/// non-finite steps come in a row (the last checkpoint stays the last good one).
FinetuneSummary run_finetune(const FinetuneConfig& config, bool resume, const FinetuneHooks& hooks = {});

}  // namespace draft
