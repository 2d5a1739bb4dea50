// DDPM forward noising, velocity targets and the ancestral step (diffusers v0.25 scheduling_ddpm.py).
#include "diffusion/ddpm_scheduler.h"

#include <utility>

#include <torch/torch.h>

#include "diffusion/noise_schedule.h"
#include "util/error.h"

namespace draft {

DDPMScheduler::DDPMScheduler(SchedulerConfig config) : config_(std::move(config)) {
  config_.validate();
  betas_ = make_betas(config_);
  alphas_cumprod_ = make_alphas_cumprod(betas_);
}

std::vector<int64_t> DDPMScheduler::timesteps(int64_t num_inference_steps) const {
  return inference_timesteps(config_, num_inference_steps);
}

int64_t DDPMScheduler::previous_timestep(int64_t t, int64_t num_inference_steps) const {
  return draft::previous_timestep(config_, t, num_inference_steps);
}

at::Tensor DDPMScheduler::batch_alphas(const at::Tensor& x0, const at::Tensor& noise, const at::Tensor& timesteps,
                                       const char* what) const {
  DRAFT_CHECK(x0.defined() && noise.defined(), what, ": the sample and noise must be defined");
  DRAFT_CHECK(x0.sizes() == noise.sizes(), what, ": noise shape ", noise.sizes(), " differs from sample shape ",
              x0.sizes());
  return gather_alphas_cumprod(alphas_cumprod_, timesteps, x0);
}

at::Tensor DDPMScheduler::add_noise(const at::Tensor& x0, const at::Tensor& noise, const at::Tensor& timesteps) const {
  // x_t = √ᾱ_t x0 + √(1−ᾱ_t) ε   (DDPM eq. 4), ᾱ cast to x0's dtype before the square roots as diffusers does.
  const at::Tensor a = batch_alphas(x0, noise, timesteps, "add_noise");
  return a.sqrt() * x0 + (1.0 - a).sqrt() * noise;
}

at::Tensor DDPMScheduler::get_velocity(const at::Tensor& x0, const at::Tensor& noise,
                                       const at::Tensor& timesteps) const {
  // v = √ᾱ_t ε − √(1−ᾱ_t) x0
  const at::Tensor a = batch_alphas(x0, noise, timesteps, "get_velocity");
  return a.sqrt() * noise - (1.0 - a).sqrt() * x0;
}

at::Tensor DDPMScheduler::training_target(const at::Tensor& x0, const at::Tensor& noise,
                                          const at::Tensor& timesteps) const {
  const std::string& type = config_.prediction_type;
  if (type == "v_prediction") return get_velocity(x0, noise, timesteps);
  DRAFT_CHECK(x0.defined() && noise.defined() && x0.sizes() == noise.sizes(),
              "training_target: x0 and noise must be defined and of the same shape");
  return type == "epsilon" ? noise : x0;  // "sample" (validate() admits nothing else)
}

DDPMStepOutput DDPMScheduler::step(const at::Tensor& model_output, int64_t t, int64_t num_inference_steps,
                                   const at::Tensor& sample, const at::Tensor& variance_noise,
                                   c10::optional<at::Generator> generator) const {
  DRAFT_CHECK(sample.defined() && model_output.defined(), "DDPM step: sample and model_output must be defined");
  DRAFT_CHECK(model_output.sizes() == sample.sizes(), "DDPM step: model_output shape ", model_output.sizes(),
              " differs from sample shape ", sample.sizes());
  DRAFT_CHECK(t >= 0 && t < config_.num_train_timesteps, "DDPM step: timestep ", t, " is outside [0, ",
              config_.num_train_timesteps, ")");
  DRAFT_CHECK(!(variance_noise.defined() && generator.has_value()),
              "DDPM step: pass either variance_noise or a generator, not both");

  // 1. ᾱ_t, ᾱ_prev (1 below t = 0) and the per-step α_t, β_t, as float32 0-d tensors like diffusers.
  const int64_t prev_t = previous_timestep(t, num_inference_steps);
  const at::Tensor a_t = alphas_cumprod_[t];
  const at::Tensor a_prev = prev_t >= 0 ? alphas_cumprod_[prev_t] : torch::scalar_tensor(1.0, torch::kFloat);
  const at::Tensor b_t = 1.0 - a_t;
  const at::Tensor b_prev = 1.0 - a_prev;
  const at::Tensor alpha_t = a_t / a_prev;
  const at::Tensor beta_t = 1.0 - alpha_t;

  // 2. x̂0 from the model output (DDPM eq. 15 for epsilon).
  DDPMStepOutput out;
  const std::string& type = config_.prediction_type;
  if (type == "epsilon") {
    out.pred_original_sample = (sample - b_t.sqrt() * model_output) / a_t.sqrt();
  } else if (type == "sample") {
    out.pred_original_sample = model_output;
  } else {  // v_prediction
    out.pred_original_sample = a_t.sqrt() * sample - b_t.sqrt() * model_output;
  }

  // 3. clip x̂0.
  if (config_.clip_sample) {
    out.pred_original_sample =
        out.pred_original_sample.clamp(-config_.clip_sample_range, config_.clip_sample_range);
  }

  // 4.-5. posterior mean μ̃_t(x_t, x̂0)   (DDPM eq. 7)
  const at::Tensor x0_coeff = (a_prev.sqrt() * beta_t) / b_t;
  const at::Tensor xt_coeff = alpha_t.sqrt() * b_prev / b_t;
  out.prev_sample = x0_coeff * out.pred_original_sample + xt_coeff * sample;

  // 6. noise for t > 0: σ² = β̃_t (fixed_small) or β_t (fixed_large).
  if (t > 0) {
    at::Tensor variance = (b_prev / b_t * beta_t).clamp_min(1e-20);
    if (config_.variance_type == "fixed_large") variance = beta_t;
    at::Tensor z = variance_noise;
    if (z.defined()) {
      DRAFT_CHECK(z.sizes() == sample.sizes(), "DDPM step: variance_noise shape ", z.sizes(),
                  " differs from sample shape ", sample.sizes());
    } else {
      z = at::randn(model_output.sizes(), generator,
                    at::TensorOptions().dtype(model_output.scalar_type()).device(model_output.device()));
    }
    out.prev_sample = out.prev_sample + variance.sqrt() * z;
  }
  return out;
}

}  // namespace draft
