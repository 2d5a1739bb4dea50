// DDPO (src/finetune/ddpo_method.cpp, prompt_stat_tracker.cpp) on the tiny model in float64: the stored
// log-probabilities are the Gaussian density of each sampled step, a fresh policy with one inner epoch has
// ratio exactly 1 (and a later inner epoch does not), advantages follow ddpo-pytorch's per-prompt
// statistics, the method's state round-trips, and a few steps raise a simple reward.
#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "diffusion/ddim_scheduler.h"
#include "diffusion/text_to_image.h"
#include "finetune/method.h"
#include "finetune/prompt_stat_tracker.h"
#include "method_fixture.h"
#include "support.h"

namespace {

using draft::test::TinySetup;

draft::MethodConfig ddpo_config() {
  draft::MethodConfig c;
  c.name = "ddpo";
  return c;
}

// log N(x_prev; μ, σ² I) averaged over the latent's elements, from DESIGN.md section 3's equations in
// float64 (ε-prediction): x̂0 = (x_t − √(1−ᾱ_t) ε̂)/√ᾱ_t, μ = √ᾱ_prev x̂0 + √(1−ᾱ_prev−σ²) ε̂,
// σ = η √((1−ᾱ_prev)/(1−ᾱ_t)) √(1−ᾱ_t/ᾱ_prev).
at::Tensor direct_mean_log_density(const draft::DDIMScheduler& s, const at::Tensor& eps, int64_t t, int64_t n,
                                   const at::Tensor& x, const at::Tensor& prev, double eta) {
  const double a = s.alpha_cumprod_at(t), ap = s.alpha_cumprod_at(s.previous_timestep(t, n));
  const double sigma = eta * std::sqrt((1 - ap) / (1 - a) * (1 - a / ap));
  const at::Tensor x0 = (x - std::sqrt(1 - a) * eps) / std::sqrt(a);
  const at::Tensor mean = std::sqrt(ap) * x0 + std::sqrt(1 - ap - sigma * sigma) * eps;
  const at::Tensor z = (prev - mean) / sigma;
  return (-0.5 * z.square() - std::log(sigma) - 0.5 * std::log(2 * M_PI)).flatten(1).mean(1);
}

std::map<std::string, at::Tensor> as_map(const std::vector<std::pair<std::string, at::Tensor>>& v) {
  return {v.begin(), v.end()};
}

TEST(DDPO, StoredLogProbIsTheGaussianDensityOfEachSampledStep) {
  TinySetup s(2, 3.0);
  auto method = draft::make_method(ddpo_config());
  const int64_t steps = 4;
  auto c = s.context(s.noise(7), steps);
  c.sampler.eta = 1.0;
  method->run(c);
  const auto state = as_map(method->state({}));
  const at::Tensor latents = state.at("batch_0_latents"), log_probs = state.at("batch_0_log_probs");
  ASSERT_EQ(latents.size(0), steps + 1);
  const auto timesteps = s.sd.scheduler->timesteps(steps);
  torch::NoGradGuard no_grad;
  for (int64_t i = 0; i < steps; ++i) {
    const int64_t t = timesteps[static_cast<std::size_t>(i)];
    const at::Tensor eps = s.eps()(latents[i], t);
    const at::Tensor ref = direct_mean_log_density(*s.sd.scheduler, eps, t, steps, latents[i], latents[i + 1], 1.0);
    // The scheduler's coefficients are float32 (as diffusers'), the reference's float64: agreement to
    // float32 precision relative to the density's magnitude.
    const double err = (log_probs[i] - ref).abs().max().item<double>() / std::max(1.0, ref.abs().max().item<double>());
    std::printf("step %lld (t=%lld): log-prob %.6f / %.6f, |diff| %.2e\n", static_cast<long long>(i),
                static_cast<long long>(t), log_probs[i][0].item<double>(), ref[0].item<double>(), err);
    EXPECT_LE(err, 1e-6);
  }
}

TEST(DDPO, FreshPolicyWithOneInnerEpochHasRatioExactlyOne) {
  TinySetup s(2, 3.0);
  auto cfg = ddpo_config();
  cfg.ddpo_inner_epochs = 2;
  auto method = draft::make_method(cfg);
  torch::optim::AdamW opt(s.params, torch::optim::AdamWOptions(1e-2).weight_decay(0.0));
  auto c = s.context(s.noise(3), 4);
  c.sampler.eta = 1.0;
  opt.zero_grad();
  draft::MethodStep first = method->run(c);
  EXPECT_TRUE(first.gradients_accumulated);
  EXPECT_EQ(first.stats.at("ratio_max_deviation"), 0.0);
  EXPECT_EQ(first.stats.at("approx_kl"), 0.0);
  EXPECT_EQ(first.stats.at("clip_frac"), 0.0);
  EXPECT_EQ(first.reward_queries, 2);
  EXPECT_EQ(first.unet_evals, 4 + 4);  // sampling, then one call with gradients per trained step
  bool any_grad = false;
  for (const auto& p : s.params) any_grad = any_grad || (p.grad().defined() && p.grad().abs().sum().item<double>() > 0);
  EXPECT_TRUE(any_grad);
  opt.step();
  // Inner epoch 2 of the cycle: the same samples under the updated policy, no new reward queries.
  c.step = 1;
  opt.zero_grad();
  draft::MethodStep second = method->run(c);
  EXPECT_EQ(second.reward_queries, 0);
  EXPECT_TRUE(torch::equal(second.rewards, first.rewards));
  EXPECT_GT(second.stats.at("ratio_max_deviation"), 0.0);
  EXPECT_GT(second.stats.at("approx_kl"), 0.0);
  std::printf("inner epoch 2: approx KL %.3e, clip fraction %.3f\n", second.stats.at("approx_kl"),
              second.stats.at("clip_frac"));
}

TEST(DDPO, TimestepFractionTrainsOnThatShareOfTheSteps) {
  TinySetup s(1, 1.0);
  auto cfg = ddpo_config();
  cfg.ddpo_timestep_fraction = 0.5;
  auto method = draft::make_method(cfg);
  auto c = s.context(s.noise(5, 1), 6);
  c.sampler.eta = 1.0;
  auto count = std::make_shared<draft::test::CallCount>();
  c.eps = draft::test::counting(s.eps(), count);
  draft::MethodStep step = method->run(c);
  EXPECT_EQ(step.unet_evals_with_grad, 3);
  EXPECT_EQ(count->grad_calls, 3);
  EXPECT_EQ(count->calls, 6 + 3);
}

TEST(DDPO, NeedsAStochasticSamplerAndAcceptsNonDifferentiableRewards) {
  EXPECT_FALSE(draft::make_method(ddpo_config())->needs_differentiable_reward());
  TinySetup s(1, 1.0);
  auto method = draft::make_method(ddpo_config());
  auto c = s.context(s.noise(5, 1), 3);
  c.sampler.eta = 0.0;
  EXPECT_NE(draft::test::expect_error([&] { method->run(c); }).find("sampler.eta > 0"), std::string::npos);
  auto cfg = ddpo_config();
  cfg.ddpo_min_count = 32;
  EXPECT_NE(draft::test::expect_error([&] { cfg.validate(10); }).find("method.ddpo_min_count"), std::string::npos);
}

TEST(DDPO, StateRoundTripsIntoAFreshMethod) {
  TinySetup s(2, 3.0);
  auto cfg = ddpo_config();
  cfg.ddpo_inner_epochs = 2;
  auto a = draft::make_method(cfg);
  auto c = s.context(s.noise(11), 3);
  c.sampler.eta = 1.0;
  a->run(c);
  auto b = draft::make_method(cfg);
  b->load_state(as_map(a->state({})), {});
  // Inner epoch 2 from the restored samples equals inner epoch 2 of the original.
  c.step = 1;
  for (auto& p : s.params) p.mutable_grad() = at::Tensor();
  const double loss_a = a->run(c).loss.item<double>();
  const double loss_b = b->run(c).loss.item<double>();
  EXPECT_EQ(loss_a, loss_b);
  const auto sa = as_map(a->state({})), sb = as_map(b->state({}));
  ASSERT_EQ(sa.size(), sb.size());
  for (const auto& [name, tensor] : sa) EXPECT_TRUE(torch::equal(tensor, sb.at(name))) << name;
}

// Behavioural: a few DDPO steps raise the brightness reward on the shipped embedded model (float32,
// fast). The policy's trainable part is one shift added to ε̂ along a fixed direction v (the model stays
// frozen). v is the brightness gradient of the decoded image with respect to the latent: a shift along all
// latent channels alike moves brightness so little that DDPO's gradient at 32 samples per step has the
// right sign only ~60% of the time (measured over 48 batches: mean −0.016, standard error 0.006), while
// along v, 8 steps from 8 different seeds all raised it (0.224 -> 0.232 ... 0.426).
TEST(DDPO, RaisesASimpleRewardOnTheEmbeddedModel) {
  draft::StableDiffusion sd = draft::load_stable_diffusion(draft::test::shipped_model("fashion-sd"), {});
  const int64_t batch = 32, steps = 4, size = sd.default_image_size();
  const std::vector<std::string> prompts(batch, "a photo of a coat");
  draft::Conditioning conditioning;
  {
    torch::NoGradGuard no_grad;
    conditioning = draft::encode_prompts(sd, prompts, {}, 1, 0, false);
  }
  draft::test::BrightnessReward reward;
  const int64_t latent = size / sd.vae_scale_factor();
  at::Tensor v = torch::zeros({1, sd.unet->config().in_channels, latent, latent}, torch::kFloat32).requires_grad_(true);
  reward.score(sd.vae->decode_latents_to_images(v), {"a photo of a coat"}).sum().backward();
  v = (v.grad() / v.grad().square().mean().sqrt()).detach();  // unit root-mean-square
  at::Tensor shift = torch::zeros({1}, torch::kFloat32).requires_grad_(true);
  const draft::EpsFn base = draft::guided_eps(sd.unet, conditioning, 1.0);
  const draft::EpsFn eps = [base, shift, v](const at::Tensor& x, int64_t t) { return base(x, t) + shift * v; };
  auto mean_reward = [&] {
    torch::NoGradGuard no_grad;
    draft::RolloutOptions o;
    o.steps = steps;
    o.eta = 1.0;
    at::Generator g = at::detail::createCPUGenerator(424242);
    auto x0 = draft::ddim_rollout(*sd.scheduler, eps, draft::initial_latents(sd, batch, size, size, g), o, g).x0;
    return reward.score(sd.vae->decode_latents_to_images(x0), prompts).mean().item<double>();
  };
  const double before = mean_reward();
  auto method = draft::make_method(ddpo_config());
  torch::optim::AdamW opt({shift}, torch::optim::AdamWOptions(0.02).weight_decay(0.0));
  for (int64_t i = 0; i < 8; ++i) {
    draft::MethodContext c;
    c.sd = &sd;
    c.reward = &reward;
    c.prompts = prompts;
    c.conditioning = conditioning;
    at::Generator g = at::detail::createCPUGenerator(1000 + static_cast<uint64_t>(i));
    c.x_T = draft::initial_latents(sd, batch, size, size, g);
    draft::seed_method_draws(c, 1000 + static_cast<uint64_t>(i), i, 0);
    c.params = {shift};
    c.eps = eps;
    c.sampler.steps = steps;
    c.sampler.guidance_scale = 1.0;
    c.sampler.eta = 1.0;
    c.step = i;
    opt.zero_grad();
    const draft::MethodStep out = method->run(c);
    std::printf("step %lld: reward %.4f, shift gradient %+.3e\n", static_cast<long long>(i),
                out.rewards.mean().item<double>(), shift.grad().item<double>());
    opt.step();
  }
  const double after = mean_reward();
  std::printf("ddpo: brightness %.4f -> %.4f (shift %.3f)\n", before, after, shift.item<double>());
  EXPECT_GT(after, before + 1e-3);
}

TEST(PromptStatTracker, PerPromptStatisticsOnceTheBufferHoldsMinCount) {
  draft::PromptStatTracker tracker(3, 2);
  // First batch: "a" has one reward (< min_count 2): batch statistics; "b" has two: its own.
  const at::Tensor adv = tracker.update({"a", "b", "b"}, torch::tensor({1.0, 2.0, 4.0}, torch::kDouble));
  const double batch_mean = 7.0 / 3, batch_std = std::sqrt(((1 - batch_mean) * (1 - batch_mean) +
                                                            (2 - batch_mean) * (2 - batch_mean) +
                                                            (4 - batch_mean) * (4 - batch_mean)) / 3);
  EXPECT_NEAR(adv[0].item<double>(), (1.0 - batch_mean) / (batch_std + 1e-6), 1e-12);
  EXPECT_NEAR(adv[1].item<double>(), (2.0 - 3.0) / (1.0 + 1e-6), 1e-12);
  EXPECT_NEAR(adv[2].item<double>(), (4.0 - 3.0) / (1.0 + 1e-6), 1e-12);
  // The buffer keeps the last 3 rewards of a prompt.
  tracker.update({"b", "b"}, torch::tensor({6.0, 8.0}, torch::kDouble));
  EXPECT_EQ(tracker.buffer("b"), (std::vector<double>{4.0, 6.0, 8.0}));
  const at::Tensor batch = draft::PromptStatTracker::batch_advantages(torch::tensor({1.0, 3.0}, torch::kDouble));
  EXPECT_NEAR(batch[0].item<double>(), -1.0 / (1.0 + 1e-8), 1e-12);
  // State round trip.
  draft::PromptStatTracker copy(3, 2);
  copy.load_state("t", as_map(tracker.state("t")));
  EXPECT_EQ(copy.buffer("b"), tracker.buffer("b"));
  EXPECT_EQ(copy.buffer("a"), tracker.buffer("a"));
}

}  // namespace
