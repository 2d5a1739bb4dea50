// Beta schedules, alphas_cumprod and inference timestep grids (diffusers v0.25 scheduling_ddim.py /
// scheduling_ddpm.py __init__ and set_timesteps).
#include "diffusion/noise_schedule.h"

#include <algorithm>
#include <cmath>

#include <torch/torch.h>

#include "util/error.h"

namespace draft {

namespace {

/// diffusers betas_for_alpha_bar (cosine, Nichol & Dhariwal 2021 eq. 17): computed in double, each beta
/// capped at max_beta = 0.999, then stored as float32.
at::Tensor cosine_betas(int64_t num_timesteps) {
  constexpr double kPi = 3.141592653589793;  // Python's math.pi
  auto alpha_bar = [](double t) {
    double c = std::cos((t + 0.008) / 1.008 * kPi / 2.0);
    return c * c;
  };
  std::vector<double> betas(static_cast<size_t>(num_timesteps));
  for (int64_t i = 0; i < num_timesteps; ++i) {
    double t1 = static_cast<double>(i) / static_cast<double>(num_timesteps);
    double t2 = static_cast<double>(i + 1) / static_cast<double>(num_timesteps);
    betas[static_cast<size_t>(i)] = std::min(1.0 - alpha_bar(t2) / alpha_bar(t1), 0.999);
  }
  return torch::tensor(betas, torch::kDouble).to(torch::kFloat);
}

/// diffusers rescale_zero_terminal_snr (Lin et al. 2023, "Common Diffusion Noise Schedules and Sample
/// Steps are Flawed", Algorithm 1), in float32 like the reference: shift sqrt(alpha-bar) so its last value
/// is 0, scale so its first value is unchanged, convert back to betas.
at::Tensor rescale_zero_terminal_snr(const at::Tensor& betas) {
  at::Tensor sqrt_ab = torch::cumprod(1.0 - betas, 0).sqrt();
  at::Tensor first = sqrt_ab[0].clone();
  at::Tensor last = sqrt_ab[-1].clone();
  sqrt_ab = (sqrt_ab - last) * (first / (first - last));
  at::Tensor ab = sqrt_ab.pow(2);
  at::Tensor alphas = torch::cat({ab.slice(0, 0, 1), ab.slice(0, 1) / ab.slice(0, 0, -1)});
  return 1.0 - alphas;
}

/// numpy's np.round: half to even (std::nearbyint under the default rounding mode).
int64_t round_half_even(double v) { return static_cast<int64_t>(std::nearbyint(v)); }

}  // namespace

at::Tensor make_betas(const SchedulerConfig& config) {
  config.validate();
  const int64_t T = config.num_train_timesteps;
  at::Tensor betas;
  if (!config.trained_betas.empty()) {
    betas = torch::tensor(config.trained_betas, torch::kDouble).to(torch::kFloat);
  } else if (config.beta_schedule == "linear") {
    betas = torch::linspace(config.beta_start, config.beta_end, T, torch::kFloat);
  } else if (config.beta_schedule == "scaled_linear") {
    // Latent diffusion's schedule. Python's beta**0.5 is C pow(), kept here for bit-exact endpoints.
    betas = torch::linspace(std::pow(config.beta_start, 0.5), std::pow(config.beta_end, 0.5), T, torch::kFloat)
                .pow(2);
  } else {  // squaredcos_cap_v2 (validate() admits nothing else)
    betas = cosine_betas(T);
  }
  if (config.rescale_betas_zero_snr) betas = rescale_zero_terminal_snr(betas);
  return betas;
}

at::Tensor make_alphas_cumprod(const at::Tensor& betas) { return torch::cumprod(1.0 - betas, 0); }

std::vector<int64_t> inference_timesteps(const SchedulerConfig& config, int64_t num_inference_steps) {
  const int64_t T = config.num_train_timesteps;
  const int64_t N = num_inference_steps;
  DRAFT_CHECK(N >= 1 && N <= T, "the number of sampling steps (--steps, sampler.steps) must be in [1, ", T,
              "] (num_train_timesteps of ", config.source, "), got ", N);
  std::vector<int64_t> ts(static_cast<size_t>(N));
  if (config.timestep_spacing == "leading") {
    const int64_t ratio = T / N;
    for (int64_t i = 0; i < N; ++i) ts[static_cast<size_t>(N - 1 - i)] = i * ratio + config.steps_offset;
  } else if (config.timestep_spacing == "linspace") {
    // np.linspace(0, T - 1, N): i * step, the last value set to the endpoint exactly.
    const double step = N > 1 ? static_cast<double>(T - 1) / static_cast<double>(N - 1) : 0.0;
    for (int64_t i = 0; i < N; ++i) {
      double v = (i == N - 1 && N > 1) ? static_cast<double>(T - 1) : static_cast<double>(i) * step;
      ts[static_cast<size_t>(N - 1 - i)] = round_half_even(v);
    }
  } else {  // trailing
    // np.arange(T, 0, -T/N) fills start + i * delta with delta = (start - T/N) - start (numpy's fill), so
    // the same float values are reproduced here. numpy's length ceil(T / (T/N)) is N + 1 for some N (61,
    // 103, ... with T = 1000), which makes diffusers emit a spurious trailing timestep -1; only the first
    // N values are kept.
    const double start = static_cast<double>(T);
    const double next = start + -(static_cast<double>(T) / static_cast<double>(N));
    const double delta = next - start;
    for (int64_t i = 0; i < N; ++i) {
      double v = i == 0 ? start : (i == 1 ? next : start + static_cast<double>(i) * delta);
      ts[static_cast<size_t>(i)] = round_half_even(v) - 1;
    }
  }
  for (int64_t t : ts) {
    DRAFT_CHECK(t >= 0 && t < T, config.source, ": num_inference_steps ", N, " with timestep_spacing '",
                config.timestep_spacing, "' and steps_offset ", config.steps_offset, " gives timestep ", t,
                " outside [0, ", T, ")");
  }
  return ts;
}

int64_t previous_timestep(const SchedulerConfig& config, int64_t t, int64_t num_inference_steps) {
  DRAFT_CHECK(num_inference_steps >= 1 && num_inference_steps <= config.num_train_timesteps,
              "num_inference_steps must be in [1, ", config.num_train_timesteps, "], got ", num_inference_steps);
  return t - config.num_train_timesteps / num_inference_steps;
}

at::Tensor gather_alphas_cumprod(const at::Tensor& alphas_cumprod, const at::Tensor& timesteps,
                                 const at::Tensor& like) {
  DRAFT_CHECK(timesteps.defined() && c10::isIntegralType(timesteps.scalar_type(), /*includeBool=*/false),
              "timesteps must be an integer tensor, got ",
              timesteps.defined() ? c10::toString(timesteps.scalar_type()) : "an undefined tensor");
  DRAFT_CHECK(like.dim() >= 1, "expected a batched sample tensor, got shape ", like.sizes());
  DRAFT_CHECK(timesteps.dim() <= 1 && (timesteps.numel() == 1 || timesteps.numel() == like.size(0)),
              "timesteps must hold one value or one per batch element (", like.size(0), "), got shape ",
              timesteps.sizes());
  if (timesteps.device().is_cpu()) {
    // Only checked on the CPU: on an accelerator the check would force a device synchronisation.
    const int64_t lo = timesteps.min().item<int64_t>();
    const int64_t hi = timesteps.max().item<int64_t>();
    DRAFT_CHECK(lo >= 0 && hi < alphas_cumprod.size(0), "timesteps must be in [0, ", alphas_cumprod.size(0),
                "), got values in [", lo, ", ", hi, "]");
  }
  at::Tensor idx = timesteps.to(like.device(), at::kLong).flatten();
  at::Tensor a = alphas_cumprod.to(like.device(), like.scalar_type()).index_select(0, idx);
  std::vector<int64_t> shape(static_cast<size_t>(like.dim()), 1);
  shape[0] = a.size(0);
  return a.view(shape);
}

}  // namespace draft
