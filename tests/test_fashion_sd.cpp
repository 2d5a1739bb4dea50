// The shipped embedded model (models/fashion-sd): it loads through the generic diffusers-folder loader,
// has the miniature's shapes and size budget, samples deterministically per seed, and the shipped
// classifier recognises the prompted class in fixed-seed samples.
#include <filesystem>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "diffusion/text_to_image.h"
#include "data/fashion_mnist.h"
#include "pretrain/sample_quality.h"
#include "support.h"
#include "util/threads.h"

namespace {

using draft::test::shipped_model;
using draft::test::tensors_close;

TEST(FashionSD, LoadsThroughTheGenericLoaderWithinTheSizeBudget) {
  const std::string folder = shipped_model("fashion-sd");
  const draft::StableDiffusion sd = draft::load_stable_diffusion(folder, {});
  EXPECT_EQ(sd.unet->config().sample_size, 8);
  EXPECT_EQ(sd.unet->config().in_channels, 4);
  EXPECT_EQ(sd.vae->config().in_channels, 1);
  EXPECT_EQ(sd.vae->config().latent_channels, 4);
  EXPECT_EQ(sd.vae_scale_factor(), 4);
  EXPECT_EQ(sd.default_image_size(), 32);
  std::uintmax_t bytes = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(folder)) {
    if (entry.is_regular_file()) bytes += entry.file_size();
  }
  EXPECT_LE(bytes, 20u * 1000 * 1000) << "models/fashion-sd must stay within 20 MB";
}

TEST(FashionSD, SamplesAreDeterministicPerSeed) {
  const draft::StableDiffusion sd = draft::load_stable_diffusion(shipped_model("fashion-sd"), {});
  draft::TextToImageOptions o;
  o.prompts = {"a photo of a sneaker", "a photo of a dress"};
  o.steps = 10;
  o.guidance_scale = 3.0;
  o.seed = 7;
  const draft::TextToImageResult a = draft::text_to_image(sd, o);
  EXPECT_EQ(a.images.sizes(), (std::vector<int64_t>{2, 1, 32, 32}));
  EXPECT_EQ(a.latents.sizes(), (std::vector<int64_t>{2, 4, 8, 8}));
  EXPECT_GE(a.images.min().item<double>(), 0.0);
  EXPECT_LE(a.images.max().item<double>(), 1.0);
  EXPECT_TRUE(tensors_close(draft::text_to_image(sd, o).images, a.images, 0.0));
  o.seed = 8;
  EXPECT_GT((draft::text_to_image(sd, o).images - a.images).abs().max().item<double>(), 0.05);
}

TEST(FashionSD, ClassifierRecognisesThePromptedClass) {
  draft::use_small_tensor_threading();  // as `draft sample` does for this model (docs/performance.md)
  const draft::StableDiffusion sd = draft::load_stable_diffusion(shipped_model("fashion-sd"), {});
  draft::FashionClassifier classifier = draft::load_fashion_classifier(shipped_model("fashion-classifier"));
  draft::ClassSampleOptions o;
  o.per_class = 3;
  o.steps = 50;
  o.guidance = 3.0;
  o.seed = 1234;
  const draft::ClassSamples s = draft::sample_and_judge(sd, classifier, draft::fashion_mnist_classes(), o);
  std::printf("    fixed-seed samples: classifier agrees on %.0f%% of 30\n", 100.0 * s.agreement);
  EXPECT_GE(s.agreement, 0.8);
}

}  // namespace
