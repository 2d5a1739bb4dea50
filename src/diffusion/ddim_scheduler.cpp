// DDIM step (diffusers v0.25 DDIMScheduler.step) and its Gaussian log-probability (ddpo-pytorch's
// ddim_step_with_logprob).
#include "diffusion/ddim_scheduler.h"

#include <cmath>
#include <utility>

#include <torch/torch.h>

#include "diffusion/noise_schedule.h"
#include "util/error.h"

namespace draft {

namespace {

/// log N(x; mean, std²) per element, summed over all dims but the batch. x is data (detached), so the
/// gradient flows to the mean only, as in ddpo-pytorch.
at::Tensor gaussian_log_prob(const at::Tensor& x, const at::Tensor& mean, const at::Tensor& std) {
  const double half_log_two_pi = 0.5 * std::log(2.0 * 3.141592653589793);
  at::Tensor lp = -(x.detach() - mean).square() / (2.0 * std.square()) - std.log() - half_log_two_pi;
  if (lp.dim() <= 1) return lp;  // nothing but the batch dim (and sum({}) would reduce everything)
  std::vector<int64_t> dims;
  for (int64_t d = 1; d < lp.dim(); ++d) dims.push_back(d);
  return lp.sum(dims);
}

}  // namespace

DDIMScheduler::DDIMScheduler(SchedulerConfig config) : config_(std::move(config)) {
  config_.validate();
  betas_ = make_betas(config_);
  alphas_cumprod_ = make_alphas_cumprod(betas_);
  // There is no ᾱ before t = 0: diffusers uses 1 (set_alpha_to_one) or ᾱ_0 (SD: set_alpha_to_one=false).
  final_alpha_cumprod_ = config_.set_alpha_to_one ? torch::scalar_tensor(1.0, torch::kFloat)
                                                  : alphas_cumprod_[0].clone();
}

std::vector<int64_t> DDIMScheduler::timesteps(int64_t num_inference_steps) const {
  return inference_timesteps(config_, num_inference_steps);
}

int64_t DDIMScheduler::previous_timestep(int64_t t, int64_t num_inference_steps) const {
  return draft::previous_timestep(config_, t, num_inference_steps);
}

at::Tensor DDIMScheduler::alpha_tensor(int64_t t) const {
  DRAFT_CHECK(t < config_.num_train_timesteps, "timestep ", t, " is outside [0, ", config_.num_train_timesteps,
              ") (num_train_timesteps of ", config_.source, ")");
  return t < 0 ? final_alpha_cumprod_ : alphas_cumprod_[t];
}

double DDIMScheduler::alpha_cumprod_at(int64_t t) const { return alpha_tensor(t).item<double>(); }

DDIMScheduler::Moments DDIMScheduler::moments(const at::Tensor& model_output, int64_t t, int64_t num_inference_steps,
                                              const at::Tensor& sample, double eta,
                                              bool use_clipped_model_output) const {
  DRAFT_CHECK(sample.defined() && model_output.defined(), "DDIM step: sample and model_output must be defined");
  DRAFT_CHECK(model_output.sizes() == sample.sizes(), "DDIM step: model_output shape ", model_output.sizes(),
              " differs from sample shape ", sample.sizes());
  DRAFT_CHECK(t >= 0 && t < config_.num_train_timesteps, "DDIM step: timestep ", t, " is outside [0, ",
              config_.num_train_timesteps, ")");
  DRAFT_CHECK(std::isfinite(eta) && eta >= 0.0, "DDIM step: eta must be >= 0, got ", eta);

  // 1. previous timestep: t - T // N, for every spacing (as diffusers).
  const int64_t prev_t = previous_timestep(t, num_inference_steps);

  // 2. ᾱ_t, ᾱ_prev and derived coefficients as float32 0-d tensors, like diffusers' alphas_cumprod[t]**0.5
  //    (bit-exact with the reference; the sample's dtype decides the precision of the tensor math below).
  const at::Tensor a_t = alpha_tensor(t);
  const at::Tensor a_prev = alpha_tensor(prev_t);
  const at::Tensor b_t = 1.0 - a_t;
  const at::Tensor sqrt_a_t = a_t.sqrt();
  const at::Tensor sqrt_b_t = b_t.sqrt();

  // 3. x̂0 and ε̂ from the model output (DDIM eq. 12; v-prediction: Salimans & Ho 2022, x̂0 = √ᾱ x − √(1−ᾱ) v,
  //    ε̂ = √ᾱ v + √(1−ᾱ) x).
  Moments m;
  const std::string& type = config_.prediction_type;
  if (type == "epsilon") {
    m.pred_original_sample = (sample - sqrt_b_t * model_output) / sqrt_a_t;
    m.pred_epsilon = model_output;
  } else if (type == "sample") {
    m.pred_original_sample = model_output;
    m.pred_epsilon = (sample - sqrt_a_t * model_output) / sqrt_b_t;
  } else {  // v_prediction (validate() admits nothing else)
    m.pred_original_sample = sqrt_a_t * sample - sqrt_b_t * model_output;
    m.pred_epsilon = sqrt_a_t * model_output + sqrt_b_t * sample;
  }

  // 4. clip x̂0 (thresholding is rejected by validate()).
  if (config_.clip_sample) {
    m.pred_original_sample = m.pred_original_sample.clamp(-config_.clip_sample_range, config_.clip_sample_range);
  }

  // 5. σ_t(η) = η √((1−ᾱ_prev)/(1−ᾱ_t)) √(1−ᾱ_t/ᾱ_prev)   (DDIM eq. 16)
  const at::Tensor variance = ((1.0 - a_prev) / b_t) * (1.0 - a_t / a_prev);
  m.std = variance.sqrt() * eta;

  // Glide re-derives ε̂ from the clipped x̂0.
  if (use_clipped_model_output) m.pred_epsilon = (sample - sqrt_a_t * m.pred_original_sample) / sqrt_b_t;

  // 6.-7. x_prev mean = √ᾱ_prev x̂0 + √(1−ᾱ_prev−σ²) ε̂   (DDIM eq. 12 without the noise term)
  const at::Tensor direction = (1.0 - a_prev - m.std.square()).sqrt() * m.pred_epsilon;
  m.mean = a_prev.sqrt() * m.pred_original_sample + direction;
  return m;
}

DDIMStepOutput DDIMScheduler::step(const at::Tensor& model_output, int64_t t, int64_t num_inference_steps,
                                   const at::Tensor& sample, double eta, const at::Tensor& variance_noise,
                                   c10::optional<at::Generator> generator, bool use_clipped_model_output) const {
  Moments m = moments(model_output, t, num_inference_steps, sample, eta, use_clipped_model_output);
  DDIMStepOutput out;
  out.pred_original_sample = m.pred_original_sample;
  out.pred_epsilon = m.pred_epsilon;
  if (eta > 0.0) {
    DRAFT_CHECK(!(variance_noise.defined() && generator.has_value()),
                "DDIM step: pass either variance_noise or a generator, not both");
    at::Tensor z = variance_noise;
    if (z.defined()) {
      DRAFT_CHECK(z.sizes() == sample.sizes(), "DDIM step: variance_noise shape ", z.sizes(),
                  " differs from sample shape ", sample.sizes());
    } else {
      // diffusers' randn_tensor: z has the model output's shape and dtype; a CPU generator draws on the CPU
      // and the noise is moved to the model's device (so a seed gives the same noise on CPU and GPU).
      const bool cpu_draw = generator.has_value() && generator->device().is_cpu();
      z = at::randn(model_output.sizes(), generator,
                    at::TensorOptions().dtype(model_output.scalar_type())
                        .device(cpu_draw ? c10::Device(c10::kCPU) : model_output.device()))
              .to(model_output.device());
    }
    // x_prev = mean + σ z   (DDIM eq. 12)
    out.prev_sample = m.mean + m.std * z;
    // σ = 0 (last step with set_alpha_to_one): the step is deterministic and has no density.
    if (m.std.item<float>() > 0.0f) out.log_prob = gaussian_log_prob(out.prev_sample, m.mean, m.std);
  } else {
    out.prev_sample = m.mean;
  }
  return out;
}

at::Tensor DDIMScheduler::log_prob(const at::Tensor& model_output, int64_t t, int64_t num_inference_steps,
                                   const at::Tensor& sample, const at::Tensor& prev_sample, double eta,
                                   bool use_clipped_model_output) const {
  DRAFT_CHECK(eta > 0.0, "DDIM log_prob: eta must be > 0 (eta = 0 is deterministic), got ", eta);
  DRAFT_CHECK(prev_sample.defined() && prev_sample.sizes() == sample.sizes(), "DDIM log_prob: prev_sample shape ",
              prev_sample.defined() ? prev_sample.sizes() : at::IntArrayRef{}, " differs from sample shape ",
              sample.sizes());
  Moments m = moments(model_output, t, num_inference_steps, sample, eta, use_clipped_model_output);
  DRAFT_CHECK(m.std.item<float>() > 0.0f, "DDIM log_prob: the step from t=", t,
              " has zero variance (set_alpha_to_one=true makes the last step deterministic)");
  return gaussian_log_prob(prev_sample, m.mean, m.std);
}

}  // namespace draft
