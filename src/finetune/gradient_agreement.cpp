// Gradient agreement: DRaFT-K's LoRA gradient for several K on the same batches, compared with K = N.
#include "finetune/gradient_agreement.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include <torch/torch.h>

#include "diffusion/text_to_image.h"
#include "finetune/decision_time.h"
#include "util/error.h"
#include "util/log.h"

namespace draft {
namespace {

// The context of one training micro-batch (FinetuneRun::micro_batch_context), for probe batch g.
MethodContext batch_context(const StableDiffusion& sd, Reward& reward, const std::vector<at::Tensor>& params,
                            const GradientAgreementOptions& o, int64_t g) {
  MethodContext c;
  c.sd = &sd;
  c.reward = &reward;
  std::vector<at::Tensor> x_T;
  for (int64_t j = 0; j < o.batch_size; ++j) {
    const int64_t i = g * o.batch_size + j;
    c.prompts.push_back(o.prompts[static_cast<std::size_t>(i) % o.prompts.size()]);
    x_T.push_back(probe_initial_latents(sd, o.seed, i));
  }
  {
    torch::NoGradGuard no_grad;
    c.conditioning = encode_prompts(sd, c.prompts, {}, 1, 0, o.guidance_scale > 1.0);
  }
  c.x_T = torch::cat(x_T);
  seed_method_draws(c, o.seed, g, g * o.batch_size);
  c.params = params;
  c.sampler.steps = o.steps;
  c.sampler.guidance_scale = o.guidance_scale;
  c.sampler.eta = 0.0;  // DRaFT's deterministic sampler: the gradient is that of a fixed function of x_T
  c.sampler.checkpoint = o.checkpoint;
  return c;
}

AgreementRange range_of(const std::vector<double>& values) {
  AgreementRange r;
  if (values.empty()) return r;
  double sum = 0;
  r.min = r.max = values.front();
  for (double v : values) {
    sum += v;
    r.min = std::min(r.min, v);
    r.max = std::max(r.max, v);
  }
  r.mean = sum / static_cast<double>(values.size());
  return r;
}

double squared_norm(const at::Tensor& a) { return a.dot(a).item<double>(); }

}  // namespace

void GradientAgreementOptions::validate() const {
  DRAFT_CHECK(!prompts.empty(), "no prompt given: pass --prompt TEXT or --prompts FILE");
  DRAFT_CHECK(steps >= 1, "--steps must be at least 1, got ", steps);
  DRAFT_CHECK(batches >= 1, "--grad-batches must be at least 1, got ", batches);
  DRAFT_CHECK(batch_size >= 1, "--grad-batch-size must be at least 1, got ", batch_size);
  for (int64_t k : ks) {
    DRAFT_CHECK(k >= 1 && k <= steps, "--k ", k, " is outside [1, --steps ", steps,
                "]: K counts the last sampling steps that keep gradients");
  }
}

std::vector<int64_t> agreement_ks(const std::vector<int64_t>& ks, int64_t steps) {
  std::vector<int64_t> out = ks;
  out.push_back(steps);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

double vector_cosine(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor x = a.to(torch::kDouble).flatten(), y = b.to(torch::kDouble).flatten();
  DRAFT_CHECK(x.numel() == y.numel(), "cosine_similarity: vectors of ", x.numel(), " and ", y.numel(), " entries");
  const double xx = squared_norm(x), yy = squared_norm(y);
  if (!(xx > 0) || !(yy > 0)) return std::numeric_limits<double>::quiet_NaN();
  // √(xx · yy) rather than √xx · √yy: for x = y it is exactly xx (IEEE square root of a rounded square).
  double denominator = std::sqrt(xx * yy);
  if (!std::isfinite(denominator)) denominator = std::sqrt(xx) * std::sqrt(yy);
  return std::clamp(x.dot(y).item<double>() / denominator, -1.0, 1.0);
}

std::vector<at::Tensor> draft_k_gradients(MethodContext& context, const std::vector<int64_t>& ks) {
  for (auto& p : context.params) p.mutable_grad() = at::Tensor();
  std::vector<at::Tensor> gradients;
  for (int64_t k : ks) {
    MethodConfig config;
    config.name = "draft-k";
    config.k = k;
    // 1. The method's own forward pass (DESIGN.md section 3: the last K steps keep gradients), loss −mean r.
    MethodStep step = make_method(config)->run(context);
    step.loss.backward();
    // 2. ∂loss/∂θ flattened in parameter order (a parameter the loss does not reach contributes zeros), then
    //    the .grad emptied so the next K starts from nothing.
    std::vector<at::Tensor> flat;
    for (auto& p : context.params) {
      flat.push_back(p.grad().defined() ? p.grad().detach().reshape(-1).to(torch::kCPU, torch::kDouble).clone()
                                        : torch::zeros({p.numel()}, torch::kDouble));
      p.mutable_grad() = at::Tensor();
    }
    gradients.push_back(torch::cat(flat));
  }
  return gradients;
}

GradientAgreementResult measure_gradient_agreement(const StableDiffusion& sd, Reward& reward,
                                                   const std::vector<at::Tensor>& params,
                                                   const GradientAgreementOptions& o) {
  o.validate();
  DRAFT_CHECK(reward.differentiable(), "gradient agreement: reward '", reward.name(), "' is not differentiable, so "
              "DRaFT has no gradient to measure (use a differentiable reward, e.g. jpeg-proxy, or --no-gradients)");
  DRAFT_CHECK(!params.empty(), "gradient agreement: no parameters to differentiate (inject a LoRA first)");
  const auto start = std::chrono::steady_clock::now();
  GradientAgreementResult result;
  result.reward = reward.name();
  result.steps = o.steps;
  result.ks = agreement_ks(o.ks, o.steps);
  for (const auto& p : params) result.parameters += p.numel();
  const std::size_t k_count = result.ks.size();
  std::vector<std::vector<double>> cosines(k_count), ratios(k_count), to_previous(k_count);
  for (int64_t g = 0; g < o.batches; ++g) {
    MethodContext context = batch_context(sd, reward, params, o, g);
    const std::vector<at::Tensor> gradients = draft_k_gradients(context, result.ks);
    // Per batch: cos(g_K, g_N), ‖g_K‖ / ‖g_N‖ and cos(g_K, g_K') against the previous K.
    const at::Tensor& full = gradients.back();
    const double full_norm = std::sqrt(squared_norm(full));
    result.full_norms.push_back(full_norm);
    for (std::size_t i = 0; i < k_count; ++i) {
      cosines[i].push_back(vector_cosine(gradients[i], full));
      ratios[i].push_back(full_norm > 0 ? std::sqrt(squared_norm(gradients[i])) / full_norm
                                        : std::numeric_limits<double>::quiet_NaN());
      if (i > 0) to_previous[i].push_back(vector_cosine(gradients[i], gradients[i - 1]));
    }
    DRAFT_LOG_INFO("gradient agreement ({}): batch {} of {} done, |g_N| = {:.4g}", reward.name(), g + 1, o.batches,
                   full_norm);
  }
  for (std::size_t i = 0; i < k_count; ++i) {
    KAgreement row;
    row.k = result.ks[i];
    row.cosine_to_full = range_of(cosines[i]);
    row.norm_ratio = range_of(ratios[i]);
    if (i > 0) row.cosine_to_previous = range_of(to_previous[i]);
    row.cosines = cosines[i];
    row.ratios = ratios[i];
    result.rows.push_back(row);
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace draft
