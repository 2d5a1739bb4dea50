// draft probe: the decision-time statistics on synthetic reward arrays (exact shares, clamping, k50/k90,
// a constant reward), decision time on the tiny float64 model (a deterministic last step fixes all the
// variance; completions do not depend on the batch size), the gradient agreement (the same K twice agrees,
// K = N against itself is exactly 1, DRaFT-K's K = 1 gradient equals a hand-written truncated rollout's,
// the full gradient matches finite differences), and the CLI on the shipped model.
#include <cmath>
#include <filesystem>
#include <limits>
#include <memory>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "cli_runner.h"
#include "finetune/decision_time.h"
#include "finetune/gradient_agreement.h"
#include "lora/lora.h"
#include "method_fixture.h"
#include "support.h"

namespace {

using draft::test::BrightnessReward;
using draft::test::CliRun;
using draft::test::flat_grad;
using draft::test::relative_error;
using draft::test::run_cli;
using draft::test::TinySetup;

/// A reward that ignores the image: no step decides it.
class ConstantReward : public draft::Reward {
 public:
  at::Tensor score(const at::Tensor& images, const std::vector<std::string>&) override {
    return torch::full({images.size(0)}, 0.25, images.options());
  }
  std::string name() const override { return "constant"; }
};

/// A reward only evaluation and DDPO can use.
class ValuesOnlyReward : public BrightnessReward {
 public:
  bool differentiable() const override { return false; }
  std::string name() const override { return "values-only"; }
};

at::Tensor array(const std::vector<std::vector<std::vector<double>>>& r) {
  const auto k = static_cast<int64_t>(r.size()), p = static_cast<int64_t>(r[0].size()),
             m = static_cast<int64_t>(r[0][0].size());
  at::Tensor out = torch::zeros({k, p, m}, torch::kDouble);
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < p; ++j)
      for (int64_t l = 0; l < m; ++l) out[i][j][l] = r[i][j][l];
  return out;
}

// ---- statistics on synthetic arrays ----------------------------------------------------------------------

TEST(ProbeStatistics, ZeroWithinVarianceFixesEverything) {
  // r depends on the trajectory only: every completion of a trajectory scores the same.
  at::Tensor r = torch::arange(6, torch::kDouble).reshape({1, 6, 1}).expand({3, 6, 4}).contiguous();
  const auto s = draft::decision_statistics(r, {0, 1, 2}, {0, 0, 0, 0, 0, 0});
  ASSERT_FALSE(s.constant);
  for (double share : s.share) EXPECT_EQ(share, 1.0);
  EXPECT_EQ(s.k50, 0);
  EXPECT_EQ(s.k90, 0);
  EXPECT_NE(draft::decision_summary(s, 3).find("half of the variance is fixed after 0 of 3 steps: the last 3 steps"),
            std::string::npos);
}

TEST(ProbeStatistics, RewardsIndependentOfTheTrajectoryFixNothing) {
  at::Tensor r = torch::randn({3, 300, 8}, at::detail::createCPUGenerator(3), torch::kDouble);
  const auto s = draft::decision_statistics(r, {0, 2, 4}, std::vector<int64_t>(300, 0));
  ASSERT_FALSE(s.constant);
  for (double share : s.share) {
    EXPECT_GE(share, 0.0);
    EXPECT_LT(share, 0.05);  // W_k and V estimate the same variance (sd of the ratio ~ 0.03)
  }
  EXPECT_FALSE(s.k50.has_value());
  EXPECT_FALSE(s.k90.has_value());
  EXPECT_NEAR(s.total_variance, 1.0, 0.05);
  EXPECT_NE(draft::decision_summary(s, 5).find("less than half"), std::string::npos);
}

TEST(ProbeStatistics, ConstantRewardIsFlaggedNotDivided) {
  for (double value : {0.0, 0.7}) {
    const auto s = draft::decision_statistics(torch::full({4, 3, 2}, value, torch::kDouble), {0, 1, 2, 3}, {0, 1, 0});
    EXPECT_TRUE(s.constant) << value;
    EXPECT_TRUE(s.share.empty());
    EXPECT_FALSE(s.k50.has_value());
    EXPECT_NE(draft::decision_summary(s, 4).find("does not vary given the prompt"), std::string::npos);
  }
  // Float32 rounding noise on a constant is still constant.
  at::Tensor noisy = torch::full({2, 3, 2}, 0.1, torch::kDouble) * (1.0 + 1e-8 * torch::randn({2, 3, 2}, torch::kDouble));
  EXPECT_TRUE(draft::decision_statistics(noisy, {0, 1}, {0, 0, 0}).constant);
}

TEST(ProbeStatistics, ExactSharesClampAndThresholds) {
  // One prompt, P = 2, M = 2. k = 0: each trajectory's completions are {0, 2} (W_0 = 2); k = 1: trajectory 0
  // gives {0, 0}, trajectory 1 {2, 2} (W_1 = 0). All eight values: four 0s and four 2s, V = 8 / 7.
  // share_0 = 1 − 2 / (8/7) < 0, clamped to 0; share_1 = 1.
  const auto s = draft::decision_statistics(array({{{0, 2}, {0, 2}}, {{0, 0}, {2, 2}}}), {0, 1}, {0, 0});
  EXPECT_DOUBLE_EQ(s.total_variance, 8.0 / 7.0);
  EXPECT_DOUBLE_EQ(s.within_variance[0], 2.0);
  EXPECT_DOUBLE_EQ(s.within_variance[1], 0.0);
  EXPECT_EQ(s.share, (std::vector<double>{0.0, 1.0}));
  EXPECT_EQ(s.k50, 1);
  EXPECT_EQ(s.k90, 1);
  // V is the variance given the prompt: two prompts whose rewards sit 100 apart do not count that gap.
  const auto two = draft::decision_statistics(array({{{0, 2}, {100, 102}}}), {0}, {0, 1});
  EXPECT_DOUBLE_EQ(two.total_variance, 2.0);
  EXPECT_DOUBLE_EQ(two.share[0], 0.0);
}

TEST(ProbeStatistics, SharesFollowTheFormulaAndK50K90AreTheFirstCrossings) {
  // r = μ_p + c_k z with c_k falling: the share rises with k. Shares recomputed here by plain loops.
  const int64_t k_count = 6, p_count = 40, m_count = 5;
  at::Generator g = at::detail::createCPUGenerator(7);
  at::Tensor mu = torch::randn({1, p_count, 1}, g, torch::kDouble);
  at::Tensor c = torch::tensor(std::vector<double>{3.0, 2.0, 1.2, 0.8, 0.4, 0.1}, torch::kDouble).reshape({k_count, 1, 1});
  at::Tensor r = mu + c * torch::randn({k_count, p_count, m_count}, g, torch::kDouble);
  std::vector<int64_t> prompt(p_count);
  for (int64_t p = 0; p < p_count; ++p) prompt[p] = p % 3;
  const std::vector<int64_t> ks = {0, 3, 6, 9, 12, 14};
  const auto s = draft::decision_statistics(r, ks, prompt);
  double v = 0;
  for (int64_t q = 0; q < 3; ++q) {
    std::vector<double> values;
    for (int64_t k = 0; k < k_count; ++k)
      for (int64_t p = q; p < p_count; p += 3)
        for (int64_t m = 0; m < m_count; ++m) values.push_back(r[k][p][m].item<double>());
    double mean = 0, ss = 0;
    for (double x : values) mean += x / static_cast<double>(values.size());
    for (double x : values) ss += (x - mean) * (x - mean);
    v += ss / static_cast<double>(values.size() - 1) / 3.0;
  }
  EXPECT_NEAR(s.total_variance, v, 1e-12 * v);
  std::optional<int64_t> k50, k90;
  for (int64_t k = 0; k < k_count; ++k) {
    double w = 0;
    for (int64_t p = 0; p < p_count; ++p) {
      double mean = 0, ss = 0;
      for (int64_t m = 0; m < m_count; ++m) mean += r[k][p][m].item<double>() / m_count;
      for (int64_t m = 0; m < m_count; ++m) ss += std::pow(r[k][p][m].item<double>() - mean, 2);
      w += ss / (m_count - 1) / p_count;
    }
    const double share = std::clamp(1.0 - w / v, 0.0, 1.0);
    EXPECT_NEAR(s.share[k], share, 1e-12) << "k index " << k;
    if (!k50 && share >= 0.5) k50 = ks[k];
    if (!k90 && share >= 0.9) k90 = ks[k];
  }
  ASSERT_TRUE(k50 && k90);
  EXPECT_LT(*k50, *k90);  // the construction crosses one half before 90%
  EXPECT_EQ(s.k50, k50);
  EXPECT_EQ(s.k90, k90);
  EXPECT_EQ(draft::decision_summary(s, 15).find("half of the variance is fixed after " + std::to_string(*k50) +
                                                " of 15 steps: the last " + std::to_string(15 - *k50) +
                                                " steps decide the rest"),
            0u);
}

// The true W_k never rises with k; a rise is noise, and the monotone fit pools it with its neighbours.
TEST(ProbeStatistics, MonotoneFitPoolsRisesOfTheWithinVariance) {
  EXPECT_EQ(draft::non_increasing_fit({2, 0, 2, 0}), (std::vector<double>{2, 1, 1, 0}));
  EXPECT_EQ(draft::non_increasing_fit({1, 3, 2}), (std::vector<double>{2, 2, 2}));
  EXPECT_EQ(draft::non_increasing_fit({3, 2, 2, 1}), (std::vector<double>{3, 2, 2, 1}));
  // One prompt, P = 1, M = 2: completions {0, 2}, {1, 1}, {0, 2}, {1, 1} give W = 2, 0, 2, 0 and V = 4/7.
  // Raw shares 0, 1, 0, 1 (k50 = 1); the fit W = 2, 1, 1, 0 gives 0, 0, 0, 1 (k50 = k90 = 3).
  const auto s = draft::decision_statistics(array({{{0, 2}}, {{1, 1}}, {{0, 2}}, {{1, 1}}}), {0, 1, 2, 3}, {0});
  EXPECT_DOUBLE_EQ(s.total_variance, 4.0 / 7.0);
  EXPECT_EQ(s.share, (std::vector<double>{0, 1, 0, 1}));
  EXPECT_EQ(s.k50, 1);
  EXPECT_FALSE(s.monotone);
  EXPECT_EQ(s.monotone_share, (std::vector<double>{0, 0, 0, 1}));
  EXPECT_EQ(s.monotone_k50, 3);
  EXPECT_EQ(s.monotone_k90, 3);
  const std::string summary = draft::decision_summary(s, 4);
  EXPECT_NE(summary.find("the monotone fit puts k50 at 3 and k90 at 3"), std::string::npos) << summary;
  // A monotone curve is its own fit.
  const auto m = draft::decision_statistics(array({{{0, 2}}, {{1, 1}}}), {0, 1}, {0});
  EXPECT_TRUE(m.monotone);
  EXPECT_EQ(m.monotone_share, m.share);
}

TEST(ProbeStatistics, RefusesMalformedInput) {
  EXPECT_NE(draft::test::expect_error([] {
              draft::decision_statistics(torch::zeros({2, 3, 1}, torch::kDouble), {0, 1}, {0, 0, 0});
            }).find("at least 2 completions"),
            std::string::npos);
  EXPECT_NE(draft::test::expect_error([] {
              at::Tensor r = torch::zeros({1, 1, 2}, torch::kDouble);
              r[0][0][1] = std::numeric_limits<double>::quiet_NaN();
              draft::decision_statistics(r, {0}, {0});
            }).find("non-finite"),
            std::string::npos);
  draft::DecisionTimeOptions o;
  o.prompts = {"a"};
  o.completions = 1;
  EXPECT_NE(draft::test::expect_error([&] { o.validate(); }).find("--completions must be at least 2"), std::string::npos);
  EXPECT_EQ(draft::decision_steps(10, 4), (std::vector<int64_t>{0, 4, 8, 9}));
  EXPECT_EQ(draft::decision_steps(3, 1), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(draft::decision_steps(1, 1), (std::vector<int64_t>{0}));
}

// ---- decision time on the tiny model ---------------------------------------------------------------------

draft::DecisionTimeOptions tiny_decision_options() {
  draft::DecisionTimeOptions o;
  o.prompts = {"a photo", "a bag"};
  o.steps = 4;
  o.trajectories = 3;
  o.completions = 2;
  o.batch_size = 4;
  o.seed = 5;
  return o;
}

// With set_alpha_to_one the last step lands on ᾱ = 1, where σ = η √((1−ᾱ_prev)/(1−ᾱ_t)) √(1−ᾱ_t/ᾱ_prev) is 0:
// x_{t_1} decides x_0, so the share at k = N − 1 is 1. The shipped configs (set_alpha_to_one = false) keep a
// small σ in that step, so there W_{N−1} > 0.
TEST(ProbeDecisionTime, DeterministicLastStepFixesAllTheVariance) {
  TinySetup s;
  draft::StableDiffusion sd = s.sd;
  ASSERT_FALSE(sd.scheduler->config().set_alpha_to_one);
  const int64_t t1 = sd.scheduler->timesteps(4).back();
  draft::SchedulerConfig config = sd.scheduler->config();
  config.set_alpha_to_one = true;
  sd.scheduler = std::make_shared<draft::DDIMScheduler>(config);
  EXPECT_EQ(sd.scheduler->alpha_cumprod_at(sd.scheduler->previous_timestep(t1, 4)), 1.0);

  BrightnessReward brightness;
  ConstantReward constant;
  auto o = tiny_decision_options();
  o.guidance_scale = 1.0;  // unguided: half the UNet work (the batch-size test below covers guidance)
  const auto result = draft::measure_decision_time(sd, {&brightness, &constant}, o);
  ASSERT_EQ(result.curves.size(), 2u);
  EXPECT_EQ(result.steps_done, (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(result.prompt_of_trajectory, (std::vector<int64_t>{0, 1, 0}));
  EXPECT_EQ(result.sample_steps, 3 * 4 + 6 * (4 + 3 + 2 + 1));
  const auto& b = result.curves[0].stats;
  ASSERT_FALSE(b.constant);
  std::printf("tiny model, deterministic last step: shares %.4f %.4f %.4f %.4f, W_{N-1} = %.3e, V = %.3e\n",
              b.share[0], b.share[1], b.share[2], b.share[3], b.within_variance[3], b.total_variance);
  for (double share : b.share) {
    EXPECT_GE(share, 0.0);
    EXPECT_LE(share, 1.0);
  }
  EXPECT_NEAR(b.share[3], 1.0, 1e-9);
  EXPECT_LE(b.within_variance[3], 1e-20);
  EXPECT_TRUE(result.curves[1].stats.constant);
  EXPECT_EQ(result.curves[1].reward, "constant");

  // The shipped scheduler: the last η = 1 step still draws noise, so its completions differ.
  BrightnessReward again;
  const auto shipped = draft::measure_decision_time(s.sd, {&again}, o);
  const auto& st = shipped.curves[0].stats;
  std::printf("tiny model, shipped scheduler: share at k = N-1 %.6f, W_{N-1} = %.3e\n", st.share[3],
              st.within_variance[3]);
  EXPECT_GT(st.within_variance[3], 0.0);
  for (double share : st.share) {
    EXPECT_GE(share, 0.0);
    EXPECT_LE(share, 1.0);
  }
}

TEST(ProbeDecisionTime, CompletionsDoNotDependOnTheBatchSize) {
  TinySetup s;
  BrightnessReward reward;
  auto o = tiny_decision_options();
  o.stride = 2;
  o.batch_size = 1;
  const auto one = draft::measure_decision_time(s.sd, {&reward}, o);
  o.batch_size = 100;
  const auto all = draft::measure_decision_time(s.sd, {&reward}, o);
  EXPECT_EQ(one.steps_done, (std::vector<int64_t>{0, 2, 3}));
  EXPECT_TRUE(draft::test::tensors_close(one.rewards, all.rewards, 1e-12));
  // Fresh noise per completion: the two completions of one trajectory differ.
  EXPECT_GT((one.rewards.select(3, 0) - one.rewards.select(3, 1)).abs().max().item<double>(), 0.0);
}

// ---- gradient agreement -----------------------------------------------------------------------------------

TEST(ProbeGradients, SameKTwiceAgreesAndKOneIsTheTruncatedRolloutGradient) {
  TinySetup s(2, 3.0);
  const at::Tensor x_T = s.noise(21);
  auto c = s.context(x_T, 4);
  const auto g = draft::draft_k_gradients(c, {1, 1, 4});
  ASSERT_EQ(g.size(), 3u);
  const double cos_same = draft::vector_cosine(g[0], g[1]);
  const double ratio_same = std::sqrt(g[0].dot(g[0]).item<double>() / g[1].dot(g[1]).item<double>());
  std::printf("K = 1 twice: cosine 1 - %.3e, norm ratio 1 + %.3e\n", 1.0 - cos_same, ratio_same - 1.0);
  EXPECT_NEAR(cos_same, 1.0, 1e-9);
  EXPECT_NEAR(ratio_same, 1.0, 1e-9);
  EXPECT_EQ(draft::vector_cosine(g[2], g[2]), 1.0);
  EXPECT_GT(g[0].abs().max().item<double>(), 0.0);
  EXPECT_GT(g[2].abs().max().item<double>(), 0.0);
  EXPECT_LT(draft::vector_cosine(g[0], g[2]), 1.0 - 1e-9);  // K = 1 really truncates
  for (const auto& p : s.params) EXPECT_FALSE(p.grad().defined());

  // K = 1 by hand: no Method, no checkpoint: steps 0 .. N−2 without gradients, the last one with them.
  draft::RolloutOptions o;
  o.steps = 4;
  o.grad_from_step = 3;
  o.checkpoint = false;
  const auto rollout = draft::ddim_rollout(*s.sd.scheduler, s.eps(), x_T, o);
  const at::Tensor loss = -s.reward.score(s.sd.vae->decode_latents_to_images(rollout.x0), s.prompts).mean();
  const double rel = relative_error(g[0], flat_grad(loss, s.params));
  std::printf("DRaFT-K (K = 1) via draft_k_gradients vs hand-written truncated rollout: relative error %.3e\n", rel);
  EXPECT_LE(rel, 1e-12);
}

// The full (K = N) gradient is the derivative of the loss: a central difference along it gives its norm.
TEST(ProbeGradients, FullGradientMatchesFiniteDifferences) {
  TinySetup s(1, 3.0);
  auto c = s.context(s.noise(22, 1), 3);
  const at::Tensor g = draft::draft_k_gradients(c, {3})[0];
  const double norm = std::sqrt(g.dot(g).item<double>());
  ASSERT_GT(norm, 0.0);
  auto loss_at = [&](double h) {
    torch::NoGradGuard no_grad;
    std::vector<at::Tensor> saved;
    int64_t offset = 0;
    for (auto& p : s.params) {
      saved.push_back(p.detach().clone());
      p.add_(g.narrow(0, offset, p.numel()).view(p.sizes()).to(p.options()) * (h / norm));
      offset += p.numel();
    }
    draft::MethodConfig config;
    config.name = "draft";
    const double loss = draft::make_method(config)->run(c).loss.item<double>();
    for (std::size_t i = 0; i < s.params.size(); ++i) s.params[i].copy_(saved[i]);
    return loss;
  };
  const double h = 1e-4;
  const double directional = (loss_at(h) - loss_at(-h)) / (2 * h);
  std::printf("full DRaFT: |g| = %.6e, central difference along g = %.6e\n", norm, directional);
  EXPECT_NEAR(directional, norm, 1e-5 * norm);
}

TEST(ProbeGradients, AgreementOnAFreshLoRA) {
  // Its own copy of the tiny model: the LoRA stays in this UNet.
  draft::WeightsOptions w;
  w.dtype = torch::kFloat64;
  draft::StableDiffusion sd = draft::load_stable_diffusion(draft::test::test_data("sd_pipeline_tiny"), w);
  at::Generator global = at::detail::getDefaultCPUGenerator();
  const at::Tensor before = global.get_state();
  const draft::LoRANetwork lora = draft::inject_lora(sd.unet, draft::LoRAConfig{}, 9);
  EXPECT_TRUE(global.get_state().equal(before));  // the global generator is left as it was
  // The seeded injection is what seeding the global generator by hand gives (how a fine-tuning run seeded it).
  const draft::LoRANetwork twin = [&] {
    draft::StableDiffusion other = draft::load_stable_diffusion(draft::test::test_data("sd_pipeline_tiny"), w);
    global.set_current_seed(9);
    draft::LoRANetwork network = draft::inject_lora(other.unet, draft::LoRAConfig{});
    global.set_state(before);
    return network;
  }();
  ASSERT_EQ(lora.parameters().size(), twin.parameters().size());
  for (std::size_t i = 0; i < lora.parameters().size(); ++i) {
    EXPECT_TRUE(lora.parameters()[i].equal(twin.parameters()[i])) << i;
  }
  BrightnessReward reward;
  draft::GradientAgreementOptions o;
  o.prompts = {"a photo", "a bag"};
  o.steps = 4;
  o.batches = 2;
  o.batch_size = 1;
  o.ks = {2, 1, 4, 2};
  const auto r = draft::measure_gradient_agreement(sd, reward, lora.parameters(), o);
  EXPECT_EQ(r.ks, (std::vector<int64_t>{1, 2, 4}));
  ASSERT_EQ(r.rows.size(), 3u);
  EXPECT_EQ(r.parameters, lora.parameter_count());
  ASSERT_EQ(r.full_norms.size(), 2u);
  for (double n : r.full_norms) EXPECT_GT(n, 0.0);
  const auto& full = r.rows.back();
  EXPECT_EQ(full.k, 4);
  EXPECT_EQ(full.cosine_to_full.min, 1.0);
  EXPECT_EQ(full.cosine_to_full.max, 1.0);
  EXPECT_EQ(full.norm_ratio.min, 1.0);
  EXPECT_EQ(full.norm_ratio.max, 1.0);
  EXPECT_FALSE(r.rows[0].cosine_to_previous.has_value());
  ASSERT_TRUE(r.rows[1].cosine_to_previous.has_value());
  for (const auto& row : r.rows) {
    EXPECT_EQ(row.cosines.size(), 2u);
    EXPECT_GE(row.cosine_to_full.min, -1.0);
    EXPECT_LE(row.cosine_to_full.max, 1.0);
    EXPECT_LE(row.cosine_to_full.min, row.cosine_to_full.mean);
    EXPECT_LE(row.cosine_to_full.mean, row.cosine_to_full.max);
    EXPECT_GT(row.norm_ratio.min, 0.0);
  }
  std::printf("fresh LoRA, tiny model: cos(g_1, g_4) mean %.4f, |g_1|/|g_4| mean %.4f\n", r.rows[0].cosine_to_full.mean,
              r.rows[0].norm_ratio.mean);
  for (const auto& p : lora.parameters()) EXPECT_FALSE(p.grad().defined());

  ValuesOnlyReward values_only;
  EXPECT_NE(draft::test::expect_error([&] { draft::measure_gradient_agreement(sd, values_only, lora.parameters(), o); })
                .find("'values-only' is not differentiable"),
            std::string::npos);
  o.ks = {5};
  EXPECT_NE(draft::test::expect_error([&] { o.validate(); }).find("--k 5 is outside [1, --steps 4]"), std::string::npos);
}

// ---- the CLI ----------------------------------------------------------------------------------------------

TEST(ProbeCli, ReportsCurvesGradientsAndPlot) {
  draft::test::TempDir dir;
  const std::string model = "--threads 1 probe --model " + draft::test::shipped_model("fashion-sd") + " --models-dir " +
                            draft::test::shipped_model("") + " --steps 4 --trajectories 2";
  const std::string base = model + " --completions 2";
  CliRun r = run_cli(base + " --reward classifier --reward jpeg --grad-batches 1 --grad-batch-size 1 --k 1"
                            " --prompt 'a coat' --json --json-file " + dir.file("probe.json") +
                     " --plot " + dir.file("probe.svg"));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j, nlohmann::json::parse(draft::test::slurp(dir.file("probe.json"))));
  EXPECT_EQ(j["steps"], 4);
  EXPECT_EQ(j["rewards"], nlohmann::json({"classifier", "jpeg"}));
  const auto& d = j["decision_time"];
  EXPECT_EQ(d["steps_done"], nlohmann::json({0, 1, 2, 3}));
  ASSERT_EQ(d["curves"].size(), 2u);
  EXPECT_FALSE(d["curves"][0]["constant"].get<bool>());
  for (const auto& curve : d["curves"]) {
    if (curve["constant"].get<bool>()) continue;  // the JPEG size of 4 tiny images might not vary
    ASSERT_EQ(curve["share"].size(), 4u);
    for (const auto& share : curve["share"]) {
      EXPECT_GE(share.get<double>(), 0.0);
      EXPECT_LE(share.get<double>(), 1.0);
    }
    EXPECT_GT(curve["total_variance"].get<double>(), 0.0);
    EXPECT_TRUE(curve.contains("k50") && curve.contains("k90"));
    EXPECT_FALSE(curve["summary"].get<std::string>().empty());
  }
  const auto& g = j["gradient_agreement"];
  EXPECT_EQ(g["ks"], nlohmann::json({1, 4}));
  ASSERT_EQ(g["results"].size(), 2u);
  const auto& classifier = g["results"][0];
  EXPECT_EQ(classifier["reward"], "classifier");
  ASSERT_EQ(classifier["rows"].size(), 2u);
  EXPECT_EQ(classifier["rows"][1]["k"], 4);
  EXPECT_EQ(classifier["rows"][1]["cosine_to_full"]["mean"].get<double>(), 1.0);
  EXPECT_EQ(classifier["rows"][1]["norm_ratio"]["mean"].get<double>(), 1.0);
  EXPECT_GT(classifier["full_norms"][0].get<double>(), 0.0);
  EXPECT_NE(g["results"][1]["skipped"].get<std::string>().find("not differentiable"), std::string::npos);
  const std::string svg = draft::test::slurp(dir.file("probe.svg"));
  EXPECT_NE(svg.find("<polyline"), std::string::npos);
  EXPECT_NE(svg.find("classifier"), std::string::npos);

  CliRun table = run_cli(base + " --reward classifier --no-gradients");
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_NE(table.out.find("| k | classifier | classifier (monotone fit) |"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("| 3 | "), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("gradient agreement: skipped (--no-gradients)"), std::string::npos) << table.out;

  CliRun bad = run_cli(model + " --reward classifier --completions 1");
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("--completions must be at least 2"), std::string::npos) << bad.err;
  CliRun bad_k = run_cli(base + " --reward classifier --k 9");
  EXPECT_EQ(bad_k.code, 1);
  EXPECT_NE(bad_k.err.find("--k 9 is outside [1, --steps 4]"), std::string::npos) << bad_k.err;
}

}  // namespace
