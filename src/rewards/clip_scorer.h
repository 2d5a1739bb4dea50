// ClipScorer: what the CLIP-based rewards (aesthetic, PickScore, HPSv2, CLIP score) share: a frozen
// CLIPModel, its tokenizer and the differentiable preprocessing, giving L2-normalised embeddings.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include "models/clip_model.h"
#include "models/clip_tokenizer.h"
#include "rewards/clip_preprocess.h"
#include "rewards/reward.h"

namespace draft {

/// Where a ClipScorer finds its model and how it runs.
struct ClipScorerOptions {
  std::string reward;         ///< the reward's name, for error messages
  std::string model_path;     ///< CLIP folder or .safetensors file (see load_clip_model)
  std::string model_option;   ///< the option that sets model_path ("model", "clip"), for error messages
  std::string expected_file;  ///< the file a missing model is expected as, named in the error
  std::string how_to_get;     ///< where to download / how to convert the weights, for the error
  /// Folder with vocab.json and merges.txt. Empty: model_path's folder, else its tokenizer/ subfolder.
  std::string tokenizer_dir;
  bool with_text = true;  ///< false: vision tower only, no tokenizer
  ClipPreprocessOptions preprocess;  ///< its size is replaced by the vision tower's image_size
  c10::ScalarType dtype = c10::kFloat;
  c10::Device device = c10::kCPU;
};

/// A frozen CLIP model (parameters without gradients, eval mode) with its tokenizer and preprocessing.
class ClipScorer {
 public:
  /// Loads the model (and tokenizer when with_text). A missing model or tokenizer is a draft::Error
  /// naming the file expected, the option to point elsewhere and options.how_to_get.
  explicit ClipScorer(const ClipScorerOptions& options);
  /// Wraps an already loaded model; `tokenizer` may be empty when only images are scored.
  ClipScorer(CLIPModel model, std::optional<CLIPTokenizer> tokenizer, ClipPreprocessOptions preprocess,
             std::string reward);

  /// (B, projection_dim) L2-normalised image embeddings on the model's device and dtype, differentiable
  /// with respect to `images` ((B, 1 or 3, H, W) in [0, 1], any device; checked as a reward input).
  at::Tensor image_embeddings(const at::Tensor& images);
  /// (B, projection_dim) L2-normalised text embeddings of `prompts` (no gradient), cached per prompt.
  at::Tensor text_embeddings(const std::vector<std::string>& prompts);

  CLIPModel& model() { return model_; }
  const ClipPreprocessOptions& preprocess() const { return preprocess_; }
  c10::Device device() const;
  c10::ScalarType dtype() const;
  /// Moves the model; the text cache is dropped.
  void to(c10::Device device);

 private:
  void freeze();

  CLIPModel model_{nullptr};
  std::optional<CLIPTokenizer> tokenizer_;
  ClipPreprocessOptions preprocess_;
  std::string reward_;
  std::map<std::string, at::Tensor> text_cache_;
};

/// The base of the CLIP rewards: holds the scorer and the spec name; image_features() are the normalised
/// CLIP image embeddings (float32 on the images' device), to() moves the model.
class ClipReward : public Reward {
 public:
  ClipReward(std::shared_ptr<ClipScorer> scorer, std::string name)
      : scorer_(std::move(scorer)), name_(std::move(name)) {}
  std::string name() const override { return name_; }
  at::Tensor image_features(const at::Tensor& images) override;
  void to(c10::Device device) override { scorer_->to(device); }
  ClipScorer& scorer() { return *scorer_; }

 protected:
  std::shared_ptr<ClipScorer> scorer_;
  std::string name_;
};

/// The dtype a CLIP reward runs its model in: its "dtype" option (f32, f16 / bf16 to save GPU memory, f64 for
/// gradient checks), else the run's compute dtype (context.dtype), so a bf16 run's reward model is bf16 too.
c10::ScalarType clip_reward_dtype(const RewardOptions& options, const RewardContext& context);

/// What a CLIP reward returns: (B) scores in float32 (float64 when the model runs in float64) on `device`.
at::Tensor clip_reward_output(const at::Tensor& scores, c10::Device device);

/// "name:key=value:..." of the options given, as the spec that built the reward.
std::string clip_reward_name(const RewardOptions& options);

}  // namespace draft
