// The fine-tuning methods on the tiny model in float64: exact properties of DESIGN.md section 3 (K = N
// equals full DRaFT and both equal a hand-written plain-autograd rollout, DRaFT-LV and ReFL differentiate
// one UNet call per copy, AlignProp's per-trajectory K) and behavioural ones (each method raises a
// brightness reward within a few AdamW steps); config checks.
#include <cmath>
#include <set>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "finetune/method.h"
#include "method_fixture.h"
#include "support.h"
#include "util/seeds.h"

namespace {

using draft::test::CallCount;
using draft::test::flat_grad;
using draft::test::relative_error;
using draft::test::TinySetup;

draft::MethodConfig config(const std::string& name) {
  draft::MethodConfig c;
  c.name = name;
  return c;
}

// √v of a float32 value, rounded to float32. The scheduler takes every DDIM coefficient (√ᾱ_t, √(1−ᾱ_t),
// √ᾱ_prev, √(1−ᾱ_prev)) in float32 from its float32 schedule, as diffusers does; the reference below does
// the same, so the comparison is exact to float64 rounding.
double sqrt_f32(float v) { return static_cast<double>(std::sqrt(v)); }

// Full DRaFT written out with plain autograd (DESIGN.md section 3), sharing with the methods only the model's
// ε̂ and the VAE: no ddim_rollout, no Method, no scheduler step, no gradient checkpoint.
//   timesteps (leading spacing): t_i = i · T//N + steps_offset, i = N−1 … 0; t_prev = t − T//N, and
//   ᾱ_prev for t_prev < 0 is 1 (set_alpha_to_one) or ᾱ_0;
//   DDIM, η = 0: x̂0 = (x_t − √(1−ᾱ_t) ε̂)/√ᾱ_t,  x_prev = √ᾱ_prev x̂0 + √(1−ᾱ_prev) ε̂;
//   image = clamp(D(x_0 / scaling_factor)/2 + 0.5, 0, 1); loss = −mean r(image).
at::Tensor plain_autograd_draft_loss(TinySetup& s, const at::Tensor& x_T, int64_t n) {
  const draft::SchedulerConfig& config = s.sd.scheduler->config();
  EXPECT_EQ(config.timestep_spacing, "leading");  // the only spacing written out here
  EXPECT_EQ(config.prediction_type, "epsilon");
  const at::Tensor alphas_cumprod = s.sd.scheduler->alphas_cumprod();  // float32 [T]
  auto alpha = [&](int64_t t) {
    if (t < 0) return config.set_alpha_to_one ? 1.0f : alphas_cumprod[0].item<float>();
    return alphas_cumprod[t].item<float>();
  };
  const int64_t ratio = config.num_train_timesteps / n;
  std::vector<int64_t> timesteps;
  auto eps = s.eps();
  at::Tensor x = x_T;
  for (int64_t i = n - 1; i >= 0; --i) {
    const int64_t t = i * ratio + config.steps_offset;
    timesteps.push_back(t);
    const float a_t = alpha(t), a_prev = alpha(t - ratio);
    const at::Tensor eps_hat = eps(x, t);
    const at::Tensor x0_hat = (x - sqrt_f32(1.0f - a_t) * eps_hat) / sqrt_f32(a_t);
    x = sqrt_f32(a_prev) * x0_hat + sqrt_f32(1.0f - a_prev) * eps_hat;
  }
  EXPECT_EQ(timesteps, s.sd.scheduler->timesteps(n));  // the grid the methods sample on
  at::Tensor images = torch::clamp(s.sd.vae->decode(x / s.sd.vae->config().scaling_factor) / 2.0 + 0.5, 0.0, 1.0);
  return -s.reward.score(images, s.prompts).mean();
}

TEST(Methods, DraftKWithKEqualToNEqualsFullDraft) {
  TinySetup s;
  at::Tensor x_T = s.noise(11);
  auto full_cfg = config("draft");
  auto k_cfg = config("draft-k");
  k_cfg.k = 3;
  auto c1 = s.context(x_T, 3);
  auto c2 = s.context(x_T, 3);
  auto full = draft::make_method(full_cfg)->run(c1);
  auto k = draft::make_method(k_cfg)->run(c2);
  at::Tensor g_full = flat_grad(full.loss, s.params);
  at::Tensor g_k = flat_grad(k.loss, s.params);
  double rel = relative_error(g_k, g_full);
  std::printf("DRaFT-K (K=N=3, guidance 3) vs full DRaFT gradient: relative error %.3e\n", rel);
  EXPECT_LE(rel, 1e-13);  // observed 0 (the same computation)
  EXPECT_GT(g_full.abs().max().item<double>(), 0.0);
  EXPECT_EQ(full.unet_evals, 3);
  EXPECT_EQ(full.unet_evals_with_grad, 3);
  EXPECT_EQ(full.reward_queries, 2);
  // Both against the independent plain-autograd rollout (the two above share the DRaFT-K class, so their
  // agreement alone proves nothing about either).
  at::Tensor g_plain = flat_grad(plain_autograd_draft_loss(s, x_T, 3), s.params);
  const double rel_full = relative_error(g_full, g_plain), rel_k = relative_error(g_k, g_plain);
  std::printf("full DRaFT vs plain-autograd rollout: relative error %.3e\n", rel_full);
  std::printf("DRaFT-K (K=N) vs plain-autograd rollout: relative error %.3e\n", rel_k);
  // Observed 7.3e-16; float64 step coefficients in the reference would give 1.9e-8, a timestep grid off by
  // one 3.5e-3.
  EXPECT_LE(rel_full, 1e-13);
  EXPECT_LE(rel_k, 1e-13);
  // K = 1 differs (the truncation really truncates).
  k_cfg.k = 1;
  auto c3 = s.context(x_T, 3);
  EXPECT_GT(relative_error(flat_grad(draft::make_method(k_cfg)->run(c3).loss, s.params), g_full), 1e-6);
}

TEST(Methods, DraftKKeepsGradientsInExactlyKCalls) {
  TinySetup s(1, 1.0);
  auto count = std::make_shared<CallCount>();
  auto cfg = config("draft-k");
  cfg.k = 2;
  auto c = s.context(s.noise(12, 1), 5);
  c.sampler.checkpoint = false;
  c.eps = draft::test::counting(s.eps(), count);
  auto step = draft::make_method(cfg)->run(c);
  EXPECT_EQ(count->calls, 5);
  EXPECT_EQ(count->grad_calls, 2);
  EXPECT_EQ(step.unet_evals_with_grad, 2);
}

// DRaFT-LV: n re-noised copies of the no-grad x_0, each one differentiated step. Without checkpointing
// exactly n calls run with grad; with it, none in the forward and n recomputed in backward.
TEST(Methods, DraftLVGradientFlowsOnlyThroughTheLastStep) {
  TinySetup s(1, 1.0);
  auto cfg = config("draft-lv");
  cfg.lv_n = 3;
  for (bool checkpoint : {false, true}) {
    SCOPED_TRACE(checkpoint ? "checkpoint" : "no checkpoint");
    auto count = std::make_shared<CallCount>();
    auto c = s.context(s.noise(13, 1), 3);
    c.sampler.checkpoint = checkpoint;
    c.eps = draft::test::counting(s.eps(), count);
    auto step = draft::make_method(cfg)->run(c);
    EXPECT_EQ(count->calls, 3 + 3);
    EXPECT_EQ(count->grad_calls, checkpoint ? 0 : 3);
    at::Tensor g = flat_grad(step.loss, s.params);
    EXPECT_EQ(count->grad_calls, 3);  // recomputed in backward when checkpointing
    EXPECT_GT(g.abs().max().item<double>(), 0.0);
    EXPECT_EQ(step.reward_queries, 3);
    EXPECT_EQ(step.rewards.size(0), 3);
    EXPECT_EQ(step.unet_evals, 6);
  }
}

// The gradient depends on the chain only through the detached x_0: recomputing it by hand from x_0 and the
// same re-noising draws gives the same gradient.
TEST(Methods, DraftLVEqualsOneStepFromTheDetachedSample) {
  TinySetup s(2, 1.0);
  auto cfg = config("draft-lv");
  cfg.lv_n = 2;
  at::Tensor x_T = s.noise(14);
  auto c = s.context(x_T, 3, 77);
  at::Tensor g = flat_grad(draft::make_method(cfg)->run(c).loss, s.params);
  auto eps = s.eps();
  at::Tensor x0;
  {
    torch::NoGradGuard no_grad;
    draft::RolloutOptions o;
    o.steps = 3;
    x0 = draft::ddim_rollout(*s.sd.scheduler, eps, x_T, o).x0;
  }
  auto fresh = s.context(x_T, 3, 77);  // the same per-sample generators, not yet drawn from
  const int64_t t1 = s.sd.scheduler->timesteps(3).back();
  const double a = s.sd.scheduler->alpha_cumprod_at(t1);
  at::Tensor loss = torch::zeros({}, torch::kFloat64);
  for (int i = 0; i < 2; ++i) {
    at::Tensor noise = draft::randn_per_sample(fresh.generators, x0.sizes().slice(1)).to(torch::kFloat64);
    at::Tensor x = std::sqrt(a) * x0 + std::sqrt(1 - a) * noise;
    auto out = s.sd.scheduler->step(eps(x, t1), t1, 3, x);
    loss = loss - s.reward.score(s.sd.vae->decode_latents_to_images(out.prev_sample), s.prompts).mean() / 2.0;
  }
  double rel = relative_error(g, flat_grad(loss, s.params));
  std::printf("DRaFT-LV vs hand-written last step from detached x_0: relative error %.3e\n", rel);
  EXPECT_LE(rel, 1e-13);  // float64, observed 0
}

TEST(Methods, ReFLDifferentiatesExactlyOneUNetCallAtTheDrawnStep) {
  TinySetup s(1, 1.0);
  auto cfg = config("refl");
  cfg.refl_min = 1;
  cfg.refl_max = 3;
  cfg.refl_loss = "neg";
  std::set<int64_t> seen;
  for (uint64_t seed = 0; seed < 5; ++seed) {
    auto count = std::make_shared<CallCount>();
    auto c = s.context(s.noise(15, 1), 4, seed);
    c.sampler.checkpoint = false;
    c.eps = draft::test::counting(s.eps(), count);
    auto step = draft::make_method(cfg)->run(c);
    ASSERT_EQ(step.draws.size(), 1u);
    const int64_t stop = step.draws[0];
    EXPECT_GE(stop, 1);
    EXPECT_LE(stop, 3);
    seen.insert(stop);
    EXPECT_EQ(count->calls, stop + 1);
    EXPECT_EQ(count->grad_calls, 1);
    EXPECT_EQ(step.unet_evals, stop + 1);
    EXPECT_GT(flat_grad(step.loss, s.params).abs().max().item<double>(), 0.0);
  }
  EXPECT_GE(seen.size(), 2u);
  // relu-margin: ImageReward's relu(2 − r) · 1e-3.
  cfg.refl_loss = "relu-margin";
  auto c = s.context(s.noise(15, 1), 4, 0);
  auto step = draft::make_method(cfg)->run(c);
  EXPECT_NEAR(step.loss.item<double>(), torch::relu(2.0 - step.rewards).mean().item<double>() * 1e-3, 1e-15);
}

TEST(Methods, AlignPropDrawsKPerTrajectoryWithinBounds) {
  TinySetup s(6, 1.0);
  for (const char* dist : {"uniform", "gaussian"}) {
    SCOPED_TRACE(dist);
    auto cfg = config("alignprop");
    cfg.alignprop_k_min = 1;
    cfg.alignprop_k_max = 3;
    cfg.alignprop_distribution = dist;
    cfg.alignprop_mean = 2.0;
    cfg.alignprop_std = 2.0;
    std::set<int64_t> seen;
    for (uint64_t seed = 0; seed < 2; ++seed) {
      auto c = s.context(s.noise(16, 6), 3, seed);
      c.sampler.checkpoint = false;
      torch::NoGradGuard no_grad;  // only the draws matter here
      c.params.clear();
      c.params.push_back(torch::zeros({1}, torch::kFloat64).requires_grad_(true));
      auto step = draft::make_method(cfg)->run(c);
      ASSERT_EQ(step.draws.size(), 6u);
      for (int64_t k : step.draws) {
        EXPECT_GE(k, 1);
        EXPECT_LE(k, 3);
        seen.insert(k);
      }
    }
    EXPECT_GE(seen.size(), 2u);  // drawn per trajectory, not one K for the batch
  }
}

// Detaching ε̂ before a trajectory's own cutoff gives exactly DRaFT-K_j's gradient for that trajectory.
TEST(Methods, AlignPropGradientIsDraftKOfEachTrajectory) {
  TinySetup pair(2, 1.0);
  auto cfg = config("alignprop");
  cfg.alignprop_k_min = 1;
  cfg.alignprop_k_max = 3;
  at::Tensor x_T = pair.noise(17);
  // Pick a seed whose two draws differ.
  draft::MethodStep step;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    auto c = pair.context(x_T, 3, seed);
    step = draft::make_method(cfg)->run(c);
    if (step.draws[0] != step.draws[1]) break;
  }
  ASSERT_NE(step.draws[0], step.draws[1]);
  at::Tensor g = flat_grad(step.loss, pair.params);
  TinySetup single(1, 1.0);
  at::Tensor expected = torch::zeros_like(g);
  for (int64_t j = 0; j < 2; ++j) {
    auto k_cfg = config("draft-k");
    k_cfg.k = step.draws[static_cast<std::size_t>(j)];
    auto c = single.context(x_T.slice(0, j, j + 1), 3);
    expected += flat_grad(draft::make_method(k_cfg)->run(c).loss, single.params) / 2.0;
  }
  double rel = relative_error(g, expected);
  std::printf("AlignProp (K = %lld, %lld) vs per-sample DRaFT-K: relative error %.3e\n",
              static_cast<long long>(step.draws[0]), static_cast<long long>(step.draws[1]), rel);
  EXPECT_LE(rel, 2e-13);  // float64, observed 1.8e-15 (batch of 2 vs single samples)
}

// Behavioural: three AdamW steps on the trainable tensors raise the reward of held-fixed samples.
class RaisesReward : public ::testing::TestWithParam<std::string> {};

TEST_P(RaisesReward, WithinAFewSteps) {
  TinySetup s(1, 1.0);
  auto cfg = config(GetParam());
  cfg.k = 2;
  cfg.refl_loss = "neg";
  cfg.alignprop_k_min = 1;
  cfg.alignprop_k_max = 3;
  const int64_t steps = 3;
  cfg.validate(steps);
  auto method = draft::make_method(cfg);
  at::Tensor eval_noise = s.noise(99, 1);
  auto eval_reward = [&] {
    torch::NoGradGuard no_grad;
    draft::RolloutOptions o;
    o.steps = steps;
    auto x0 = draft::ddim_rollout(*s.sd.scheduler, s.eps(), eval_noise, o).x0;
    return s.reward.score(s.sd.vae->decode_latents_to_images(x0), s.prompts).mean().item<double>();
  };
  const double before = eval_reward();
  torch::optim::AdamW opt(s.params, torch::optim::AdamWOptions(2e-2).weight_decay(0.0));
  for (int i = 0; i < 3; ++i) {
    auto c = s.context(s.noise(200 + static_cast<uint64_t>(i), 1), steps, static_cast<uint64_t>(i));
    opt.zero_grad();
    auto step = method->run(c);
    step.loss.backward();
    opt.step();
  }
  const double after = eval_reward();
  std::printf("%s: brightness %.4f -> %.4f\n", GetParam().c_str(), before, after);
  EXPECT_GT(after, before + 1e-3);
}

INSTANTIATE_TEST_SUITE_P(AllMethods, RaisesReward,
                         ::testing::Values("draft", "draft-k", "draft-lv", "refl", "alignprop"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (auto& ch : n) {
                             if (ch == '-') ch = '_';
                           }
                           return n;
                         });

TEST(MethodConfig, ValidateNamesTheKey) {
  auto c = config("draft-k");
  c.k = 60;
  EXPECT_NE(draft::test::expect_error([&] { c.validate(50); }).find("method.k must be in [1, sampler.steps]"),
            std::string::npos);
  c = config("nope");
  EXPECT_NE(draft::test::expect_error([&] { c.validate(50); }).find("method.name 'nope'"), std::string::npos);
  c = config("refl");
  EXPECT_EQ(c.refl_range(40), (std::pair<int64_t, int64_t>{30, 39}));
  draft::parse_refl_range("45:49", c);
  EXPECT_EQ(c.refl_max, 49);
  EXPECT_NE(draft::test::expect_error([&] { c.validate(40); }).find("method.refl_min:refl_max"), std::string::npos);
  EXPECT_NE(draft::test::expect_error([&] { draft::parse_refl_range("3-9", c); }).find("--refl-range"),
            std::string::npos);
  c = config("alignprop");
  c.alignprop_distribution = "beta";
  EXPECT_NE(draft::test::expect_error([&] { c.validate(50); }).find("method.alignprop_distribution"), std::string::npos);
  c = config("draft-lv");
  c.lv_n = 0;
  EXPECT_NE(draft::test::expect_error([&] { c.validate(50); }).find("method.lv_n"), std::string::npos);
}

TEST(MethodConfig, JsonRoundTripAndUnknownKeys) {
  auto c = config("alignprop");
  c.alignprop_k_min = 3;
  c.refl_loss = "neg";
  draft::ConfigJson j{c.to_json(), "cfg.json"};
  auto back = draft::MethodConfig::from_json(j);
  EXPECT_EQ(back.to_json(), c.to_json());
  draft::ConfigJson bad{{{"kk", 3}}, "cfg.json"};
  EXPECT_NE(draft::test::expect_error([&] { draft::MethodConfig::from_json(bad); }).find("method.kk"),
            std::string::npos);
  EXPECT_EQ(draft::make_method(config("draft-lv"))->name(), "draft-lv");
}

}  // namespace
