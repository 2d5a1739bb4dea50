// The held-out evaluation of a fine-tuning run: fixed prompts and seeds, the reward's statistics into
// metrics.jsonl ("kind": "eval") and the images as a grid in samples/step_NNNNNN.png.
#include <cstdio>
#include <filesystem>

#include "finetune/finetune_run.h"
#include "io/image_grid.h"
#include "io/png.h"
#include "rewards/reward_evaluation.h"

namespace draft {

void FinetuneRun::evaluate(int64_t step) {
  RewardEvalOptions eval;
  eval.prompts = config_.eval.prompts.empty() ? prompts_ : config_.eval.prompts;
  eval.images_per_prompt = config_.eval.images_per_prompt;
  eval.steps = config_.sampler.steps;
  eval.guidance_scale = config_.sampler.guidance_scale;
  eval.eta = config_.eval.eta >= 0 ? config_.eval.eta : config_.sampler.eta;
  eval.seed = config_.eval.seed;
  const RewardEvalResult result = evaluate_reward(sd_, eval_reward_ ? *eval_reward_ : *reward_, eval);
  std::filesystem::create_directories(run_.folder().file("samples"));
  GridOptions grid;
  grid.columns = eval.images_per_prompt;
  char name[64];
  std::snprintf(name, sizeof(name), "samples/step_%06lld.png", static_cast<long long>(step));
  write_png(run_.folder().file(name), make_grid(result.images, grid));
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
