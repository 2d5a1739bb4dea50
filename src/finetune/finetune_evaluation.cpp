// The held-out evaluation of a fine-tuning run: fixed prompts and seeds, the reward's statistics into
// metrics.jsonl ("kind": "eval") and the images as a grid in samples/step_NNNNNN.png (and TensorBoard's
// "samples" images).
#include <algorithm>
#include <cstdio>
#include <filesystem>

#include <torch/torch.h>

#include "finetune/finetune_run.h"
#include "io/image_grid.h"
#include "io/png.h"
#include "rewards/reward_evaluation.h"

namespace draft {

namespace {

// Prompts [first, last) of `count` for rank `rank` of `ranks`: contiguous blocks, the earlier ranks taking
// one more when they do not split evenly (so rank 0 has prompts whenever there are any).
std::pair<int64_t, int64_t> prompt_block(int64_t count, int rank, int ranks) {
  auto edge = [&](int r) { return (static_cast<int64_t>(r) * count + ranks - 1) / ranks; };
  return {edge(rank), std::min(count, edge(rank + 1))};
}

}  // namespace

// Rank r of W samples and scores its block of prompts (prompt i keeps its seed eval.seed + i); the
// images, scores and diversity are gathered so that rank 0 reports what one process would.
RewardEvalResult FinetuneRun::evaluate_shared(const RewardEvalOptions& eval) {
  Reward& reward = eval_reward_ ? *eval_reward_ : *reward_;
  if (group_->size() == 1) return evaluate_reward(sd_, reward, eval);
  const auto prompts = static_cast<int64_t>(eval.prompts.size());
  const auto [first, last] = prompt_block(prompts, group_->rank(), group_->size());
  RewardEvalResult mine;
  if (last > first) {
    RewardEvalOptions part = eval;
    part.prompts.assign(eval.prompts.begin() + first, eval.prompts.begin() + last);
    part.seed = eval.seed + static_cast<uint64_t>(first);
    mine = evaluate_reward(sd_, reward, part);
  }
  // The image shape, from any rank that sampled (every rank with prompts has the same).
  const at::Tensor shape = torch::zeros({3}, torch::kDouble);
  if (mine.images.defined()) {
    for (int64_t d = 0; d < 3; ++d) shape[d] = static_cast<double>(mine.images.size(d + 1));
  }
  group_->all_reduce_max({shape});
  const int64_t n = eval.images_per_prompt, count = prompts * n;
  at::Tensor images = torch::zeros({count, static_cast<int64_t>(shape[0].item<double>()),
                                    static_cast<int64_t>(shape[1].item<double>()),
                                    static_cast<int64_t>(shape[2].item<double>())}, torch::kFloat);
  at::Tensor scores = torch::zeros({count}, torch::kFloat);
  const at::Tensor diversity = torch::zeros({1}, torch::kFloat);
  if (last > first) {
    images.narrow(0, first * n, (last - first) * n).copy_(mine.images);
    scores.narrow(0, first * n, (last - first) * n).copy_(mine.scores.to(torch::kCPU, torch::kFloat));
    // The mean over prompts of within-prompt distances: weighted by the block's share of the prompts.
    if (mine.diversity) diversity[0] = *mine.diversity * static_cast<double>(last - first) / static_cast<double>(prompts);
  }
  group_->all_reduce_sum({images, scores, diversity});
  RewardEvalResult all = mine;
  all.images = images;
  all.scores = scores;
  all.overall = reward_stats(scores);
  all.diversity.reset();
  if (n >= 2) all.diversity = diversity.item<double>();
  return all;
}

void FinetuneRun::evaluate(int64_t step) {
  const RewardEvalOptions eval = held_out_eval_options(config_, prompts_);
  const RewardEvalResult result = evaluate_shared(eval);
  if (!run_.writer()) return;
  std::filesystem::create_directories(run_.folder().file("samples"));
  GridOptions grid;
  grid.columns = eval.images_per_prompt;
  char name[64];
  std::snprintf(name, sizeof(name), "samples/step_%06lld.png", static_cast<long long>(step));
  const at::Tensor grid_image = make_grid(result.images, grid);
  write_png(run_.folder().file(name), grid_image);
  run_.log_image("samples", grid_image, step);
  nlohmann::json record = {{"kind", "eval"},
                           {"step", step},
                           {"eval_reward_mean", result.overall.mean},
                           {"eval_reward_std", result.overall.std},
                           {"eval_reward_ci95", {result.overall.ci_low, result.overall.ci_high}},
                           {"feature_space", result.feature_space},
                           {"reward_queries", summary_.reward_queries},
                           {"unet_evals", summary_.unet_evals},
                           {"wall_time", wall_offset_ + train_seconds_}};
  if (result.diversity) record["diversity"] = *result.diversity;
  run_.log(record);
  if (summary_.first_eval.is_null()) summary_.first_eval = record;
  summary_.last_eval = record;
}

}  // namespace draft
