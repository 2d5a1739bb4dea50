// The CLIP score reward (Hessel et al. 2021, as torchmetrics' CLIPScore): r(x, c) = 100 * max(cos(E_img(x),
// E_txt(c)), 0) with any CLIP checkpoint (default OpenAI's ViT-L/14, torchmetrics' default).
#include <torch/torch.h>

#include "rewards/builtin_rewards.h"
#include "rewards/clip_scorer.h"
#include "util/error.h"

namespace draft {
namespace {

class ClipScoreReward : public ClipReward {
 public:
  using ClipReward::ClipReward;

  at::Tensor score(const at::Tensor& images, const std::vector<std::string>& prompts) override {
    const auto batch = prompts_for_batch(prompts, images.size(0), "clip-score");
    const at::Tensor image = scorer_->image_embeddings(images);
    const at::Tensor text = scorer_->text_embeddings(batch);
    // torchmetrics clamps the batch mean at 0; per image the clamp is CLIPScore's max(cos, 0).
    return clip_reward_output(100.0 * (image * text).sum(-1).clamp_min(0.0), images.device());
  }
};

RewardPtr make_clip_score(const RewardOptions& options, const RewardContext& context) {
  ClipScorerOptions o;
  o.reward = "clip-score";
  o.model_option = "model";
  o.model_path = options.get("model", context.resolved_weights_dir() + "/clip-vit-large-patch14");
  o.tokenizer_dir = options.get("tokenizer", "");
  o.expected_file = o.model_path + "/model.safetensors";
  o.how_to_get =
      "Any CLIP model works: a transformers CLIPModel folder (config.json, model.safetensors, vocab.json, merges.txt; "
      "the default is the Hugging Face repo openai/clip-vit-large-patch14: `huggingface-cli download "
      "openai/clip-vit-large-patch14 config.json model.safetensors vocab.json merges.txt tokenizer_config.json "
      "special_tokens_map.json --local-dir " + o.model_path + "`) or an OpenCLIP .safetensors file.";
  // torchmetrics runs transformers' CLIPProcessor (PIL bicubic, floor-centred crop).
  o.preprocess.crop = CropRounding::kFloor;
  o.dtype = clip_reward_dtype(options, context);
  o.device = context.device;
  options.check_all_used();
  return std::make_shared<ClipScoreReward>(std::make_shared<ClipScorer>(o), clip_reward_name(options));
}

}  // namespace

RewardFactory clip_score_reward_factory() {
  return {"clip-score",
          "CLIP score: 100 * max(cosine of CLIP image and prompt embeddings, 0) (torchmetrics' CLIPScore)",
          "model=DIR or FILE (default <weights>/clip-vit-large-patch14), tokenizer=DIR (default: the model folder or "
          "its tokenizer/), dtype=f32|f16|bf16|f64",
          true, make_clip_score};
}

}  // namespace draft
