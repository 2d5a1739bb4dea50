// Strict weight loading: names, shapes, dtype conversion, pickle refusal.
#include <string>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "io/safetensors.h"
#include "models/weights.h"
#include "support.h"
#include "util/error.h"

namespace {

using draft::test::expect_error;

using draft::test::TempDir;

struct TinyImpl : torch::nn::Module {
  TinyImpl() {
    proj = register_module("proj", torch::nn::Linear(3, 2));
    scale = register_buffer("scale", torch::ones({2}));
  }
  torch::nn::Linear proj = nullptr;
  torch::Tensor scale;
};
TORCH_MODULE(Tiny);

TEST(Weights, LoadsWithPrefixAndDtype) {
  TempDir dir;
  auto w = torch::arange(6, torch::kFloat).view({2, 3});
  draft::save_safetensors(dir.file("m.safetensors"), {{"m.proj.weight", w.to(torch::kHalf)},
                                                      {"m.proj.bias", torch::tensor({1.f, 2.f})},
                                                      {"m.scale", torch::tensor({3.f, 4.f})},
                                                      {"m.embeddings.position_ids", torch::arange(3)}});
  Tiny tiny;
  draft::WeightsOptions options;
  options.prefix = "m.";
  options.dtype = torch::kDouble;
  options.ignore_suffixes = {"position_ids"};
  auto report = draft::load_weights(*tiny, {dir.file("m.safetensors")}, options, "tiny");
  EXPECT_EQ(report.loaded, 3);
  EXPECT_EQ(tiny->proj->weight.scalar_type(), torch::kDouble);
  EXPECT_TRUE(torch::equal(tiny->proj->weight, w.to(torch::kDouble)));
  EXPECT_TRUE(torch::equal(tiny->scale, torch::tensor({3., 4.}, torch::kDouble)));
  EXPECT_TRUE(tiny->proj->weight.requires_grad());  // still a parameter
}

TEST(Weights, ReportsMissingUnexpectedAndMismatched) {
  TempDir dir;
  draft::save_safetensors(dir.file("m.safetensors"), {{"proj.weight", torch::zeros({2, 4})},
                                                      {"extra", torch::zeros({1})},
                                                      {"scale", torch::zeros({2})}});
  Tiny tiny;
  std::string msg = expect_error([&] { draft::load_weights(*tiny, {dir.file("m.safetensors")}, {}, "my-model"); });
  EXPECT_NE(msg.find("my-model"), std::string::npos) << msg;
  EXPECT_NE(msg.find("1 missing key(s): proj.bias"), std::string::npos) << msg;
  EXPECT_NE(msg.find("proj.weight: file [2, 4] vs model [2, 3]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("1 unexpected key(s): extra"), std::string::npos) << msg;
}

TEST(Weights, RefusesPickles) {
  TempDir dir;
  draft::test::write_bytes(dir.file("model.ckpt"), "not read");
  Tiny tiny;
  std::string msg = expect_error([&] { draft::load_weights(*tiny, {dir.file("model.ckpt")}, {}, "m"); });
  EXPECT_NE(msg.find("safetensors"), std::string::npos) << msg;
  TempDir folder;
  draft::test::write_bytes(folder.file("pytorch_model.bin"), "not read");
  msg = expect_error([&] { draft::find_weight_files(folder.path()); });
  EXPECT_NE(msg.find("pytorch_model.bin"), std::string::npos) << msg;
  EXPECT_NE(msg.find("convert"), std::string::npos) << msg;
}

TEST(Weights, FindsSingleAndShardedFiles) {
  TempDir dir;
  draft::save_safetensors(dir.file("model-00002-of-00002.safetensors"), {{"a", torch::zeros({1})}});
  draft::save_safetensors(dir.file("model-00001-of-00002.safetensors"), {{"b", torch::zeros({1})}});
  auto files = draft::find_weight_files(dir.path());
  ASSERT_EQ(files.size(), 2u);
  EXPECT_NE(files[0].find("00001"), std::string::npos);
  draft::save_safetensors(dir.file("model.safetensors"), {{"a", torch::zeros({1})}});
  EXPECT_EQ(draft::find_weight_files(dir.path()).size(), 1u);
  EXPECT_THROW(draft::find_weight_files(dir.file("nope")), draft::Error);
}

TEST(Weights, ParsesDtypeAndDevice) {
  EXPECT_EQ(draft::parse_compute_dtype("bf16"), torch::kBFloat16);
  EXPECT_EQ(draft::parse_compute_dtype("f16"), torch::kHalf);
  EXPECT_THROW(draft::parse_compute_dtype("f8"), draft::Error);
  EXPECT_TRUE(draft::parse_device("cpu").is_cpu());
  EXPECT_THROW(draft::parse_device("tpu"), draft::Error);
  EXPECT_THROW(draft::parse_device("cuda:99"), draft::Error);  // no such device, with or without CUDA
}

TEST(Weights, RefusesCudaDeviceOnCpuOnlyMachine) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "CUDA is available: nothing to refuse";
  const std::string msg = expect_error([] { draft::parse_device("cuda"); });
  EXPECT_NE(msg.find("no CUDA device"), std::string::npos) << msg;
}

// Label `gpu` (name ends in Cuda): skipped, not passed, where there is no CUDA device.
TEST(Weights, ParsesDeviceOnCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "CUDA is not available";
  EXPECT_TRUE(draft::parse_device("cuda").is_cuda());
  EXPECT_EQ(draft::parse_device("cuda:0").index(), 0);
  const std::string missing = "cuda:" + std::to_string(torch::cuda::device_count());
  EXPECT_NE(expect_error([&] { draft::parse_device(missing); }).find("does not exist"), std::string::npos);
}

}  // namespace
