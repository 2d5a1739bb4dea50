// The LAION aesthetic predictor v2 reward: r(x) = MLP(normalise(CLIP ViT-L/14 image embedding of x)), a
// predicted 1-10 rating (improved-aesthetic-predictor, sac+logos+ava1-l14-linearMSE). Ignores the prompt.
#include <filesystem>

#include <torch/torch.h>

#include "models/aesthetic_mlp.h"
#include "rewards/builtin_rewards.h"
#include "rewards/clip_scorer.h"
#include "util/error.h"

namespace draft {
namespace {

class AestheticReward : public ClipReward {
 public:
  AestheticReward(std::shared_ptr<ClipScorer> scorer, AestheticMLP head, std::string name)
      : ClipReward(std::move(scorer), std::move(name)), head_(std::move(head)) {
    const int64_t embed = scorer_->model()->config().projection_dim;
    DRAFT_CHECK(head_->config().input_size == embed, "reward 'aesthetic': the head takes ",
                head_->config().input_size, "-dimensional embeddings but the CLIP model gives ", embed,
                " (the released head is for CLIP ViT-L/14, projection_dim 768)");
    for (auto& p : head_->parameters()) p.set_requires_grad(false);
    head_->eval();
  }

  at::Tensor score(const at::Tensor& images, const std::vector<std::string>& prompts) override {
    (void)prompts;  // the rating does not depend on the prompt
    const at::Tensor embeddings = scorer_->image_embeddings(images);
    return clip_reward_output(head_->forward(embeddings), images.device());
  }

  void to(c10::Device device) override {
    ClipReward::to(device);
    head_->to(device);
  }

 private:
  AestheticMLP head_;
};

RewardPtr make_aesthetic(const RewardOptions& options, const RewardContext& context) {
  const std::string weights = context.resolved_weights_dir();
  ClipScorerOptions o;
  o.reward = "aesthetic";
  o.model_option = "clip";
  o.model_path = options.get("clip", weights + "/clip-vit-large-patch14");
  o.expected_file = o.model_path + "/model.safetensors";
  o.how_to_get =
      "The aesthetic predictor runs on OpenAI's CLIP ViT-L/14: the Hugging Face repo openai/clip-vit-large-patch14 "
      "(config.json and model.safetensors; `huggingface-cli download openai/clip-vit-large-patch14 config.json "
      "model.safetensors --local-dir " + o.model_path + "`).";
  o.with_text = false;
  // OpenAI's clip.load preprocessing: torchvision Resize(224, BICUBIC) + CenterCrop on the PIL image.
  o.preprocess.crop = CropRounding::kRound;
  o.dtype = clip_reward_dtype(options, context);
  o.device = context.device;
  const std::string head = options.get("head", weights + "/aesthetic/sac+logos+ava1-l14-linearMSE.safetensors");
  options.check_all_used();
  if (!std::filesystem::is_regular_file(head)) {
    const std::string pth = head.size() > 12 && head.substr(head.size() - 12) == ".safetensors"
                                ? head.substr(0, head.size() - 12) + ".pth"
                                : "sac+logos+ava1-l14-linearMSE.pth";
    fail("reward 'aesthetic': ", head, " not found. It is the LAION aesthetic predictor v2 head "
         "sac+logos+ava1-l14-linearMSE.pth from https://github.com/christophschuhmann/improved-aesthetic-predictor, "
         "converted once to safetensors (pickles are never read): `python -c \"import torch, safetensors.torch as st; "
         "st.save_file(torch.load('", pth, "', map_location='cpu'), '", head, "')\"`. Or pass aesthetic:head=FILE");
  }
  auto scorer = std::make_shared<ClipScorer>(o);
  WeightsOptions head_weights;
  head_weights.dtype = o.dtype;
  head_weights.device = o.device;
  return std::make_shared<AestheticReward>(scorer, load_aesthetic_mlp(head, head_weights), clip_reward_name(options));
}

}  // namespace

RewardFactory aesthetic_reward_factory() {
  return {"aesthetic",
          "LAION aesthetic predictor v2: predicted 1-10 rating from CLIP ViT-L/14 image embeddings (ignores the prompt)",
          "clip=DIR (default <weights>/clip-vit-large-patch14), head=FILE (default "
          "<weights>/aesthetic/sac+logos+ava1-l14-linearMSE.safetensors), dtype=f32|f16|bf16|f64",
          true, make_aesthetic};
}

}  // namespace draft
