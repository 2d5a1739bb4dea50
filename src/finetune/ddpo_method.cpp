// DDPO (Black et al. 2023, "Training Diffusion Models with Reinforcement Learning"; DESIGN.md section 3):
// the RL baseline. The sampler is a policy: each stochastic DDIM step (η > 0) is a Gaussian
// π_θ(x_{t−1} | x_t, c) = N(μ_θ(x_t, t, c), σ_t² I), and the reward only needs values, so DDPO also trains
// on non-differentiable rewards (the true JPEG size). Follows ddpo-pytorch: log-probabilities averaged over
// the latent's elements, per-prompt advantages, the PPO clipped ratio at every trained step.
#include <algorithm>
#include <cmath>

#include <torch/torch.h>

#include "diffusion/ddim_scheduler.h"
#include "finetune/method_support.h"
#include "finetune/prompt_stat_tracker.h"
#include "util/error.h"

namespace draft {
namespace {

// One sampled batch, kept for the inner epochs.
struct SampleBatch {
  at::Tensor latents;     // (N + 1, B, C, h, w): x_{t_N}, ..., x_{t_1}, x_0
  at::Tensor log_probs;   // (N, B): log π_old(x_{t−1} | x_t) per element, as sampled
  at::Tensor advantages;  // (B), float64, clipped
  at::Tensor rewards;     // (B)
  at::Tensor cond, uncond;  // the prompts' conditioning (uncond undefined without guidance)
};

class DDPOMethod : public Method {
 public:
  explicit DDPOMethod(MethodConfig config)
      : config_(std::move(config)), tracker_(config_.ddpo_buffer_size, config_.ddpo_min_count) {}

  std::string name() const override { return "ddpo"; }
  bool needs_differentiable_reward() const override { return false; }
  // As TRL's DDPOConfig: DDPO's policy is the DDIM sampler at η = 1 unless the user says otherwise.
  double default_eta() const override { return 1.0; }

  MethodStep run(MethodContext& c) override {
    check_context(c, /*reward_values_only=*/true);
    DRAFT_CHECK(c.sampler.eta > 0.0, "method ddpo needs a stochastic sampler for its log-probabilities: set "
                "sampler.eta > 0 (--eta 1, as DDPO)");
    const int64_t steps = c.sampler.steps;
    const auto m = static_cast<std::size_t>(c.micro_batch);
    if (batches_.size() <= m) batches_.resize(m + 1);
    // Inner epoch e of a cycle of ddpo_inner_epochs optimizer steps: e = 0 samples, the others re-use.
    const bool fresh = c.step % config_.ddpo_inner_epochs == 0 || !batches_[m].latents.defined();
    MethodStep step;
    if (fresh) {
      batches_[m] = sample(c);
      step.reward_queries = batches_[m].rewards.size(0);
      step.unet_evals = steps;
    }
    const SampleBatch& batch = batches_[m];
    train(c, batch, step);
    step.rewards = batch.rewards;
    step.gradients_accumulated = true;
    return step;
  }

  // The samples in the global micro-batch's layout (gathered over the ranks), so that a run resumes with
  // any number of processes; the tracker is the same on every rank.
  std::vector<std::pair<std::string, at::Tensor>> state(const BatchShard& shard) const override {
    std::vector<std::pair<std::string, at::Tensor>> out = tracker_.state("tracker");
    for (std::size_t i = 0; i < batches_.size(); ++i) {
      const SampleBatch& b = batches_[i];
      if (!b.latents.defined()) continue;
      const std::string key = "batch_" + std::to_string(i) + "_";
      out.emplace_back(key + "latents", gather_samples(shard, b.latents, 1));
      out.emplace_back(key + "log_probs", gather_samples(shard, b.log_probs, 1));
      out.emplace_back(key + "advantages", gather_samples(shard, b.advantages));
      out.emplace_back(key + "rewards", gather_samples(shard, b.rewards));
      out.emplace_back(key + "cond", gather_samples(shard, b.cond));
      if (b.uncond.defined()) out.emplace_back(key + "uncond", gather_samples(shard, b.uncond));
    }
    return out;
  }

  void load_state(const std::map<std::string, at::Tensor>& state, const BatchShard& shard) override {
    tracker_.load_state("tracker", state);
    batches_.clear();
    for (std::size_t i = 0;; ++i) {
      const std::string key = "batch_" + std::to_string(i) + "_";
      if (state.count(key + "latents") == 0) break;
      SampleBatch b;
      for (const char* part : {"log_probs", "advantages", "rewards", "cond"}) {
        DRAFT_CHECK(state.count(key + part) > 0, "DDPO state: '", key, part, "' is missing from the checkpoint");
      }
      b.latents = local_samples(shard, state.at(key + "latents"), 1);
      b.log_probs = local_samples(shard, state.at(key + "log_probs"), 1);
      b.advantages = local_samples(shard, state.at(key + "advantages"));
      b.rewards = local_samples(shard, state.at(key + "rewards"));
      b.cond = local_samples(shard, state.at(key + "cond"));
      if (state.count(key + "uncond") > 0) b.uncond = local_samples(shard, state.at(key + "uncond"));
      batches_.push_back(b);
    }
  }

 private:
  // 1. Sample with η > 0 under no-grad, recording x_t and log π_old of every step; score; advantages.
  SampleBatch sample(MethodContext& c) {
    torch::NoGradGuard no_grad;
    RolloutOptions options = rollout_options(c);
    options.keep_latents = true;
    options.keep_log_probs = true;
    RolloutResult rollout = ddim_rollout(*c.sd->scheduler, context_eps(c), c.x_T, options, c.generators);
    SampleBatch b;
    b.latents = torch::stack(rollout.latents);
    // ddpo-pytorch averages the log-density over the latent's elements (not a sum): its clip range 1e-4
    // is calibrated for that scale.
    const double elements = static_cast<double>(c.x_T[0].numel());
    std::vector<at::Tensor> lps;
    for (const auto& lp : rollout.log_probs) {
      // A deterministic step (σ = 0, set_alpha_to_one) has no density: it is not trained on (NaN marks it).
      lps.push_back(lp.defined() ? lp / elements : torch::full({c.x_T.size(0)}, NAN, c.x_T.options()));
    }
    b.log_probs = torch::stack(lps);
    AutoencoderKL vae = c.sd->vae;
    b.rewards = score_images(c, vae->decode_latents_to_images(rollout.x0)).detach();
    // 2. Advantages over the whole global micro-batch (the rewards gathered from every rank, as
    //    ddpo-pytorch gathers them before normalising): per prompt (running buffers) or over the batch;
    //    clipped to ±ddpo_adv_clip; this process keeps its own samples' part.
    const at::Tensor rewards = gather_samples(c.shard, b.rewards);
    const std::vector<std::string>& prompts = c.global_prompts.empty() ? c.prompts : c.global_prompts;
    DRAFT_CHECK(static_cast<int64_t>(prompts.size()) == rewards.size(0), "DDPO: ", prompts.size(),
                " prompts for ", rewards.size(0), " rewards in the micro-batch");
    const at::Tensor advantages = config_.ddpo_per_prompt ? tracker_.update(prompts, rewards)
                                                         : PromptStatTracker::batch_advantages(rewards);
    b.advantages = local_samples(c.shard, advantages).clamp(-config_.ddpo_adv_clip, config_.ddpo_adv_clip);
    b.cond = c.conditioning.cond;
    b.uncond = c.conditioning.uncond;
    return b;
  }

  // 3. The PPO clipped objective at a random subset of the steps, one backward per step:
  //    ratio = exp(log π_θ(x_{t−1} | x_t) − log π_old),  L_t = mean_i max(−A_i ratio_i, −A_i clip(ratio_i, 1 ± ε)),
  //    gradient of (1/T_train) Σ_t L_t / micro_batches accumulated into the parameters.
  void train(MethodContext& c, const SampleBatch& b, MethodStep& step) {
    const int64_t steps = c.sampler.steps;
    const std::vector<int64_t> timesteps = c.sd->scheduler->timesteps(steps);
    // The steps with a density (σ > 0), read from the device once rather than once per step.
    const at::Tensor has_density = torch::isnan(b.log_probs.select(1, 0)).logical_not().to(torch::kCPU);
    std::vector<int64_t> trainable;
    for (int64_t i = 0; i < steps; ++i) {
      if (has_density[i].item<bool>()) trainable.push_back(i);
    }
    DRAFT_CHECK(!trainable.empty(), "DDPO: no stochastic step to train on (every step has sigma = 0)");
    const auto count = std::max<int64_t>(
        1, static_cast<int64_t>(config_.ddpo_timestep_fraction * static_cast<double>(trainable.size())));
    // ddpo-pytorch permutes the steps per sample; the UNet here takes one timestep per call, so the order
    // is drawn per optimizer step, the same on every rank (each step is still trained with probability
    // count / N).
    const at::Tensor order =
        torch::randperm(static_cast<int64_t>(trainable.size()), c.step_generator, torch::kLong);
    EpsFn eps = c.eps;
    if (!eps) eps = guided_eps(c.sd->unet, Conditioning{b.cond, b.uncond}, c.sampler.guidance_scale);
    const double elements = static_cast<double>(b.latents[0][0].numel());
    const at::Tensor advantages = b.advantages.to(b.latents.device(), b.latents.scalar_type());
    const double eps_clip = config_.ddpo_clip_range;
    // The diagnostics stay on the device, in float64, until the end: reading a value per trained step would
    // make the host wait for the device each time.
    const auto sums = torch::TensorOptions().dtype(torch::kDouble).device(b.latents.device());
    at::Tensor loss_sum = torch::zeros({}, sums), kl_sum = torch::zeros({}, sums), clip_sum = torch::zeros({}, sums);
    at::Tensor ratio_dev = torch::zeros({}, sums);
    for (int64_t j = 0; j < count; ++j) {
      const int64_t i = trainable[static_cast<std::size_t>(order[j].item<int64_t>())];
      const int64_t t = timesteps[static_cast<std::size_t>(i)];
      const at::Tensor x_t = b.latents[i], x_prev = b.latents[i + 1];
      const at::Tensor log_prob =
          c.sd->scheduler->log_prob(eps(x_t, t), t, steps, x_t, x_prev, c.sampler.eta) / elements;
      const at::Tensor old = b.log_probs[i];
      const at::Tensor ratio = torch::exp(log_prob - old);
      const at::Tensor unclipped = -advantages * ratio;
      const at::Tensor clipped = -advantages * torch::clamp(ratio, 1.0 - eps_clip, 1.0 + eps_clip);
      const at::Tensor loss = torch::maximum(unclipped, clipped).mean();
      (loss / static_cast<double>(count * c.micro_batches)).backward();
      torch::NoGradGuard no_grad;
      const at::Tensor delta = log_prob.detach() - old;
      loss_sum += loss.detach().to(torch::kDouble);
      kl_sum += 0.5 * delta.square().mean().to(torch::kDouble);  // approx KL as ddpo-pytorch logs it
      clip_sum += ((ratio.detach() - 1.0).abs() > eps_clip).to(torch::kDouble).mean();
      ratio_dev = torch::maximum(ratio_dev, (ratio.detach() - 1.0).abs().max().to(torch::kDouble));
    }
    const double n = static_cast<double>(count);
    step.loss = (loss_sum / n).to(torch::kCPU);
    step.unet_evals += count;
    step.unet_evals_with_grad = count;
    step.stats["approx_kl"] = kl_sum.item<double>() / n;
    step.stats["clip_frac"] = clip_sum.item<double>() / n;
    step.stats["ratio_max_deviation"] = ratio_dev.item<double>();
    step.stats["advantage_mean_abs"] = b.advantages.abs().mean().item<double>();
  }

  MethodConfig config_;
  PromptStatTracker tracker_;
  std::vector<SampleBatch> batches_;
};

}  // namespace

std::unique_ptr<Method> make_ddpo_method(const MethodConfig& config) { return std::make_unique<DDPOMethod>(config); }

}  // namespace draft
