// Differentiable CLIP preprocessing: sizes, centre crop rounding, normalisation, PIL's antialiased bicubic
// (against an independent implementation of PIL's resampling), gray input and gradients.
#include <cmath>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "rewards/clip_preprocess.h"
#include "support.h"
#include "util/error.h"

namespace {

using draft::CropRounding;
using draft::test::tensors_close;

// PIL's bicubic filter (a = -0.5), support 2.
double pil_bicubic(double x) {
  constexpr double a = -0.5;
  x = std::abs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}

// PIL's Resample.c precompute_coeffs + one-axis pass: out[i] = sum_k w_k in[xmin + k], the filter widened by
// the scale when downsampling and the weights normalised to sum 1 (truncated at the borders).
std::vector<double> pil_resample_1d(const std::vector<double>& in, int64_t out_size) {
  const auto in_size = static_cast<int64_t>(in.size());
  const double scale = static_cast<double>(in_size) / static_cast<double>(out_size);
  const double filterscale = std::max(scale, 1.0);
  const double support = 2.0 * filterscale;
  std::vector<double> out(static_cast<std::size_t>(out_size));
  for (int64_t i = 0; i < out_size; ++i) {
    const double center = (static_cast<double>(i) + 0.5) * scale;
    auto xmin = static_cast<int64_t>(center - support + 0.5);
    auto xmax = static_cast<int64_t>(center + support + 0.5);
    xmin = std::max<int64_t>(xmin, 0);
    xmax = std::min(xmax, in_size);
    double total = 0.0, acc = 0.0;
    for (int64_t x = xmin; x < xmax; ++x) {
      const double w = pil_bicubic((static_cast<double>(x) - center + 0.5) / filterscale);
      total += w;
      acc += w * in[static_cast<std::size_t>(x)];
    }
    out[static_cast<std::size_t>(i)] = total != 0.0 ? acc / total : 0.0;
  }
  return out;
}

// PIL's 2-D resize of one channel (horizontal pass, then vertical) in float64.
at::Tensor pil_resize(const at::Tensor& plane, int64_t out_h, int64_t out_w) {
  const int64_t h = plane.size(0), w = plane.size(1);
  auto a = plane.accessor<double, 2>();
  std::vector<std::vector<double>> rows(static_cast<std::size_t>(h));
  for (int64_t y = 0; y < h; ++y) {
    std::vector<double> row(static_cast<std::size_t>(w));
    for (int64_t x = 0; x < w; ++x) row[static_cast<std::size_t>(x)] = a[y][x];
    rows[static_cast<std::size_t>(y)] = pil_resample_1d(row, out_w);
  }
  auto out = torch::zeros({out_h, out_w}, torch::kDouble);
  auto o = out.accessor<double, 2>();
  for (int64_t x = 0; x < out_w; ++x) {
    std::vector<double> column(static_cast<std::size_t>(h));
    for (int64_t y = 0; y < h; ++y) column[static_cast<std::size_t>(y)] = rows[static_cast<std::size_t>(y)][static_cast<std::size_t>(x)];
    auto resized = pil_resample_1d(column, out_h);
    for (int64_t y = 0; y < out_h; ++y) o[y][x] = resized[static_cast<std::size_t>(y)];
  }
  return out;
}

draft::ClipPreprocessOptions identity_normalisation(int64_t size) {
  draft::ClipPreprocessOptions o;
  o.size = size;
  o.mean = {0.0, 0.0, 0.0};
  o.std = {1.0, 1.0, 1.0};
  return o;
}

TEST(ClipPreprocess, ResizedSizeAndCropOffsets) {
  EXPECT_EQ(draft::clip_resized_size(512, 768, 224), (std::array<int64_t, 2>{224, 336}));
  EXPECT_EQ(draft::clip_resized_size(768, 512, 224), (std::array<int64_t, 2>{336, 224}));
  EXPECT_EQ(draft::clip_resized_size(300, 301, 224), (std::array<int64_t, 2>{224, 224}));  // int(224.75)
  EXPECT_EQ(draft::clip_resized_size(512, 512, 224), (std::array<int64_t, 2>{224, 224}));
  // transformers: excess // 2; torchvision: round(excess / 2) with Python's half-to-even.
  for (auto [excess, floor, round] : std::vector<std::array<int64_t, 3>>{{0, 0, 0}, {1, 0, 0}, {2, 1, 1}, {3, 1, 2},
                                                                          {5, 2, 2}, {7, 3, 4}, {112, 56, 56}}) {
    EXPECT_EQ(draft::clip_crop_offset(224 + excess, 224, CropRounding::kFloor), floor) << excess;
    EXPECT_EQ(draft::clip_crop_offset(224 + excess, 224, CropRounding::kRound), round) << excess;
  }
}

TEST(ClipPreprocess, ShapeDtypeAndNormalisation) {
  auto images = torch::full({2, 3, 16, 16}, 0.5);
  draft::ClipPreprocessOptions o;
  o.size = 16;
  auto out = draft::clip_preprocess(images, o);
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{2, 3, 16, 16}));
  EXPECT_EQ(out.scalar_type(), torch::kFloat);
  for (int c = 0; c < 3; ++c) {
    const double expected = (0.5 - draft::kClipMean[static_cast<std::size_t>(c)]) / draft::kClipStd[static_cast<std::size_t>(c)];
    EXPECT_NEAR(out[1][c][7][3].item<double>(), expected, 1e-6) << c;
  }
  // CLIP's published constants, as transformers' OPENAI_CLIP_MEAN / OPENAI_CLIP_STD.
  EXPECT_DOUBLE_EQ(draft::kClipMean[0], 0.48145466);
  EXPECT_DOUBLE_EQ(draft::kClipStd[2], 0.27577711);
  auto large = draft::clip_preprocess(torch::rand({1, 3, 40, 30}));
  EXPECT_EQ(large.sizes(), (std::vector<int64_t>{1, 3, 224, 224}));
}

TEST(ClipPreprocess, CentreCropWithoutResize) {
  // Shortest side already at size: PIL leaves the image as is, then the centre is cut out.
  auto images = torch::rand({1, 3, 8, 13}, torch::kDouble);
  auto floor = draft::clip_preprocess(images, identity_normalisation(8));
  EXPECT_TRUE(torch::equal(floor, images.narrow(3, 2, 8)));  // excess 5: 5 // 2 = 2
  auto o = identity_normalisation(8);
  o.crop = CropRounding::kRound;
  auto round = draft::clip_preprocess(images, o);
  EXPECT_TRUE(torch::equal(round, images.narrow(3, 2, 8)));  // round(2.5) = 2
  auto tall = torch::rand({1, 3, 15, 8}, torch::kDouble);
  EXPECT_TRUE(torch::equal(draft::clip_preprocess(tall, o), tall.narrow(2, 4, 8)));  // round(3.5) = 4
  EXPECT_TRUE(torch::equal(draft::clip_preprocess(tall, identity_normalisation(8)), tall.narrow(2, 3, 8)));
}

TEST(ClipPreprocess, AntialiasedBicubicMatchesPilResampling) {
  torch::manual_seed(3);
  auto images = torch::rand({1, 3, 37, 53}, torch::kDouble);
  auto o = identity_normalisation(16);  // 37x53 -> 16x22 (int(16 * 53 / 37) = 22), crop 3 columns
  auto out = draft::clip_preprocess(images, o);
  double worst = 0.0;
  for (int64_t c = 0; c < 3; ++c) {
    auto expected = pil_resize(images[0][c], 16, 22).narrow(1, 3, 16);
    worst = std::max(worst, (out[0][c] - expected).abs().max().item<double>());
  }
  std::printf("    max abs diff vs PIL-style resampling %.3g\n", worst);
  EXPECT_LT(worst, 1e-13);  // float64 both ways, observed 7.8e-16
  // Upsampling uses the same filter with support 2.
  auto small = torch::rand({1, 1, 5, 7}, torch::kDouble);
  auto up = draft::clip_preprocess(small, identity_normalisation(10));  // 5x7 -> 10x14, crop 2 columns
  auto expected = pil_resize(small[0][0], 10, 14).narrow(1, 2, 10);
  EXPECT_TRUE(tensors_close(up[0][1], expected, 1e-13));  // observed 2.2e-16
}

TEST(ClipPreprocess, RampIsReproducedInTheInterior) {
  // Every normalised cubic convolution reproduces linear functions: downsampling a ramp by 2 gives the
  // ramp at the output pixel centres (2i + 0.5) away from the borders, antialiased or not.
  auto ramp = torch::arange(16, torch::kDouble).view({1, 1, 1, 16}).expand({1, 1, 16, 16}).contiguous();
  for (bool antialias : {true, false}) {
    auto o = identity_normalisation(8);
    o.antialias = antialias;
    auto out = draft::clip_preprocess(ramp, o);
    // float64: observed exact.
    for (int64_t i = 2; i <= 5; ++i) EXPECT_NEAR(out[0][0][4][i].item<double>(), 2.0 * i + 0.5, 1e-13) << i;
  }
  // Downsampling a checkerboard by 3 puts the output centres on input pixels: the plain filter
  // (a = -0.75, not widened) returns those pixels (aliasing), the antialiased one averages towards 0.5.
  auto board = (torch::arange(15).view({15, 1}) + torch::arange(15).view({1, 15})).remainder(2).to(torch::kDouble);
  board = board.view({1, 1, 15, 15});
  auto aa = draft::clip_preprocess(board, identity_normalisation(5));
  auto o = identity_normalisation(5);
  o.antialias = false;
  auto plain = draft::clip_preprocess(board, o);
  const double aa_dev = (aa[0][0][2][2] - 0.5).abs().item<double>();
  const double plain_dev = (plain[0][0][2][2] - 0.5).abs().item<double>();
  std::printf("    checkerboard centre: |aa - 0.5| = %.3g, |plain - 0.5| = %.3g\n", aa_dev, plain_dev);
  EXPECT_NEAR(plain_dev, 0.5, 1e-12);
  EXPECT_LT(aa_dev, 0.1);
}

TEST(ClipPreprocess, GrayIsRepeatedToRgb) {
  auto gray = torch::rand({2, 1, 20, 24});
  auto rgb = gray.expand({2, 3, 20, 24});
  draft::ClipPreprocessOptions o;
  o.size = 12;
  EXPECT_TRUE(torch::equal(draft::clip_preprocess(gray, o), draft::clip_preprocess(rgb.contiguous(), o)));
  auto msg = draft::test::expect_error([&] { draft::clip_preprocess(torch::rand({1, 2, 8, 8}), o); });
  EXPECT_NE(msg.find("(B, 1 or 3, H, W)"), std::string::npos) << msg;
}

TEST(ClipPreprocess, GradientMatchesFiniteDifferences) {
  torch::manual_seed(7);
  for (bool antialias : {true, false}) {
    auto images = torch::rand({1, 3, 10, 14}, torch::kDouble);
    draft::ClipPreprocessOptions o;
    o.size = 6;  // downsampling, the crop and the normalisation all on the path
    o.antialias = antialias;
    const auto weights = torch::randn({1, 3, 6, 6}, torch::kDouble);
    auto f = [&](const at::Tensor& x) { return (draft::clip_preprocess(x, o) * weights).sum(); };
    auto x = images.clone().requires_grad_(true);
    auto grad = torch::autograd::grad({f(x)}, {x})[0];
    auto numeric = torch::zeros_like(images);
    constexpr double h = 1e-6;
    auto flat = images.view({-1});
    auto nflat = numeric.view({-1});
    for (int64_t i = 0; i < flat.numel(); ++i) {
      auto plus = images.clone(), minus = images.clone();
      plus.view({-1})[i] += h;
      minus.view({-1})[i] -= h;
      nflat[i] = (f(plus).item<double>() - f(minus).item<double>()) / (2 * h);
    }
    EXPECT_TRUE(tensors_close(grad, numeric, 1e-7)) << "antialias " << antialias;
  }
}

}  // namespace
