// Gradient checkpointing: the checkpoint Function gives the same gradients as the plain computation, for
// a small function, the DDIM rollout of the tiny model (float64) and the VAE decode.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "diffusion/rollout.h"
#include "finetune/method_support.h"
#include "method_fixture.h"
#include "nn/gradient_checkpoint.h"
#include "support.h"

namespace {

using draft::test::flat_grad;
using draft::test::relative_error;

TEST(GradientCheckpoint, SmallFunctionGradientsAreExactAndUnusedParamsGetNone) {
  auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  at::Tensor w = torch::randn({3, 3}, opts).requires_grad_(true);
  at::Tensor b = torch::randn({3}, opts).requires_grad_(true);
  at::Tensor unused = torch::randn({2}, opts).requires_grad_(true);
  auto fn = [&](const at::Tensor& x) { return torch::tanh(x.matmul(w) + b); };
  for (bool x_grad : {true, false}) {
    SCOPED_TRACE(x_grad ? "x requires grad" : "x does not require grad");
    at::Tensor x = torch::randn({4, 3}, opts).requires_grad_(x_grad);
    at::Tensor plain = fn(x).pow(2).sum();
    at::Tensor ck = draft::checkpoint(fn, x, {w, b, unused}).pow(2).sum();
    EXPECT_TRUE(ck.requires_grad());
    EXPECT_DOUBLE_EQ(plain.item<double>(), ck.item<double>());
    std::vector<at::Tensor> wrt = {w, b};
    if (x_grad) wrt.push_back(x);
    auto g_plain = torch::autograd::grad({plain}, wrt);
    auto g_ck = torch::autograd::grad({ck}, wrt);
    for (std::size_t i = 0; i < wrt.size(); ++i) EXPECT_TRUE(torch::equal(g_plain[i], g_ck[i])) << i;
    auto g_unused = torch::autograd::grad({draft::checkpoint(fn, x, {w, b, unused}).sum()}, {unused}, {}, false,
                                          false, true);
    EXPECT_FALSE(g_unused[0].defined());
  }
  // Nothing to differentiate: a plain call without a graph.
  at::Tensor x = torch::randn({4, 3}, opts);
  EXPECT_FALSE(draft::checkpoint([](const at::Tensor& v) { return v * 2; }, x, {}).requires_grad());
}

// Full backprop through every step of the tiny model (guidance 3): gradients w.r.t. the trainable UNet
// tensors and x_T with and without checkpointing.
TEST(GradientCheckpoint, CheckpointedRolloutGradientEqualsPlain) {
  draft::test::TinySetup s;
  at::Tensor x_T = s.noise(3).requires_grad_(true);
  auto eps = s.eps();
  std::vector<at::Tensor> wrt = s.params;
  wrt.push_back(x_T);
  at::Tensor grads[2];
  for (bool checkpoint : {false, true}) {
    draft::RolloutOptions o;
    o.steps = 3;
    o.grad_from_step = 0;
    o.checkpoint = checkpoint;
    o.params = s.params;
    auto r = draft::ddim_rollout(*s.sd.scheduler, eps, x_T, o);
    at::Tensor images = checkpoint ? draft::decode_checkpointed(s.sd.vae, r.x0) : s.sd.vae->decode_latents_to_images(r.x0);
    grads[checkpoint] = flat_grad(-s.reward.score(images, s.prompts).mean(), wrt);
  }
  double rel = relative_error(grads[1], grads[0]);
  std::printf("checkpointed vs plain rollout gradient (3 steps, guidance 3, float64): relative error %.3e\n", rel);
  EXPECT_GT(grads[0].abs().max().item<double>(), 0.0);
  EXPECT_LE(rel, 1e-13);  // float64, observed 3.5e-16: the backward re-runs the same UNet calls
}

// DRaFT-LV's last step starts from a re-noised x that does not require grad: the checkpoint must still
// give the parameter gradients (PyTorch's reentrant checkpoint gives none here).
TEST(GradientCheckpoint, InputWithoutGradStillGivesParameterGradients) {
  draft::test::TinySetup s(2, 1.0);
  at::Tensor x = s.noise(4);
  auto eps = s.eps();
  at::Tensor grads[2];
  for (bool checkpoint : {false, true}) {
    draft::RolloutOptions o;
    o.steps = 3;
    o.start_step = 2;
    o.grad_from_step = 2;
    o.checkpoint = checkpoint;
    o.params = s.params;
    auto r = draft::ddim_rollout(*s.sd.scheduler, eps, x, o);
    grads[checkpoint] = flat_grad(-s.reward.score(s.sd.vae->decode_latents_to_images(r.x0), s.prompts).mean(), s.params);
  }
  double rel = relative_error(grads[1], grads[0]);
  std::printf("checkpointed vs plain last step from a no-grad input: relative error %.3e\n", rel);
  EXPECT_GT(grads[1].abs().max().item<double>(), 0.0);
  EXPECT_LE(rel, 1e-13);  // float64, observed 0
}

TEST(GradientCheckpoint, DecodeCheckpointedMatchesPlainDecode) {
  draft::test::TinySetup s;
  at::Tensor z = (s.noise(5) * 2).requires_grad_(true);
  at::Tensor plain = torch::autograd::grad({s.sd.vae->decode_latents_to_images(z).pow(2).sum()}, {z})[0];
  at::Tensor ck = torch::autograd::grad({draft::decode_checkpointed(s.sd.vae, z).pow(2).sum()}, {z})[0];
  double rel = relative_error(ck, plain);
  std::printf("checkpointed vs plain VAE decode gradient: relative error %.3e\n", rel);
  EXPECT_LE(rel, 1e-13);  // float64, observed 0
}

TEST(GradientCheckpoint, RolloutRefusesCheckpointWithoutParams) {
  draft::test::TinySetup s;
  draft::RolloutOptions o;
  o.steps = 2;
  o.grad_from_step = 1;
  std::string msg = draft::test::expect_error(
      [&] { draft::ddim_rollout(*s.sd.scheduler, s.eps(), s.noise(1), o); });
  EXPECT_NE(msg.find("RolloutOptions.params"), std::string::npos) << msg;
}

}  // namespace
