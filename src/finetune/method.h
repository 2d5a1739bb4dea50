// Method: one reward fine-tuning algorithm (DRaFT, DRaFT-K, DRaFT-LV, ReFL, AlignProp, DDPO; DESIGN.md
// section 3) behind one interface, so the trainer never names a method: it builds a MethodContext per
// batch, calls run(), backpropagates the returned loss (unless the method did) and logs the rest.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include "diffusion/guidance.h"
#include "diffusion/rollout.h"
#include "diffusion/stable_diffusion.h"
#include "io/config_json.h"
#include "io/config_table.h"
#include "rewards/reward.h"
#include "train/process_group.h"

namespace draft {

/// How the methods sample (the `sampler.*` keys).
struct SamplerSettings {
  int64_t steps = 50;            ///< N DDIM steps
  double guidance_scale = 7.5;   ///< classifier-free guidance w (<= 1: none)
  double eta = 0.0;              ///< DDIM η
  bool checkpoint = true;        ///< gradient checkpointing of every UNet call and VAE decode with gradients
};

/// Which samples of each global micro-batch this process computes, in a data-parallel run: local samples
/// [offset, offset + local) of `global`. The default (global = 0, no group) is one process computing all.
struct BatchShard {
  ProcessGroup* group = nullptr;  ///< the ranks to gather from; null: one process
  int64_t offset = 0;
  int64_t local = 0;
  int64_t global = 0;
  bool whole() const { return group == nullptr || global == 0 || local == global; }
};

/// Everything one method step needs for one batch of B samples.
struct MethodContext {
  const StableDiffusion* sd = nullptr;  ///< scheduler, UNet, VAE (frozen apart from `params`)
  Reward* reward = nullptr;             ///< higher is better; differentiable unless the method says otherwise
  std::vector<std::string> prompts;     ///< B prompts (for the reward)
  Conditioning conditioning;            ///< their text embeddings (uncond filled for guidance)
  at::Tensor x_T;                       ///< (B, C, h, w) initial noise, in the model's dtype and device
  /// One CPU generator per sample for that sample's own draws (AlignProp's K, DRaFT-LV's re-noising, the
  /// sampler's noise for η > 0), seeded from (seed, step, global sample index): a sample draws the same
  /// whichever process computes it and whatever else is in its batch.
  std::vector<at::Generator> generators;
  /// The draws every sample of one optimizer step shares, on every process (ReFL's stop step, DDPO's
  /// timestep order); seeded from (seed, step), so micro-batches and processes draw the same.
  at::Generator step_generator;
  std::vector<at::Tensor> params;       ///< the trainable tensors (LoRA weights), requires_grad on
  SamplerSettings sampler;
  /// The model call ε̂(x, t). Undefined: guided_eps(sd->unet, conditioning, sampler.guidance_scale).
  /// Set it to wrap the model (tests count calls; a LoRA-free test adds its own parameter here).
  EpsFn eps;
  /// Where this call sits in training: the optimizer step and the micro-batch within it (DDPO's inner
  /// epochs re-use the samples of micro-batch m of the cycle's first step).
  int64_t step = 0;
  int64_t micro_batch = 0;
  int64_t micro_batches = 1;  ///< train.grad_accumulation: a method that calls backward scales by 1/this
  /// This process's part of the global micro-batch (DDPO gathers rewards over it), and the prompts of the
  /// whole global micro-batch (empty: `prompts` is the whole micro-batch).
  BatchShard shard;
  std::vector<std::string> global_prompts;
};

/// Seeds the context's generators for samples [first_sample, first_sample + x_T.size(0)) of optimizer step
/// `step` of a run seeded with `seed` (util/seeds.h: kSampleMethod per sample, kStepMethod per step).
void seed_method_draws(MethodContext& context, uint64_t seed, int64_t step, int64_t first_sample);

/// What one method step returns.
struct MethodStep {
  at::Tensor loss;      ///< 0-d, to backpropagate (its graph holds the checkpointed rollout)
  at::Tensor rewards;   ///< detached rewards of every scored image (reward_queries entries)
  int64_t reward_queries = 0;  ///< images scored (DRaFT-LV: n per sample)
  int64_t unet_evals = 0;      ///< ε̂ evaluations in the forward pass (one batched, guided UNet call each)
  int64_t unet_evals_with_grad = 0;  ///< of those, how many keep gradients (each recomputed once in
                                     ///< backward when checkpointing)
  std::vector<int64_t> draws;  ///< the method's random draw: AlignProp's K per sample, ReFL's stop step
  std::map<std::string, double> stats;  ///< method-specific numbers for logging (e.g. "k_mean")
  /// True when run() already accumulated the gradient of loss / micro_batches into the parameters'
  /// .grad (DDPO backpropagates one timestep at a time to hold one UNet graph); `loss` is then detached.
  bool gradients_accumulated = false;
};

/// A fine-tuning method. All randomness comes from the context's generator; what a method keeps between
/// steps (DDPO: its samples and per-prompt reward buffers) it hands out as state(), which the trainer
/// stores in the run checkpoint, so a resumed run continues identically.
class Method {
 public:
  virtual ~Method() = default;
  /// The method's name as in the config ("draft-lv").
  virtual std::string name() const = 0;
  /// One forward pass over the batch: sample, decode, score, and build the loss. Does not call backward
  /// unless it says so (MethodStep::gradients_accumulated).
  virtual MethodStep run(MethodContext& context) = 0;
  /// False for methods that only need reward values (DDPO): they accept non-differentiable rewards.
  virtual bool needs_differentiable_reward() const { return true; }
  /// The DDIM η a run samples with when it leaves sampler.eta unset: 0 (deterministic DDIM) for the
  /// methods that backpropagate through the chain; DDPO, whose policy is the stochastic sampler, 1.
  virtual double default_eta() const { return 0.0; }
  /// Tensors to restore with load_state() on resume; names are [A-Za-z0-9_]+. Per-sample tensors are
  /// gathered over `shard` into the global micro-batch's layout (a collective: every rank calls it), so a
  /// checkpoint does not depend on the number of processes that wrote it.
  virtual std::vector<std::pair<std::string, at::Tensor>> state(const BatchShard& /*shard*/) const { return {}; }
  /// Restores state() output, keeping this process's part of per-sample tensors (`shard`).
  virtual void load_state(const std::map<std::string, at::Tensor>& /*state*/, const BatchShard& /*shard*/) {}
};

/// The `method.*` config keys.
struct MethodConfig {
  std::string name = "draft-lv";  ///< draft | draft-k | draft-lv | refl | alignprop | ddpo
  int64_t k = 1;                  ///< draft-k: steps that keep gradients
  int64_t lv_n = 2;               ///< draft-lv: re-noised copies per sample
  /// refl: the stop step index s is drawn uniformly from [refl_min, refl_max] (0-based step indices);
  /// -1 for both: the last quarter of the steps, [N - N/4, N - 1] (ImageReward: 30..39 of 40).
  int64_t refl_min = -1;
  int64_t refl_max = -1;
  std::string refl_loss = "relu-margin";  ///< neg: -r; relu-margin: relu(margin - r) * scale (ImageReward)
  double refl_margin = 2.0;
  double refl_scale = 1e-3;
  int64_t alignprop_k_min = 5;    ///< alignprop: K per trajectory in [k_min, k_max] (AlignProp: 5..15 of 50)
  int64_t alignprop_k_max = 15;
  std::string alignprop_distribution = "uniform";  ///< uniform | gaussian (rounded, clipped to the bounds)
  double alignprop_mean = 10.0;
  double alignprop_std = 3.0;
  // DDPO (Black et al. 2023; ddpo-pytorch's defaults).
  double ddpo_clip_range = 1e-4;       ///< PPO ratio clip ε: ratio kept in [1 − ε, 1 + ε]
  double ddpo_adv_clip = 5.0;          ///< advantages clipped to [−a, a]
  double ddpo_timestep_fraction = 1.0; ///< fraction of the N steps trained on per sample batch
  int64_t ddpo_inner_epochs = 1;       ///< optimizer steps per sample batch (the first with fresh samples)
  bool ddpo_per_prompt = true;         ///< normalise advantages per prompt (else over the batch)
  int64_t ddpo_buffer_size = 16;       ///< rewards kept per prompt
  int64_t ddpo_min_count = 16;         ///< below this many, a prompt uses the batch's mean and std

  /// Reads the keys present in `json` (a "method" object) over the defaults; unknown keys and wrong types
  /// throw draft::Error naming `source` and the key ("method.k"). Not validated.
  static MethodConfig from_json(const nlohmann::json& json, const std::string& source);
  static MethodConfig from_json(const ConfigJson& c) { return from_json(c.json, c.source); }
  nlohmann::json to_json() const;
  /// Throws draft::Error naming the first key out of range, e.g. "method.k must be in [1, sampler.steps]".
  void validate(int64_t sampler_steps) const;

  /// refl_min / refl_max with the -1 defaults resolved for N steps.
  std::pair<int64_t, int64_t> refl_range(int64_t sampler_steps) const;
};

/// The `method.*` keys, declared once (docs/config.md is generated from this table).
const ConfigTable<MethodConfig>& method_config_table();

/// Parses "A:B" (the --refl-range flag) into refl_min / refl_max; throws naming the flag.
void parse_refl_range(const std::string& text, MethodConfig& config);

/// The method a (validated) config names; an unknown name lists the known ones.
std::unique_ptr<Method> make_method(const MethodConfig& config);

/// The names make_method accepts.
std::vector<std::string> method_names();

}  // namespace draft
