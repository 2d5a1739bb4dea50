// One optimizer step of a fine-tuning run (trainer.cpp's header, steps 1-4):
//   1. lr from the warm-up + constant/cosine schedule;
//   2. for each of train.grad_accumulation micro-batches: prompts and x_T drawn from the step's generator,
//      the method's forward pass (loss, rewards), backward of loss / accumulation;
//   3. a non-finite loss, reward or gradient norm skips the step (gradients dropped), else the global
//      gradient norm is clipped and AdamW steps;
//   4. the metrics record.
#include <chrono>
#include <cmath>

#include <torch/torch.h>

#include "diffusion/text_to_image.h"
#include "finetune/finetune_run.h"
#include "train/lr_schedule.h"
#include "util/error.h"
#include "util/log.h"
#include "util/seeds.h"

namespace draft {
namespace {

bool finite(double v) { return std::isfinite(v); }

}  // namespace

MethodContext FinetuneRun::micro_batch_context(int64_t step, int64_t micro) {
  // Streams 2m and 2m + 1 of step s: the data (prompts, x_T) and the method's own draws of micro-batch m.
  at::Generator data_gen = cpu_generator(derive_seed(config_.train.seed, 2 * micro, step));
  const at::Tensor picks = torch::randint(static_cast<int64_t>(prompts_.size()), {config_.train.batch_size},
                                          data_gen, torch::kLong);
  MethodContext context;
  context.sd = &sd_;
  context.reward = reward_.get();
  for (int64_t i = 0; i < picks.size(0); ++i) context.prompts.push_back(prompts_[picks[i].item<int64_t>()]);
  {
    torch::NoGradGuard no_grad;
    context.conditioning = encode_prompts(sd_, context.prompts, {}, 1, 0, config_.sampler.guidance_scale > 1.0);
  }
  const int64_t size = sd_.default_image_size();
  context.x_T = initial_latents(sd_, config_.train.batch_size, size, size, data_gen);
  context.generator = cpu_generator(derive_seed(config_.train.seed, 2 * micro + 1, step));
  context.params = params_;
  context.sampler = config_.sampler;
  context.step = step;
  context.micro_batch = micro;
  context.micro_batches = config_.train.grad_accumulation;
  return context;
}

void FinetuneRun::run_micro_batches(int64_t step, StepTotals& totals) {
  const double accumulation = static_cast<double>(config_.train.grad_accumulation);
  for (int64_t micro = 0; micro < config_.train.grad_accumulation; ++micro) {
    MethodContext context = micro_batch_context(step, micro);
    MethodStep out = method_->run(context);
    const double loss = out.loss.item<double>();
    totals.queries += out.reward_queries;
    totals.evals += out.unet_evals;
    totals.rewards.push_back(out.rewards.to(torch::kCPU, torch::kDouble));
    if (!finite(loss) || !torch::isfinite(out.rewards).all().item<bool>()) {
      totals.bad = true;
      return;
    }
    totals.loss_sum += loss;
    for (const auto& [key, value] : out.stats) totals.stats[key] += value / accumulation;
    if (!out.gradients_accumulated) (out.loss / accumulation).backward();
  }
}

// Clips the gradient (or, when anything was non-finite, drops it) and steps AdamW; returns the norm.
double FinetuneRun::clip_or_skip(int64_t step, StepTotals& totals) {
  double grad_norm = NAN;
  if (!totals.bad) {
    // clip_grad_norm_ with an infinite max only measures; a non-finite norm skips the step.
    const double max_norm = config_.optimizer.max_grad_norm > 0 ? config_.optimizer.max_grad_norm : INFINITY;
    grad_norm = torch::nn::utils::clip_grad_norm_(params_, max_norm);
    totals.bad = !finite(grad_norm);
  }
  if (!totals.bad) {
    bad_in_row_ = 0;
    optimizer_->step();
    return grad_norm;
  }
  optimizer_->zero_grad();
  ++bad_in_row_;
  ++summary_.skipped_steps;
  DRAFT_LOG_WARN("step {}: non-finite loss, reward or gradient; step skipped ({} in a row)", step + 1, bad_in_row_);
  DRAFT_CHECK(bad_in_row_ < config_.train.max_bad_steps, "stopped after ", bad_in_row_,
              " non-finite steps in a row (train.max_bad_steps) at step ", step + 1, "; the last good checkpoint is ",
              run_.folder().checkpoint_path(), ": lower optimizer.lr or use fewer steps with gradients (method.k)");
  return grad_norm;
}

nlohmann::json FinetuneRun::step_record(const StepTotals& totals, double grad_norm, double lr, double wall) const {
  const at::Tensor all = torch::cat(totals.rewards);
  nlohmann::json record = {{"step", progress_.step},
                           {"reward_mean", all.mean().item<double>()},
                           {"reward_std", all.numel() > 1 ? all.std().item<double>() : 0.0},
                           {"loss", totals.loss_sum / static_cast<double>(config_.train.grad_accumulation)},
                           {"grad_norm", finite(grad_norm) ? nlohmann::json(grad_norm) : nlohmann::json()},
                           {"lr", lr},
                           {"reward_queries", summary_.reward_queries},
                           {"unet_evals", summary_.unet_evals},
                           {"wall_time", wall},
                           {"skipped", totals.bad},
                           {"skipped_total", summary_.skipped_steps}};
  for (const auto& [key, value] : totals.stats) {
    if (!record.contains(key)) record[key] = finite(value) ? nlohmann::json(value) : nlohmann::json();
  }
  return record;
}

nlohmann::json FinetuneRun::step() {
  const int64_t step = progress_.step;
  const auto step_start = std::chrono::steady_clock::now();
  const double lr = scheduled_learning_rate(config_.optimizer.lr, config_.optimizer.schedule, step,
                                            config_.train.steps, config_.optimizer.warmup_steps);
  set_learning_rate(*optimizer_, lr);
  optimizer_->zero_grad();
  StepTotals totals;
  run_micro_batches(step, totals);
  const double grad_norm = clip_or_skip(step, totals);
  ++progress_.step;
  summary_.reward_queries += totals.queries;
  summary_.unet_evals += totals.evals;
  train_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start).count();
  summary_.wall_time_s = wall_offset_ + train_seconds_;
  const nlohmann::json record = step_record(totals, grad_norm, lr, summary_.wall_time_s);
  run_.log(record);
  return record;
}

}  // namespace draft
