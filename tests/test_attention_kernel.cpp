// The two attention kernels (nn/attention_kernel.h): the math path and LibTorch 2.x's fused
// scaled_dot_product_attention each match the diffusers/transformers fixtures of the UNet, the VAE and
// the CLIP text encoder, and agree with each other on outputs and gradients. On LibTorch 1.13 the fused
// kernel does not exist: it is refused by name, and the comparisons that need it are skipped.
#include <cstdlib>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "io/safetensors.h"
#include "models/autoencoder_kl.h"
#include "models/clip_text_model.h"
#include "models/unet_2d_condition.h"
#include "nn/attention_kernel.h"
#include "support.h"
#include "util/error.h"
#include "util/torch_compat.h"

namespace {

using draft::AttentionKernel;
using draft::test::expect_error;
using draft::test::tensors_close;
using draft::test::test_data;
using draft::test::tolerance;

// Sets the kernel for one scope and restores the previous one.
class KernelScope {
 public:
  explicit KernelScope(AttentionKernel kernel) : saved_(draft::attention_kernel()) { draft::set_attention_kernel(kernel); }
  ~KernelScope() { draft::set_attention_kernel(saved_); }

 private:
  AttentionKernel saved_;
};

std::vector<AttentionKernel> available_kernels() {
  std::vector<AttentionKernel> kernels = {AttentionKernel::kMath};
  if (draft::has_fused_attention()) kernels.push_back(AttentionKernel::kFused);
  return kernels;
}

TEST(AttentionKernel, DefaultIsTheFusedKernelWhereLibTorchHasIt) {
  const AttentionKernel expected = draft::has_fused_attention() ? AttentionKernel::kFused : AttentionKernel::kMath;
  if (std::getenv("DRAFT_ATTENTION") == nullptr) {
    EXPECT_EQ(draft::attention_kernel(), expected);
  }
  if (!draft::has_fused_attention()) {
    const std::string msg = expect_error([] { draft::set_attention_kernel(AttentionKernel::kFused); });
    EXPECT_NE(msg.find("LibTorch 2.0"), std::string::npos) << msg;
    EXPECT_NE(msg.find(draft::torch_version()), std::string::npos) << msg;
  }
}

TEST(AttentionKernel, EachKernelMatchesTheFixtures) {
  torch::NoGradGuard no_grad;
  auto unet = draft::load_unet(test_data("unet_sd15_tiny"));
  draft::SafeTensorsFile unet_cases(test_data("unet_sd15_tiny/cases.safetensors"));
  auto vae = draft::load_vae(test_data("vae_tiny"));
  draft::SafeTensorsFile vae_cases(test_data("vae_tiny/cases.safetensors"));
  auto clip = draft::load_clip_text_model(test_data("clip_text_tiny"), {});
  draft::SafeTensorsFile clip_cases(test_data("clip_text_tiny/cases.safetensors"));
  for (AttentionKernel kernel : available_kernels()) {
    SCOPED_TRACE(draft::attention_kernel_name(kernel));
    KernelScope scope(kernel);
    const at::Tensor unet_ref = unet_cases.load("caseA.out");
    EXPECT_TRUE(tensors_close(unet->forward(unet_cases.load("caseA.sample"), unet_cases.load("caseA.timesteps"),
                                            unet_cases.load("caseA.encoder_hidden_states")),
                              unet_ref, tolerance(unet_ref)));
    const at::Tensor vae_ref = vae_cases.load("decode.out");
    EXPECT_TRUE(tensors_close(vae->decode(vae_cases.load("decode.latent")), vae_ref, tolerance(vae_ref)));
    const at::Tensor clip_ref = clip_cases.load("last_hidden_state");
    EXPECT_TRUE(tensors_close(clip->forward(clip_cases.load("input_ids")).last_hidden_state, clip_ref,
                              tolerance(clip_ref)));
  }
}

TEST(AttentionKernel, FusedAndMathGradientsAgree) {
  if (!draft::has_fused_attention()) {
    GTEST_SKIP() << "LibTorch " << draft::torch_version() << " has no fused attention (needs 2.0)";
  }
  auto unet = draft::load_unet(test_data("unet_sd15_tiny"));
  draft::SafeTensorsFile cases(test_data("unet_sd15_tiny/cases.safetensors"));
  std::vector<at::Tensor> grads;
  for (AttentionKernel kernel : available_kernels()) {
    KernelScope scope(kernel);
    at::Tensor sample = cases.load("caseA.sample").requires_grad_(true);
    at::Tensor context = cases.load("caseA.encoder_hidden_states").requires_grad_(true);
    unet->forward(sample, cases.load("caseA.timesteps"), context).square().sum().backward();
    grads.push_back(sample.grad());
    grads.push_back(context.grad());
  }
  ASSERT_EQ(grads.size(), 4u);
  EXPECT_TRUE(tensors_close(grads[2], grads[0], 1e-4 * (1.0 + grads[0].abs().max().item<double>())));
  EXPECT_TRUE(tensors_close(grads[3], grads[1], 1e-4 * (1.0 + grads[1].abs().max().item<double>())));
}

}  // namespace
