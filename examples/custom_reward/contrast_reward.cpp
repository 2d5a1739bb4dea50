// A user-written reward: the contrast (standard deviation of the pixel values) of each image.
#include <torch/torch.h>

#include "rewards/reward_registry.h"

namespace {

class ContrastReward : public draft::Reward {
 public:
  explicit ContrastReward(const draft::RewardOptions& options) : gain_(options.get_double("gain", 1.0)) {}

  // images: (B, C, H, W) in [0, 1]; the prompts are not used. Differentiable, as DRaFT needs.
  at::Tensor score(const at::Tensor& images, const std::vector<std::string>& prompts) override {
    (void)prompts;
    draft::check_reward_images(images, "contrast", {1, 3});
    return images.flatten(1).std(1).mul(gain_).to(draft::score_dtype(images));
  }

  std::string name() const override { return "contrast"; }

 private:
  double gain_;
};

}  // namespace

// The one line that makes "contrast" (and "contrast:gain=2") usable wherever a reward spec is taken.
DRAFT_REGISTER_REWARD("contrast", "standard deviation of the pixel values (example)",
                      [](const draft::RewardOptions& o, const draft::RewardContext&) -> draft::RewardPtr {
                        return std::make_shared<ContrastReward>(o);
                      });
