// Fashion-MNIST data: the installed IDX files as padded [0, 1] images, loader errors, captions and prompt
// parsing.
#include <filesystem>
#include <map>
#include <random>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "io/idx.h"
#include "data/fashion_mnist.h"
#include "support.h"

namespace {

using draft::test::expect_error;
using draft::test::TempDir;

#define REQUIRE_DATASET()                                                                              \
  if (!draft::test::have_fashion_mnist()) GTEST_SKIP() << draft::kFashionMNISTDir << " is missing (scripts/install-deps.sh)"

TEST(FashionMNIST, ClassNames) {
  const auto& names = draft::fashion_mnist_classes();
  ASSERT_EQ(names.size(), 10u);
  EXPECT_EQ(names[0], "t-shirt");
  EXPECT_EQ(names[6], "shirt");
  EXPECT_EQ(names[9], "ankle boot");
}

TEST(FashionMNIST, TestSplitShapesRangeAndPadding) {
  REQUIRE_DATASET();
  draft::ImageDataset test = draft::load_fashion_mnist(draft::kFashionMNISTDir, "test");
  ASSERT_EQ(test.size(), 10000);
  EXPECT_EQ(test.images.sizes(), (std::vector<int64_t>{10000, 1, 32, 32}));
  EXPECT_EQ(test.images.scalar_type(), torch::kFloat);
  EXPECT_EQ(test.labels.scalar_type(), torch::kLong);
  EXPECT_GE(test.images.min().item<float>(), 0.0f);
  EXPECT_LE(test.images.max().item<float>(), 1.0f);
  EXPECT_EQ(test.images.max().item<float>(), 1.0f);  // 255 somewhere: scaled by 1/255, not by the max
  // The 2-pixel border is zero on every side.
  at::Tensor border = test.images.clone();
  border.narrow(2, 2, 28).narrow(3, 2, 28).zero_();
  EXPECT_EQ(border.abs().max().item<float>(), 0.0f);
  // Labels 0..9, 1000 test images per class.
  at::Tensor counts = torch::bincount(test.labels, {}, 10);
  EXPECT_EQ(counts.min().item<int64_t>(), 1000);
  EXPECT_EQ(counts.max().item<int64_t>(), 1000);
}

TEST(FashionMNIST, PixelsAreTheFileBytes) {
  REQUIRE_DATASET();
  draft::ImageDataset train = draft::load_fashion_mnist(draft::kFashionMNISTDir, "train", 16);
  ASSERT_EQ(train.size(), 16);
  at::Tensor raw = draft::read_idx(std::string(draft::kFashionMNISTDir) + "/train-images-idx3-ubyte.gz");
  at::Tensor expected = raw.narrow(0, 0, 16).to(torch::kFloat) / 255.0;
  EXPECT_TRUE(torch::equal(train.images.narrow(2, 2, 28).narrow(3, 2, 28).squeeze(1), expected));
  EXPECT_EQ(train.labels[0].item<int64_t>(), 9);  // the first training image is an ankle boot
  EXPECT_GE(train.labels.min().item<int64_t>(), 0);
  EXPECT_LE(train.labels.max().item<int64_t>(), 9);
}

TEST(FashionMNIST, MissingFilesNameTheFileAndTheFix) {
  TempDir dir;
  std::string message = expect_error([&] { draft::load_fashion_mnist(dir.path(), "train"); });
  EXPECT_NE(message.find("train-images-idx3-ubyte.gz"), std::string::npos) << message;
  EXPECT_NE(message.find("scripts/install-deps.sh"), std::string::npos) << message;
  message = expect_error([&] { draft::load_fashion_mnist(dir.path(), "validation"); });
  EXPECT_NE(message.find("validation"), std::string::npos) << message;
}

TEST(FashionMNIST, CountMismatchAndBadShapes) {
  TempDir dir;
  draft::write_idx_gz(dir.file("t10k-images-idx3-ubyte.gz"), torch::zeros({5, 28, 28}, torch::kUInt8));
  draft::write_idx_gz(dir.file("t10k-labels-idx1-ubyte.gz"), torch::zeros({4}, torch::kUInt8));
  std::string message = expect_error([&] { draft::load_fashion_mnist(dir.path(), "test"); });
  EXPECT_NE(message.find("5 images"), std::string::npos) << message;
  EXPECT_NE(message.find("4 labels"), std::string::npos) << message;

  draft::write_idx_gz(dir.file("t10k-labels-idx1-ubyte.gz"), torch::full({5}, 10, torch::kUInt8));
  message = expect_error([&] { draft::load_fashion_mnist(dir.path(), "test"); });
  EXPECT_NE(message.find("label 10"), std::string::npos) << message;

  draft::write_idx_gz(dir.file("t10k-images-idx3-ubyte.gz"), torch::zeros({5, 32, 32}, torch::kUInt8));
  message = expect_error([&] { draft::load_fashion_mnist(dir.path(), "test"); });
  EXPECT_NE(message.find("(N, 28, 28)"), std::string::npos) << message;
}

TEST(FashionMNIST, PlainFilesAndLimit) {
  TempDir dir;
  draft::write_idx_gz(dir.file("t10k-images-idx3-ubyte.gz"), torch::full({6, 28, 28}, 255, torch::kUInt8));
  draft::write_idx_gz(dir.file("t10k-labels-idx1-ubyte.gz"), torch::arange(6, torch::kUInt8));
  draft::ImageDataset d = draft::load_fashion_mnist(dir.path(), "test", 4);
  EXPECT_EQ(d.size(), 4);
  EXPECT_EQ(d.images.sum().item<float>(), 4.0f * 28 * 28);
  EXPECT_TRUE(torch::equal(d.labels, torch::arange(4, torch::kLong)));
}

TEST(Captions, DeterministicPerSeedAboutTenPercentEmpty) {
  at::Tensor labels = torch::arange(10, torch::kLong).repeat({500});  // 5000 captions
  auto a = draft::fashion_captions(labels, 7);
  auto b = draft::fashion_captions(labels, 7);
  auto c = draft::fashion_captions(labels, 8);
  ASSERT_EQ(a.size(), 5000u);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  int64_t empty = 0;
  std::map<std::string, int64_t> forms;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].empty()) {
      ++empty;
      continue;
    }
    // Every non-empty caption names its own class, and nothing else is parsed from it.
    EXPECT_EQ(draft::parse_class_name(a[i]), labels[static_cast<int64_t>(i)].item<int64_t>()) << a[i];
    forms[a[i].rfind("a photo of ", 0) == 0 ? "photo" : (a[i].rfind("a", 0) == 0 ? "article" : "bare")]++;
  }
  const double fraction = static_cast<double>(empty) / 5000.0;
  std::printf("    empty captions: %.3f\n", fraction);
  EXPECT_GT(fraction, 0.08);
  EXPECT_LT(fraction, 0.12);
  EXPECT_EQ(forms.size(), 3u);  // all three templates are drawn
}

TEST(Captions, ArticlesAndOptions) {
  draft::CaptionOptions never_empty;
  never_empty.empty_probability = 0.0;
  never_empty.templates = {"a photo of a {class}"};
  std::mt19937_64 rng(0);
  EXPECT_EQ(draft::fashion_caption(9, rng, never_empty), "a photo of an ankle boot");
  EXPECT_EQ(draft::fashion_caption(3, rng, never_empty), "a photo of a dress");
  never_empty.templates = {"a {class}"};
  EXPECT_EQ(draft::fashion_caption(9, rng, never_empty), "an ankle boot");
  never_empty.templates = {"{class} on a table"};
  EXPECT_EQ(draft::fashion_caption(0, rng, never_empty), "t-shirt on a table");

  draft::CaptionOptions always_empty;
  always_empty.empty_probability = 1.0;
  for (const auto& caption : draft::fashion_captions(torch::arange(10), 3, always_empty)) EXPECT_EQ(caption, "");

  draft::CaptionOptions bad;
  bad.templates = {"no placeholder"};
  std::string message = expect_error([&] { draft::fashion_captions(torch::arange(2), 0, bad); });
  EXPECT_NE(message.find("{class}"), std::string::npos) << message;
  bad = {};
  bad.empty_probability = 1.5;
  message = expect_error([&] { bad.validate(); });
  EXPECT_NE(message.find("empty_probability"), std::string::npos) << message;
}

TEST(ParseClassName, LongestMatchAndWordBoundaries) {
  const std::vector<std::pair<std::string, int64_t>> cases = {
      {"a photo of a t-shirt", 0}, {"T-Shirt", 0},          {"a tshirt", 0},        {"a t shirt", 0},
      {"shirt", 6},                {"a photo of a shirt", 6}, {"an ankle boot", 9},  {"Ankle Boots", 9},
      {"trousers", 1},             {"a pullover", 2},       {"dresses", 3},         {"a coat.", 4},
      {"sandals", 5},              {"Sneaker!", 7},         {"a bag", 8},           {"", -1},
      {"a photo of a cat", -1},    {"sweatshirt", -1},      {"coating", -1},        {"boot", -1},
      {"a shirt and a coat", 6},   {"bags, coats", 8},
  };
  for (const auto& [text, label] : cases) EXPECT_EQ(draft::parse_class_name(text), label) << "'" << text << "'";
}

}  // namespace
