// Gradient agreement (`draft probe`, part b): how far the truncated DRaFT-K gradient points from the full
// DRaFT gradient (K = N) on the same batches, for a fresh LoRA. Together with the decision time it says
// whether a small K sees what the reward depends on.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "diffusion/stable_diffusion.h"
#include "finetune/method.h"
#include "rewards/reward.h"

namespace draft {

/// What to measure. Sample i = g B + j of batch g uses prompts[i % prompts.size()] and the x_T of probe
/// sample i (decision_time.h: probe_initial_latents), as decision-time trajectory i does.
struct GradientAgreementOptions {
  std::vector<std::string> prompts;
  int64_t steps = 20;            ///< N DDIM steps, sampled with η = 0 as DRaFT trains
  double guidance_scale = 3.0;   ///< classifier-free guidance w (<= 1: none)
  int64_t batches = 2;           ///< G
  int64_t batch_size = 2;        ///< B
  std::vector<int64_t> ks = {1, 5};  ///< the truncations K; N (full DRaFT) is always added
  bool checkpoint = true;        ///< gradient checkpointing of the steps with gradients
  uint64_t seed = 0;             ///< prompts/x_T (as decision time) and the method's per-sample draws

  /// Throws draft::Error naming the flag that is out of range (--k 7 with --steps 4, ...).
  void validate() const;
};

/// The Ks measured: options.ks with N added, sorted, without repeats.
std::vector<int64_t> agreement_ks(const std::vector<int64_t>& ks, int64_t steps);

/// a·b / √((a·a)(b·b)) in float64; NaN when either vector is zero. Identical vectors give exactly 1.
double vector_cosine(const at::Tensor& a, const at::Tensor& b);

/// The gradient of the DRaFT-K loss −mean r with respect to context.params for each K of `ks`, each
/// flattened (parameters in order) into one float64 CPU vector. Runs make_method({"draft-k", K}) on the
/// context: its sampler settings decide η, guidance and checkpointing. The parameters' .grad are left empty.
std::vector<at::Tensor> draft_k_gradients(MethodContext& context, const std::vector<int64_t>& ks);

/// Mean, min and max of one measure over the batches.
struct AgreementRange {
  double mean = 0;
  double min = 0;
  double max = 0;
};

/// One K against full DRaFT, over the batches.
struct KAgreement {
  int64_t k = 0;
  AgreementRange cosine_to_full;  ///< cos(g_K, g_N)
  AgreementRange norm_ratio;      ///< ‖g_K‖ / ‖g_N‖
  /// cos(g_K, g_K') with K' the previous (smaller) K measured; none for the smallest K.
  std::optional<AgreementRange> cosine_to_previous;
  std::vector<double> cosines;  ///< cos(g_K, g_N) per batch
  std::vector<double> ratios;   ///< ‖g_K‖ / ‖g_N‖ per batch
};

struct GradientAgreementResult {
  std::string reward;
  int64_t steps = 0;
  std::vector<int64_t> ks;          ///< ascending, the last is N
  std::vector<KAgreement> rows;     ///< one per K
  std::vector<double> full_norms;   ///< ‖g_N‖ per batch
  int64_t parameters = 0;           ///< entries of the gradient vectors
  double seconds = 0;
};

/// The agreement of DRaFT-K's gradient with full DRaFT's for `reward` (differentiable; throws naming it
/// otherwise) with respect to `params` (e.g. a fresh LoRA's tensors, requires_grad on), which the UNet
/// of `sd` must use: for each batch g, the method context of a training micro-batch (prompts, x_T,
/// conditioning, per-sample generators from (seed, g)), draft_k_gradients for every K of agreement_ks,
/// then per K the cosine and norm ratio to K = N and the cosine to the previous K; summarised over batches.
GradientAgreementResult measure_gradient_agreement(const StableDiffusion& sd, Reward& reward,
                                                   const std::vector<at::Tensor>& params,
                                                   const GradientAgreementOptions& options);

}  // namespace draft
