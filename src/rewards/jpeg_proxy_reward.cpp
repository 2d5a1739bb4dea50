// jpeg-proxy: a differentiable estimate of the JPEG size in kB, for DRaFT on the compressibility task
// (use a negative weight, e.g. "jpeg-proxy:-1", to reward small files). It follows libjpeg's baseline
// encoder step by step, replacing the two discrete steps (rounding, Huffman coding) by smooth ones:
//   1. 8-bit scale and level shift: p = 255 x - 128; RGB goes to JFIF YCbCr, chroma averaged 2x2 (4:2:0).
//   2. Each plane is padded by edge replication to whole 8x8 blocks (16x16 MCUs for colour), as libjpeg does.
//   3. Orthonormal 8x8 DCT-II of every block: F = D P D^T (equal to JPEG's FDCT).
//   4. Quantisation by the standard tables scaled for the quality: q = F / Q(quality).
//   5. Bits of a coefficient ≈ s(|q|) (b + log2(1 + |q|)), where s(a) = sigmoid(k (a - 1/2)), rescaled
//      to s(0) = 0, is a soft "survives rounding" indicator, log2(1 + |q|) ≈ the magnitude bits and b the Huffman code of its
//      run/size symbol.
//   6. size = (Σ bits / 8 + header) / 1000, header = libjpeg's size for a flat image of the same shape.
// docs/rewards.md reports its rank correlation with the true size (draft's bench jpeg_proxy_correlation).
#include <array>
#include <cmath>
#include <map>
#include <mutex>
#include <utility>

#include <torch/torch.h>

#include "io/jpeg.h"
#include "rewards/builtin_rewards.h"
#include "util/error.h"

namespace draft {
namespace {

constexpr int kDefaultQuality = 95;
constexpr double kSymbolBits = 4.0;   // b: typical Huffman code length of a run/size symbol
constexpr double kSharpness = 4.0;    // k: slope of the soft rounding indicator

// ITU-T T.81 Annex K tables K.1 (luminance) and K.2 (chrominance), in row-major order.
constexpr std::array<int, 64> kLumaTable = {
    16, 11, 10, 16, 24,  40,  51,  61,  12, 12, 14, 19, 26,  58,  60,  55,  14, 13, 16, 24, 40,  57,
    69, 56, 14, 17, 22,  29,  51,  87,  80, 62, 18, 22, 37,  56,  68,  109, 103, 77, 24, 35, 55,  64,
    81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99};
constexpr std::array<int, 64> kChromaTable = {
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99,
    99, 99, 47, 66, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99};

// The table libjpeg uses at `quality` (jpeg_quality_scaling + jpeg_add_quant_table with force_baseline).
at::Tensor quantisation_table(const std::array<int, 64>& base, int quality) {
  const int scale = quality < 50 ? 5000 / quality : 200 - 2 * quality;
  std::vector<float> values;
  for (int v : base) values.push_back(static_cast<float>(std::clamp((v * scale + 50) / 100, 1, 255)));
  return torch::tensor(values).view({8, 8});
}

// Orthonormal DCT-II matrix: D[u][n] = c(u) cos((2n + 1) u π / 16), c(0) = √(1/8), c(u > 0) = √(2/8).
at::Tensor dct_matrix() {
  auto d = torch::empty({8, 8}, torch::kDouble);
  auto a = d.accessor<double, 2>();
  for (int u = 0; u < 8; ++u) {
    for (int n = 0; n < 8; ++n) {
      a[u][n] = (u == 0 ? std::sqrt(1.0 / 8) : std::sqrt(2.0 / 8)) * std::cos((2 * n + 1) * u * M_PI / 16);
    }
  }
  return d;
}

// Pads (B, 1, H, W) on the right and bottom by edge replication to multiples of `multiple`.
at::Tensor pad_to_multiple(const at::Tensor& plane, int64_t multiple) {
  const int64_t pad_h = (multiple - plane.size(2) % multiple) % multiple;
  const int64_t pad_w = (multiple - plane.size(3) % multiple) % multiple;
  if (pad_h == 0 && pad_w == 0) return plane;
  return torch::replication_pad2d(plane, {0, pad_w, 0, pad_h});
}

// Estimated entropy-coded bits per image of a level-shifted plane (B, 1, H, W), H and W multiples of 8.
at::Tensor plane_bits(const at::Tensor& plane, const at::Tensor& table) {
  const int64_t b = plane.size(0);
  const int64_t h = plane.size(2) / 8;
  const int64_t w = plane.size(3) / 8;
  const at::Tensor blocks = plane.reshape({b, h, 8, w, 8}).permute({0, 1, 3, 2, 4});
  const at::Tensor d = dct_matrix().to(plane.options());
  const at::Tensor coefficients = torch::matmul(torch::matmul(d, blocks), d.t());  // step 3
  const at::Tensor q = coefficients / table.to(plane.options());                   // step 4
  const at::Tensor magnitude = torch::sqrt(q * q + 1e-6);  // smooth |q|, differentiable at 0
  // Rescaled so that a zero coefficient costs nothing (its cost is in the measured header of step 6).
  const double floor = 1.0 / (1.0 + std::exp(0.5 * kSharpness));
  const at::Tensor survives = (torch::sigmoid((magnitude - 0.5) * kSharpness) - floor) / (1.0 - floor);
  const at::Tensor bits = survives * (kSymbolBits + torch::log2(1.0 + magnitude));  // step 5
  return bits.reshape({b, -1}).sum(1);
}

class JpegProxyReward : public Reward {
 public:
  explicit JpegProxyReward(const RewardOptions& options) {
    const int64_t quality = options.get_int("quality", kDefaultQuality);
    DRAFT_CHECK(quality >= 1 && quality <= 100, "reward 'jpeg-proxy': quality must be in 1..100, got ", quality);
    quality_ = static_cast<int>(quality);
    luma_table_ = quantisation_table(kLumaTable, quality_);
    chroma_table_ = quantisation_table(kChromaTable, quality_);
  }

  at::Tensor score(const at::Tensor& images, const std::vector<std::string>& prompts) override {
    (void)prompts;
    check_reward_images(images, "jpeg-proxy", {1, 3});
    const at::Tensor x = images * 255.0;  // step 1
    at::Tensor bits;
    if (images.size(1) == 1) {
      bits = plane_bits(pad_to_multiple(x - 128.0, 8), luma_table_);
    } else {
      const at::Tensor r = x.narrow(1, 0, 1), g = x.narrow(1, 1, 1), bl = x.narrow(1, 2, 1);
      const at::Tensor y = 0.299 * r + 0.587 * g + 0.114 * bl - 128.0;
      const at::Tensor cb = -0.168736 * r - 0.331264 * g + 0.5 * bl;  // + 128 - 128
      const at::Tensor cr = 0.5 * r - 0.418688 * g - 0.081312 * bl;
      auto chroma = [&](const at::Tensor& c) {
        return pad_to_multiple(torch::avg_pool2d(pad_to_multiple(c, 16), 2), 8);  // 4:2:0 within 16x16 MCUs
      };
      bits = plane_bits(pad_to_multiple(y, 16), luma_table_) + plane_bits(chroma(cb), chroma_table_) +
             plane_bits(chroma(cr), chroma_table_);
    }
    const double header = header_bytes(images.size(1), images.size(2), images.size(3));
    return (bits / 8.0 + header).div(1000.0).to(score_dtype(images));  // step 6
  }

  std::string name() const override {
    return quality_ == kDefaultQuality ? "jpeg-proxy" : "jpeg-proxy:quality=" + std::to_string(quality_);
  }

 private:
  // libjpeg's size for a flat mid-gray image of this shape: headers, tables and the minimal code of every
  // block, which the estimate of step 5 does not count.
  double header_bytes(int64_t channels, int64_t height, int64_t width) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto key = std::make_tuple(channels, height, width);
    auto it = header_.find(key);
    if (it != header_.end()) return it->second;
    const double size = static_cast<double>(jpeg_size(torch::full({channels, height, width}, 128.0 / 255.0), quality_));
    header_.emplace(key, size);
    return size;
  }

  int quality_ = kDefaultQuality;
  at::Tensor luma_table_;
  at::Tensor chroma_table_;
  std::mutex mutex_;
  std::map<std::tuple<int64_t, int64_t, int64_t>, double> header_;
};

}  // namespace

RewardFactory jpeg_proxy_reward_factory() {
  return {"jpeg-proxy",
          "differentiable estimate of the JPEG size in kB (block DCT against the quantisation table); use a "
          "negative weight for compressibility",
          "quality=Q (1..100, default 95)", true,
          [](const RewardOptions& options, const RewardContext&) -> RewardPtr {
            return std::make_shared<JpegProxyReward>(options);
          }};
}

}  // namespace draft
