// Reward: the score r(image, prompt) that fine-tuning maximises, one number per image, higher is better.
// Every reward (embedded, preference model, user-written) implements this interface; reward_registry.h
// builds them by name.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

namespace draft {

/// Where a reward finds the weights it needs and where it runs.
struct RewardContext {
  /// Folder of the shipped models (holds fashion-classifier/).
  std::string models_dir = "models";
  /// Root of user-provided reward weights (CLIP, aesthetic head, PickScore, HPSv2). Empty: the
  /// environment variable DRAFT_REWARD_WEIGHTS, else "models/rewards".
  std::string weights_dir;
  c10::Device device = c10::kCPU;
  /// The run's compute dtype. The CLIP rewards run their model in it unless their own `dtype` option says
  /// otherwise (mixed precision: a bf16 run scores with a bf16 CLIP); the embedded classifier runs in
  /// float64 under a float64 run (exactness checks) and in float32 otherwise, since it is small. Every
  /// reward returns float32 scores (float64 for float64 images), so the loss is reduced in float32.
  c10::ScalarType dtype = c10::kFloat;

  /// weights_dir resolved as documented above.
  std::string resolved_weights_dir() const;
};

/// The key=value options of one reward term ("classifier:target=coat" gives {target: coat}), with
/// typed getters whose errors name the reward and the key. Every key must be read or `check_all_used`
/// reports it, so a typo never passes silently.
class RewardOptions {
 public:
  RewardOptions() = default;
  RewardOptions(std::string reward_name, std::map<std::string, std::string> values);

  const std::string& reward_name() const { return reward_name_; }
  bool has(const std::string& key) const { return values_.count(key) != 0; }
  std::string get(const std::string& key, const std::string& fallback) const;
  double get_double(const std::string& key, double fallback) const;
  int64_t get_int(const std::string& key, int64_t fallback) const;
  /// Throws draft::Error naming any key no getter asked for, listing the keys the reward accepts.
  void check_all_used() const;
  const std::map<std::string, std::string>& values() const { return values_; }

 private:
  std::string reward_name_;
  std::map<std::string, std::string> values_;
  mutable std::map<std::string, bool> used_;
};

/// A reward r(x, c). Its own parameters are frozen; the score is differentiable with respect to the
/// images unless differentiable() says otherwise.
class Reward {
 public:
  virtual ~Reward() = default;

  /// images: (B, C, H, W) floating point in [0, 1]; prompts: B entries, or one for all images.
  /// Returns (B) scores on the images' device, float32 (float64 for float64 images, which gradient
  /// checks use; see score_dtype); higher is better.
  virtual at::Tensor score(const at::Tensor& images, const std::vector<std::string>& prompts) = 0;

  /// The spec this reward was built from, e.g. "classifier:target=coat".
  virtual std::string name() const = 0;

  /// False for rewards that only RL (DDPO) and evaluation can use, such as the true JPEG size.
  virtual bool differentiable() const { return true; }

  /// Features of the images in the reward model's own embedding space (B, D), used by evaluation to
  /// measure diversity and drift; undefined when the reward has no such space.
  virtual at::Tensor image_features(const at::Tensor& images) { (void)images; return {}; }

  /// Moves the reward's models to `device`.
  virtual void to(c10::Device device) { (void)device; }
};

using RewardPtr = std::shared_ptr<Reward>;

/// Checks that `images` is a (B, C, H, W) floating tensor with values in [0, 1] (a 1e-4 slack for
/// rounding) and C among `channels`; the error names `reward` and says how to convert.
void check_reward_images(const at::Tensor& images, const std::string& reward, const std::vector<int64_t>& channels);

/// The prompts for B images: `prompts` itself when it has B entries, one entry repeated, or an error
/// naming `reward`. An empty list gives B empty prompts.
std::vector<std::string> prompts_for_batch(const std::vector<std::string>& prompts, int64_t batch,
                                           const std::string& reward);

/// The dtype rewards return for `images`: float64 for float64 images, float32 otherwise.
c10::ScalarType score_dtype(const at::Tensor& images);

/// (B, 1, H, W) -> (B, 3, H, W) by repeating the gray channel (how CLIP-based rewards see grayscale
/// images); 3-channel images are returned unchanged.
at::Tensor gray_to_rgb(const at::Tensor& images);

/// (B, 3, H, W) -> (B, 1, H, W) luma with the ITU-R BT.601 weights (0.299, 0.587, 0.114), as PIL's
/// convert("L"); 1-channel images are returned unchanged.
at::Tensor rgb_to_gray(const at::Tensor& images);

}  // namespace draft
