// WeightedSumReward: r(x, c) = Σ_i w_i r_i(x, c), what a spec such as "classifier:1.0,jpeg-proxy:-0.1"
// builds.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "rewards/reward.h"

namespace draft {

class WeightedSumReward : public Reward {
 public:
  /// terms: (weight, reward) pairs, at least one.
  explicit WeightedSumReward(std::vector<std::pair<double, RewardPtr>> terms);

  at::Tensor score(const at::Tensor& images, const std::vector<std::string>& prompts) override;
  /// "name:weight,name:weight" of the terms.
  std::string name() const override;
  /// True only when every term is differentiable.
  bool differentiable() const override;
  /// The first term's features that exist.
  at::Tensor image_features(const at::Tensor& images) override;
  void to(c10::Device device) override;

  const std::vector<std::pair<double, RewardPtr>>& terms() const { return terms_; }

 private:
  std::vector<std::pair<double, RewardPtr>> terms_;
};

}  // namespace draft
