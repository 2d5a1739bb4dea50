// The HPSv2 reward (Wu et al., Human Preference Score v2): r(x, c) = cos(E_img(x), E_txt(c)) with the
// fine-tuned OpenCLIP ViT-H/14 of xswu/HPSv2 (about 0.25-0.30 for good images).
#include <torch/torch.h>

#include "rewards/builtin_rewards.h"
#include "rewards/clip_scorer.h"
#include "util/error.h"

namespace draft {
namespace {

class HPSv2Reward : public ClipReward {
 public:
  using ClipReward::ClipReward;

  at::Tensor score(const at::Tensor& images, const std::vector<std::string>& prompts) override {
    const auto batch = prompts_for_batch(prompts, images.size(0), "hpsv2");
    const at::Tensor image = scorer_->image_embeddings(images);
    const at::Tensor text = scorer_->text_embeddings(batch);
    return clip_reward_output((image * text).sum(-1), images.device());
  }
};

RewardPtr make_hpsv2(const RewardOptions& options, const RewardContext& context) {
  ClipScorerOptions o;
  o.reward = "hpsv2";
  o.model_option = "model";
  o.model_path = options.get("model", context.resolved_weights_dir() + "/HPSv2");
  o.tokenizer_dir = options.get("tokenizer", "");
  o.expected_file = o.model_path + "/HPS_v2.1_compressed.safetensors (any one .safetensors file there)";
  o.how_to_get =
      "HPSv2 is HPS_v2.1_compressed.pt (or HPS_v2_compressed.pt) of the Hugging Face repo xswu/HPSv2 "
      "(https://github.com/tgxs002/HPSv2), an OpenCLIP ViT-H-14 checkpoint under 'state_dict'; convert it once "
      "keeping its key names (pickles are never read): `python -c \"import torch, safetensors.torch as st; "
      "sd = torch.load('HPS_v2.1_compressed.pt', map_location='cpu')['state_dict']; st.save_file({k: "
      "v.contiguous() for k, v in sd.items()}, '" + o.model_path + "/HPS_v2.1_compressed.safetensors')\"`; add "
      "a CLIP tokenizer (vocab.json, merges.txt) in " + o.model_path + "/tokenizer.";
  // OpenCLIP's val transform (torchvision Resize(224, BICUBIC) + CenterCrop). HPSv2 applies it to a tensor,
  // where torchvision >= 0.17 antialiases and older versions do not: antialias=0 gives the latter.
  o.preprocess.crop = CropRounding::kRound;
  o.preprocess.antialias = options.get_int("antialias", 1) != 0;
  o.dtype = clip_reward_dtype(options, context);
  o.device = context.device;
  options.check_all_used();
  return std::make_shared<HPSv2Reward>(std::make_shared<ClipScorer>(o), clip_reward_name(options));
}

}  // namespace

RewardFactory hpsv2_reward_factory() {
  return {"hpsv2",
          "HPSv2: cosine of OpenCLIP ViT-H/14 (HPSv2 fine-tune) image and prompt embeddings",
          "model=DIR or FILE (default <weights>/HPSv2), tokenizer=DIR (default: the model folder or its "
          "tokenizer/), antialias=1|0 (default 1), dtype=f32|f16|bf16|f64",
          true, make_hpsv2};
}

}  // namespace draft
