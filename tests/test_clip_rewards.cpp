// The CLIP-based rewards (aesthetic, pickscore, hpsv2, clip-score) on a tiny CLIP model: formulas against
// hand computation, gradients against finite differences, prompts, gray images, missing-weights errors.
#include <cmath>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "clip_tiny_model.h"
#include "models/clip_model.h"
#include "models/clip_tokenizer.h"
#include "rewards/builtin_rewards.h"
#include "rewards/clip_preprocess.h"
#include "support.h"
#include "util/error.h"

namespace {

namespace fs = std::filesystem;
using draft::test::expect_error;
using draft::test::tensors_close;

// A weights folder laid out as the rewards' defaults expect, with tiny models:
//   clip-vit-large-patch14/  tiny transformers CLIPModel + tokenizer
//   PickScore_v1/            the same model, tokenizer in tokenizer/
//   HPSv2/                   the same weights in OpenCLIP layout + open_clip_config.json + tokenizer/
//   aesthetic/sac+logos+ava1-l14-linearMSE.safetensors   a random head for 16-dim embeddings
class ClipRewards : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string w = weights_.path();
    draft::test::write_tiny_clip_folder(w + "/clip-vit-large-patch14");
    draft::test::write_tiny_clip_folder(w + "/PickScore_v1", false);
    draft::test::copy_tokenizer(w + "/PickScore_v1/tokenizer");
    fs::create_directories(w + "/HPSv2");
    draft::test::save_state(w + "/HPSv2/HPS_v2.1_compressed.safetensors",
                            draft::test::to_open_clip(draft::test::tiny_clip_state()));
    std::ofstream(w + "/HPSv2/open_clip_config.json") << draft::test::tiny_open_clip_config().dump();
    draft::test::copy_tokenizer(w + "/HPSv2/tokenizer");
    fs::create_directories(w + "/aesthetic");
    torch::manual_seed(99);
    const std::vector<std::pair<int64_t, int64_t>> sizes = {{16, 1024}, {1024, 128}, {128, 64}, {64, 16}, {16, 1}};
    const int indices[] = {0, 2, 4, 6, 7};
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      const auto [in, out] = sizes[i];
      const std::string key = "layers." + std::to_string(indices[i]);
      head_[key + ".weight"] = torch::randn({out, in}) / std::sqrt(static_cast<double>(in));
      head_[key + ".bias"] = torch::randn({out}) * 0.1;
    }
    draft::test::save_state(w + "/aesthetic/sac+logos+ava1-l14-linearMSE.safetensors", head_);
    context_.weights_dir = w;

    draft::WeightsOptions f64;
    f64.dtype = torch::kDouble;
    model_ = draft::load_clip_model(w + "/clip-vit-large-patch14", f64);
    tokenizer_ = std::make_unique<draft::CLIPTokenizer>(draft::CLIPTokenizer::from_folder(w + "/PickScore_v1/tokenizer"));
    torch::manual_seed(5);
    images_ = torch::rand({2, 3, 40, 54}, torch::kDouble);  // resized to 32x43, odd excess 11 to crop
  }

  draft::RewardPtr make(const draft::RewardFactory& factory, std::map<std::string, std::string> options = {}) {
    return factory.make(draft::RewardOptions(factory.name, std::move(options)), context_);
  }

  // Normalised CLIP embeddings computed directly from the model, with the reward's crop rounding.
  at::Tensor image_embeddings(const at::Tensor& images, draft::CropRounding crop) {
    draft::ClipPreprocessOptions o;
    o.size = 32;
    o.crop = crop;
    auto e = model_->get_image_features(draft::clip_preprocess(images, o));
    return e / e.norm(2, -1, true);
  }
  at::Tensor text_embeddings(const std::vector<std::string>& prompts) {
    auto e = model_->get_text_features((*tokenizer_)(prompts).input_ids);
    return e / e.norm(2, -1, true);
  }

  // For each image, a prompt whose cosine with it is positive (the CLIP score's clamp is then inactive).
  std::vector<std::string> positive_prompts(const at::Tensor& images) {
    torch::NoGradGuard no_grad;
    const auto image = image_embeddings(images, draft::CropRounding::kFloor);
    std::vector<std::string> chosen;
    for (int64_t i = 0; i < images.size(0); ++i) {
      for (const std::string prompt : {"dog", "cat", "sky", "car", "tree", "zebra", "blue", "house", "a red apple"}) {
        if ((image[i] * text_embeddings({prompt})[0]).sum().item<double>() > 0.05) {
          chosen.push_back(prompt);
          break;
        }
      }
      EXPECT_EQ(static_cast<int64_t>(chosen.size()), i + 1) << "no prompt with a positive cosine for image " << i;
    }
    return chosen;
  }

  draft::test::TempDir weights_;
  draft::RewardContext context_;
  std::map<std::string, at::Tensor> head_;
  draft::CLIPModel model_{nullptr};
  std::unique_ptr<draft::CLIPTokenizer> tokenizer_;
  at::Tensor images_;
  const std::vector<std::string> prompts_ = {"a photograph of an astronaut riding a horse", "a red apple"};
};

TEST_F(ClipRewards, AestheticIsTheMlpOfTheNormalisedEmbedding) {
  auto reward = make(draft::aesthetic_reward_factory());
  torch::NoGradGuard no_grad;
  auto scores = reward->score(images_, prompts_);
  EXPECT_EQ(scores.scalar_type(), torch::kFloat);
  EXPECT_EQ(scores.sizes(), (std::vector<int64_t>{2}));
  // No activations between the layers (the released head has its ReLUs commented out).
  auto x = image_embeddings(images_, draft::CropRounding::kRound).to(torch::kFloat);
  for (const int i : {0, 2, 4, 6, 7}) {
    const std::string key = "layers." + std::to_string(i);
    x = torch::matmul(x, head_.at(key + ".weight").t()) + head_.at(key + ".bias");
  }
  EXPECT_TRUE(tensors_close(scores, x.squeeze(1), 1e-5));
  EXPECT_TRUE(torch::equal(reward->score(images_, {}), scores));  // the prompt plays no part
  auto features = reward->image_features(images_);
  EXPECT_EQ(features.sizes(), (std::vector<int64_t>{2, 16}));
  EXPECT_TRUE(tensors_close(features.norm(2, -1), torch::ones({2}), 1e-5));
}

TEST_F(ClipRewards, PickScoreIsScaledCosine) {
  auto reward = make(draft::pickscore_reward_factory());
  torch::NoGradGuard no_grad;
  auto scores = reward->score(images_, prompts_);
  auto cos = (image_embeddings(images_, draft::CropRounding::kFloor) * text_embeddings(prompts_)).sum(-1);
  auto expected = model_->logit_scale.exp() * cos;
  EXPECT_TRUE(tensors_close(scores, expected, 1e-5 * std::exp(2.7592)));
  // One prompt for all images is the prompt repeated.
  auto one = reward->score(images_, {prompts_[0]});
  EXPECT_TRUE(tensors_close(one, reward->score(images_, {prompts_[0], prompts_[0]}), 0.0));
  auto msg = expect_error([&] { reward->score(images_, {"a", "b", "c"}); });
  EXPECT_NE(msg.find("3 prompts for 2 images"), std::string::npos) << msg;
}

TEST_F(ClipRewards, Hpsv2IsCosineWithTheOpenClipCheckpoint) {
  auto reward = make(draft::hpsv2_reward_factory());
  torch::NoGradGuard no_grad;
  auto scores = reward->score(images_, prompts_);
  auto expected = (image_embeddings(images_, draft::CropRounding::kRound) * text_embeddings(prompts_)).sum(-1);
  EXPECT_TRUE(tensors_close(scores, expected, 1e-5));
  EXPECT_EQ(reward->name(), "hpsv2");
  auto file = make(draft::hpsv2_reward_factory(),
                   {{"model", weights_.path() + "/HPSv2/HPS_v2.1_compressed.safetensors"}});
  EXPECT_TRUE(tensors_close(file->score(images_, prompts_), scores, 0.0));
}

TEST_F(ClipRewards, ClipScoreIsHundredTimesClampedCosine) {
  auto reward = make(draft::clip_score_reward_factory());
  // Prompts with a positive cosine: with prompts_ both cosines are negative, and 0 == 0 would check nothing.
  const auto prompts = positive_prompts(images_);
  torch::NoGradGuard no_grad;
  auto scores = reward->score(images_, prompts);
  auto cos = (image_embeddings(images_, draft::CropRounding::kFloor) * text_embeddings(prompts)).sum(-1);
  ASSERT_TRUE((cos > 0).all().item<bool>());
  EXPECT_TRUE(tensors_close(scores, 100.0 * cos, 1e-3));
  // A negative cosine scores 0: find a prompt whose cosine is negative for image 0.
  bool seen_negative = false;
  for (const std::string prompt : {"dog", "cat", "sky", "car", "tree", "zebra", "blue", "house"}) {
    auto c = (image_embeddings(images_, draft::CropRounding::kFloor) * text_embeddings({prompt, prompt})).sum(-1);
    if (c[0].item<double>() >= 0) continue;
    EXPECT_EQ(reward->score(images_, {prompt})[0].item<double>(), 0.0);
    seen_negative = true;
    break;
  }
  EXPECT_TRUE(seen_negative) << "no prompt with a negative cosine among those tried";
}

TEST_F(ClipRewards, GradientsMatchFiniteDifferences) {
  torch::manual_seed(11);
  for (const auto& factory : {draft::aesthetic_reward_factory(), draft::pickscore_reward_factory(),
                              draft::hpsv2_reward_factory(), draft::clip_score_reward_factory()}) {
    auto reward = make(factory, {{"dtype", "f64"}});
    auto images = images_.clamp(0.05, 0.95);  // room for the steps to stay in [0, 1]
    const auto prompts = factory.name == "clip-score" ? positive_prompts(images) : prompts_;
    auto x = images.clone().requires_grad_(true);
    auto scores = reward->score(x, prompts);
    ASSERT_EQ(scores.scalar_type(), torch::kDouble) << factory.name;
    auto grad = torch::autograd::grad({scores.sum()}, {x})[0];
    EXPECT_GT(grad.abs().max().item<double>(), 0.0) << factory.name;
    // Directional derivatives along random directions: (f(x + hv) - f(x - hv)) / 2h = grad . v.
    torch::NoGradGuard no_grad;
    for (int k = 0; k < 3; ++k) {
      auto v = torch::randn_like(images);
      constexpr double h = 1e-5;
      const double numeric =
          (reward->score(images + h * v, prompts).sum().item<double>() -
           reward->score(images - h * v, prompts).sum().item<double>()) / (2 * h);
      const double analytic = (grad * v).sum().item<double>();
      EXPECT_NEAR(analytic, numeric, 1e-6 * std::max(1.0, std::abs(numeric))) << factory.name << " direction " << k;
    }
  }
}

TEST_F(ClipRewards, GrayImagesAreSeenAsRgbAndFeaturesAreNormalised) {
  auto gray = torch::rand({2, 1, 32, 32});
  for (const auto& factory : {draft::aesthetic_reward_factory(), draft::pickscore_reward_factory(),
                              draft::hpsv2_reward_factory(), draft::clip_score_reward_factory()}) {
    auto reward = make(factory);
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(tensors_close(reward->score(gray, {"a cat"}), reward->score(gray.expand({2, 3, 32, 32}), {"a cat"}), 0.0))
        << factory.name;
    auto features = reward->image_features(gray);
    EXPECT_EQ(features.scalar_type(), torch::kFloat);
    EXPECT_TRUE(tensors_close(features.norm(2, -1), torch::ones({2}), 1e-5)) << factory.name;
    reward->to(torch::kCPU);
    auto msg = expect_error([&] { reward->score(torch::rand({1, 3, 8, 8}) * 2, {"x"}); });
    EXPECT_NE(msg.find("[0, 1]"), std::string::npos) << msg;
  }
}

TEST_F(ClipRewards, MissingWeightsNameTheFileAndWhereToGetIt) {
  draft::test::TempDir empty;
  context_.weights_dir = empty.path();
  auto msg = expect_error([&] { make(draft::aesthetic_reward_factory()); });
  EXPECT_NE(msg.find(empty.path() + "/aesthetic/sac+logos+ava1-l14-linearMSE.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("improved-aesthetic-predictor"), std::string::npos) << msg;
  EXPECT_NE(msg.find("safetensors.torch"), std::string::npos) << msg;
  msg = expect_error([&] {
    make(draft::aesthetic_reward_factory(), {{"head", weights_.path() + "/aesthetic/sac+logos+ava1-l14-linearMSE.safetensors"}});
  });
  EXPECT_NE(msg.find(empty.path() + "/clip-vit-large-patch14/model.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("openai/clip-vit-large-patch14"), std::string::npos) << msg;
  EXPECT_NE(msg.find("aesthetic:clip="), std::string::npos) << msg;

  msg = expect_error([&] { make(draft::pickscore_reward_factory()); });
  EXPECT_NE(msg.find(empty.path() + "/PickScore_v1/model.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("yuvalkirstain/PickScore_v1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("pickscore:model="), std::string::npos) << msg;

  msg = expect_error([&] { make(draft::hpsv2_reward_factory()); });
  EXPECT_NE(msg.find(empty.path() + "/HPSv2/HPS_v2.1_compressed.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("xswu/HPSv2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("['state_dict']"), std::string::npos) << msg;

  msg = expect_error([&] { make(draft::clip_score_reward_factory()); });
  EXPECT_NE(msg.find(empty.path() + "/clip-vit-large-patch14/model.safetensors"), std::string::npos) << msg;

  // A model without a tokenizer names the files expected and the option.
  fs::create_directories(empty.path() + "/PickScore_v1");
  fs::copy_file(weights_.path() + "/PickScore_v1/model.safetensors", empty.path() + "/PickScore_v1/model.safetensors");
  fs::copy_file(weights_.path() + "/PickScore_v1/config.json", empty.path() + "/PickScore_v1/config.json");
  msg = expect_error([&] { make(draft::pickscore_reward_factory()); });
  EXPECT_NE(msg.find(empty.path() + "/PickScore_v1/tokenizer/vocab.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("pickscore:tokenizer=DIR"), std::string::npos) << msg;
  // ... and an explicit tokenizer folder fixes it.
  auto reward = make(draft::pickscore_reward_factory(), {{"tokenizer", weights_.path() + "/PickScore_v1/tokenizer"}});
  EXPECT_EQ(reward->name(), "pickscore:tokenizer=" + weights_.path() + "/PickScore_v1/tokenizer");
}

TEST_F(ClipRewards, UnknownOptionsAndDtypesAreErrors) {
  auto msg = expect_error([&] { make(draft::pickscore_reward_factory(), {{"modle", "x"}}); });
  EXPECT_NE(msg.find("modle"), std::string::npos) << msg;
  msg = expect_error([&] { make(draft::hpsv2_reward_factory(), {{"dtype", "int8"}}); });
  EXPECT_NE(msg.find("dtype=int8"), std::string::npos) << msg;
}

}  // namespace
