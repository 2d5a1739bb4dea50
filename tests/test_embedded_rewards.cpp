// The embedded rewards: the shipped classifier (prompt fidelity and fixed target), the true JPEG size
// and its differentiable proxy, and the fine-detail score.
#include <algorithm>
#include <cmath>
#include <iostream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "io/jpeg.h"
#include "models/fashion_classifier.h"
#include "data/fashion_mnist.h"
#include "rewards/reward_registry.h"
#include "support.h"
#include "util/statistics.h"

namespace {

using draft::test::expect_error;

draft::RewardContext shipped() {
  draft::RewardContext context;
  context.models_dir = draft::test::shipped_model("");
  return context;
}

// Central finite differences of sum(reward) at a few pixels against autograd, in float64.
void expect_gradient_matches_finite_differences(draft::Reward& reward, const at::Tensor& images,
                                                const std::vector<std::string>& prompts, double tolerance) {
  at::Tensor x = images.to(torch::kDouble).clone().requires_grad_(true);
  const at::Tensor total = reward.score(x, prompts).sum();
  const at::Tensor grad = torch::autograd::grad({total}, {x})[0];
  torch::NoGradGuard no_grad;
  const double h = 1e-4;
  const at::Tensor flat = x.detach().flatten();
  for (int64_t index : {int64_t{5}, flat.numel() / 3, flat.numel() / 2 + 7, flat.numel() - 3}) {
    at::Tensor plus = flat.clone();
    at::Tensor minus = flat.clone();
    plus[index] += h;
    minus[index] -= h;
    const double f_plus = reward.score(plus.view(x.sizes()), prompts).sum().item<double>();
    const double f_minus = reward.score(minus.view(x.sizes()), prompts).sum().item<double>();
    const double numeric = (f_plus - f_minus) / (2 * h);
    const double analytic = grad.flatten()[index].item<double>();
    EXPECT_NEAR(analytic, numeric, tolerance * std::max(1.0, std::abs(numeric))) << "pixel " << index;
  }
}

TEST(ClassifierReward, LogProbabilityOfThePromptsClass) {
  auto reward = draft::make_reward("classifier", shipped());
  torch::manual_seed(0);
  const at::Tensor images = torch::rand({2, 1, 32, 32});
  const at::Tensor scores = reward->score(images, {"a photo of a coat", "an ankle boot"});
  ASSERT_EQ(scores.sizes(), (std::vector<int64_t>{2}));
  auto classifier = draft::load_fashion_classifier(shipped().models_dir + "/fashion-classifier");
  const at::Tensor log_probs = torch::log_softmax(classifier->forward(images), 1);
  EXPECT_NEAR(scores[0].item<double>(), log_probs[0][4].item<double>(), 1e-5);
  EXPECT_NEAR(scores[1].item<double>(), log_probs[1][9].item<double>(), 1e-5);
  EXPECT_TRUE((scores <= 0).all().item<bool>());
  // Three-channel images are scored as their luma.
  EXPECT_TRUE(torch::allclose(reward->score(images.expand({2, 3, 32, 32}), {"a coat", "an ankle boot"}), scores,
                              1e-5, 1e-5));
  EXPECT_EQ(reward->image_features(images).sizes(), (std::vector<int64_t>{2, 256}));
}

TEST(ClassifierReward, RecognisesRealImagesOfThePromptsClass) {
  if (!draft::test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  auto data = draft::load_fashion_mnist(draft::kFashionMNISTDir, "test", 20);
  auto reward = draft::make_reward("classifier", shipped());
  std::vector<std::string> right;
  std::vector<std::string> wrong;
  for (int64_t i = 0; i < 20; ++i) {
    const int64_t label = data.labels[i].item<int64_t>();
    right.push_back("a photo of a " + draft::fashion_mnist_classes()[static_cast<std::size_t>(label)]);
    wrong.push_back("a photo of a " + draft::fashion_mnist_classes()[static_cast<std::size_t>((label + 5) % 10)]);
  }
  const at::Tensor good = reward->score(data.images, right);
  const at::Tensor bad = reward->score(data.images, wrong);
  EXPECT_GT(good.mean().item<double>(), -0.5);
  EXPECT_GT((good > bad).to(torch::kFloat).mean().item<double>(), 0.9);
}

TEST(ClassifierReward, TargetIsTheProbabilityOfOneClassWhateverThePrompt) {
  auto reward = draft::make_reward("classifier:target=sneaker", shipped());
  EXPECT_EQ(reward->name(), "classifier:target=sneaker");
  const at::Tensor images = torch::rand({3, 1, 32, 32});
  const at::Tensor scores = reward->score(images, {"a coat"});
  auto classifier = draft::load_fashion_classifier(shipped().models_dir + "/fashion-classifier");
  const at::Tensor expected = torch::softmax(classifier->forward(images), 1).select(1, 7);
  EXPECT_TRUE(torch::allclose(scores, expected, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(draft::make_reward("classifier:target=7", shipped())->score(images, {}), expected, 1e-5,
                              1e-6));
}

TEST(ClassifierReward, GradientMatchesFiniteDifferences) {
  auto reward = draft::make_reward("classifier", shipped());
  torch::manual_seed(1);
  auto x = torch::rand({2, 1, 32, 32});
  at::Tensor images = x.clone().requires_grad_(true);
  const at::Tensor scores = reward->score(images, {"a dress", "a bag"});
  scores.sum().backward();
  ASSERT_TRUE(images.grad().defined());
  EXPECT_GT(images.grad().abs().sum().item<double>(), 0.0);
  // Float32 model: finite differences with a coarse step and tolerance.
  torch::NoGradGuard no_grad;
  const double h = 1e-2;
  for (int64_t index : {100, 600, 1500}) {
    at::Tensor plus = x.clone().flatten();
    at::Tensor minus = x.clone().flatten();
    plus[index] += h;
    minus[index] -= h;
    const double numeric = (reward->score(plus.view(x.sizes()), {"a dress", "a bag"}).sum().item<double>() -
                            reward->score(minus.view(x.sizes()), {"a dress", "a bag"}).sum().item<double>()) /
                           (2 * h);
    EXPECT_NEAR(images.grad().flatten()[index].item<double>(), numeric, 2e-2 * std::max(1.0, std::abs(numeric)));
  }
}

TEST(ClassifierReward, ClearErrors) {
  auto reward = draft::make_reward("classifier", shipped());
  const std::string no_class = expect_error([&] { reward->score(torch::rand({1, 1, 32, 32}), {"a red car"}); });
  EXPECT_NE(no_class.find("'a red car' names none of the classes"), std::string::npos) << no_class;
  EXPECT_NE(no_class.find("ankle boot"), std::string::npos) << no_class;
  EXPECT_NE(expect_error([&] { reward->score(torch::rand({1, 1, 64, 64}), {"a coat"}); }).find("32x32"),
            std::string::npos);
  EXPECT_NE(expect_error([&] { draft::make_reward("classifier:target=car", shipped()); }).find("classes: t-shirt"),
            std::string::npos);
  // An index with more digits than int64_t holds threw std::out_of_range from std::stoll ("draft: error: stoll").
  EXPECT_NE(expect_error([&] { draft::make_reward("classifier:target=99999999999999999999", shipped()); })
                .find("target=99999999999999999999 is not a class"),
            std::string::npos);
  EXPECT_NE(expect_error([&] { draft::make_reward("classifier:target=10", shipped()); }).find("is not a class"),
            std::string::npos);
  draft::RewardContext nowhere;
  nowhere.models_dir = "/nonexistent";
  const std::string missing = expect_error([&] { draft::make_reward("classifier", nowhere); });
  EXPECT_NE(missing.find("/nonexistent/fashion-classifier"), std::string::npos) << missing;
  EXPECT_NE(missing.find("classifier:model=DIR"), std::string::npos) << missing;
}

TEST(JpegReward, SizeIsTheEncodedFileInKilobytes) {
  torch::manual_seed(2);
  const at::Tensor images = torch::rand({2, 3, 24, 40});
  auto jpeg = draft::make_reward("jpeg");
  EXPECT_FALSE(jpeg->differentiable());
  const at::Tensor sizes = jpeg->score(images, {});
  for (int64_t i = 0; i < 2; ++i) {
    const std::string file = draft::encode_jpeg(images[i], 95);
    ASSERT_GE(file.size(), 4U);
    EXPECT_EQ(static_cast<unsigned char>(file[0]), 0xFF);  // SOI marker
    EXPECT_EQ(static_cast<unsigned char>(file[1]), 0xD8);
    EXPECT_EQ(static_cast<unsigned char>(file[file.size() - 1]), 0xD9);  // EOI marker
    EXPECT_NEAR(sizes[i].item<double>(), static_cast<double>(file.size()) / 1000.0, 1e-6);
  }
  EXPECT_TRUE(torch::allclose(draft::make_reward("compressibility")->score(images, {}), -sizes));
  EXPECT_TRUE(torch::allclose(draft::make_reward("incompressibility")->score(images, {}), sizes));
  // Noise is larger than a flat image; lower quality is smaller.
  const at::Tensor flat = torch::full({1, 1, 32, 32}, 0.5);
  EXPECT_LT(jpeg->score(flat, {}).item<double>(), jpeg->score(torch::rand({1, 1, 32, 32}), {}).item<double>());
  EXPECT_LT(draft::make_reward("jpeg:quality=20")->score(images, {})[0].item<double>(), sizes[0].item<double>());
  EXPECT_NE(expect_error([] { draft::make_reward("jpeg:quality=0"); }).find("1..100"), std::string::npos);
}

TEST(JpegProxyReward, GradientMatchesFiniteDifferences) {
  torch::manual_seed(3);
  auto proxy = draft::make_reward("jpeg-proxy");
  expect_gradient_matches_finite_differences(*proxy, torch::rand({2, 1, 20, 28}), {}, 1e-4);
  expect_gradient_matches_finite_differences(*proxy, torch::rand({1, 3, 16, 24}), {}, 1e-4);
}

TEST(JpegProxyReward, FlatImagesCostTheHeaderAndNoiseCostsMore) {
  auto proxy = draft::make_reward("jpeg-proxy");
  const at::Tensor flat = torch::full({1, 1, 32, 32}, 128.0 / 255.0);
  EXPECT_NEAR(proxy->score(flat, {}).item<double>(),
              static_cast<double>(draft::jpeg_size(flat[0], 95)) / 1000.0, 1e-3);
  const at::Tensor noisy = torch::rand({1, 1, 32, 32});
  EXPECT_GT(proxy->score(noisy, {}).item<double>(), proxy->score(flat, {}).item<double>() + 0.3);
}

TEST(JpegProxyReward, RanksFashionImagesLikeTheTrueSize) {
  if (!draft::test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  auto data = draft::load_fashion_mnist(draft::kFashionMNISTDir, "test", 300);
  const at::Tensor proxy = draft::make_reward("jpeg-proxy")->score(data.images, {});
  const at::Tensor truth = draft::make_reward("jpeg")->score(data.images, {});
  std::vector<double> a(proxy.data_ptr<float>(), proxy.data_ptr<float>() + proxy.numel());
  std::vector<double> b(truth.data_ptr<float>(), truth.data_ptr<float>() + truth.numel());
  const double rho = draft::spearman_correlation(a, b);
  std::cout << "Spearman rank correlation, jpeg-proxy vs true size, 300 test images: " << rho << "\n";
  EXPECT_GE(rho, 0.9);
}

// A 1-channel "garment" on a black background: a textured square (values in [0.3, 1]) at rows and
// columns [12, 28) of a 40 x 40 image.
at::Tensor garment_image(int64_t seed) {
  torch::manual_seed(seed);
  at::Tensor image = torch::zeros({1, 1, 40, 40}, torch::kDouble);
  image.slice(2, 12, 28).slice(3, 12, 28).copy_(0.3 + 0.7 * torch::rand({16, 16}, torch::kDouble));
  return image;
}

// The definition of detail_reward.cpp with loops, for one 1-channel image.
double detail_by_hand(const at::Tensor& image, double threshold) {
  const at::Tensor plane = image[0][0].contiguous();
  const auto y = plane.accessor<double, 2>();
  const int64_t h = image.size(2), w = image.size(3);
  auto at = [&](int64_t i, int64_t j) {
    return y[std::clamp<int64_t>(i, 0, h - 1)][std::clamp<int64_t>(j, 0, w - 1)];
  };
  auto inside = [&](int64_t i, int64_t j) {  // the 5x5 mean over the pixels inside the image
    if (threshold < 0) return true;
    double sum = 0, count = 0;
    for (int64_t a = i - 2; a <= i + 2; ++a) {
      for (int64_t b = j - 2; b <= j + 2; ++b) {
        if (a < 0 || a >= h || b < 0 || b >= w) continue;
        sum += y[a][b];
        count += 1;
      }
    }
    return sum / count > threshold;
  };
  double sum = 0, area = 0;
  for (int64_t i = 0; i < h; ++i) {
    for (int64_t j = 0; j < w; ++j) {
      bool interior = true;  // every pixel of the 7x7 window inside the image is inside the garment
      for (int64_t a = i - 3; a <= i + 3 && interior; ++a) {
        for (int64_t b = j - 3; b <= j + 3; ++b) {
          if (a >= 0 && a < h && b >= 0 && b < w && !inside(a, b)) interior = false;
        }
      }
      if (!interior) continue;
      const double laplacian = at(i - 1, j) + at(i + 1, j) + at(i, j - 1) + at(i, j + 1) - 4 * at(i, j);
      sum += laplacian * laplacian;
      area += 1;
    }
  }
  return std::log(1e-4 + sum / std::max(area, 1.0));
}

TEST(DetailReward, LogOfTheGarmentsMeanSquaredLaplacian) {
  auto detail = draft::make_reward("detail");
  const at::Tensor image = garment_image(0);
  EXPECT_NEAR(detail->score(image, {}).item<double>(), detail_by_hand(image, 0.2), 1e-12);
  // A flat garment scores log(1e-4); texture scores more; colour images are scored as their luma.
  at::Tensor flat = torch::zeros_like(image);
  flat.slice(2, 12, 28).slice(3, 12, 28).fill_(0.6);
  EXPECT_NEAR(detail->score(flat, {}).item<double>(), std::log(1e-4), 1e-9);
  EXPECT_GT(detail->score(image, {}).item<double>(), std::log(1e-4) + 3.0);
  EXPECT_NEAR(detail->score(image.expand({1, 3, 40, 40}), {}).item<double>(), detail->score(image, {}).item<double>(),
              1e-9);
  // Dark specks inside the garment stay inside the scored region (and raise the score).
  at::Tensor specks = image.clone();
  specks.slice(2, 16, 24, 3).slice(3, 16, 24, 3).zero_();
  EXPECT_GT(detail->score(specks, {}).item<double>(), detail->score(image, {}).item<double>());
  EXPECT_NEAR(detail->score(specks, {}).item<double>(), detail_by_hand(specks, 0.2), 1e-12);
  // threshold < 0: the whole image, silhouette edges included.
  auto whole = draft::make_reward("detail:threshold=-1");
  EXPECT_EQ(whole->name(), "detail:threshold=-1");
  EXPECT_NEAR(whole->score(image, {}).item<double>(), detail_by_hand(image, -1.0), 1e-12);
}

TEST(DetailReward, GradientMatchesFiniteDifferences) {
  auto detail = draft::make_reward("detail");
  expect_gradient_matches_finite_differences(*detail, garment_image(1), {}, 1e-5);
  expect_gradient_matches_finite_differences(*detail, torch::cat({garment_image(2), garment_image(3)}), {}, 1e-5);
}

TEST(DetailReward, NoiseInTheBackgroundNeitherScoresNorGetsAGradient) {
  auto detail = draft::make_reward("detail");
  const at::Tensor image = garment_image(4);
  // Background noise (its 5x5 mean below the threshold), six pixels or more away from the garment.
  at::Tensor noisy = image.clone();
  const at::Tensor noise = 0.15 * torch::rand({1, 1, 40, 40}, torch::kDouble);
  at::Tensor far = torch::ones({1, 1, 40, 40}, torch::kDouble);
  far.slice(2, 6, 34).slice(3, 6, 34).zero_();
  noisy += noise * far;
  EXPECT_EQ(detail->score(noisy, {}).item<double>(), detail->score(image, {}).item<double>());
  at::Tensor x = noisy.clone().requires_grad_(true);
  const at::Tensor grad = torch::autograd::grad({detail->score(x, {}).sum()}, {x})[0];
  EXPECT_EQ((grad * far).abs().max().item<double>(), 0.0);
  EXPECT_GT(grad.abs().max().item<double>(), 0.0);
}

TEST(DetailReward, ClearErrors) {
  EXPECT_NE(expect_error([] { draft::make_reward("detail:threshold=1.5"); }).find("threshold must be below 1"),
            std::string::npos);
  EXPECT_NE(expect_error([] { draft::make_reward("detail:sharpness=2"); }).find("sharpness"), std::string::npos);
}

}  // namespace
