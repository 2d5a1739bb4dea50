// Decision time of a reward (`draft probe`, part a): how much of the reward's variance is already fixed
// after k of the N stochastic sampling steps, measured by re-completing reference trajectories from their
// intermediate latents. It says how many final steps a truncated method (DRaFT-K, DRaFT-LV, ReFL) must
// backpropagate through to reach what decides the reward.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "diffusion/stable_diffusion.h"
#include "rewards/reward.h"

namespace draft {

/// What to sample. Trajectory p uses prompts[p % prompts.size()] and the x_T of probe sample p
/// (probe_initial_latents).
struct DecisionTimeOptions {
  std::vector<std::string> prompts;
  int64_t steps = 20;           ///< N DDIM steps, sampled with η = 1
  double guidance_scale = 3.0;  ///< classifier-free guidance w (<= 1: none)
  int64_t trajectories = 8;     ///< P reference trajectories
  int64_t completions = 4;      ///< M re-completions per trajectory and k (>= 2: a variance needs two)
  int64_t stride = 1;           ///< measure k = 0, S, 2S, ... and always N − 1
  int64_t batch_size = 32;      ///< samples per model call (the P × M completions of one k are chunked by it)
  uint64_t seed = 0;

  /// Throws draft::Error naming the flag that is out of range (--completions must be >= 2, ...).
  void validate() const;
};

/// The k ("steps done") values measured: 0, S, 2S, ... below N − 1, then N − 1.
std::vector<int64_t> decision_steps(int64_t steps, int64_t stride);

/// The least-squares non-increasing fit of `values` (equal weights; pool-adjacent-violators).
std::vector<double> non_increasing_fit(const std::vector<double>& values);

/// The share curve of one reward.
struct DecisionStatistics {
  std::vector<int64_t> steps_done;       ///< k
  std::vector<double> within_variance;   ///< W_k: mean over trajectories of the variance over completions
  double total_variance = 0;             ///< V: Var(r | prompt) of all completions, averaged over prompts
  double mean = 0;                       ///< the mean reward of all completions
  /// True when V is zero (to rounding): the reward does not vary given the prompt, so no step decides
  /// anything; `share`, k50 and k90 are then empty.
  bool constant = false;
  std::vector<double> share;             ///< 1 − W_k / V clamped to [0, 1], one per k
  std::optional<int64_t> k50;            ///< the first k whose share >= 0.5
  std::optional<int64_t> k90;            ///< the first k whose share >= 0.9
  /// The true W_k never rises with k (x_0 depends on x_{t_k} only through x_{t_{k+1}}, so
  /// E[Var(r | x_{t_{k+1}})] = E[Var(r | x_{t_{k+1}}, x_{t_k})] <= E[Var(r | x_{t_k})]); a share that falls
  /// is estimation noise, which heavy-tailed rewards make large for small P × M. The same statistics from
  /// the least-squares non-increasing fit of W_k (pool-adjacent-violators), which pools neighbouring k:
  std::vector<double> monotone_share;
  std::optional<int64_t> monotone_k50;
  std::optional<int64_t> monotone_k90;
  bool monotone = true;                  ///< the raw share never falls (then monotone_share == share)
};

/// The statistics of a reward array r[k][p][m] (K, P, M) of completions, with `steps_done` the K values
/// of k and `prompt_of_trajectory` the prompt index of each of the P trajectories (law of total
/// variance: Var r = E[Var(r | x_{t_k})] + Var(E[r | x_{t_k}]), so the share of the variance fixed by
/// x_{t_k} is 1 − E[Var(r | x_{t_k})] / Var r):
///   W_k = mean_p Var_m r[k][p][m]  (unbiased), V = mean_prompt Var(all r of that prompt)  (unbiased),
///   share_k = clamp(1 − W_k / V, 0, 1).
/// Also the monotone fit (see DecisionStatistics). Throws draft::Error for a malformed array, M < 2 or
/// non-finite rewards.
DecisionStatistics decision_statistics(const at::Tensor& rewards, const std::vector<int64_t>& steps_done,
                                       const std::vector<int64_t>& prompt_of_trajectory);

/// "half of the variance is fixed after k50 of N steps: the last N − k50 steps decide the rest; 90% after
/// k90", or what stands in for it (a constant reward, a share that never reaches one half), and, when the
/// share falls somewhere, what the monotone fit says.
std::string decision_summary(const DecisionStatistics& stats, int64_t steps);

struct DecisionCurve {
  std::string reward;
  DecisionStatistics stats;
};

struct DecisionTimeResult {
  std::vector<int64_t> steps_done;     ///< the k measured
  std::vector<DecisionCurve> curves;   ///< one per reward, in the order given
  at::Tensor rewards;                  ///< (R, K, P, M) float64 on the CPU
  std::vector<int64_t> prompt_of_trajectory;
  int64_t sample_steps = 0;            ///< ε̂ evaluations per sample, summed (one guided UNet row each)
  double seconds = 0;
};

/// The x_T of probe sample `index` (decision-time trajectory p, gradient sample g B + j): one normal draw
/// from a CPU generator seeded from (seed, kSampleData, 0, index), in the model's dtype and device.
at::Tensor probe_initial_latents(const StableDiffusion& sd, uint64_t seed, int64_t index);

/// Measures the decision time of every reward on the same images (completions do not depend on the reward):
///   1. P reference trajectories x_T -> x_0 with DDIM η = 1, keeping the latents x_{t_k};
///   2. for each k of decision_steps: M completions of each trajectory from x_{t_k} (steps k ... N−1, fresh
///      noise per completion), all P × M in batches of options.batch_size, decoded and scored by each
///      reward -> r[k][p][m];
///   3. decision_statistics per reward.
/// Runs under no-grad.
DecisionTimeResult measure_decision_time(const StableDiffusion& sd, const std::vector<Reward*>& rewards,
                                         const DecisionTimeOptions& options);

}  // namespace draft
