// CLIPModel: tower parity with the transformers v4.36 fixtures, the OpenCLIP layout (renaming, config from
// open_clip_config.json or from shapes), vision-only loading and load errors.
#include <cmath>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "clip_tiny_model.h"
#include "io/safetensors.h"
#include "models/clip_model.h"
#include "models/open_clip_layout.h"
#include "support.h"
#include "util/error.h"

namespace {

namespace fs = std::filesystem;
using draft::test::expect_error;
using draft::test::tensors_close;
using draft::test::test_data;
using draft::test::tolerance;

// Checks a loaded tiny model against the fixture outputs of both towers and the hand-made projections.
void expect_matches_fixtures(draft::CLIPModel& model) {
  draft::SafeTensorsFile vision(test_data("clip_vision_tiny/cases.safetensors"));
  draft::SafeTensorsFile text(test_data("clip_text_tiny/cases.safetensors"));
  torch::NoGradGuard no_grad;
  const auto pixels = vision.load("pixel_values");
  const auto image_embeds = vision.load("image_embeds");
  EXPECT_TRUE(tensors_close(model->get_image_features(pixels), image_embeds, tolerance(image_embeds)));
  const auto pooler = vision.load("pooler_output");
  EXPECT_TRUE(tensors_close(model->vision_model(pixels).pooler_output, pooler, tolerance(pooler)));

  const auto ids = text.load("input_ids");
  const auto text_pooler = text.load("pooler_output");
  EXPECT_TRUE(tensors_close(model->text_model(ids).pooler_output, text_pooler, tolerance(text_pooler)));
  const auto projection = draft::test::tiny_clip_state().at("text_projection.weight");
  const auto expected = torch::matmul(text_pooler, projection.t());
  EXPECT_TRUE(tensors_close(model->get_text_features(ids), expected, tolerance(expected)));
  EXPECT_NEAR(model->logit_scale.item<double>(), 2.6592 + 0.1, 1e-6);
}

TEST(ClipModel, TransformersFolderMatchesTheTowerFixtures) {
  draft::test::TempDir dir;
  draft::test::write_tiny_clip_folder(dir.path(), false);
  auto model = draft::load_clip_model(dir.path());
  EXPECT_FALSE(model->is_training());
  EXPECT_EQ(model->config().projection_dim, 16);
  EXPECT_EQ(model->config().vision.image_size, 32);
  expect_matches_fixtures(model);
}

TEST(ClipModel, ReadsTheConfigAndIgnoresPositionIds) {
  draft::test::TempDir dir;
  auto state = draft::test::tiny_clip_state();
  state["text_model.embeddings.position_ids"] = torch::arange(77).unsqueeze(0);
  state["vision_model.embeddings.position_ids"] = torch::arange(17).unsqueeze(0);
  std::ofstream(dir.file("config.json")) << draft::test::tiny_clip_config().dump();
  draft::test::save_state(dir.file("weights.safetensors"), state);  // any single .safetensors name
  auto model = draft::load_clip_model(dir.path());
  expect_matches_fixtures(model);
}

TEST(ClipModel, OpenClipLayoutWithConfigFileGivesTheSameOutputs) {
  draft::test::TempDir dir;
  draft::test::save_state(dir.file("open_clip_model.safetensors"),
                          draft::test::to_open_clip(draft::test::tiny_clip_state()));
  std::ofstream(dir.file("open_clip_config.json")) << nlohmann::json{{"model_cfg", draft::test::tiny_open_clip_config()}}.dump();
  auto model = draft::load_clip_model(dir.path());
  EXPECT_EQ(model->config().vision.num_attention_heads, 4);
  EXPECT_EQ(model->config().vision.intermediate_size, 37);
  EXPECT_EQ(model->config().text.hidden_act, "quick_gelu");
  expect_matches_fixtures(model);
}

TEST(ClipModel, OpenClipLayoutUnderModulePrefixFromAnExplicitFile) {
  draft::test::TempDir dir;
  draft::test::save_state(dir.file("hps.safetensors"),
                          draft::test::to_open_clip(draft::test::tiny_clip_state(), "module."));
  draft::test::save_state(dir.file("other.safetensors"), {{"x", torch::zeros({1})}});
  std::ofstream(dir.file("open_clip_config.json")) << draft::test::tiny_open_clip_config().dump();
  auto model = draft::load_clip_model(dir.file("hps.safetensors"));
  expect_matches_fixtures(model);
  // Two unrelated files and no model.safetensors: the folder alone is ambiguous.
  auto msg = expect_error([&] { draft::load_clip_model(dir.path()); });
  EXPECT_NE(msg.find("several .safetensors files"), std::string::npos) << msg;
}

TEST(ClipModel, ConvertsAnInMemoryOpenClipStateDict) {
  const auto hf = draft::test::tiny_clip_state();
  const auto config = draft::open_clip_config_from_json({draft::test::tiny_open_clip_config(), "cfg"});
  const auto converted = draft::convert_open_clip_state_dict(draft::test::to_open_clip(hf, "module."), config);
  EXPECT_EQ(converted.size(), hf.size());
  for (const auto& [key, value] : hf) {
    ASSERT_TRUE(converted.count(key)) << key;
    EXPECT_TRUE(torch::equal(converted.at(key), value)) << key;
  }
  auto extra = draft::test::to_open_clip(hf);
  extra["visual.transformer.resblocks.0.ls_1.gamma"] = torch::ones({32});
  auto msg = expect_error([&] { draft::convert_open_clip_state_dict(extra, config); });
  EXPECT_NE(msg.find("ls_1.gamma"), std::string::npos) << msg;
}

TEST(ClipModel, VisionOnlyLoadingSkipsTheTextTower) {
  draft::test::TempDir dir;
  draft::test::write_tiny_clip_folder(dir.file("hf"), false);
  draft::test::TempDir oc;
  draft::test::save_state(oc.file("m.safetensors"), draft::test::to_open_clip(draft::test::tiny_clip_state()));
  std::ofstream(oc.file("open_clip_config.json")) << draft::test::tiny_open_clip_config().dump();
  draft::SafeTensorsFile vision(test_data("clip_vision_tiny/cases.safetensors"));
  for (const std::string& path : {dir.file("hf"), oc.path()}) {
    auto model = draft::load_clip_model(path, {}, /*with_text=*/false);
    EXPECT_FALSE(model->has_text());
    for (const auto& item : model->named_parameters()) EXPECT_NE(item.key().rfind("text_", 0), 0u) << item.key();
    torch::NoGradGuard no_grad;
    const auto ref = vision.load("image_embeds");
    EXPECT_TRUE(tensors_close(model->get_image_features(vision.load("pixel_values")), ref, tolerance(ref)));
    auto msg = expect_error([&] { model->get_text_features(torch::zeros({1, 77}, torch::kLong)); });
    EXPECT_NE(msg.find("text tower"), std::string::npos) << msg;
  }
}

std::map<std::string, std::vector<int64_t>> vit_shapes(int64_t vision_width, int64_t vision_layers, int64_t patch,
                                                       int64_t text_width, int64_t text_layers, int64_t embed) {
  std::map<std::string, std::vector<int64_t>> s;
  s["visual.conv1.weight"] = {vision_width, 3, patch, patch};
  s["visual.positional_embedding"] = {(224 / patch) * (224 / patch) + 1, vision_width};
  s["visual.proj"] = {vision_width, embed};
  for (int64_t i = 0; i < vision_layers; ++i) {
    const std::string b = "visual.transformer.resblocks." + std::to_string(i);
    s[b + ".ln_1.weight"] = {vision_width};
    s[b + ".mlp.c_fc.weight"] = {4 * vision_width, vision_width};
  }
  s["token_embedding.weight"] = {49408, text_width};
  s["positional_embedding"] = {77, text_width};
  s["text_projection"] = {text_width, embed};
  for (int64_t i = 0; i < text_layers; ++i) {
    const std::string b = "transformer.resblocks." + std::to_string(i);
    s[b + ".ln_1.weight"] = {text_width};
    s[b + ".mlp.c_fc.weight"] = {4 * text_width, text_width};
  }
  return s;
}

TEST(ClipModel, InfersOpenClipConfigsFromShapes) {
  // ViT-H-14 (HPSv2): head width 80, exact GELU.
  auto h = draft::infer_open_clip_config(vit_shapes(1280, 32, 14, 1024, 24, 1024), "vit-h");
  EXPECT_EQ(h.vision.num_attention_heads, 16);
  EXPECT_EQ(h.vision.intermediate_size, 5120);
  EXPECT_EQ(h.vision.image_size, 224);
  EXPECT_EQ(h.vision.patch_size, 14);
  EXPECT_EQ(h.vision.num_hidden_layers, 32);
  EXPECT_EQ(h.text.num_attention_heads, 16);
  EXPECT_EQ(h.text.num_hidden_layers, 24);
  EXPECT_EQ(h.projection_dim, 1024);
  EXPECT_EQ(h.vision.hidden_act, "gelu");
  EXPECT_EQ(h.text.hidden_act, "gelu");
  EXPECT_DOUBLE_EQ(h.vision.layer_norm_eps, 1e-5);
  // OpenAI ViT-L/14 (its checkpoints carry input_resolution): 64-wide heads, QuickGELU.
  auto shapes = vit_shapes(1024, 24, 14, 768, 12, 768);
  shapes["input_resolution"] = {};
  auto l = draft::infer_open_clip_config(shapes, "vit-l");
  EXPECT_EQ(l.vision.num_attention_heads, 16);
  EXPECT_EQ(l.text.num_attention_heads, 12);
  EXPECT_EQ(l.vision.hidden_act, "quick_gelu");
  shapes.erase("visual.proj");
  auto msg = expect_error([&] { draft::infer_open_clip_config(shapes, "vit-l.safetensors"); });
  EXPECT_NE(msg.find("vit-l.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("visual.proj"), std::string::npos) << msg;
}

TEST(ClipModel, OpenClipConfigRejectsUnsupportedOptions) {
  auto json = draft::test::tiny_open_clip_config();
  json["vision_cfg"]["ls_init_value"] = 1e-5;
  auto msg = expect_error([&] { draft::open_clip_config_from_json({json, "cfg.json"}); });
  EXPECT_NE(msg.find("ls_init_value"), std::string::npos) << msg;
  json = draft::test::tiny_open_clip_config();
  json["vision_cfg"]["head_width"] = 5;
  msg = expect_error([&] { draft::open_clip_config_from_json({json, "cfg.json"}); });
  EXPECT_NE(msg.find("head_width"), std::string::npos) << msg;
}

TEST(ClipModel, LoadErrorsNameTheFileAndKey) {
  draft::test::TempDir dir;
  draft::test::save_state(dir.file("model.safetensors"), draft::test::tiny_clip_state());
  auto msg = expect_error([&] { draft::load_clip_model(dir.path()); });
  EXPECT_NE(msg.find("no config.json"), std::string::npos) << msg;

  auto config = draft::test::tiny_clip_config();
  config["projection_dim"] = 8;
  std::ofstream(dir.file("config.json")) << config.dump();
  msg = expect_error([&] { draft::load_clip_model(dir.path()); });
  EXPECT_NE(msg.find("visual_projection.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find(dir.file("model.safetensors")), std::string::npos) << msg;

  draft::test::write_bytes(dir.file("ckpt.pt"), "not read");
  msg = expect_error([&] { draft::load_clip_model(dir.file("ckpt.pt")); });
  EXPECT_NE(msg.find("safetensors.torch"), std::string::npos) << msg;

  // A missing OpenCLIP tensor names the transformers key and its OpenCLIP source.
  draft::test::TempDir oc;
  auto state = draft::test::to_open_clip(draft::test::tiny_clip_state());
  state.erase("visual.proj");
  draft::test::save_state(oc.file("m.safetensors"), state);
  std::ofstream(oc.file("open_clip_config.json")) << draft::test::tiny_open_clip_config().dump();
  msg = expect_error([&] { draft::load_clip_model(oc.path()); });
  EXPECT_NE(msg.find("visual_projection.weight (from visual.proj)"), std::string::npos) << msg;
}

TEST(ClipModel, RunsInFloat64) {
  draft::test::TempDir dir;
  draft::test::write_tiny_clip_folder(dir.path(), false);
  draft::WeightsOptions options;
  options.dtype = torch::kDouble;
  auto model = draft::load_clip_model(dir.path(), options);
  draft::SafeTensorsFile vision(test_data("clip_vision_tiny/cases.safetensors"));
  torch::NoGradGuard no_grad;
  auto out = model->get_image_features(vision.load("pixel_values"));
  EXPECT_EQ(out.scalar_type(), torch::kDouble);
  EXPECT_TRUE(tensors_close(out, vision.load("image_embeds_f64ref"), 1e-5));
}

}  // namespace
