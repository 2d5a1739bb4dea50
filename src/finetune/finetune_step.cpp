// One optimizer step of a fine-tuning run (trainer.cpp's header, steps 1-4):
//   1. lr from the warm-up + constant/cosine schedule;
//   2. for each of train.grad_accumulation micro-batches: every sample's prompt and x_T drawn from
//      (seed, step, global sample index), the method's forward pass (loss, rewards), backward of
//      loss / accumulation;
//   3. in a data-parallel run, the gradients averaged over the ranks (one all-reduce);
//   4. a non-finite loss, reward or gradient norm on any rank skips the step (gradients dropped), else the
//      global gradient norm is clipped and AdamW steps;
//   5. the metrics record, reduced over the ranks.
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
  // Sample g of the step's global batch (micro-batch m holds g = m B ... m B + B − 1) draws its prompt and
  // x_T from (seed, step, g) and its method draws from another stream of the same (util/seeds.h); this
  // process computes samples [offset, offset + local) of every micro-batch (data_parallel.h).
  const int64_t batch = config_.train.batch_size;
  const int64_t first = micro * batch;
  MethodContext context;
  context.sd = &sd_;
  context.reward = reward_.get();
  std::vector<at::Tensor> x_T;
  const int64_t size = sd_.default_image_size();
  for (int64_t j = 0; j < batch; ++j) {
    at::Generator data = cpu_generator(derive_seed(config_.train.seed, RandomStream::kSampleData, step, first + j));
    const int64_t pick = torch::randint(static_cast<int64_t>(prompts_.size()), {1}, data, torch::kLong).item<int64_t>();
    context.global_prompts.push_back(prompts_[static_cast<std::size_t>(pick)]);
    if (j < shard_.offset || j >= shard_.offset + shard_.local) continue;
    context.prompts.push_back(context.global_prompts.back());
    x_T.push_back(initial_latents(sd_, 1, size, size, data));
  }
  {
    torch::NoGradGuard no_grad;
    context.conditioning = encode_prompts(sd_, context.prompts, {}, 1, 0, config_.sampler.guidance_scale > 1.0);
  }
  context.x_T = torch::cat(x_T);
  seed_method_draws(context, config_.train.seed, step, first + shard_.offset);
  context.params = params_;
  context.sampler = config_.sampler;
  context.step = step;
  context.micro_batch = micro;
  context.micro_batches = config_.train.grad_accumulation;
  context.shard = shard_;
  return context;
}

void FinetuneRun::run_micro_batches(int64_t step, StepTotals& totals) {
  const int64_t micro_batches = config_.train.grad_accumulation;
  for (int64_t micro = 0; micro < micro_batches; ++micro) {
    MethodContext context = micro_batch_context(step, micro);
    MethodStep out = method_->run(context);
    const double loss = out.loss.item<double>();
    totals.queries += static_cast<double>(out.reward_queries);
    totals.evals += static_cast<double>(out.unet_evals);
    // The rewards into their global samples' columns (DRaFT-LV scores each sample n times: rows).
    const at::Tensor rewards = out.rewards.detach().to(torch::kCPU, torch::kDouble).reshape({-1, shard_.local});
    if (!totals.rewards.defined()) {
      totals.rewards = torch::zeros({micro_batches, rewards.size(0), config_.train.batch_size}, torch::kDouble);
    }
    totals.rewards[micro].narrow(1, shard_.offset, shard_.local).copy_(rewards);
    // A non-finite micro-batch spoils the step; the others still run, so that every rank takes part in
    // the same collectives (DDPO gathers rewards inside run()).
    // Every rank adds the same keys, so that reduce_totals' buffers line up.
    totals.loss_sum += loss;
    for (const auto& [key, value] : out.stats) totals.stats[key] += value / static_cast<double>(micro_batches);
    if (!finite(loss) || !torch::isfinite(rewards).all().item<bool>()) totals.bad = true;
    if (totals.bad) continue;
    // loss is the mean over this process's samples: / micro-batches here, / ranks in average_gradients,
    // gives every sample of the global batch the weight 1 / (batch_size × grad_accumulation).
    if (!out.gradients_accumulated) (out.loss / static_cast<double>(micro_batches)).backward();
  }
}

// The mean of the ranks' gradients with one all-reduce of one flat buffer, which also carries the ranks'
// "non-finite" flags, so that every rank skips the same steps.
void FinetuneRun::average_gradients(StepTotals& totals) {
  if (group_->size() == 1) return;
  const auto start = std::chrono::steady_clock::now();
  std::vector<at::Tensor> buffer;
  for (auto& p : params_) {
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    buffer.push_back(p.grad());
  }
  const at::Tensor bad = torch::full({1}, totals.bad ? 1.0 : 0.0, params_.front().options());
  buffer.push_back(bad);
  group_->all_reduce_mean(buffer);
  totals.bad = bad.item<double>() > 0;
  totals.sync_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Losses, counts and method statistics over the ranks (sums; means for the statistics, maxima for those
// named *_max), and every rank's rewards in their global columns.
void FinetuneRun::reduce_totals(StepTotals& totals) {
  if (group_->size() == 1) return;
  std::vector<double> sums = {totals.loss_sum, totals.queries, totals.evals};
  std::vector<double> maxima;
  for (const auto& [key, value] : totals.stats) {
    const bool is_max = key.size() > 4 && key.compare(key.size() - 4, 4, "_max") == 0;
    (is_max ? maxima : sums).push_back(value);
  }
  const at::Tensor sum_tensor = torch::tensor(sums, torch::kDouble);
  group_->all_reduce_sum({sum_tensor, totals.rewards});
  const at::Tensor max_tensor = torch::tensor(maxima.empty() ? std::vector<double>{0.0} : maxima, torch::kDouble);
  group_->all_reduce_max({max_tensor});
  const double ranks = static_cast<double>(group_->size());
  totals.loss_sum = sum_tensor[0].item<double>() / ranks;
  totals.queries = sum_tensor[1].item<double>();
  totals.evals = sum_tensor[2].item<double>();
  int64_t s = 3, m = 0;
  for (auto& [key, value] : totals.stats) {
    const bool is_max = key.size() > 4 && key.compare(key.size() - 4, 4, "_max") == 0;
    value = is_max ? max_tensor[m++].item<double>() : sum_tensor[s++].item<double>() / ranks;
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
  const at::Tensor all = totals.rewards.flatten();
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
  if (group_->size() > 1) record["dist_sync_s"] = totals.sync_seconds;
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
  average_gradients(totals);
  const double grad_norm = clip_or_skip(step, totals);
  reduce_totals(totals);
  ++progress_.step;
  summary_.reward_queries += static_cast<int64_t>(totals.queries);
  summary_.unet_evals += static_cast<int64_t>(totals.evals);
  train_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start).count();
  summary_.wall_time_s = wall_offset_ + train_seconds_;
  const nlohmann::json record = step_record(totals, grad_norm, lr, summary_.wall_time_s);
  run_.log(record);
  return record;
}

}  // namespace draft
