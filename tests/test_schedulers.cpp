// Noise schedules, DDIM and DDPM schedulers against the diffusers v0.25 fixtures, plus log-probability,
// autograd and config-validation checks.
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "diffusion/ddim_scheduler.h"
#include "diffusion/ddpm_scheduler.h"
#include "diffusion/noise_schedule.h"
#include "diffusion/scheduler_config.h"
#include "io/config_json.h"
#include "io/safetensors.h"
#include "support.h"
#include "util/error.h"

namespace {

using draft::test::tolerance;
using draft::test::expect_error;

using draft::test::tensors_close;

const std::string kDir = std::string(DRAFT_TEST_DATA) + "/ddim_scheduler";

const draft::SafeTensorsFile& cases() {
  static const draft::SafeTensorsFile file(kDir + "/cases.safetensors");
  return file;
}
at::Tensor fx(const std::string& name) { return cases().load(name); }
int64_t fx_int(const std::string& name) { return fx(name).item<int64_t>(); }

draft::SchedulerConfig sd_config() { return draft::SchedulerConfig::load(kDir + "/scheduler"); }

std::vector<int64_t> to_vector(const at::Tensor& t) {
  at::Tensor c = t.contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

TEST(SchedulerConfig, LoadsFixtureFolders) {
  draft::SchedulerConfig c = sd_config();
  EXPECT_EQ(c.num_train_timesteps, 1000);
  EXPECT_EQ(c.beta_schedule, "scaled_linear");
  EXPECT_DOUBLE_EQ(c.beta_start, 0.00085);
  EXPECT_DOUBLE_EQ(c.beta_end, 0.012);
  EXPECT_FALSE(c.clip_sample);
  EXPECT_FALSE(c.set_alpha_to_one);
  EXPECT_EQ(c.steps_offset, 1);
  EXPECT_EQ(c.prediction_type, "epsilon");
  EXPECT_EQ(c.timestep_spacing, "leading");
  EXPECT_TRUE(c.trained_betas.empty());
  EXPECT_EQ(draft::SchedulerConfig::load(kDir + "/scheduler_v_prediction/scheduler_config.json").prediction_type,
            "v_prediction");
  EXPECT_EQ(draft::SchedulerConfig::load(kDir + "/ddpm_scheduler").variance_type, "fixed_small");
  // Defaults are diffusers' DDIMScheduler defaults.
  draft::SchedulerConfig d = draft::SchedulerConfig::from_json(draft::ConfigJson{nlohmann::json::object(), "x"});
  EXPECT_EQ(d.beta_schedule, "linear");
  EXPECT_TRUE(d.clip_sample);
  EXPECT_TRUE(d.set_alpha_to_one);
  EXPECT_EQ(d.steps_offset, 0);
  EXPECT_NE(expect_error([] { draft::SchedulerConfig::load(kDir + "/no_such_folder"); }).find("no_such_folder"),
            std::string::npos);
}

TEST(SchedulerConfig, ValidationNamesTheKey) {
  auto error_for = [](const nlohmann::json& j) {
    return expect_error([&] { draft::SchedulerConfig::from_json(draft::ConfigJson{j, "cfg.json"}); });
  };
  struct Case {
    nlohmann::json json;
    std::vector<std::string> words;
  };
  const std::vector<Case> bad = {
      {{{"timestep_spacing", "karras"}}, {"cfg.json", "timestep_spacing", "karras"}},
      {{{"thresholding", true}}, {"thresholding"}},
      {{{"beta_schedule", "sigmoid"}}, {"beta_schedule", "sigmoid"}},
      {{{"prediction_type", "flow"}}, {"prediction_type", "flow"}},
      {{{"variance_type", "learned_range"}}, {"variance_type", "learned_range"}},
      {{{"num_train_timesteps", 0}}, {"num_train_timesteps"}},
      {{{"steps_offset", -1}}, {"steps_offset"}},
      {{{"clip_sample", true}, {"clip_sample_range", 0.0}}, {"clip_sample_range"}},
      {{{"num_train_timesteps", 3}, {"trained_betas", {0.1, 0.2}}}, {"trained_betas"}},
      {{{"beta_schedule", 5}}, {"beta_schedule", "wrong type"}},
  };
  for (const Case& c : bad) {
    std::string msg = error_for(c.json);
    for (const std::string& w : c.words) EXPECT_NE(msg.find(w), std::string::npos) << msg << " lacks " << w;
  }
  // Keys of other schedulers (an SD checkpoint ships a PNDM config) are ignored, as in diffusers.
  EXPECT_NO_THROW(draft::SchedulerConfig::from_json(draft::ConfigJson{{{"skip_prk_steps", true}}, "x"}));
  draft::SchedulerConfig c = sd_config();
  c.timestep_spacing = "uniform";
  EXPECT_NE(expect_error([&] { draft::DDIMScheduler s(c); }).find("timestep_spacing 'uniform'"), std::string::npos);
}

TEST(NoiseSchedule, ScaledLinearMatchesFixture) {
  draft::DDIMScheduler s(sd_config());
  EXPECT_EQ(s.alphas_cumprod().scalar_type(), at::kFloat);
  EXPECT_TRUE(tensors_close(s.betas(), fx("betas"), 1e-7));
  EXPECT_TRUE(tensors_close(s.alphas_cumprod(), fx("alphas_cumprod"), 1e-7));
  EXPECT_DOUBLE_EQ(s.alpha_cumprod_at(-19), fx("final_alpha_cumprod").item<double>());
  EXPECT_DOUBLE_EQ(s.alpha_cumprod_at(500), fx("alphas_cumprod")[500].item<double>());
  draft::SchedulerConfig one = sd_config();
  one.set_alpha_to_one = true;
  EXPECT_DOUBLE_EQ(draft::DDIMScheduler(one).alpha_cumprod_at(-1), 1.0);
  EXPECT_THROW(s.alpha_cumprod_at(1000), draft::Error);
}

TEST(NoiseSchedule, OtherBetaSchedules) {
  draft::SchedulerConfig c;
  c.beta_schedule = "linear";  // diffusers defaults 1e-4 .. 0.02
  at::Tensor lin = draft::make_betas(c);
  EXPECT_TRUE(tensors_close(lin, torch::linspace(1e-4, 0.02, 1000, torch::kDouble).to(torch::kFloat), 1e-8));
  c.beta_schedule = "squaredcos_cap_v2";
  at::Tensor cos = draft::make_betas(c).to(torch::kDouble);
  // alpha-bar(t) = cos²((t/T + s)/(1 + s) π/2), so cumprod(1 - beta) follows it until the 0.999 cap.
  at::Tensor t = torch::arange(1, 1001, torch::kDouble) / 1000.0;
  at::Tensor f = torch::cos((t + 0.008) / 1.008 * M_PI / 2).square() / std::pow(std::cos(0.008 / 1.008 * M_PI / 2), 2);
  at::Tensor ab = torch::cumprod(1.0 - cos, 0);
  // float64 products of float32-rounded betas: observed 7.9e-10.
  EXPECT_TRUE(tensors_close(ab.slice(0, 0, 990), f.slice(0, 0, 990), 1e-7));
  EXPECT_NEAR(cos[999].item<double>(), 0.999, 1e-6);
  c.trained_betas = std::vector<double>(1000, 0.01);
  EXPECT_TRUE(tensors_close(draft::make_betas(c), torch::full({1000}, 0.01, torch::kFloat), 0.0));
  // Zero terminal SNR: last alpha-bar is 0, the first is unchanged.
  draft::SchedulerConfig z = sd_config();
  z.rescale_betas_zero_snr = true;
  at::Tensor zab = draft::make_alphas_cumprod(draft::make_betas(z));
  EXPECT_NEAR(zab[999].item<double>(), 0.0, 1e-12);
  EXPECT_NEAR(zab[0].item<double>(), fx("alphas_cumprod")[0].item<double>(), 1e-6);
}

TEST(NoiseSchedule, TimestepSpacings) {
  draft::SchedulerConfig c = sd_config();
  for (int64_t n : {50, 10}) {
    const std::string suffix = std::to_string(n);
    c.timestep_spacing = "leading";
    EXPECT_EQ(draft::DDIMScheduler(c).timesteps(n), to_vector(fx("timesteps_" + suffix)));
    c.timestep_spacing = "trailing";
    EXPECT_EQ(draft::DDIMScheduler(c).timesteps(n), to_vector(fx("timesteps_" + suffix + "_trailing")));
    c.timestep_spacing = "linspace";
    EXPECT_EQ(draft::DDIMScheduler(c).timesteps(n), to_vector(fx("timesteps_" + suffix + "_linspace")));
  }
  draft::DDIMScheduler sd(sd_config());
  EXPECT_EQ(sd.timesteps(50).front(), 981);
  EXPECT_EQ(sd.timesteps(50).back(), 1);
  EXPECT_EQ(sd.previous_timestep(981, 50), 961);
  EXPECT_EQ(sd.previous_timestep(1, 50), -19);
  // numpy rounds half to even: linspace(0, 999, 7) has 166.5 -> 166 and 832.5 -> 832.
  c.timestep_spacing = "linspace";
  EXPECT_EQ(draft::inference_timesteps(c, 7), (std::vector<int64_t>{999, 832, 666, 500, 333, 166, 0}));
  // numpy's arange gives 62 values for T/61; only the 61 meaningful ones are kept.
  c.timestep_spacing = "trailing";
  std::vector<int64_t> t61 = draft::inference_timesteps(c, 61);
  EXPECT_EQ(t61.size(), 61u);
  EXPECT_EQ(t61.front(), 999);
  EXPECT_EQ(t61.back(), 15);
  EXPECT_THROW(draft::inference_timesteps(c, 0), draft::Error);
  EXPECT_THROW(draft::inference_timesteps(c, 1001), draft::Error);
  c.timestep_spacing = "leading";  // steps_offset 1 pushes the first of 1000 steps to t = 1000
  EXPECT_NE(expect_error([&] { draft::inference_timesteps(c, 1000); }).find("steps_offset"), std::string::npos);
}

TEST(DDIM, StepsMatchFixture) {
  draft::DDIMScheduler s(sd_config());
  for (int i = 0; i < 6; ++i) {
    const std::string p = "step" + std::to_string(i) + ".";
    const int64_t n = fx_int(p + "num_inference_steps");
    const int64_t t = fx_int(p + "timestep");
    at::Tensor x = fx(p + "sample"), eps = fx(p + "model_output"), z = fx(p + "variance_noise");
    std::printf("  %s t=%lld N=%lld\n", p.c_str(), static_cast<long long>(t), static_cast<long long>(n));
    draft::DDIMStepOutput o0 = s.step(eps, t, n, x);
    at::Tensor ref = fx(p + "eta0.prev_sample");
    EXPECT_TRUE(tensors_close(o0.prev_sample, ref, tolerance(ref))) << p;
    ref = fx(p + "eta0.pred_original_sample");
    EXPECT_TRUE(tensors_close(o0.pred_original_sample, ref, tolerance(ref))) << p;
    EXPECT_FALSE(o0.log_prob.defined());
    draft::DDIMStepOutput o1 = s.step(eps, t, n, x, 1.0, z);
    ref = fx(p + "eta1.prev_sample");
    EXPECT_TRUE(tensors_close(o1.prev_sample, ref, tolerance(ref))) << p;
    ASSERT_TRUE(o1.log_prob.defined());
    EXPECT_EQ(o1.log_prob.sizes(), at::IntArrayRef({1}));
  }
}

TEST(DDIM, VPredictionMatchesFixture) {
  draft::DDIMScheduler s(draft::SchedulerConfig::load(kDir + "/scheduler_v_prediction"));
  for (int i = 0; i < 3; ++i) {
    const std::string p = "vpred" + std::to_string(i) + ".";
    const int64_t t = fx_int(p + "timestep");
    at::Tensor x = fx(p + "sample"), v = fx(p + "model_output"), z = fx(p + "variance_noise");
    std::printf("  %s t=%lld\n", p.c_str(), static_cast<long long>(t));
    draft::DDIMStepOutput o0 = s.step(v, t, 50, x);
    at::Tensor ref = fx(p + "eta0.prev_sample");
    EXPECT_TRUE(tensors_close(o0.prev_sample, ref, tolerance(ref))) << p;
    ref = fx(p + "eta0.pred_original_sample");
    EXPECT_TRUE(tensors_close(o0.pred_original_sample, ref, tolerance(ref))) << p;
    ref = fx(p + "eta1.prev_sample");
    EXPECT_TRUE(tensors_close(s.step(v, t, 50, x, 1.0, z).prev_sample, ref, tolerance(ref))) << p;
  }
}

TEST(DDIM, GeneratorNoiseAndClipping) {
  draft::DDIMScheduler s(sd_config());
  at::Tensor x = fx("step1.sample"), eps = fx("step1.model_output");
  const int64_t t = fx_int("step1.timestep");
  at::Generator g1 = at::detail::createCPUGenerator(7), g2 = at::detail::createCPUGenerator(7);
  at::Tensor a = s.step(eps, t, 50, x, 1.0, {}, g1).prev_sample;
  at::Tensor z = at::randn(x.sizes(), g2, x.options());
  EXPECT_TRUE(tensors_close(a, s.step(eps, t, 50, x, 1.0, z).prev_sample, 0.0));
  EXPECT_THROW(s.step(eps, t, 50, x, 1.0, z, at::detail::createCPUGenerator(1)), draft::Error);
  EXPECT_THROW(s.step(eps, t, 50, x, -0.5), draft::Error);
  EXPECT_THROW(s.step(eps, 1000, 50, x), draft::Error);
  EXPECT_THROW(s.step(eps.slice(1, 0, 2), t, 50, x), draft::Error);

  draft::SchedulerConfig c = sd_config();
  c.clip_sample = true;
  c.clip_sample_range = 0.5;
  draft::DDIMScheduler clipped(c);
  draft::DDIMStepOutput o = clipped.step(eps, t, 50, x);
  EXPECT_LE(o.pred_original_sample.abs().max().item<double>(), 0.5);
  // Without use_clipped_model_output the direction still uses the raw ε̂; with it, ε̂ is re-derived.
  EXPECT_TRUE(tensors_close(o.pred_epsilon, eps, 0.0));
  draft::DDIMStepOutput oc = clipped.step(eps, t, 50, x, 0.0, {}, c10::nullopt, true);
  const double a_t = s.alpha_cumprod_at(t);
  at::Tensor eps_c = (x - std::sqrt(a_t) * oc.pred_original_sample) / std::sqrt(1 - a_t);
  EXPECT_TRUE(tensors_close(oc.pred_epsilon, eps_c, 1e-5));
}

/// log N(prev; mean, σ²) computed directly in float64 from the DESIGN.md section 3 equations.
at::Tensor direct_log_prob(const draft::DDIMScheduler& s, const at::Tensor& eps, int64_t t, int64_t n,
                           const at::Tensor& x, const at::Tensor& prev, double eta) {
  const double a = s.alpha_cumprod_at(t), ap = s.alpha_cumprod_at(s.previous_timestep(t, n));
  const double sigma = eta * std::sqrt((1 - ap) / (1 - a) * (1 - a / ap));
  at::Tensor x0 = (x - std::sqrt(1 - a) * eps) / std::sqrt(a);
  at::Tensor mean = std::sqrt(ap) * x0 + std::sqrt(1 - ap - sigma * sigma) * eps;
  at::Tensor z = (prev - mean) / sigma;
  return (-0.5 * z.square() - std::log(sigma) - 0.5 * std::log(2 * M_PI)).flatten(1).sum(1);
}

TEST(DDIM, LogProbIsTheGaussianDensity) {
  draft::DDIMScheduler s(sd_config());
  for (int i : {0, 1, 2, 4, 5}) {
    const std::string p = "step" + std::to_string(i) + ".";
    const int64_t n = fx_int(p + "num_inference_steps"), t = fx_int(p + "timestep");
    at::Tensor x = fx(p + "sample").to(at::kDouble), eps = fx(p + "model_output").to(at::kDouble);
    at::Tensor z = fx(p + "variance_noise").to(at::kDouble);
    x = torch::cat({x, 0.5 * x});  // batch of 2: one log-probability per element
    eps = torch::cat({eps, -eps});
    z = torch::cat({z, 2.0 * z});
    for (double eta : {1.0, 0.3}) {
      draft::DDIMStepOutput o = s.step(eps, t, n, x, eta, z);
      at::Tensor ref = direct_log_prob(s, eps, t, n, x, o.prev_sample, eta);
      std::printf("  %s eta=%.1f log_prob %.3f, %.3f\n", p.c_str(), eta, ref[0].item<double>(), ref[1].item<double>());
      EXPECT_TRUE(tensors_close(o.log_prob, ref, tolerance(ref))) << p;
      at::Tensor other = o.prev_sample + 0.05;
      ref = direct_log_prob(s, eps, t, n, x, other, eta);
      EXPECT_TRUE(tensors_close(s.log_prob(eps, t, n, x, other, eta), ref, tolerance(ref))) << p;
    }
  }
  at::Tensor x = fx("step2.sample"), eps = fx("step2.model_output");
  EXPECT_THROW(s.log_prob(eps, 1, 50, x, x, 0.0), draft::Error);
  // set_alpha_to_one: the last step has σ = 0, no density.
  draft::SchedulerConfig one = sd_config();
  one.set_alpha_to_one = true;
  draft::DDIMScheduler s1(one);
  EXPECT_FALSE(s1.step(eps, 1, 50, x, 1.0, x).log_prob.defined());
  EXPECT_THROW(s1.log_prob(eps, 1, 50, x, x, 1.0), draft::Error);
}

/// Central finite differences of a scalar function of two tensors, element by element.
std::pair<at::Tensor, at::Tensor> numeric_grads(const std::function<at::Tensor(at::Tensor, at::Tensor)>& f,
                                                const at::Tensor& a, const at::Tensor& b) {
  const double h = 1e-6;
  auto grad_of = [&](bool first) {
    const at::Tensor& base = first ? a : b;
    at::Tensor g = torch::zeros_like(base);
    for (int64_t k = 0; k < base.numel(); ++k) {
      at::Tensor plus = base.clone(), minus = base.clone();
      plus.view(-1)[k] += h;
      minus.view(-1)[k] -= h;
      double fp = (first ? f(plus, b) : f(a, plus)).item<double>();
      double fm = (first ? f(minus, b) : f(a, minus)).item<double>();
      g.view(-1)[k] = (fp - fm) / (2 * h);
    }
    return g;
  };
  return {grad_of(true), grad_of(false)};
}

TEST(DDIM, GradientsMatchFiniteDifferences) {
  torch::manual_seed(3);
  at::Tensor x = torch::randn({2, 1, 2, 2}, torch::kDouble), mo = torch::randn({2, 1, 2, 2}, torch::kDouble);
  at::Tensor z = torch::randn({2, 1, 2, 2}, torch::kDouble), w1 = torch::randn({2, 1, 2, 2}, torch::kDouble);
  at::Tensor w2 = torch::randn({2, 1, 2, 2}, torch::kDouble);
  at::Tensor prev_data = torch::randn({2, 1, 2, 2}, torch::kDouble);
  for (const char* type : {"epsilon", "v_prediction", "sample"}) {
    draft::SchedulerConfig c = sd_config();
    c.prediction_type = type;
    draft::DDIMScheduler s(c);
    auto f = [&](at::Tensor xs, at::Tensor m) {
      draft::DDIMStepOutput o = s.step(m, 501, 50, xs, 1.0, z);
      at::Tensor lp = s.log_prob(m, 501, 50, xs, prev_data, 1.0);
      at::Tensor lp_weights = torch::tensor({1.0, -2.0}, torch::kDouble);
      return (w1 * o.prev_sample).sum() + (w2 * o.pred_original_sample).sum() + 0.1 * (lp * lp_weights).sum();
    };
    at::Tensor xg = x.clone().requires_grad_(true), mg = mo.clone().requires_grad_(true);
    at::Tensor loss = f(xg, mg);
    auto grads = torch::autograd::grad({loss}, {xg, mg});
    auto num = numeric_grads([&](at::Tensor a, at::Tensor b) { return f(a, b); }, x, mo);
    std::printf("  %s\n", type);
    auto rel = [](const at::Tensor& g) { return 1e-6 * std::max(1.0, g.abs().max().item<double>()); };
    EXPECT_TRUE(tensors_close(grads[0], num.first, rel(num.first))) << type;
    EXPECT_TRUE(tensors_close(grads[1], num.second, rel(num.second))) << type;
    EXPECT_GT(grads[0].abs().sum().item<double>(), 0.0);
  }
  // The step itself never touches its inputs in place.
  at::Tensor x2 = x.clone();
  draft::DDIMScheduler(sd_config()).step(mo, 501, 50, x2, 1.0, z);
  EXPECT_TRUE(tensors_close(x2, x, 0.0));
}

TEST(DDIM, FollowsTheInputsDtype) {
  draft::DDIMScheduler s(sd_config());
  at::Tensor x = fx("step1.sample"), eps = fx("step1.model_output"), z = fx("step1.variance_noise");
  draft::DDIMStepOutput ref = s.step(eps, 501, 50, x, 1.0, z);
  draft::DDIMStepOutput d = s.step(eps.to(at::kDouble), 501, 50, x.to(at::kDouble), 1.0, z.to(at::kDouble));
  EXPECT_EQ(d.prev_sample.scalar_type(), at::kDouble);
  EXPECT_EQ(d.log_prob.scalar_type(), at::kDouble);
  EXPECT_TRUE(tensors_close(d.prev_sample, ref.prev_sample, 1e-5));  // float64 vs the float32 step
}

// Label `gpu` (name ends in Cuda): skipped, not passed, where there is no CUDA device.
TEST(DDIM, FollowsTheInputsDeviceOnCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "CUDA is not available";
  draft::DDIMScheduler s(sd_config());
  at::Tensor x = fx("step1.sample"), eps = fx("step1.model_output"), z = fx("step1.variance_noise");
  draft::DDIMStepOutput ref = s.step(eps, 501, 50, x, 1.0, z);
  for (at::ScalarType type : {at::kFloat, at::kHalf}) {
    auto on = [&](const at::Tensor& t) { return t.to(at::kCUDA, type); };
    draft::DDIMStepOutput g = s.step(on(eps), 501, 50, on(x), 1.0, on(z));
    EXPECT_TRUE(g.prev_sample.is_cuda());
    EXPECT_EQ(g.prev_sample.scalar_type(), type);
    const double atol = type == at::kHalf ? 1e-2 : 1e-5;
    EXPECT_TRUE(tensors_close(g.prev_sample.cpu(), ref.prev_sample, atol));
    EXPECT_TRUE(tensors_close(g.log_prob.cpu(), ref.log_prob, type == at::kHalf ? 5.0 : 1e-2));
    draft::DDPMScheduler ddpm(sd_config());
    at::Tensor ts = torch::tensor({500});
    EXPECT_TRUE(tensors_close(ddpm.add_noise(on(x), on(eps), ts.cuda()).cpu(), ddpm.add_noise(x, eps, ts), atol));
  }
}

TEST(DDPM, AddNoiseMatchesFixture) {
  draft::DDPMScheduler s(draft::SchedulerConfig::load(kDir + "/ddpm_scheduler"));
  at::Tensor x0 = fx("add_noise.original_samples"), eps = fx("add_noise.noise"), ts = fx("add_noise.timesteps");
  at::Tensor ref = fx("add_noise.noisy_samples");
  EXPECT_TRUE(tensors_close(s.add_noise(x0, eps, ts), ref, tolerance(ref)));
  // One timestep broadcasts over the batch; out-of-range and float timesteps are refused.
  at::Tensor one = s.add_noise(x0, eps, ts.slice(0, 1, 2));
  EXPECT_TRUE(tensors_close(one[1], ref[1], tolerance(ref)));
  EXPECT_THROW(s.add_noise(x0, eps, torch::tensor({0, 1, 2, 1000})), draft::Error);
  EXPECT_THROW(s.add_noise(x0, eps, ts.to(at::kFloat)), draft::Error);
  EXPECT_THROW(s.add_noise(x0, eps, ts.slice(0, 0, 2)), draft::Error);
  // float64 inputs compute in float64.
  EXPECT_EQ(s.add_noise(x0.to(at::kDouble), eps.to(at::kDouble), ts).scalar_type(), at::kDouble);
}

TEST(DDPM, VelocityAndTrainingTargets) {
  draft::SchedulerConfig c = draft::SchedulerConfig::load(kDir + "/ddpm_scheduler");
  at::Tensor x0 = fx("add_noise.original_samples").to(at::kDouble), eps = fx("add_noise.noise").to(at::kDouble);
  at::Tensor ts = fx("add_noise.timesteps");
  draft::DDPMScheduler s(c);
  at::Tensor a = fx("alphas_cumprod").to(at::kDouble).index_select(0, ts).view({-1, 1, 1, 1});
  at::Tensor v_ref = a.sqrt() * eps - (1 - a).sqrt() * x0;
  // All float64 from the same float32 ᾱ: observed 0 and 8.9e-16.
  EXPECT_TRUE(tensors_close(s.get_velocity(x0, eps, ts), v_ref, 1e-13));
  // v-prediction identity: x0 = √ᾱ x_t − √(1−ᾱ) v.
  at::Tensor xt = s.add_noise(x0, eps, ts);
  EXPECT_TRUE(tensors_close(a.sqrt() * xt - (1 - a).sqrt() * s.get_velocity(x0, eps, ts), x0, 1e-13));
  EXPECT_TRUE(tensors_close(s.training_target(x0, eps, ts), eps, 0.0));
  c.prediction_type = "v_prediction";
  EXPECT_TRUE(tensors_close(draft::DDPMScheduler(c).training_target(x0, eps, ts), v_ref, 1e-13));
  c.prediction_type = "sample";
  EXPECT_TRUE(tensors_close(draft::DDPMScheduler(c).training_target(x0, eps, ts), x0, 0.0));
}

TEST(DDPM, AncestralStepIsThePosterior) {
  draft::SchedulerConfig c = draft::SchedulerConfig::load(kDir + "/ddpm_scheduler");
  draft::DDPMScheduler s(c);
  at::Tensor x = fx("step1.sample").to(at::kDouble), eps = fx("step1.model_output").to(at::kDouble);
  at::Tensor z = fx("step1.variance_noise").to(at::kDouble);
  const int64_t t = 501;
  for (int64_t n : {1000, 50}) {
    const double a = fx("alphas_cumprod")[t].item<double>();
    const double ap = fx("alphas_cumprod")[t - 1000 / n].item<double>();
    const double alpha = a / ap, beta = 1 - alpha;
    at::Tensor x0 = (x - std::sqrt(1 - a) * eps) / std::sqrt(a);
    at::Tensor mu = std::sqrt(ap) * beta / (1 - a) * x0 + std::sqrt(alpha) * (1 - ap) / (1 - a) * x;
    at::Tensor ref = mu + std::sqrt((1 - ap) / (1 - a) * beta) * z;
    draft::DDPMStepOutput o = s.step(eps, t, n, x, z);
    EXPECT_TRUE(tensors_close(o.prev_sample, ref, tolerance(ref))) << n;
    EXPECT_TRUE(tensors_close(o.pred_original_sample, x0, tolerance(x0))) << n;
    // DDIM with eta = 1 is the DDPM step (DDIM paper, section 4.1).
    draft::SchedulerConfig dc = c;
    dc.set_alpha_to_one = false;
    at::Tensor ddim = draft::DDIMScheduler(dc).step(eps, t, n, x, 1.0, z).prev_sample;
    EXPECT_TRUE(tensors_close(ddim, o.prev_sample, 1e-5)) << n;
  }
  // t = 0 adds no noise; fixed_large uses β_t.
  at::Tensor a0 = fx("alphas_cumprod")[0].to(at::kDouble);
  EXPECT_TRUE(tensors_close(s.step(eps, 0, 1000, x, z).prev_sample, (x - (1 - a0).sqrt() * eps) / a0.sqrt(), 1e-5));
  c.variance_type = "fixed_large";
  const double a = fx("alphas_cumprod")[t].item<double>(), ap = fx("alphas_cumprod")[t - 1].item<double>();
  at::Tensor large = draft::DDPMScheduler(c).step(eps, t, 1000, x, z).prev_sample;
  at::Tensor small = s.step(eps, t, 1000, x, z).prev_sample;
  const double beta = 1 - a / ap;
  EXPECT_TRUE(tensors_close(large - small, (std::sqrt(beta) - std::sqrt((1 - ap) / (1 - a) * beta)) * z, 1e-6));
}

}  // namespace
