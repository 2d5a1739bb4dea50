// detail: a sharpness score whose value the last sampling steps settle, like the paper's aesthetic score
// (fine texture, not the silhouette the noisy steps fix). On the luma y of the image:
//   1. Laplacian  L = y ∗ [[0, 1, 0], [1, −4, 1], [0, 1, 0]]  (edge-replicated border);
//   2. mask       m = erode₇ₓ₇(avg₅ₓ₅(y) > threshold), detached: the garment's interior. The region is
//                 found on the locally averaged image, so that dark specks the fine-tuning paints inside a
//                 garment (high Laplacian) stay inside it: with a per-pixel mask they left it, and the
//                 garment faded out until nothing was left to score (seen with DRaFT-K at lr 1e-3).
//                 Eroding by three pixels leaves out the silhouette's edge, whose Laplacian measures the
//                 contrast with the background (settled early), not detail. Detaching the mask means the
//                 score can only rise through pixels inside the garment, never by filling the background
//                 with noise;
//   3. r = log(ε + Σ m L² / max(Σ m, 1)),  ε = 1e-4: the log of the garment's mean squared Laplacian.
// threshold < 0 scores the whole image (photographs, which have no black background).
#include <torch/torch.h>

#include "rewards/builtin_rewards.h"
#include "util/error.h"

namespace draft {
namespace {

constexpr double kDefaultThreshold = 0.2;  // of the 5x5 mean: Fashion-MNIST backgrounds are black
constexpr double kEpsilon = 1e-4;          // a flat garment scores log(ε) instead of −∞

class DetailReward : public Reward {
 public:
  explicit DetailReward(const RewardOptions& options) {
    threshold_ = options.get_double("threshold", kDefaultThreshold);
    DRAFT_CHECK(threshold_ < 1.0, "reward 'detail': threshold must be below 1 (pixels are in [0, 1]; a negative "
                "value scores the whole image), got ", threshold_);
    name_ = options.has("threshold") ? "detail:threshold=" + options.get("threshold", "") : "detail";
  }

  at::Tensor score(const at::Tensor& images, const std::vector<std::string>& prompts) override {
    (void)prompts;
    check_reward_images(images, "detail", {1, 3});
    const at::Tensor y = rgb_to_gray(images).to(score_dtype(images));
    const at::Tensor kernel =
        torch::tensor({0.0, 1.0, 0.0, 1.0, -4.0, 1.0, 0.0, 1.0, 0.0}, y.options()).view({1, 1, 3, 3});
    const at::Tensor laplacian = torch::conv2d(torch::replication_pad2d(y, {1, 1, 1, 1}), kernel);  // step 1
    at::Tensor mask;  // step 2
    {
      torch::NoGradGuard no_grad;
      const at::Tensor local_mean = torch::avg_pool2d(y, 5, 1, 2, /*ceil_mode=*/false, /*count_include_pad=*/false);
      const at::Tensor inside =
          threshold_ < 0 ? torch::ones_like(y) : (local_mean > threshold_).to(y.scalar_type());
      mask = 1.0 - torch::max_pool2d(1.0 - inside, 7, 1, 3);  // erosion = 1 − dilation of the outside
    }
    const at::Tensor area = mask.sum({1, 2, 3}).clamp_min(1.0);
    return torch::log(kEpsilon + (mask * laplacian.square()).sum({1, 2, 3}) / area);  // step 3
  }

  std::string name() const override { return name_; }

 private:
  double threshold_ = kDefaultThreshold;
  std::string name_;
};

}  // namespace

RewardFactory detail_reward_factory() {
  return {"detail",
          "fine detail: log of the mean squared Laplacian inside the garment (5x5 mean above threshold, "
          "eroded three pixels, mask detached); decided by the last sampling steps",
          "threshold=T (default 0.2; negative: the whole image)", true,
          [](const RewardOptions& options, const RewardContext&) -> RewardPtr {
            return std::make_shared<DetailReward>(options);
          }};
}

}  // namespace draft
