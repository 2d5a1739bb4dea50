// The whole text-to-image pipeline against diffusers' StableDiffusionPipeline (tests/data/sd_pipeline_tiny:
// 5 DDIM steps, guidance 7.5), and the loader's errors for broken model folders.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "diffusion/text_to_image.h"
#include "io/json_file.h"
#include "io/safetensors.h"
#include "support.h"
#include "util/error.h"
#include "util/torch_compat.h"

namespace {

using draft::test::expect_error;
using draft::test::tolerance;

namespace fs = std::filesystem;
using draft::test::TempDir;

const std::string kPipeline = std::string(DRAFT_TEST_DATA) + "/sd_pipeline_tiny";
const std::string kPrompt = "a photograph of an astronaut riding a horse on mars";

class Pipeline : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    sd_ = new draft::StableDiffusion(draft::load_stable_diffusion(kPipeline, {}));
    cases_ = new draft::SafeTensorsFile(kPipeline + "/cases.safetensors");
  }
  static void TearDownTestSuite() {
    delete sd_;
    delete cases_;
  }
  at::Tensor ref(const std::string& name) { return cases_->load(name); }

  static draft::StableDiffusion* sd_;
  static draft::SafeTensorsFile* cases_;
};
draft::StableDiffusion* Pipeline::sd_ = nullptr;
draft::SafeTensorsFile* Pipeline::cases_ = nullptr;

TEST_F(Pipeline, PromptIdsAndEmbeddings) {
  EXPECT_TRUE(torch::equal((*sd_->tokenizer)({kPrompt}).input_ids, ref("prompt_input_ids")));
  EXPECT_TRUE(torch::equal((*sd_->tokenizer)({""}).input_ids, ref("negative_input_ids")));
  torch::NoGradGuard no_grad;
  auto c = draft::encode_prompts(*sd_, {kPrompt}, {}, 1, 0, true);
  EXPECT_TRUE(draft::test::tensors_close(c.cond, ref("prompt_embeds"), tolerance(ref("prompt_embeds"))));
  EXPECT_TRUE(draft::test::tensors_close(c.uncond, ref("negative_prompt_embeds"), tolerance(ref("prompt_embeds"))));
}

TEST_F(Pipeline, EveryStepMatchesTheReference) {
  torch::NoGradGuard no_grad;
  auto c = draft::encode_prompts(*sd_, {kPrompt}, {}, 1, 0, true);
  auto eps = draft::guided_eps(sd_->unet, c, 7.5);
  draft::RolloutOptions options;
  options.steps = 5;
  options.keep_latents = true;
  auto result = draft::ddim_rollout(*sd_->scheduler, eps, ref("init_latents"), options);
  EXPECT_EQ(result.timesteps, (std::vector<int64_t>{801, 601, 401, 201, 1}));
  for (int i = 0; i < 5; ++i) {
    std::string step = "step" + std::to_string(i);
    SCOPED_TRACE(step);
    at::Tensor noise_pred = eps(result.latents[static_cast<std::size_t>(i)], result.timesteps[static_cast<std::size_t>(i)]);
    EXPECT_TRUE(draft::test::tensors_close(noise_pred, ref(step + ".noise_pred"), tolerance(ref(step + ".noise_pred"))));
    at::Tensor latents = result.latents[static_cast<std::size_t>(i) + 1];
    EXPECT_TRUE(draft::test::tensors_close(latents, ref(step + ".latents"), tolerance(ref(step + ".latents"))));
  }
  at::Tensor raw = sd_->vae->decode(result.x0 / sd_->vae->config().scaling_factor);
  EXPECT_TRUE(draft::test::tensors_close(raw, ref("image_raw"), tolerance(ref("image_raw"))));
}

TEST_F(Pipeline, TextToImageGivesTheReferenceImage) {
  draft::TextToImageOptions o;
  o.prompts = {kPrompt};
  o.steps = 5;
  o.latents = ref("init_latents");
  auto out = draft::text_to_image(*sd_, o);
  EXPECT_TRUE(draft::test::tensors_close(out.images, ref("image"), 1e-4));
  // The 8-bit image as diffusers' numpy_to_pil makes it: at most one level off where rounding straddles.
  at::Tensor u8 = out.images.permute({0, 2, 3, 1}).mul(255).round().to(torch::kUInt8);
  EXPECT_LE((u8.to(torch::kInt) - ref("image_uint8_hwc").to(torch::kInt)).abs().max().item<int>(), 1);
}

TEST_F(Pipeline, SeedDrawsDiffusersLatentsAndIsDeterministic) {
  // diffusers: randn_tensor((n, 4, h/8, w/8), generator=torch.Generator().manual_seed(seed)), float32 on CPU.
  at::Generator gen = at::detail::createCPUGenerator(1234);
  at::Tensor x = draft::initial_latents(*sd_, 2, 32, 32, gen);
  at::Tensor expected = torch::randn({2, 4, 16, 16}, at::detail::createCPUGenerator(1234));
  EXPECT_TRUE(torch::equal(x, expected));
  draft::TextToImageOptions o;
  o.prompts = {"a", "b"};
  o.images_per_prompt = 2;
  o.steps = 2;
  o.seed = 7;
  auto first = draft::text_to_image(*sd_, o);
  auto second = draft::text_to_image(*sd_, o);
  EXPECT_EQ(first.images.sizes(), (std::vector<int64_t>{4, 3, 32, 32}));
  EXPECT_TRUE(torch::equal(first.images, second.images));
  o.eta = 1.0;  // stochastic steps draw from the same seeded generator
  EXPECT_TRUE(torch::equal(draft::text_to_image(*sd_, o).images, draft::text_to_image(*sd_, o).images));
}

// A writable copy of the pipeline folder (symlinks followed) for breaking things.
std::string copy_pipeline(const TempDir& dir) {
  std::string dst = dir.file("pipe");
  fs::copy(kPipeline, dst, fs::copy_options::recursive);
  return dst;
}

std::string load_error(const std::string& folder) {
  try {
    draft::load_stable_diffusion(folder, {});
  } catch (const draft::Error& e) {
    std::string what = e.what();
    EXPECT_EQ(what.find('\n'), std::string::npos) << "error is not one line: " << what;
    return what;
  }
  ADD_FAILURE() << "no error for " << folder;
  return "";
}

TEST(PipelineErrors, MissingFolderIndexAndSubfolder) {
  TempDir dir;
  EXPECT_NE(load_error(dir.file("nope")).find("no such model folder"), std::string::npos);
  EXPECT_NE(load_error(dir.path()).find("model_index.json"), std::string::npos);
  std::string pipe = copy_pipeline(dir);
  fs::remove_all(pipe + "/vae");
  EXPECT_NE(load_error(pipe).find("missing the 'vae' subfolder"), std::string::npos);
}

TEST(PipelineErrors, HalfOnCpuIsRefusedUpFrontWhereUnsupported) {
  if (!draft::supports_compute_dtype(torch::kHalf, torch::kCPU)) {
    draft::WeightsOptions half;
    half.dtype = torch::kHalf;
    std::string msg = expect_error([&] { draft::load_stable_diffusion(kPipeline, half); });
    EXPECT_NE(msg.find("bf16"), std::string::npos) << msg;
  }
  draft::WeightsOptions bf16;
  bf16.dtype = torch::kBFloat16;
  draft::TextToImageOptions o;
  o.prompts = {"a cat"};
  o.steps = 2;
  auto out = draft::text_to_image(draft::load_stable_diffusion(kPipeline, bf16), o);
  EXPECT_EQ(out.images.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::isfinite(out.images).all().item<bool>());
}

TEST(PipelineErrors, WrongShape) {
  TempDir dir;
  std::string pipe = copy_pipeline(dir);
  auto config = draft::read_json_file(pipe + "/unet/config.json");
  config["cross_attention_dim"] = 48;
  draft::write_json_file(pipe + "/unet/config.json", config);
  std::string msg = load_error(pipe);
  EXPECT_NE(msg.find("shape mismatch"), std::string::npos) << msg;
}

TEST(PipelineErrors, MissingKeyTruncatedFileAndUnsupportedOption) {
  TempDir dir;
  std::string pipe = copy_pipeline(dir);
  std::string weights = pipe + "/vae/diffusion_pytorch_model.safetensors";
  {
    draft::SafeTensorsFile file(weights);
    std::vector<std::pair<std::string, at::Tensor>> kept;
    for (const auto& t : file.tensors()) {
      if (t.name != "decoder.conv_out.bias") kept.emplace_back(t.name, file.load(t.name));
    }
    draft::save_safetensors(weights + ".new", kept);
  }
  fs::rename(weights + ".new", weights);
  std::string msg = load_error(pipe);
  EXPECT_NE(msg.find("missing key(s): decoder.conv_out.bias"), std::string::npos) << msg;

  TempDir dir2;
  pipe = copy_pipeline(dir2);
  weights = pipe + "/unet/diffusion_pytorch_model.safetensors";
  fs::resize_file(weights, fs::file_size(weights) / 2);
  msg = load_error(pipe);
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;

  TempDir dir3;
  pipe = copy_pipeline(dir3);
  auto config = draft::read_json_file(pipe + "/unet/config.json");
  config["class_embed_type"] = "timestep";
  draft::write_json_file(pipe + "/unet/config.json", config);
  msg = load_error(pipe);
  EXPECT_NE(msg.find("class_embed_type"), std::string::npos) << msg;
}

}  // namespace
