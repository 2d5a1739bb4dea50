// The LoRA flags of the CLI: sample --lora FILE[:SCALE], eval --lora (drift against the model without
// LoRA), lora merge (merged folder samples like model + LoRA) and lora convert.
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "diffusion/stable_diffusion.h"
#include "diffusion/text_to_image.h"
#include "diffusion/pipeline_lora.h"
#include "lora/lora.h"
#include "lora/lora_file.h"
#include "cli_runner.h"
#include "io/safetensors.h"
#include "support.h"

namespace {

using draft::test::TempDir;
using draft::test::tensors_close;
using draft::test::test_data;

using draft::test::CliRun;
using draft::test::run_cli;
using draft::test::slurp;

// A trained-looking LoRA for the tiny pipeline's UNet, in `format`.
std::string make_lora(const TempDir& dir, draft::LoRAFormat format) {
  draft::StableDiffusion sd = draft::load_stable_diffusion(test_data("sd_pipeline_tiny"), {});
  auto network = draft::inject_lora(sd.unet, {});
  torch::manual_seed(3);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : network.parameters()) p.normal_(0.0, 0.1);
  }
  const std::string path = dir.file(std::string("lora_") + draft::lora_format_name(format) + ".safetensors");
  draft::save_lora(network, path, format);
  return path;
}

// One CLI thread: the process starts in well under a second, and tests stay fast on a loaded machine.
CliRun run_draft(const std::string& args) { return run_cli("--threads 1 " + args); }

const std::string kModel = test_data("sd_pipeline_tiny");

at::Tensor unet_output(draft::StableDiffusion& sd) {
  torch::manual_seed(1);
  const at::Tensor x = torch::randn({1, 4, 16, 16}), ctx = torch::randn({1, 5, 32});
  torch::NoGradGuard no_grad;
  return sd.unet->forward(x, torch::tensor({300}), ctx);
}

draft::StableDiffusion with_loras(const std::string& model, const std::vector<std::string>& specs) {
  draft::StableDiffusion sd = draft::load_stable_diffusion(model, {});
  draft::apply_loras(sd, specs);
  return sd;
}

TEST(CliLoRA, Help) {
  CliRun r = run_draft("lora --help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("merge"), std::string::npos);
  EXPECT_NE(r.out.find("convert"), std::string::npos);
  EXPECT_NE(run_draft("sample --help").out.find("--lora"), std::string::npos);
  EXPECT_NE(run_draft("eval --help").out.find("--lora"), std::string::npos);
}

// sample --lora A:0.25 --lora A:0.25 (two mixed adapters) gives the library's images for A at 0.5.
TEST(CliLoRA, SampleMixesLoRAs) {
  TempDir dir;
  const std::string kohya = make_lora(dir, draft::LoRAFormat::kKohya);
  CliRun r = run_draft("sample --model " + kModel + " --prompt 'a shoe' --steps 2 --seed 5 --lora " + kohya +
                       ":0.25 --lora " + kohya + ":0.25 -o " + dir.file("s.png") + " --save-tensor " +
                       dir.file("s.safetensors"));
  ASSERT_EQ(r.code, 0) << r.err;
  draft::StableDiffusion sd = with_loras(kModel, {kohya + ":0.5"});
  draft::TextToImageOptions options;
  options.prompts = {"a shoe"};
  options.steps = 2;
  options.seed = 5;
  const at::Tensor expected = draft::text_to_image(sd, options).images;
  EXPECT_TRUE(tensors_close(draft::SafeTensorsFile(dir.file("s.safetensors")).load("images"), expected, 1e-5));
  draft::StableDiffusion base = draft::load_stable_diffusion(kModel, {});
  EXPECT_GT((draft::text_to_image(base, options).images - expected).abs().max().item<double>(), 1e-3);
}

TEST(CliLoRA, MergeWritesAModelFolder) {
  TempDir dir;
  const std::string kohya = make_lora(dir, draft::LoRAFormat::kKohya);
  CliRun r = run_draft("lora merge --model " + kModel + " --lora " + kohya + ":0.5 --out " + dir.file("merged"));
  ASSERT_EQ(r.code, 0) << r.err;
  draft::StableDiffusion merged = draft::load_stable_diffusion(dir.file("merged"), {});
  draft::StableDiffusion expected = with_loras(kModel, {kohya + ":0.5"});
  EXPECT_TRUE(tensors_close(unet_output(merged), unet_output(expected), 1e-5));
}

// kohya -> diffusers with the scale folded into B: the converted file at scale 1 is the kohya one at 0.5.
TEST(CliLoRA, ConvertBetweenLayouts) {
  TempDir dir;
  const std::string kohya = make_lora(dir, draft::LoRAFormat::kKohya);
  const std::string out = dir.file("converted.safetensors");
  CliRun r = run_draft("lora convert --model " + kModel + " --lora " + kohya + ":0.5 --lora-format diffusers --out " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(draft::SafeTensorsFile(out).contains(
      "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight"));
  draft::StableDiffusion converted = with_loras(kModel, {out});
  draft::StableDiffusion expected = with_loras(kModel, {kohya + ":0.5"});
  EXPECT_TRUE(tensors_close(unet_output(converted), unet_output(expected), 1e-6));
}

TEST(CliLoRA, EvalMeasuresDriftAgainstTheModelWithoutLoRA) {
  TempDir dir;
  const std::string model = test_data("sd_pipeline_tiny");
  const std::string lora = make_lora(dir, draft::LoRAFormat::kDiffusers);
  CliRun r = run_draft("eval --model " + model + " --lora " + lora +
                     " --reward jpeg --prompt 'a shoe' --n 2 --steps 1 --features pixels --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto json = nlohmann::json::parse(r.out);
  EXPECT_EQ(json.at("base").at("model"), model);
  EXPECT_GT(json.at("drift").get<double>(), 0.0);
  EXPECT_EQ(json.at("lora").at(0), lora);
}

TEST(CliLoRA, ErrorsAreOneLine) {
  TempDir dir;
  const std::string model = test_data("sd_pipeline_tiny");
  CliRun r = run_draft("sample --model " + model + " --prompt x --steps 1 --lora " + dir.file("nope.safetensors") + " -o " +
                     dir.file("x.png"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("nope.safetensors does not exist"), std::string::npos) << r.err;
  r = run_draft("lora merge --model " + model + " --lora " + dir.file("nope.safetensors") + " --out " + model);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("input model folder"), std::string::npos) << r.err;
  r = run_draft("lora convert --model " + model + " --lora x --out y --lora-format webui");
  EXPECT_EQ(r.code, 2);
}

}  // namespace
