// AutoencoderKL parity with diffusers v0.25 on the vae_tiny fixture (encode, decode, intermediates),
// the pipeline decode helper, config parsing and unsupported options.
#include <functional>
#include <string>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "io/config_json.h"
#include "io/safetensors.h"
#include "models/autoencoder_kl.h"
#include "support.h"
#include "util/error.h"

namespace {

using draft::test::expect_error;
using draft::test::tolerance;
using draft::test::test_data;

using draft::test::tensors_close;

void expect_close(const at::Tensor& got, const at::Tensor& ref, const std::string& name) {
  SCOPED_TRACE(name);
  std::printf("  %s\n", name.c_str());
  EXPECT_TRUE(tensors_close(got, ref, tolerance(ref)));
}

class VAE : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    vae_ = new draft::AutoencoderKL(draft::load_vae(test_data("vae_tiny")));
    cases_ = new draft::SafeTensorsFile(test_data("vae_tiny/cases.safetensors"));
  }
  static void TearDownTestSuite() {
    delete vae_;
    delete cases_;
  }
  static draft::AutoencoderKL* vae_;
  static draft::SafeTensorsFile* cases_;
};
draft::AutoencoderKL* VAE::vae_ = nullptr;
draft::SafeTensorsFile* VAE::cases_ = nullptr;

TEST_F(VAE, EncodeMatchesDiffusers) {
  torch::NoGradGuard no_grad;
  draft::TensorTrace trace;
  draft::DiagonalGaussian posterior = (*vae_)->encode(cases_->load("encode.image"), &trace);
  for (const char* name : {"encoder.conv_in", "encoder.down_blocks.0", "encoder.down_blocks.1", "encoder.mid_block",
                           "encoder", "quant_conv"}) {
    ASSERT_TRUE(trace.count(name)) << name;
    expect_close(trace.at(name), cases_->load(std::string("encode.inter.") + name),
                 std::string("encode.inter.") + name);
  }
  for (const char* suffix : {"", "_f64ref"}) {
    expect_close(posterior.mean, cases_->load(std::string("encode.mean") + suffix),
                 std::string("encode.mean") + suffix);
    expect_close(posterior.logvar, cases_->load(std::string("encode.logvar") + suffix),
                 std::string("encode.logvar") + suffix);
    expect_close(posterior.stddev(), cases_->load(std::string("encode.std") + suffix),
                 std::string("encode.std") + suffix);
  }
  at::Tensor noise = torch::randn_like(posterior.mean);
  EXPECT_TRUE(torch::allclose(posterior.sample(noise), posterior.mean + posterior.stddev() * noise));
}

TEST_F(VAE, DecodeMatchesDiffusers) {
  torch::NoGradGuard no_grad;
  draft::TensorTrace trace;
  at::Tensor latent = cases_->load("decode.latent");
  at::Tensor out = (*vae_)->decode(latent, &trace);
  // The fixture stores decoder intermediates of batch element 0 only.
  for (const char* name :
       {"post_quant_conv", "decoder.conv_in", "decoder.mid_block", "decoder.up_blocks.0", "decoder.up_blocks.1"}) {
    ASSERT_TRUE(trace.count(name)) << name;
    expect_close(trace.at(name).slice(0, 0, 1), cases_->load(std::string("decode.inter.") + name),
                 std::string("decode.inter.") + name);
  }
  expect_close(out, cases_->load("decode.out"), "decode.out");
  expect_close(out, cases_->load("decode.out_f64ref"), "decode.out_f64ref");

  // Pipeline helper: latents are divided by scaling_factor, then (x / 2 + 0.5) clamped to [0, 1].
  at::Tensor images = (*vae_)->decode_latents_to_images(latent * (*vae_)->config().scaling_factor);
  at::Tensor expected = (cases_->load("decode.out") / 2 + 0.5).clamp(0, 1);
  expect_close(images, expected, "decode_latents_to_images");
  EXPECT_GE(images.min().item<float>(), 0.f);
  EXPECT_LE(images.max().item<float>(), 1.f);
}

TEST_F(VAE, DecodeIsDifferentiable) {
  at::Tensor latent = cases_->load("decode.latent").slice(0, 0, 1).requires_grad_(true);
  (*vae_)->decode_latents_to_images(latent).mean().backward();
  ASSERT_TRUE(latent.grad().defined());
  EXPECT_GT(latent.grad().abs().sum().item<double>(), 0.0);
  (*vae_)->zero_grad();
}

TEST(VAEConfig, FromJsonPresetsAndKeys) {
  auto config = draft::VAEConfig::from_json(draft::ConfigJson::load(test_data("vae_tiny/config.json")));
  EXPECT_EQ(config.to_json(), draft::VAEConfig::tiny().to_json());
  draft::VAEConfig::sd15().validate();
  draft::AutoencoderKL vae(config);
  draft::SafeTensorsFile file(test_data("vae_tiny/diffusion_pytorch_model.safetensors"));
  auto params = vae->named_parameters();
  EXPECT_EQ(params.size(), file.tensors().size());
  for (const char* key :
       {"encoder.mid_block.attentions.0.group_norm.weight", "encoder.mid_block.attentions.0.to_q.bias",
        "decoder.mid_block.attentions.0.to_out.0.weight", "encoder.down_blocks.0.downsamplers.0.conv.weight",
        "decoder.up_blocks.0.upsamplers.0.conv.weight", "decoder.up_blocks.1.resnets.0.conv_shortcut.weight",
        "quant_conv.weight", "post_quant_conv.bias"}) {
    EXPECT_TRUE(params.contains(key)) << key;
  }
}

TEST(VAEConfig, UnsupportedOptionsNameOptionAndValue) {
  auto base = draft::ConfigJson::load(test_data("vae_tiny/config.json"));
  auto with = [&](const std::string& key, const nlohmann::json& value) {
    draft::ConfigJson c = base;
    c.json[key] = value;
    return expect_error([&] { draft::VAEConfig::from_json(c); });
  };
  std::string msg = with("down_block_types", nlohmann::json{"DownEncoderBlock2D", "AttnDownEncoderBlock2D"});
  EXPECT_NE(msg.find("AttnDownEncoderBlock2D"), std::string::npos) << msg;
  msg = with("act_fn", "relu");
  EXPECT_NE(msg.find("act_fn = 'relu'"), std::string::npos) << msg;
  msg = with("shift_factor", 0.1159);
  EXPECT_NE(msg.find("shift_factor = 0.1159"), std::string::npos) << msg;
  msg = with("use_quant_conv", false);
  EXPECT_NE(msg.find("use_quant_conv = false"), std::string::npos) << msg;
}

}  // namespace
