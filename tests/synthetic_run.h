// A synthetic `draft finetune` run folder for the report tests, written without training: config.json,
// metrics.jsonl (a step record per step, an eval record at steps 0, 2 and 4 with a chosen diversity) and
// two small colour PNG grids, samples/step_000000.png and samples/step_000004.png.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "io/png.h"

namespace draft::test {

/// Writes the run into `dir` (created). `diversity`: the diversity of the evaluations at steps 0, 2 and 4;
/// `offset` shifts every reward (two runs then differ).
inline void write_synthetic_run(const std::string& dir, const std::vector<double>& diversity = {10.0, 9.0, 8.5},
                                double offset = 0.0) {
  namespace fs = std::filesystem;
  using nlohmann::json;
  fs::create_directories(dir + "/samples");
  const json config = {{"model", "models/fashion-sd"},
                       {"reward", "classifier"},
                       {"method", {{"name", "draft-lv"}, {"lv_n", 2}, {"k", 1}, {"refl_scale", 0.001}}},
                       {"optimizer", {{"lr", 0.0003}, {"schedule", "constant"}}},
                       {"train", {{"steps", 4}, {"batch_size", 2}, {"seed", 7}}}};
  std::ofstream(dir + "/config.json") << config.dump(2);
  std::ofstream metrics(dir + "/metrics.jsonl");
  auto eval = [&](int64_t step, double d) {
    metrics << json{{"kind", "eval"},
                    {"step", step},
                    {"eval_reward_mean", offset - 4.0 + 0.5 * static_cast<double>(step)},
                    {"eval_reward_std", 1.0},
                    {"eval_reward_ci95", {offset - 4.5 + 0.5 * static_cast<double>(step), offset - 3.5 + 0.5 * static_cast<double>(step)}},
                    {"diversity", d},
                    {"feature_space", "classifier"},
                    {"reward_queries", step * 4},
                    {"unet_evals", step * 20},
                    {"wall_time", static_cast<double>(step) * 0.5}}
                   .dump()
            << '\n';
  };
  eval(0, diversity.at(0));
  for (int64_t step = 1; step <= 4; ++step) {
    metrics << json{{"step", step},
                    {"reward_mean", offset - 4.0 + 0.4 * static_cast<double>(step)},
                    {"reward_std", 0.5},
                    {"loss", 4.0 - 0.4 * static_cast<double>(step)},
                    {"grad_norm", 0.1 * static_cast<double>(step)},
                    {"lr", 0.0003},
                    {"reward_queries", step * 4},
                    {"unet_evals", step * 20},
                    {"wall_time", static_cast<double>(step) * 0.5},
                    {"skipped", false}}
                   .dump()
            << '\n';
    if (step == 2) eval(2, diversity.at(1));
    if (step == 4) eval(4, diversity.at(2));
  }
  // Two different colour grids (3 x 24 x 36): a horizontal gradient, and its vertical twin.
  const at::Tensor ramp = torch::linspace(0, 1, 36).view({1, 1, 36}).expand({3, 24, 36}).contiguous();
  at::Tensor base = ramp.clone();
  base[0].fill_(0.9);
  at::Tensor tuned = torch::linspace(0, 1, 24).view({1, 24, 1}).expand({3, 24, 36}).contiguous();
  tuned[2].fill_(0.8);
  // The later grid first: the report must order them by step, not by the directory's order.
  write_png(dir + "/samples/step_000004.png", tuned);
  write_png(dir + "/samples/step_000000.png", base);
}

}  // namespace draft::test
