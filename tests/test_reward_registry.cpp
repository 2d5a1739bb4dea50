// The reward registry: spec parsing, options, weighted sums, unknown names and user registrations.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "rewards/reward_registry.h"
#include "rewards/weighted_sum_reward.h"
#include "support.h"

namespace {

using draft::test::expect_error;

// A reward for the registry tests: mean brightness times a scale option.
class ScaledBrightness : public draft::Reward {
 public:
  explicit ScaledBrightness(const draft::RewardOptions& options) : scale_(options.get_double("scale", 1.0)) {}
  at::Tensor score(const at::Tensor& images, const std::vector<std::string>&) override {
    draft::check_reward_images(images, "test-brightness", {1, 3});
    return images.mean({1, 2, 3}) * scale_;
  }
  std::string name() const override { return "test-brightness"; }

 private:
  double scale_;
};

DRAFT_REGISTER_REWARD("test-brightness", "mean pixel value times scale",
                      [](const draft::RewardOptions& o, const draft::RewardContext&) -> draft::RewardPtr {
                        return std::make_shared<ScaledBrightness>(o);
                      });

TEST(RewardSpec, ParsesNamesOptionsAndWeights) {
  const auto terms = draft::parse_reward_spec("classifier:1.0, jpeg-proxy:quality=80:-0.1,classifier:target=coat");
  ASSERT_EQ(terms.size(), 3U);
  EXPECT_EQ(terms[0].name, "classifier");
  EXPECT_DOUBLE_EQ(terms[0].weight, 1.0);
  EXPECT_EQ(terms[1].name, "jpeg-proxy");
  EXPECT_EQ(terms[1].options.at("quality"), "80");
  EXPECT_DOUBLE_EQ(terms[1].weight, -0.1);
  EXPECT_EQ(terms[2].options.at("target"), "coat");
  EXPECT_DOUBLE_EQ(terms[2].weight, 1.0);
}

TEST(RewardSpec, MalformedTermsNameTheTerm) {
  EXPECT_NE(expect_error([] { draft::parse_reward_spec(""); }).find("empty"), std::string::npos);
  EXPECT_NE(expect_error([] { draft::parse_reward_spec("jpeg,,jpeg"); }).find("empty term"), std::string::npos);
  EXPECT_NE(expect_error([] { draft::parse_reward_spec("jpeg:abc"); }).find("'abc' is neither"), std::string::npos);
  EXPECT_NE(expect_error([] { draft::parse_reward_spec("jpeg:1:2"); }).find("two weights"), std::string::npos);
  EXPECT_NE(expect_error([] { draft::parse_reward_spec("jpeg:q=1:q=2"); }).find("twice"), std::string::npos);
}

// Found by fuzz/fuzz_reward_spec.cpp: "jpeg:quality=1e300" cast 1e300 to int64_t, undefined behaviour (UBSan:
// float-cast-overflow).
TEST(RewardOptions, IntegersOutsideInt64AreRefused) {
  for (const char* text : {"1e300", "-1e300", "9223372036854775808", "inf", "nan", "2.5"}) {
    const draft::RewardOptions options("jpeg", {{"quality", text}});
    const std::string message = expect_error([&] { (void)options.get_int("quality", 95); });
    EXPECT_NE(message.find("option quality=" + std::string(text) + " must be an integer"), std::string::npos)
        << text << ": " << message;
  }
  EXPECT_EQ(draft::RewardOptions("jpeg", {{"quality", "-9223372036854775808"}}).get_int("quality", 95), INT64_MIN);
  EXPECT_EQ(draft::RewardOptions("jpeg", {{"quality", "1e2"}}).get_int("quality", 95), 100);
  EXPECT_NE(expect_error([] { draft::make_reward("jpeg:quality=1e300"); }).find("must be an integer"), std::string::npos);
}

TEST(RewardRegistry, UnknownNameListsTheAvailableOnes) {
  const std::string message = expect_error([] { draft::make_reward("aesthetics"); });
  EXPECT_NE(message.find("unknown reward 'aesthetics'"), std::string::npos) << message;
  for (const char* name : {"classifier", "jpeg", "jpeg-proxy", "compressibility", "detail", "aesthetic",
                           "pickscore", "hpsv2", "clip-score", "test-brightness"}) {
    EXPECT_NE(message.find(name), std::string::npos) << name << " missing from: " << message;
  }
}

TEST(RewardRegistry, UnknownOptionNamesTheKeyAndTheKnownOnes) {
  const std::string message = expect_error([] { draft::make_reward("jpeg:qualty=80"); });
  EXPECT_NE(message.find("no option 'qualty'"), std::string::npos) << message;
  EXPECT_NE(message.find("quality"), std::string::npos) << message;
  EXPECT_NE(expect_error([] { draft::make_reward("jpeg:quality=high"); }).find("not a number"), std::string::npos);
}

TEST(RewardRegistry, UserRewardRegistersWithOneLine) {
  auto reward = draft::make_reward("test-brightness:scale=2");
  const at::Tensor images = torch::full({2, 1, 4, 4}, 0.25);
  EXPECT_TRUE(torch::allclose(reward->score(images, {}), torch::full({2}, 0.5)));
  const std::string duplicate = expect_error([] {
    draft::register_reward({"test-brightness", "again", "", true,
                            [](const draft::RewardOptions& o, const draft::RewardContext&) -> draft::RewardPtr {
                              return std::make_shared<ScaledBrightness>(o);
                            }});
  });
  EXPECT_NE(duplicate.find("already registered"), std::string::npos) << duplicate;
  EXPECT_NE(expect_error([] { draft::register_reward({"Bad Name", "", "", true, {}}); }).find("lower-case"),
            std::string::npos);
}

TEST(RewardRegistry, WeightedSumAddsWeightedTerms) {
  auto reward = draft::make_reward("test-brightness:2,test-brightness:scale=3:-0.5");
  const at::Tensor images = torch::rand({3, 1, 8, 8});
  const at::Tensor mean = images.mean({1, 2, 3});
  EXPECT_TRUE(torch::allclose(reward->score(images, {}), mean * 2.0 - mean * 1.5));
  EXPECT_TRUE(reward->differentiable());
  EXPECT_FALSE(draft::make_reward("test-brightness,jpeg:-1")->differentiable());
  // One term with weight 1 is the reward itself, not a sum.
  EXPECT_EQ(std::dynamic_pointer_cast<draft::WeightedSumReward>(draft::make_reward("test-brightness")), nullptr);
}

TEST(RewardImages, ChecksShapeRangeAndChannels) {
  auto reward = draft::make_reward("test-brightness");
  EXPECT_NE(expect_error([&] { reward->score(torch::rand({2, 4, 4}), {}); }).find("(B, C, H, W)"), std::string::npos);
  EXPECT_NE(expect_error([&] { reward->score(torch::rand({2, 2, 4, 4}), {}); }).find("2 channels"), std::string::npos);
  const std::string range = expect_error([&] { reward->score(torch::rand({2, 1, 4, 4}) * 2 - 1, {}); });
  EXPECT_NE(range.find("[0, 1]"), std::string::npos) << range;
  EXPECT_NE(range.find("(x + 1) / 2"), std::string::npos) << range;
  EXPECT_NE(expect_error([&] { reward->score(torch::zeros({1, 1, 4, 4}, torch::kUInt8), {}); }).find("255"),
            std::string::npos);
}

TEST(RewardImages, PromptsBroadcastOrMustMatchTheBatch) {
  EXPECT_EQ(draft::prompts_for_batch({"a"}, 3, "r"), std::vector<std::string>(3, "a"));
  EXPECT_EQ(draft::prompts_for_batch({}, 2, "r"), std::vector<std::string>(2));
  EXPECT_NE(expect_error([] { draft::prompts_for_batch({"a", "b"}, 3, "r"); }).find("2 prompts for 3 images"),
            std::string::npos);
}

TEST(RewardImages, GrayAndRgbConversions) {
  const at::Tensor gray = torch::rand({2, 1, 3, 3});
  const at::Tensor rgb = draft::gray_to_rgb(gray);
  EXPECT_EQ(rgb.sizes(), (std::vector<int64_t>{2, 3, 3, 3}));
  EXPECT_TRUE(torch::allclose(draft::rgb_to_gray(rgb), gray));
  const at::Tensor red = torch::zeros({1, 3, 1, 1}).index_fill_(1, torch::tensor({0}), 1.0);
  EXPECT_NEAR(draft::rgb_to_gray(red).item<double>(), 0.299, 1e-6);
}

}  // namespace
