// `draft pretrain vae`: the loop on a tiny subset (run folder, diffusers vae/ folder with a measured
// scaling factor) and a resumed run that ends with the uninterrupted run's weights.
#include <filesystem>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "io/config_json.h"
#include "train/checkpoint.h"
#include "train/metrics.h"
#include "train/run_folder.h"
#include "pretrain/vae_training.h"
#include "support.h"

namespace {

using draft::test::expect_error;
using draft::test::TempDir;
using draft::test::tensors_close;

// 128 images, batches of 32: 4 steps per epoch, a narrow three-level VAE (8x8x4 latents).
draft::VAETrainConfig tiny_run(const std::string& out) {
  draft::VAETrainConfig c;
  c.out_dir = out;
  c.limit = 128;
  c.epochs = 2;
  c.batch_size = 32;
  c.lr = 2e-3;
  c.warmup_steps = 2;
  c.checkpoint_every = 3;
  c.log_every = 2;
  c.eval_batch_size = 64;
  c.scaling_images = 64;
  c.model.block_out_channels = {8, 8, 16};
  c.model.norm_num_groups = 4;
  return c;
}

TEST(VAETraining, DefaultModelMakesEightByEightByFourLatents) {
  draft::AutoencoderKL vae(draft::fashion_vae_config());
  const at::Tensor x = torch::rand({2, 1, 32, 32});
  const draft::DiagonalGaussian posterior = vae->encode(x * 2 - 1);
  EXPECT_EQ(posterior.mean.sizes(), (std::vector<int64_t>{2, 4, 8, 8}));
  EXPECT_EQ(vae->decode(posterior.mean).sizes(), x.sizes());
}

TEST(VAETraining, ConfigValidationNamesTheKey) {
  draft::VAETrainConfig c = tiny_run("/tmp/unused");
  c.recon_loss = "huber";
  EXPECT_NE(expect_error([&] { c.validate(); }).find("recon_loss"), std::string::npos);
  c = tiny_run("/tmp/unused");
  c.model.in_channels = 3;
  EXPECT_NE(expect_error([&] { c.validate(); }).find("in_channels"), std::string::npos);
  const std::string message = expect_error([&] {
    draft::VAETrainConfig::from_json(draft::ConfigJson{{{"kl_wieght", 1.0}}, "run.json"}, draft::VAETrainConfig());
  });
  EXPECT_NE(message.find("kl_wieght"), std::string::npos) << message;
}

TEST(VAETraining, TinySubsetWritesALoadableVaeFolder) {
  if (!draft::test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  draft::test::OneThread one;
  TempDir dir;
  const draft::VAETrainResult r = draft::train_vae(tiny_run(dir.file("run")));
  EXPECT_EQ(r.steps, 8);
  EXPECT_FALSE(r.stopped_early);
  EXPECT_GT(r.scaling_factor, 0.0);
  EXPECT_GT(r.test.psnr, 5.0);

  draft::AutoencoderKL vae = draft::load_vae(r.model_dir);
  EXPECT_DOUBLE_EQ(vae->config().scaling_factor, r.scaling_factor);
  EXPECT_EQ(vae->config().in_channels, 1);
  // The folder's weights are the trained ones: the same reconstruction quality.
  const draft::ImageDataset test = draft::load_fashion_mnist(draft::kFashionMNISTDir, "test", 128);
  EXPECT_NEAR(draft::evaluate_vae(vae, test.images, 64).mse, r.test.mse, 1e-7);

  int evals = 0, finals = 0;
  for (const auto& record : draft::read_metrics(dir.file("run/metrics.jsonl"))) {
    evals += record.at("event") == "eval";
    finals += record.at("event") == "final";
  }
  EXPECT_EQ(evals, 2);
  EXPECT_EQ(finals, 1);
}

TEST(VAETraining, ResumeReproducesTheUninterruptedRun) {
  if (!draft::test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  draft::test::OneThread one;
  TempDir dir;
  const draft::VAETrainResult full = draft::train_vae(tiny_run(dir.file("full")));
  draft::VAETrainConfig c = tiny_run(dir.file("split"));
  c.stop_after_steps = 3;
  EXPECT_TRUE(draft::train_vae(c).stopped_early);
  c.stop_after_steps = 0;
  c.kl_weight = 1e-3;
  c.resume = true;
  EXPECT_NE(expect_error([&] { draft::train_vae(c); }).find("kl_weight"), std::string::npos);
  c.kl_weight = tiny_run("").kl_weight;
  const draft::VAETrainResult rest = draft::train_vae(c);
  EXPECT_EQ(rest.steps, 8);
  EXPECT_EQ(rest.scaling_factor, full.scaling_factor);
  draft::AutoencoderKL a = draft::load_vae(full.model_dir), b = draft::load_vae(rest.model_dir);
  auto pb = b->named_parameters();
  for (const auto& item : a->named_parameters()) EXPECT_TRUE(tensors_close(pb[item.key()], item.value(), 0.0)) << item.key();
}

// Label `gpu`: `--device cuda` trains the same run as the CPU (random draws stay on the CPU), up to
// rounding, and its vae/ folder loads on the CPU.
TEST(VAETraining, TrainsTheSameRunOnCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "CUDA is not available";
  if (!draft::test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  TempDir dir;
  const draft::VAETrainResult cpu = draft::train_vae(tiny_run(dir.file("cpu")));
  draft::VAETrainConfig c = tiny_run(dir.file("cuda"));
  c.device = "cuda";
  const draft::VAETrainResult cuda = draft::train_vae(c);
  EXPECT_EQ(cuda.steps, cpu.steps);
  EXPECT_NEAR(cuda.test.mse, cpu.test.mse, 1e-3 * cpu.test.mse + 1e-6);
  EXPECT_NEAR(cuda.scaling_factor, cpu.scaling_factor, 1e-3 * cpu.scaling_factor);
  draft::AutoencoderKL a = draft::load_vae(cpu.model_dir), b = draft::load_vae(cuda.model_dir);
  auto pb = b->named_parameters();
  for (const auto& item : a->named_parameters()) EXPECT_TRUE(tensors_close(pb[item.key()], item.value(), 1e-3)) << item.key();
}

}  // namespace
