// The quality measures of the embedded model (Fréchet distance, caption templates) and the EMA of
// weights that the pretraining ships.
#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "train/ema.h"
#include "data/fashion_mnist.h"
#include "pretrain/sample_quality.h"
#include "support.h"

namespace {

TEST(FrechetDistance, MatchesClosedForms) {
  torch::manual_seed(0);
  const at::Tensor a = torch::randn({4000, 3}, torch::kDouble);
  EXPECT_NEAR(draft::frechet_distance(a, a), 0.0, 1e-6);
  // Shifting the mean by d adds |d|^2.
  const at::Tensor shift = torch::tensor({1.0, -2.0, 0.5}, torch::kDouble);
  EXPECT_NEAR(draft::frechet_distance(a, a + shift), 5.25, 1e-6);
  // Scaling zero-mean features by s: tr(S + s^2 S - 2 s S) = (1 - s)^2 tr(S).
  const at::Tensor centered = a - a.mean(0);
  const double trace = (centered.transpose(0, 1).matmul(centered) / 3999.0).trace().item<double>();
  EXPECT_NEAR(draft::frechet_distance(centered, centered * 3.0), 4.0 * trace, 1e-6 * trace);
  // Symmetric.
  const at::Tensor b = torch::randn({3000, 3}, torch::kDouble) * 0.5 + 1.0;
  EXPECT_NEAR(draft::frechet_distance(a, b), draft::frechet_distance(b, a), 1e-8);
  EXPECT_NE(draft::test::expect_error([&] { draft::frechet_distance(a, torch::randn({10, 4})); }).find("width"),
            std::string::npos);
}

TEST(CaptionTemplate, ArticleBeforeVowels) {
  EXPECT_EQ(draft::fill_caption_template("a photo of a {class}", "ankle boot"), "a photo of an ankle boot");
  EXPECT_EQ(draft::fill_caption_template("a {class}", "bag"), "a bag");
  EXPECT_EQ(draft::fill_caption_template("{class}", "coat"), "coat");
  EXPECT_EQ(draft::fill_caption_template("panda {class}", "ankle boot"), "panda ankle boot");
  EXPECT_NE(draft::test::expect_error([] { draft::fill_caption_template("a photo", "bag"); }).find("{class}"),
            std::string::npos);
}

TEST(EMA, DecayWarmsUpAndUpdates) {
  EXPECT_DOUBLE_EQ(draft::ema_decay_at(0.999, 0), 0.1);
  EXPECT_DOUBLE_EQ(draft::ema_decay_at(0.999, 10), 11.0 / 20.0);
  EXPECT_DOUBLE_EQ(draft::ema_decay_at(0.999, 100000), 0.999);
  torch::nn::Linear model(3, 2), ema(3, 2);
  draft::copy_weights(*ema, *model);
  EXPECT_TRUE(draft::test::tensors_close(ema->weight, model->weight, 0.0));
  const at::Tensor before = ema->weight.clone();
  {
    torch::NoGradGuard no_grad;
    model->weight.add_(1.0);
  }
  draft::ema_update(*ema, *model, 0.75);
  EXPECT_TRUE(draft::test::tensors_close(ema->weight, before + 0.25, 1e-6));
  torch::nn::Linear other(4, 2);
  EXPECT_NE(draft::test::expect_error([&] { draft::ema_update(*ema, *other, 0.5); }).find("weight"), std::string::npos);
}

}  // namespace
