// Label `gpu`: the diffusers/transformers fixtures of the UNet, the VAE and the CLIP text encoder on CUDA, in
// float32 (within the CPU bound, 1e-4 · max(1, max|ref|)) and in bfloat16 (within 5e-2 · max(1, max|ref|):
// bf16 keeps 8 bits of mantissa, and the error grows through the layers), with every available attention
// kernel. Each comparison prints one "[parity]" line with its largest difference, which
// scripts/device-check.sh collects. Skipped where there is no CUDA device.
#include <cstdio>
#include <string>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "io/safetensors.h"
#include "models/autoencoder_kl.h"
#include "models/clip_text_model.h"
#include "models/unet_2d_condition.h"
#include "nn/attention_kernel.h"
#include "support.h"
#include "util/torch_compat.h"

namespace {

using draft::AttentionKernel;
using draft::test::test_data;

// Compares `got` (any device, any dtype) with the float32 reference, prints the [parity] line.
void expect_near_reference(const std::string& what, const at::Tensor& got, const at::Tensor& ref, double relative) {
  const double scale = std::max(1.0, ref.abs().max().item<double>());
  const double diff = (got.detach().to(torch::kCPU, torch::kFloat) - ref).abs().max().item<double>();
  std::printf("[parity] %s max_abs_diff=%.3g bound=%.3g\n", what.c_str(), diff, relative * scale);
  EXPECT_LE(diff, relative * scale) << what;
}

TEST(CudaParity, FixturesMatchOnCudaInFloat32AndBf16) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "CUDA is not available";
  torch::NoGradGuard no_grad;
  draft::SafeTensorsFile unet_cases(test_data("unet_sd15_tiny/cases.safetensors"));
  draft::SafeTensorsFile vae_cases(test_data("vae_tiny/cases.safetensors"));
  draft::SafeTensorsFile clip_cases(test_data("clip_text_tiny/cases.safetensors"));
  std::vector<AttentionKernel> kernels = {AttentionKernel::kMath};
  if (draft::has_fused_attention()) kernels.push_back(AttentionKernel::kFused);
  const AttentionKernel saved = draft::attention_kernel();
  for (const c10::ScalarType dtype : {torch::kFloat, torch::kBFloat16}) {
    draft::WeightsOptions on;
    on.device = c10::Device(torch::kCUDA);
    on.dtype = dtype;
    auto unet = draft::load_unet(test_data("unet_sd15_tiny"), on);
    auto vae = draft::load_vae(test_data("vae_tiny"), on);
    auto clip = draft::load_clip_text_model(test_data("clip_text_tiny"), on);
    auto in = [&](const at::Tensor& t) { return t.is_floating_point() ? t.to(on.device, dtype) : t.to(on.device); };
    const double relative = dtype == torch::kFloat ? 1e-4 : 5e-2;
    for (const AttentionKernel kernel : kernels) {
      draft::set_attention_kernel(kernel);
      const std::string tag = std::string(dtype == torch::kFloat ? "f32" : "bf16") + " " +
                              draft::attention_kernel_name(kernel);
      expect_near_reference("unet " + tag,
                            unet->forward(in(unet_cases.load("caseA.sample")), in(unet_cases.load("caseA.timesteps")),
                                          in(unet_cases.load("caseA.encoder_hidden_states"))),
                            unet_cases.load("caseA.out"), relative);
      expect_near_reference("vae_decode " + tag, vae->decode(in(vae_cases.load("decode.latent"))),
                            vae_cases.load("decode.out"), relative);
      expect_near_reference("clip_text " + tag, clip->forward(in(clip_cases.load("input_ids"))).last_hidden_state,
                            clip_cases.load("last_hidden_state"), relative);
    }
  }
  draft::set_attention_kernel(saved);
}

}  // namespace
