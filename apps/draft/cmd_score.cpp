// draft score: the reward of existing PNG images, as a table or JSON.
#include <iostream>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "command.h"
#include "io/png.h"
#include "models/weights.h"
#include "data/prompt_file.h"
#include "reward_flags.h"
#include "rewards/reward_evaluation.h"
#include "util/error.h"

namespace draft::cli {
namespace {

struct ScoreFlags {
  RewardFlags reward;
  std::vector<std::string> images;
  std::vector<std::string> prompts;
  std::string prompts_file;
  bool json = false;
  std::string device = "cpu";
};

int run_score(const ScoreFlags& f) {
  std::vector<std::string> prompts = f.prompts;
  if (!f.prompts_file.empty()) {
    DRAFT_CHECK(f.prompts.empty(), "give either --prompt or --prompts FILE, not both");
    prompts = read_prompt_file(f.prompts_file);
  }
  DRAFT_CHECK(prompts.size() <= 1 || prompts.size() == f.images.size(), "got ", prompts.size(), " prompts for ",
              f.images.size(), " images: give one prompt for all images or one per image");
  const c10::Device device = parse_device(f.device);
  RewardPtr reward = make_reward(f.reward.spec, f.reward.context(device));
  torch::NoGradGuard no_grad;
  std::vector<float> scores;
  nlohmann::json rows = nlohmann::json::array();
  for (std::size_t i = 0; i < f.images.size(); ++i) {
    const std::string prompt = prompts.empty() ? "" : prompts.size() == 1 ? prompts[0] : prompts[i];
    const at::Tensor image = read_png(f.images[i]).unsqueeze(0).to(device);
    const float score = reward->score(image, {prompt}).item<float>();
    scores.push_back(score);
    rows.push_back({{"image", f.images[i]}, {"prompt", prompt}, {"score", score}});
  }
  const RewardStats stats = reward_stats(torch::tensor(scores));
  if (f.json) {
    nlohmann::json out = {{"reward", reward->name()},
                          {"images", rows},
                          {"mean", stats.mean},
                          {"std", stats.std},
                          {"ci95", {stats.ci_low, stats.ci_high}}};
    std::cout << out.dump(2) << '\n';
    return 0;
  }
  std::cout << "reward " << reward->name() << "\n\n| image | prompt | score |\n|---|---|---|\n";
  for (const auto& row : rows) {
    std::cout << fmt::format("| {} | {} | {:.4f} |\n", row["image"].get<std::string>(),
                             row["prompt"].get<std::string>(), row["score"].get<float>());
  }
  if (scores.size() > 1) {
    std::cout << fmt::format("\nmean {:.4f}, std {:.4f}, 95% interval of the mean [{:.4f}, {:.4f}] over {} images\n",
                             stats.mean, stats.std, stats.ci_low, stats.ci_high, stats.count);
  }
  return 0;
}

}  // namespace

Command add_score_command(CLI::App& root) {
  auto f = std::make_shared<ScoreFlags>();
  CLI::App* sub = root.add_subcommand("score", "Score existing PNG images with a reward");
  add_reward_flags(sub, f->reward);
  sub->add_option("images", f->images, "PNG files (grayscale or RGB, 8-bit)")->required()->check(CLI::ExistingFile);
  sub->add_option("--prompt", f->prompts, "prompt: one for all images, or repeated once per image");
  sub->add_option("--prompts", f->prompts_file, "file with one prompt per line, one per image");
  sub->add_flag("--json", f->json, "print JSON instead of the table");
  sub->add_option("--device", f->device, "cpu, cuda or cuda:N")->capture_default_str();
  return {sub, [f] { return run_score(*f); }};
}

}  // namespace draft::cli
