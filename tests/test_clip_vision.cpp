// CLIPVisionModelWithProjection against transformers v4.36 outputs (tests/data/clip_vision_tiny), errors.
#include <filesystem>
#include <fstream>
#include <functional>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "io/config_json.h"
#include "io/safetensors.h"
#include "models/clip_vision_model.h"
#include "support.h"
#include "util/error.h"

namespace {

using draft::test::tolerance;
using draft::test::expect_error;

namespace fs = std::filesystem;
using draft::test::tensors_close;

const std::string kDir = std::string(DRAFT_TEST_DATA) + "/clip_vision_tiny";

TEST(ClipVision, MatchesReferenceOutputs) {
  auto model = draft::load_clip_vision_model(kDir, {});
  draft::SafeTensorsFile cases(kDir + "/cases.safetensors");
  torch::NoGradGuard no_grad;
  auto out = model->forward(cases.load("pixel_values"), /*output_hidden_states=*/true);
  for (const auto& [name, value] : {std::pair{"image_embeds", out.image_embeds},
                                    std::pair{"last_hidden_state", out.last_hidden_state},
                                    std::pair{"pooler_output", out.pooler_output}}) {
    auto r = cases.load(name);
    EXPECT_TRUE(tensors_close(value, r, tolerance(r))) << name;
  }
  ASSERT_EQ(out.hidden_states.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    auto r = cases.load("hidden_states." + std::to_string(i));
    EXPECT_TRUE(tensors_close(out.hidden_states[static_cast<std::size_t>(i)], r, tolerance(r))) << "hidden_states." << i;
  }
  EXPECT_TRUE(model->forward(cases.load("pixel_values")).hidden_states.empty());
}

TEST(ClipVision, RunsInFloat64) {
  draft::WeightsOptions options;
  options.dtype = torch::kDouble;
  auto model = draft::load_clip_vision_model(kDir, options);
  draft::SafeTensorsFile cases(kDir + "/cases.safetensors");
  torch::NoGradGuard no_grad;
  auto out = model->forward(cases.load("pixel_values"));  // float32 pixels are cast to the model dtype
  EXPECT_EQ(out.image_embeds.scalar_type(), torch::kDouble);
  EXPECT_TRUE(tensors_close(out.image_embeds, cases.load("image_embeds_f64ref"), 1e-5));
  EXPECT_TRUE(tensors_close(out.last_hidden_state, cases.load("last_hidden_state_f64ref"), 1e-5));
}

TEST(ClipVision, ConfigWeightsMismatchIsALoadError) {
  draft::test::TempDir dir;
  auto json = draft::ConfigJson::load(kDir + "/config.json").json;
  json["patch_size"] = 16;  // 4 patches + 1 instead of 16 + 1 positions
  std::ofstream(dir.file("config.json")) << json.dump();
  fs::copy_file(kDir + "/model.safetensors", dir.file("model.safetensors"));
  std::string msg = expect_error([&] { draft::load_clip_vision_model(dir.path(), {}); });
  EXPECT_NE(msg.find("vision_model.embeddings.patch_embedding.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("vision_model.embeddings.position_embedding.weight"), std::string::npos) << msg;
}

TEST(ClipVision, RejectsWrongImageSizeAndActivation) {
  auto model = draft::load_clip_vision_model(kDir, {});
  torch::NoGradGuard no_grad;
  std::string msg = expect_error([&] { model->forward(torch::zeros({1, 3, 64, 64})); });
  EXPECT_NE(msg.find("[batch, 3, 32, 32]"), std::string::npos) << msg;
  auto json = draft::ConfigJson::load(kDir + "/config.json");
  json.json["hidden_act"] = "silu";
  auto config = draft::CLIPVisionConfig::from_json(json);
  msg = expect_error([&] { draft::CLIPVisionModelWithProjection m(config); });
  EXPECT_NE(msg.find("hidden_act 'silu'"), std::string::npos) << msg;
}

TEST(ClipVision, ReadsVisionConfigOfAFullCLIPModelConfig) {
  auto flat = draft::ConfigJson::load(kDir + "/config.json");
  draft::ConfigJson full{nlohmann::json{{"model_type", "clip"}, {"projection_dim", 16}, {"vision_config", flat.json},
                                        {"text_config", nlohmann::json::object()}},
                         "full/config.json"};
  auto c = draft::CLIPVisionConfig::from_json(full);
  EXPECT_EQ(c.image_size, 32);
  EXPECT_EQ(c.patch_size, 8);
  EXPECT_EQ(c.hidden_size, 32);
  EXPECT_EQ(c.projection_dim, 16);
  EXPECT_EQ(c.num_positions(), 17);
  full.json.erase("projection_dim");  // CLIPConfig's default
  EXPECT_EQ(draft::CLIPVisionConfig::from_json(full).projection_dim, 512);
  draft::ConfigJson text{nlohmann::json{{"model_type", "clip_text_model"}}, "t/config.json"};
  expect_error([&] { draft::CLIPVisionConfig::from_json(text); });
}

}  // namespace
