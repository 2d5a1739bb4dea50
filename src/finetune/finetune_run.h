// One `draft finetune` run between its steps: the frozen model with its LoRA, the reward, the method, the
// optimizer, the run folder and the counters. The trainer (trainer.cpp) drives it: setup (the
// constructor), restore, step, evaluate and save, each in its own small function. Internal to src/finetune.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>
#include <torch/optim/adamw.h>

#include "diffusion/stable_diffusion.h"
#include "finetune/data_parallel.h"
#include "finetune/finetune_config.h"
#include "finetune/method.h"
#include "finetune/trainer.h"
#include "lora/lora.h"
#include "lora/lora_file.h"
#include "rewards/reward_evaluation.h"
#include "rewards/reward_registry.h"
#include "train/resumable_run.h"

namespace draft {

class FinetuneRun {
 public:
  /// Setup: validates the config, joins the process group when launched as one of several (refusing ranks
  /// with other settings), opens the run folder (refusing a changed config on resume), loads the model, the
  /// rewards and the method, adds a fresh LoRA (its A drawn from the run's seed) and the optimizer.
  FinetuneRun(const FinetuneConfig& config, bool resume);

  /// When resuming: the LoRA, AdamW and method state from the checkpoint, the metrics after it dropped,
  /// and the training totals read back from metrics.jsonl. Every rank reads the checkpoint.
  void restore();
  /// Makes every rank start from rank 0's LoRA (a broadcast; identical already by construction).
  void synchronize_start();
  /// One optimizer step (steps 1-4 of trainer.cpp's header); returns its metrics record, already logged.
  nlohmann::json step();
  /// The held-out evaluation at `step`: reward statistics into metrics.jsonl, the grid into samples/.
  void evaluate(int64_t step);
  /// The run checkpoint, and the LoRA file (lora_final when `final`, else lora_step_NNNNNN).
  void save(int64_t step, bool final);

  bool resuming() const { return run_.resuming(); }
  /// Rank 0 (or the only process): the one that writes files and prints progress.
  bool is_main() const { return group_->is_main(); }
  int64_t steps_done() const { return progress_.step; }
  const FinetuneConfig& config() const { return config_; }
  const std::string& method_name() const { return method_name_; }
  FinetuneSummary& summary() { return summary_; }

 private:
  // What the micro-batches of one step add up to, on this process, then (after reduce_totals) over all.
  struct StepTotals {
    double loss_sum = 0;  // the sum of the micro-batches' losses
    at::Tensor rewards;   // (micro-batches, queries per sample, global batch) in the global samples' order
    double queries = 0, evals = 0;
    std::map<std::string, double> stats;  // the method's numbers, averaged over the micro-batches
    bool bad = false;
    double sync_seconds = 0;  // in the gradient all-reduce
  };
  MethodContext micro_batch_context(int64_t step, int64_t micro);
  void run_micro_batches(int64_t step, StepTotals& totals);
  void average_gradients(StepTotals& totals);
  void reduce_totals(StepTotals& totals);
  double clip_or_skip(int64_t step, StepTotals& totals);
  RewardEvalResult evaluate_shared(const RewardEvalOptions& eval);
  nlohmann::json step_record(const StepTotals& totals, double grad_norm, double lr, double wall) const;
  std::vector<CheckpointModule> checkpoint_modules(torch::nn::Module& method_state);

  FinetuneConfig config_;
  std::unique_ptr<ProcessGroup> group_;  // the one-process group unless launched as one of several
  BatchShard shard_;                     // this process's part of every micro-batch
  std::vector<std::string> prompts_;
  ResumableRun run_;
  StableDiffusion sd_;
  RewardPtr reward_;
  RewardPtr eval_reward_;  // null: the training reward
  std::unique_ptr<Method> method_;
  std::string method_name_;
  LoRANetwork network_;
  std::vector<at::Tensor> params_;
  std::shared_ptr<torch::nn::Module> lora_holder_;
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  LoRAFormat lora_format_;
  TrainingProgress progress_;
  FinetuneSummary summary_;
  double wall_offset_ = 0;    // training seconds of earlier sessions of the run
  double train_seconds_ = 0;  // optimizer steps of this session only: evaluation and saving are not counted
  int64_t bad_in_row_ = 0;
};

}  // namespace draft
