// The custom-reward example of docs/rewards.md (examples/custom_reward/contrast_reward.cpp, linked into
// this test): it registers with one line, is built by name, sums with built-in rewards, is
// differentiable, and the docs show its source verbatim.
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "rewards/reward_registry.h"
#include "support.h"

namespace {

using draft::test::slurp;

TEST(CustomReward, RegisteredByTheExampleAndBuiltByName) {
  auto reward = draft::make_reward("contrast:gain=2");
  const at::Tensor images = torch::rand({3, 3, 8, 8}, torch::kDouble).requires_grad_(true);
  const at::Tensor scores = reward->score(images, {});
  EXPECT_TRUE(torch::allclose(scores, images.flatten(1).std(1) * 2));
  scores.sum().backward();
  EXPECT_GT(images.grad().abs().sum().item<double>(), 0.0);
  bool listed = false;
  for (const auto& r : draft::registered_rewards()) listed = listed || r.name == "contrast";
  EXPECT_TRUE(listed);
  EXPECT_NE(draft::test::expect_error([] { draft::make_reward("contrast:gian=2"); }).find("no option 'gian'"),
            std::string::npos);
}

TEST(CustomReward, SumsWithBuiltInRewards) {
  const at::Tensor images = torch::rand({2, 1, 16, 16});
  const at::Tensor sum = draft::make_reward("contrast,jpeg-proxy:-0.1")->score(images, {});
  const at::Tensor expected =
      draft::make_reward("contrast")->score(images, {}) - 0.1 * draft::make_reward("jpeg-proxy")->score(images, {});
  EXPECT_TRUE(torch::allclose(sum, expected));
}

TEST(CustomReward, TheDocsShowTheExampleVerbatim) {
  const std::string root = DRAFT_SOURCE_DIR;
  const std::string source = slurp(root + "/examples/custom_reward/contrast_reward.cpp");
  ASSERT_FALSE(source.empty());
  EXPECT_NE(slurp(root + "/docs/rewards.md").find(source), std::string::npos)
      << "docs/rewards.md must contain examples/custom_reward/contrast_reward.cpp verbatim";
}

}  // namespace
