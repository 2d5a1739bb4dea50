// The true JPEG size through libjpeg (DDPO's compressibility task). Not differentiable: for RL (DDPO)
// and evaluation; DRaFT uses jpeg-proxy instead.
//   jpeg               r(x) = size of JPEG(x) in kB (1 kB = 1000 bytes, as ddpo-pytorch)
//   compressibility    r(x) = -size
//   incompressibility  r(x) = +size
#include <torch/torch.h>

#include "io/jpeg.h"
#include "rewards/builtin_rewards.h"
#include "util/error.h"

namespace draft {
namespace {

constexpr int kDefaultQuality = 95;  // ddpo-pytorch's jpeg_compressibility saves with quality 95

class JpegSizeReward : public Reward {
 public:
  JpegSizeReward(std::string base_name, double sign, const RewardOptions& options)
      : base_name_(std::move(base_name)), sign_(sign) {
    const int64_t quality = options.get_int("quality", kDefaultQuality);
    DRAFT_CHECK(quality >= 1 && quality <= 100, "reward '", base_name_, "': quality must be in 1..100, got ", quality);
    quality_ = static_cast<int>(quality);
  }

  at::Tensor score(const at::Tensor& images, const std::vector<std::string>& prompts) override {
    (void)prompts;
    check_reward_images(images, base_name_, {1, 3});
    std::vector<float> sizes;
    for (int64_t i = 0; i < images.size(0); ++i) {
      sizes.push_back(static_cast<float>(sign_ * static_cast<double>(jpeg_size(images[i], quality_)) / 1000.0));
    }
    return torch::tensor(sizes, torch::kFloat).to(images.device());
  }

  std::string name() const override {
    return quality_ == kDefaultQuality ? base_name_ : base_name_ + ":quality=" + std::to_string(quality_);
  }
  bool differentiable() const override { return false; }

 private:
  std::string base_name_;
  double sign_;
  int quality_ = kDefaultQuality;
};

RewardFactory jpeg_factory(const std::string& name, double sign, const std::string& summary) {
  return {name, summary, "quality=Q (1..100, default 95)", false,
          [name, sign](const RewardOptions& options, const RewardContext&) -> RewardPtr {
            return std::make_shared<JpegSizeReward>(name, sign, options);
          }};
}

}  // namespace

RewardFactory jpeg_reward_factory() {
  return jpeg_factory("jpeg", 1.0, "true JPEG size in kB through libjpeg (not differentiable)");
}
RewardFactory compressibility_reward_factory() {
  return jpeg_factory("compressibility", -1.0, "minus the true JPEG size in kB (not differentiable)");
}
RewardFactory incompressibility_reward_factory() {
  return jpeg_factory("incompressibility", 1.0, "the true JPEG size in kB, an alias of jpeg (not differentiable)");
}

}  // namespace draft
