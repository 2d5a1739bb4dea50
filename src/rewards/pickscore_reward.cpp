// The PickScore reward (Kirstain et al., Pick-a-Pic): r(x, c) = exp(logit_scale) * cos(E_img(x), E_txt(c)) with
// the fine-tuned CLIP ViT-H/14 yuvalkirstain/PickScore_v1 (about 21 for a good match).
#include <torch/torch.h>

#include "rewards/builtin_rewards.h"
#include "rewards/clip_scorer.h"
#include "util/error.h"

namespace draft {
namespace {

class PickScoreReward : public ClipReward {
 public:
  using ClipReward::ClipReward;

  at::Tensor score(const at::Tensor& images, const std::vector<std::string>& prompts) override {
    const auto batch = prompts_for_batch(prompts, images.size(0), "pickscore");
    const at::Tensor image = scorer_->image_embeddings(images);
    const at::Tensor text = scorer_->text_embeddings(batch);
    const at::Tensor scale = scorer_->model()->logit_scale.exp();
    return clip_reward_output(scale * (image * text).sum(-1), images.device());
  }
};

RewardPtr make_pickscore(const RewardOptions& options, const RewardContext& context) {
  ClipScorerOptions o;
  o.reward = "pickscore";
  o.model_option = "model";
  o.model_path = options.get("model", context.resolved_weights_dir() + "/PickScore_v1");
  o.tokenizer_dir = options.get("tokenizer", "");
  o.expected_file = o.model_path + "/model.safetensors";
  o.how_to_get =
      "PickScore is the Hugging Face repo yuvalkirstain/PickScore_v1 (config.json and model.safetensors: "
      "`huggingface-cli download yuvalkirstain/PickScore_v1 config.json model.safetensors --local-dir " +
      o.model_path + "`; if only pytorch_model.bin is offered: `python -c \"from transformers import CLIPModel; "
      "CLIPModel.from_pretrained('yuvalkirstain/PickScore_v1').save_pretrained('" + o.model_path +
      "', safe_serialization=True)\"`); its tokenizer is laion/CLIP-ViT-H-14-laion2B-s32B-b79K's (vocab.json, "
      "merges.txt into " + o.model_path + "/tokenizer).";
  // PickScore's processor is transformers' CLIPImageProcessor (PIL bicubic, floor-centred crop).
  o.preprocess.crop = CropRounding::kFloor;
  o.dtype = clip_reward_dtype(options, context);
  o.device = context.device;
  options.check_all_used();
  return std::make_shared<PickScoreReward>(std::make_shared<ClipScorer>(o), clip_reward_name(options));
}

}  // namespace

RewardFactory pickscore_reward_factory() {
  return {"pickscore",
          "PickScore: exp(logit_scale) * cosine of CLIP ViT-H/14 (PickScore_v1) image and prompt embeddings",
          "model=DIR (default <weights>/PickScore_v1), tokenizer=DIR (default: the model folder or its tokenizer/), "
          "dtype=f32|f16|bf16|f64",
          true, make_pickscore};
}

}  // namespace draft
