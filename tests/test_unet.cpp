// UNet2DCondition parity with diffusers v0.25 on the tiny SD-1.x and SD-2.x fixtures, config parsing,
// unsupported options, strict loading and differentiability.
#include <cmath>
#include <filesystem>
#include <functional>
#include <string>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "io/config_json.h"
#include "io/safetensors.h"
#include "models/unet_2d_condition.h"
#include "nn/attention.h"
#include "support.h"
#include "util/error.h"

namespace {

using draft::test::expect_error;
using draft::test::tolerance;
using draft::test::test_data;

using draft::test::tensors_close;

void check_fixture(const std::string& set, int levels) {
  torch::NoGradGuard no_grad;
  auto unet = draft::load_unet(test_data(set));
  draft::SafeTensorsFile cases(test_data(set + "/cases.safetensors"));

  // caseA: per-sample int64 timesteps, every intermediate the fixture stores.
  draft::TensorTrace trace;
  at::Tensor out = unet->forward_traced(cases.load("caseA.sample"), cases.load("caseA.timesteps"),
                                        cases.load("caseA.encoder_hidden_states"), trace);
  std::vector<std::string> names = {"time_proj", "time_embedding", "conv_in", "mid_block", "conv_norm_out", "conv_out"};
  for (int i = 0; i < levels; ++i) {
    names.push_back("down_blocks." + std::to_string(i));
    names.push_back("up_blocks." + std::to_string(i));
  }
  for (const auto& name : names) {
    SCOPED_TRACE(set + " caseA.inter." + name);
    std::printf("  %s caseA.inter.%s\n", set.c_str(), name.c_str());
    ASSERT_TRUE(trace.count(name)) << "not recorded: " << name;
    at::Tensor ref = cases.load("caseA.inter." + name);
    EXPECT_TRUE(tensors_close(trace.at(name), ref, tolerance(ref)));
  }
  for (const char* key : {"caseA.out", "caseA.out_f64ref"}) {
    SCOPED_TRACE(set + " " + key);
    std::printf("  %s %s\n", set.c_str(), key);
    at::Tensor ref = cases.load(key);
    EXPECT_TRUE(tensors_close(out, ref, tolerance(ref)));
  }

  // caseB: one timestep of shape [1] broadcast to the batch, 77 context tokens.
  at::Tensor out_b = unet->forward(cases.load("caseB.sample"), cases.load("caseB.timesteps"),
                                   cases.load("caseB.encoder_hidden_states"));
  for (const char* key : {"caseB.out", "caseB.out_f64ref"}) {
    SCOPED_TRACE(set + " " + key);
    std::printf("  %s %s\n", set.c_str(), key);
    at::Tensor ref = cases.load(key);
    EXPECT_TRUE(tensors_close(out_b, ref, tolerance(ref)));
  }
  // The same timestep as a 0-dim float tensor gives the same result (the sinusoid takes t.float()).
  at::Tensor t_scalar = cases.load("caseB.timesteps").reshape({}).to(torch::kDouble);
  at::Tensor out_scalar =
      unet->forward(cases.load("caseB.sample"), t_scalar, cases.load("caseB.encoder_hidden_states"));
  EXPECT_TRUE(torch::equal(out_scalar, out_b));
}

TEST(UNet, MatchesDiffusersSD15Tiny) { check_fixture("unet_sd15_tiny", 2); }

TEST(UNet, MatchesDiffusersSD2Tiny) { check_fixture("unet_sd2_tiny", 3); }

TEST(UNet, ConfigFromJsonAndPresets) {
  auto sd15_tiny = draft::UNetConfig::from_json(draft::ConfigJson::load(test_data("unet_sd15_tiny/config.json")));
  EXPECT_EQ(sd15_tiny.to_json(), draft::UNetConfig::tiny().to_json());

  auto sd2 = draft::UNetConfig::from_json(draft::ConfigJson::load(test_data("unet_sd2_tiny/config.json")));
  EXPECT_EQ(sd2.attention_head_dim, (std::vector<int64_t>{2, 4, 4}));
  EXPECT_TRUE(sd2.use_linear_projection);
  EXPECT_EQ(sd2.layers_per_block, (std::vector<int64_t>{2, 2, 2}));

  auto sd15 = draft::UNetConfig::sd15();
  sd15.validate();
  EXPECT_EQ(sd15.time_embed_dim(), 1280);
}

TEST(UNet, StateDictKeysMirrorDiffusers) {
  draft::UNet2DCondition unet(draft::UNetConfig::tiny());
  draft::SafeTensorsFile file(test_data("unet_sd15_tiny/diffusion_pytorch_model.safetensors"));
  auto params = unet->named_parameters();
  EXPECT_EQ(params.size(), file.tensors().size());
  for (const char* key :
       {"down_blocks.0.attentions.1.transformer_blocks.0.attn1.to_q.weight",
        "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_out.0.weight",
        "down_blocks.0.attentions.0.transformer_blocks.0.ff.net.0.proj.weight",
        "down_blocks.0.attentions.0.transformer_blocks.0.ff.net.2.bias", "down_blocks.0.downsamplers.0.conv.weight",
        "up_blocks.0.upsamplers.0.conv.weight", "up_blocks.1.resnets.2.conv_shortcut.weight",
        "mid_block.attentions.0.proj_in.weight", "time_embedding.linear_2.weight"}) {
    EXPECT_TRUE(params.contains(key)) << key;
  }
}

TEST(UNet, UnsupportedOptionsNameOptionAndValue) {
  auto base = draft::ConfigJson::load(test_data("unet_sd15_tiny/config.json"));
  auto with = [&](const std::string& key, const nlohmann::json& value) {
    draft::ConfigJson c = base;
    c.json[key] = value;
    return expect_error([&] { draft::UNetConfig::from_json(c); });
  };
  std::string msg = with("class_embed_type", "timestep");
  EXPECT_NE(msg.find("class_embed_type"), std::string::npos) << msg;
  EXPECT_NE(msg.find("timestep"), std::string::npos) << msg;
  EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;
  msg = with("act_fn", "gelu");
  EXPECT_NE(msg.find("act_fn"), std::string::npos) << msg;
  EXPECT_NE(msg.find("gelu"), std::string::npos) << msg;
  msg = with("dual_cross_attention", true);
  EXPECT_NE(msg.find("dual_cross_attention = true"), std::string::npos) << msg;
  msg = with("down_block_types", nlohmann::json{"CrossAttnDownBlock2D", "SimpleCrossAttnDownBlock2D"});
  EXPECT_NE(msg.find("SimpleCrossAttnDownBlock2D"), std::string::npos) << msg;
  msg = with("attention_head_dim", 7);
  EXPECT_NE(msg.find("attention_head_dim[0] = 7"), std::string::npos) << msg;
  msg = with("num_attention_heads", 8);
  EXPECT_NE(msg.find("num_attention_heads = 8"), std::string::npos) << msg;
}

TEST(UNet, WrongShapeWeightIsALoaderError) {
  draft::test::TempDir dir;
  std::filesystem::copy_file(test_data("unet_sd15_tiny/config.json"), dir.file("config.json"));
  draft::SafeTensorsFile file(test_data("unet_sd15_tiny/diffusion_pytorch_model.safetensors"));
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& info : file.tensors()) {
    at::Tensor t = file.load(info.name);
    if (info.name == "mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight") t = torch::zeros({64, 16});
    tensors.emplace_back(info.name, t);
  }
  draft::save_safetensors(dir.file("diffusion_pytorch_model.safetensors"), tensors);
  std::string msg = expect_error([&] { draft::load_unet(dir.path()); });
  EXPECT_NE(msg.find("mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[64, 16]"), std::string::npos) << msg;
}

TEST(UNet, AttentionProjectionsCanBeReplaced) {
  // The hook LoRA uses: a replacement keeps the state-dict name and is what forward calls.
  torch::NoGradGuard no_grad;
  draft::Attention attn(draft::AttentionOptions(8, 2, 4).cross_attention_dim(6));
  at::Tensor x = torch::randn({1, 5, 8}), ctx = torch::randn({1, 3, 6});
  EXPECT_EQ(attn->projection("to_k").ptr<torch::nn::LinearImpl>()->weight.sizes(), (c10::IntArrayRef{8, 6}));
  torch::nn::Linear zero(8, 8);
  zero->weight.zero_();
  zero->bias.zero_();
  attn->replace_projection("to_out.0", torch::nn::AnyModule(zero));
  auto params = attn->named_parameters();
  ASSERT_TRUE(params.contains("to_out.0.weight"));
  EXPECT_TRUE(params["to_out.0.weight"].is_same(zero->weight));
  EXPECT_EQ(attn(x, ctx).abs().max().item<float>(), 0.f);
  EXPECT_THROW(attn->replace_projection("to_z", torch::nn::AnyModule(zero)), draft::Error);
}

TEST(UNet, IsDifferentiable) {
  auto unet = draft::load_unet(test_data("unet_sd15_tiny"));
  draft::SafeTensorsFile cases(test_data("unet_sd15_tiny/cases.safetensors"));
  at::Tensor x = cases.load("caseA.sample").requires_grad_(true);
  at::Tensor ctx = cases.load("caseA.encoder_hidden_states").requires_grad_(true);
  at::Tensor out = unet->forward(x, cases.load("caseA.timesteps"), ctx);
  out.square().mean().backward();
  ASSERT_TRUE(x.grad().defined());
  ASSERT_TRUE(ctx.grad().defined());
  EXPECT_TRUE(torch::isfinite(x.grad()).all().item<bool>());
  EXPECT_GT(x.grad().abs().sum().item<double>(), 0.0);
  EXPECT_GT(ctx.grad().abs().sum().item<double>(), 0.0);
  for (const auto& p : unet->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
  }
}

TEST(UNet, ForwardsUpsampleSizeForOddInputs) {
  // 18x18 through 3 levels goes 18 -> 9 -> 5; plain 2x upsampling would give 10, so the UNet must
  // forward the skip size (9) to the first upsampler, as diffusers does.
  torch::NoGradGuard no_grad;
  auto unet = draft::load_unet(test_data("unet_sd2_tiny"));
  at::Tensor x = torch::randn({1, 4, 18, 18});
  at::Tensor out = unet->forward(x, torch::tensor({10}), torch::randn({1, 3, 32}));
  EXPECT_EQ(out.sizes(), x.sizes());
}

}  // namespace
