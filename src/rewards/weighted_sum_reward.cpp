// WeightedSumReward: the weighted sum of several rewards.
#include "rewards/weighted_sum_reward.h"

#include <torch/torch.h>

#include "util/error.h"

namespace draft {

WeightedSumReward::WeightedSumReward(std::vector<std::pair<double, RewardPtr>> terms) : terms_(std::move(terms)) {
  DRAFT_CHECK(!terms_.empty(), "a weighted sum of rewards needs at least one term");
  for (const auto& [weight, reward] : terms_) DRAFT_CHECK(reward != nullptr, "a weighted-sum term has no reward");
}

at::Tensor WeightedSumReward::score(const at::Tensor& images, const std::vector<std::string>& prompts) {
  at::Tensor total;
  for (const auto& [weight, reward] : terms_) {
    at::Tensor part = reward->score(images, prompts).mul(weight);
    total = total.defined() ? total.add(part) : part;
  }
  return total;
}

std::string WeightedSumReward::name() const {
  std::string out;
  for (const auto& [weight, reward] : terms_) {
    out += (out.empty() ? "" : ",") + reward->name() + ":" + str_cat(weight);
  }
  return out;
}

bool WeightedSumReward::differentiable() const {
  for (const auto& [weight, reward] : terms_) {
    if (!reward->differentiable()) return false;
  }
  return true;
}

at::Tensor WeightedSumReward::image_features(const at::Tensor& images) {
  for (const auto& [weight, reward] : terms_) {
    at::Tensor features = reward->image_features(images);
    if (features.defined()) return features;
  }
  return {};
}

void WeightedSumReward::to(c10::Device device) {
  for (const auto& [weight, reward] : terms_) reward->to(device);
}

}  // namespace draft
