// `draft pretrain unet`: the loop on a tiny subset writes a diffusers pipeline folder that the generic
// loader samples from, and a resumed run ends with the uninterrupted run's weights.
#include <filesystem>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "diffusion/text_to_image.h"
#include "io/config_json.h"
#include "io/json_file.h"
#include "io/safetensors.h"
#include "models/weights.h"
#include "train/checkpoint.h"
#include "train/metrics.h"
#include "train/run_folder.h"
#include "pretrain/text_to_image_training.h"
#include "pretrain/vae_training.h"
#include "support.h"

namespace {

using draft::test::expect_error;
using draft::test::TempDir;
using draft::test::tensors_close;

// A random (untrained) narrow VAE with the embedded model's 8x8x4 latents, saved as a diffusers folder.
std::string write_tiny_vae(const TempDir& dir) {
  draft::VAEConfig v = draft::fashion_vae_config();
  v.block_out_channels = {8, 8, 16};
  v.norm_num_groups = 4;
  v.scaling_factor = 0.5;
  torch::manual_seed(1);
  draft::AutoencoderKL vae(v);
  const std::string folder = dir.file("vae");
  draft::save_weights(*vae, folder + "/diffusion_pytorch_model.safetensors");
  draft::write_json_file(folder + "/config.json", v.to_json());
  return folder;
}

// 96 images in batches of 32 (3 steps per epoch), a small UNet and text encoder, no evaluations.
draft::TextToImageTrainConfig tiny_run(const std::string& out, const std::string& vae) {
  draft::TextToImageTrainConfig c;
  c.out_dir = out;
  c.vae_dir = vae;
  c.limit = 96;
  c.epochs = 2;
  c.batch_size = 32;
  c.warmup_steps = 2;
  c.checkpoint_every = 2;
  c.log_every = 1;
  c.classifier_dir = "";
  c.unet.block_out_channels = {16, 32};
  c.unet.norm_num_groups = 8;
  c.unet.cross_attention_dim = {16, 16};
  c.text_encoder.hidden_size = 16;
  c.text_encoder.intermediate_size = 32;
  c.text_encoder.num_hidden_layers = 1;
  return c;
}

TEST(TextToImageTraining, ConfigValidationNamesTheKey) {
  draft::TextToImageTrainConfig c = tiny_run("/tmp/unused", "/tmp/vae");
  c.vae_dir = "";
  EXPECT_NE(expect_error([&] { c.validate(); }).find("--vae"), std::string::npos);
  c = tiny_run("/tmp/unused", "/tmp/vae");
  c.text_encoder.hidden_size = 32;
  EXPECT_NE(expect_error([&] { c.validate(); }).find("cross_attention_dim"), std::string::npos);
  c = tiny_run("/tmp/unused", "/tmp/vae");
  c.caption_templates = {"a photo"};
  EXPECT_NE(expect_error([&] { c.validate(); }).find("{class}"), std::string::npos);
  // The JSON form round-trips.
  c = tiny_run("/tmp/unused", "/tmp/vae");
  const draft::TextToImageTrainConfig back =
      draft::TextToImageTrainConfig::from_json(draft::ConfigJson{c.to_json(), "config.json"}, {});
  EXPECT_EQ(back.to_json(), c.to_json());
}

TEST(TextToImageTraining, TinySubsetWritesAPipelineTheLoaderSamples) {
  if (!draft::test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  draft::test::OneThread one;
  TempDir dir;
  const draft::TextToImageTrainResult r = draft::train_text_to_image(tiny_run(dir.file("run"), write_tiny_vae(dir)));
  EXPECT_EQ(r.steps, 6);
  EXPECT_FALSE(r.stopped_early);
  for (const char* file : {"model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
                           "vae/config.json", "text_encoder/config.json", "text_encoder/model.safetensors",
                           "tokenizer/vocab.json", "tokenizer/merges.txt", "scheduler/scheduler_config.json"}) {
    EXPECT_TRUE(std::filesystem::is_regular_file(r.model_dir + "/" + file)) << file;
  }
  const nlohmann::json index = draft::read_json_file(r.model_dir + "/model_index.json");
  EXPECT_EQ(index.at("_class_name"), "StableDiffusionPipeline");
  EXPECT_EQ(index.at("unet"), nlohmann::json({"diffusers", "UNet2DConditionModel"}));
  EXPECT_EQ(draft::read_json_file(r.model_dir + "/text_encoder/config.json").at("model_type"), "clip_text_model");

  const draft::StableDiffusion sd = draft::load_stable_diffusion(r.model_dir, {});
  EXPECT_EQ(sd.default_image_size(), 32);
  draft::TextToImageOptions o;
  o.prompts = {"a photo of a bag", "sneaker"};
  o.steps = 3;
  o.guidance_scale = 3.0;
  const draft::TextToImageResult a = draft::text_to_image(sd, o);
  EXPECT_EQ(a.images.sizes(), (std::vector<int64_t>{2, 1, 32, 32}));
  EXPECT_EQ(a.latents.sizes(), (std::vector<int64_t>{2, 4, 8, 8}));
  EXPECT_TRUE(tensors_close(draft::text_to_image(sd, o).images, a.images, 0.0));

  int train = 0, finals = 0;
  for (const auto& record : draft::read_metrics(dir.file("run/metrics.jsonl"))) {
    train += record.at("event") == "train";
    finals += record.at("event") == "final";
    if (record.at("event") == "train") {
      EXPECT_TRUE(std::isfinite(record.at("loss").get<double>()));
    }
  }
  EXPECT_EQ(train, 6);
  EXPECT_EQ(finals, 1);
}

TEST(TextToImageTraining, ResumeReproducesTheUninterruptedRun) {
  if (!draft::test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  draft::test::OneThread one;
  TempDir dir;
  const std::string vae = write_tiny_vae(dir);
  const draft::TextToImageTrainResult full = draft::train_text_to_image(tiny_run(dir.file("full"), vae));
  draft::TextToImageTrainConfig c = tiny_run(dir.file("split"), vae);
  c.stop_after_steps = 4;
  EXPECT_TRUE(draft::train_text_to_image(c).stopped_early);
  c.stop_after_steps = 0;
  c.resume = true;
  c.ema_decay = 0.5;
  EXPECT_NE(expect_error([&] { draft::train_text_to_image(c); }).find("ema_decay"), std::string::npos);
  c.ema_decay = tiny_run("", "").ema_decay;
  const draft::TextToImageTrainResult rest = draft::train_text_to_image(c);
  EXPECT_EQ(rest.steps, 6);
  for (const char* part : {"unet/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors"}) {
    draft::SafeTensorsFile a(full.model_dir + "/" + part), b(rest.model_dir + "/" + part);
    for (const auto& info : a.tensors()) {
      EXPECT_TRUE(tensors_close(b.load(info.name), a.load(info.name), 0.0)) << part << ": " << info.name;
    }
  }
}

}  // namespace
