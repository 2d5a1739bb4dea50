// CLIPTextModel against transformers v4.36 outputs (tests/data/clip_text_tiny), config reading, errors.
#include <filesystem>
#include <fstream>
#include <functional>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "io/config_json.h"
#include "io/safetensors.h"
#include "models/clip_text_model.h"
#include "support.h"
#include "util/error.h"

namespace {

using draft::test::tolerance;
using draft::test::expect_error;

namespace fs = std::filesystem;
using draft::test::tensors_close;

const std::string kDir = std::string(DRAFT_TEST_DATA) + "/clip_text_tiny";

struct ClipTextFixture : ::testing::Test {
  static void SetUpTestSuite() {
    cases = new draft::SafeTensorsFile(kDir + "/cases.safetensors");
    model = new draft::CLIPTextModel(draft::load_clip_text_model(kDir, {}));
  }
  static void TearDownTestSuite() {
    delete model;
    delete cases;
  }
  static torch::Tensor ref(const std::string& name) { return cases->load(name); }
  static draft::SafeTensorsFile* cases;
  static draft::CLIPTextModel* model;
};
draft::SafeTensorsFile* ClipTextFixture::cases = nullptr;
draft::CLIPTextModel* ClipTextFixture::model = nullptr;

TEST_F(ClipTextFixture, MatchesReferenceOutputs) {
  torch::NoGradGuard no_grad;
  auto out = (*model)->forward(ref("input_ids"), {}, /*output_hidden_states=*/true);
  EXPECT_TRUE(tensors_close(out.last_hidden_state, ref("last_hidden_state"), tolerance(ref("last_hidden_state"))));
  EXPECT_TRUE(tensors_close(out.pooler_output, ref("pooler_output"), tolerance(ref("pooler_output"))));
  ASSERT_EQ(out.hidden_states.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    auto r = ref("hidden_states." + std::to_string(i));
    EXPECT_TRUE(tensors_close(out.hidden_states[static_cast<std::size_t>(i)], r, tolerance(r))) << "hidden_states." << i;
  }
  // Without output_hidden_states nothing is kept.
  EXPECT_TRUE((*model)->forward(ref("input_ids")).hidden_states.empty());
}

TEST_F(ClipTextFixture, EncodeWithClipSkip) {
  torch::NoGradGuard no_grad;
  auto ids = ref("input_ids");
  auto r = ref("penultimate_ln");
  EXPECT_TRUE(tensors_close((*model)->encode(ids, 1), r, tolerance(r)));
  auto last = ref("last_hidden_state");
  EXPECT_TRUE(tensors_close((*model)->encode(ids, 0), last, tolerance(last)));
  EXPECT_NE(expect_error([&] { (*model)->encode(ids, 2); }).find("clip_skip"), std::string::npos);
}

TEST_F(ClipTextFixture, MatchesReferenceWithAttentionMask) {
  torch::NoGradGuard no_grad;
  auto out = (*model)->forward(ref("input_ids"), ref("masked.attention_mask"));
  auto last = ref("masked.last_hidden_state");
  auto pooled = ref("masked.pooler_output");
  EXPECT_TRUE(tensors_close(out.last_hidden_state, last, tolerance(last)));
  EXPECT_TRUE(tensors_close(out.pooler_output, pooled, tolerance(pooled)));
  // The mask must really change the padding positions (else this case tests nothing).
  EXPECT_GT((last - ref("last_hidden_state")).abs().max().item<double>(), 0.1);
}

TEST_F(ClipTextFixture, RejectsBadInputs) {
  torch::NoGradGuard no_grad;
  auto ids = ref("input_ids");
  EXPECT_NE(expect_error([&] { (*model)->forward(torch::zeros({1, 78}, torch::kLong)); }).find("78 tokens"),
            std::string::npos);
  EXPECT_NE(expect_error([&] { (*model)->forward(ids.to(torch::kFloat)); }).find("int64"), std::string::npos);
  EXPECT_NE(expect_error([&] { (*model)->forward(ids + 1); }).find("token ids"), std::string::npos);
  expect_error([&] { (*model)->forward(ids, torch::ones({2, 5}, torch::kLong)); });
}

TEST(ClipText, RunsInFloat64) {
  draft::WeightsOptions options;
  options.dtype = torch::kDouble;
  auto model = draft::load_clip_text_model(kDir, options);
  draft::SafeTensorsFile cases(kDir + "/cases.safetensors");
  torch::NoGradGuard no_grad;
  auto out = model->forward(cases.load("input_ids"));
  EXPECT_EQ(out.last_hidden_state.scalar_type(), torch::kDouble);
  // The float64 reference is stored in float32: agreement to float32 rounding.
  EXPECT_TRUE(tensors_close(out.last_hidden_state, cases.load("last_hidden_state_f64ref"), 1e-5));
  EXPECT_TRUE(tensors_close(out.pooler_output, cases.load("pooler_output_f64ref"), 1e-5));
}

TEST(ClipText, LegacyEosTokenIdPoolsAtArgmax) {
  auto json = draft::ConfigJson::load(kDir + "/config.json");
  json.json["eos_token_id"] = 2;
  draft::CLIPTextModel model(draft::CLIPTextConfig::from_json(json));
  draft::WeightsOptions options;
  draft::load_weights(*model, {kDir + "/model.safetensors"}, options, "clip_text_tiny");
  draft::SafeTensorsFile cases(kDir + "/cases.safetensors");
  torch::NoGradGuard no_grad;
  auto ids = cases.load("input_ids");
  auto r = cases.load("pooler_output");
  EXPECT_TRUE(tensors_close(model->forward(ids).pooler_output, r, tolerance(r)));
  // Without an eos the rules differ: argmax(ids) picks the largest id (position 1), not position 0.
  auto out = model->forward(torch::tensor({{5, 100, 7}}, torch::kLong));
  EXPECT_TRUE(torch::equal(out.pooler_output[0], out.last_hidden_state[0][1]));
}

TEST_F(ClipTextFixture, PoolsAtFirstEos) {
  torch::NoGradGuard no_grad;
  auto out = (*model)->forward(torch::tensor({{5, 49407, 7, 49407}, {5, 100, 7, 8}}, torch::kLong));
  EXPECT_TRUE(torch::equal(out.pooler_output[0], out.last_hidden_state[0][1]));
  EXPECT_TRUE(torch::equal(out.pooler_output[1], out.last_hidden_state[1][0]));  // no eos: position 0
}

TEST(ClipText, WrongLayerCountIsALoadError) {
  draft::test::TempDir dir;
  auto json = draft::ConfigJson::load(kDir + "/config.json").json;
  json["num_hidden_layers"] = 3;
  std::ofstream(dir.file("config.json")) << json.dump();
  fs::copy_file(kDir + "/model.safetensors", dir.file("model.safetensors"));
  std::string msg = expect_error([&] { draft::load_clip_text_model(dir.path(), {}); });
  EXPECT_NE(msg.find("text_model.encoder.layers.2."), std::string::npos) << msg;
  EXPECT_NE(msg.find(dir.path()), std::string::npos) << msg;
}

TEST(ClipText, OldCheckpointPositionIdsAreIgnored) {
  draft::test::TempDir dir;
  fs::copy_file(kDir + "/config.json", dir.file("config.json"));
  auto loaded = draft::SafeTensorsFile(kDir + "/model.safetensors").load_all();
  std::vector<std::pair<std::string, torch::Tensor>> tensors(loaded.begin(), loaded.end());
  tensors.emplace_back("text_model.embeddings.position_ids", torch::arange(77).view({1, 77}));
  draft::save_safetensors(dir.file("model.safetensors"), tensors);
  auto model = draft::load_clip_text_model(dir.path(), {});
  EXPECT_EQ(model->named_buffers().size(), 0u);
}

TEST(ClipText, UnsupportedActivationIsNamed) {
  auto json = draft::ConfigJson::load(kDir + "/config.json");
  json.json["hidden_act"] = "relu";
  auto config = draft::CLIPTextConfig::from_json(json);
  std::string msg = expect_error([&] { config.validate(); });
  EXPECT_NE(msg.find("hidden_act"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'relu'"), std::string::npos) << msg;
  expect_error([&] { draft::CLIPTextModel model(config); });
}

TEST(ClipText, ReadsTextConfigOfAFullCLIPModelConfig) {
  auto flat = draft::ConfigJson::load(kDir + "/config.json");
  draft::ConfigJson full{nlohmann::json{{"model_type", "clip"},
                                        {"projection_dim", 24},
                                        {"text_config", flat.json},
                                        {"vision_config", {{"hidden_size", 64}}}},
                         "full/config.json"};
  auto c = draft::CLIPTextConfig::from_json(full);
  EXPECT_EQ(c.hidden_size, 32);
  EXPECT_EQ(c.num_hidden_layers, 2);
  EXPECT_EQ(c.intermediate_size, 37);
  EXPECT_EQ(c.eos_token_id, 49407);
  EXPECT_EQ(c.projection_dim, 24);  // CLIPModel's text_projection size
  // A legacy text_config_dict wins over text_config, completed with defaults.
  full.json["text_config_dict"] = {{"hidden_size", 48}, {"num_attention_heads", 6}};
  c = draft::CLIPTextConfig::from_json(full);
  EXPECT_EQ(c.hidden_size, 48);
  EXPECT_EQ(c.num_attention_heads, 6);
  EXPECT_EQ(c.intermediate_size, 2048);
  // A vision config is not silently read as a text config.
  draft::ConfigJson vision{nlohmann::json{{"model_type", "clip_vision_model"}}, "v/config.json"};
  EXPECT_NE(expect_error([&] { draft::CLIPTextConfig::from_json(vision); }).find("clip_vision_model"),
            std::string::npos);
  // Wrong types name file and key.
  full.json.erase("text_config_dict");
  full.json["text_config"]["hidden_size"] = "big";
  std::string msg = expect_error([&] { draft::CLIPTextConfig::from_json(full); });
  EXPECT_NE(msg.find("full/config.json [text_config]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("hidden_size"), std::string::npos) << msg;
}

}  // namespace
