// Decision time: re-complete stochastic trajectories from x_{t_k} and split the reward's variance by the
// law of total variance.
#include "finetune/decision_time.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>

#include <fmt/format.h>
#include <torch/torch.h>

#include "diffusion/guidance.h"
#include "diffusion/rollout.h"
#include "diffusion/text_to_image.h"
#include "util/error.h"
#include "util/log.h"
#include "util/seeds.h"

namespace draft {
namespace {

// A reward whose standard deviation (given the prompt) is below this fraction of its largest |r| is
// constant: float32 rewards carry about 1e-7 relative rounding, which is no signal.
constexpr double kConstantTolerance = 1e-6;

// Draws that tell the reference trajectories (step -1) from the completions at k (step k) of one seed.
constexpr int64_t kReferenceDraws = -1;

Conditioning select_rows(const Conditioning& c, const at::Tensor& index) {
  Conditioning out;
  out.cond = c.cond.index_select(0, index.to(c.cond.device()));
  if (c.uncond.defined()) out.uncond = c.uncond.index_select(0, index.to(c.uncond.device()));
  return out;
}

// One batched DDIM η = 1 rollout of the rows of `x` over steps [start_step, N), row j's noise from
// generators[j]: a sample's completion does not depend on the rest of its batch (or on --batch-size).
RolloutResult stochastic_rollout(const StableDiffusion& sd, const Conditioning& conditioning, double guidance,
                                 const at::Tensor& x, int64_t steps, int64_t start_step,
                                 std::vector<at::Generator>& generators, bool keep_latents) {
  RolloutOptions o;
  o.steps = steps;
  o.eta = 1.0;
  o.checkpoint = false;
  o.start_step = start_step;
  o.keep_latents = keep_latents;
  return ddim_rollout(*sd.scheduler, guided_eps(sd.unet, conditioning, guidance), x, o, generators);
}

std::vector<at::Generator> generators_for(uint64_t seed, int64_t draws, int64_t first, int64_t count) {
  std::vector<at::Generator> out;
  for (int64_t j = first; j < first + count; ++j) {
    out.push_back(cpu_generator(derive_seed(seed, RandomStream::kSampleMethod, draws, j)));
  }
  return out;
}

// (B) scores of `reward` for `images` as float64 on the CPU, with the shape checked.
at::Tensor scores(Reward& reward, const at::Tensor& images, const std::vector<std::string>& prompts) {
  const at::Tensor r = reward.score(images, prompts);
  DRAFT_CHECK(r.dim() == 1 && r.size(0) == images.size(0), "reward '", reward.name(), "' returned shape ", r.sizes(),
              " for ", images.size(0), " images; expected one score per image");
  return r.detach().to(torch::kCPU, torch::kDouble);
}

}  // namespace

void DecisionTimeOptions::validate() const {
  DRAFT_CHECK(!prompts.empty(), "no prompt given: pass --prompt TEXT or --prompts FILE");
  DRAFT_CHECK(steps >= 1, "--steps must be at least 1, got ", steps);
  DRAFT_CHECK(trajectories >= 1, "--trajectories must be at least 1, got ", trajectories);
  DRAFT_CHECK(completions >= 2, "--completions must be at least 2 (the variance over the completions of one "
              "trajectory needs two), got ", completions);
  DRAFT_CHECK(stride >= 1, "--stride must be at least 1, got ", stride);
  DRAFT_CHECK(batch_size >= 1, "--batch-size must be at least 1, got ", batch_size);
}

std::vector<int64_t> decision_steps(int64_t steps, int64_t stride) {
  DRAFT_CHECK(steps >= 1 && stride >= 1, "decision_steps: steps (", steps, ") and stride (", stride,
              ") must be at least 1");
  std::vector<int64_t> ks;
  for (int64_t k = 0; k < steps - 1; k += stride) ks.push_back(k);
  ks.push_back(steps - 1);
  return ks;
}

std::vector<double> non_increasing_fit(const std::vector<double>& values) {
  // Pool adjacent violators: blocks of (sum, count) whose means must not rise; a new value that rises above
  // the last block's mean merges into it, and so on backwards.
  std::vector<std::pair<double, int64_t>> blocks;
  for (double v : values) {
    blocks.emplace_back(v, 1);
    while (blocks.size() > 1) {
      const auto& last = blocks.back();
      const auto& before = blocks[blocks.size() - 2];
      if (before.first / static_cast<double>(before.second) >= last.first / static_cast<double>(last.second)) break;
      const std::pair<double, int64_t> merged{before.first + last.first, before.second + last.second};
      blocks.pop_back();
      blocks.back() = merged;
    }
  }
  std::vector<double> fit;
  for (const auto& [sum, count] : blocks) fit.insert(fit.end(), static_cast<std::size_t>(count), sum / static_cast<double>(count));
  return fit;
}

DecisionStatistics decision_statistics(const at::Tensor& rewards, const std::vector<int64_t>& steps_done,
                                       const std::vector<int64_t>& prompt_of_trajectory) {
  DRAFT_CHECK(rewards.defined() && rewards.dim() == 3, "decision time: the rewards must be a (K, P, M) array, got ",
              rewards.defined() ? rewards.sizes() : at::IntArrayRef{});
  const int64_t k_count = rewards.size(0), p_count = rewards.size(1), m_count = rewards.size(2);
  DRAFT_CHECK(k_count >= 1 && k_count == static_cast<int64_t>(steps_done.size()), "decision time: ", k_count,
              " rows of rewards for ", steps_done.size(), " values of k");
  DRAFT_CHECK(p_count >= 1 && p_count == static_cast<int64_t>(prompt_of_trajectory.size()), "decision time: ",
              p_count, " trajectories of rewards for ", prompt_of_trajectory.size(), " trajectory prompts");
  DRAFT_CHECK(m_count >= 2, "decision time needs at least 2 completions per trajectory for a variance "
              "(--completions), got ", m_count);
  const at::Tensor r = rewards.detach().to(torch::kCPU, torch::kDouble);
  DRAFT_CHECK(torch::isfinite(r).all().item<bool>(), "decision time: the reward returned non-finite values "
              "(NaN or inf); check the reward on these images with draft eval");
  DecisionStatistics s;
  s.steps_done = steps_done;
  s.mean = r.mean().item<double>();
  // 1. V: every completion is a draw from the marginal p(x_0 | prompt), whatever k it started from, so a
  //    prompt's total variance pools all of its K × P_prompt × M rewards; averaged over the prompts.
  std::map<int64_t, std::vector<int64_t>> trajectories_of;
  for (int64_t p = 0; p < p_count; ++p) trajectories_of[prompt_of_trajectory[static_cast<std::size_t>(p)]].push_back(p);
  double v_sum = 0;
  for (const auto& entry : trajectories_of) {
    const at::Tensor index = torch::tensor(entry.second, torch::kLong);
    v_sum += r.index_select(1, index).flatten().var(/*unbiased=*/true).item<double>();
  }
  s.total_variance = v_sum / static_cast<double>(trajectories_of.size());
  // 2. W_k = E_p[Var_m(r | x_{t_k})], the variance the steps after k still add.
  const at::Tensor within = r.var(2, /*unbiased=*/true).mean(1);
  s.within_variance.assign(within.data_ptr<double>(), within.data_ptr<double>() + k_count);
  // 3. A reward that does not vary given the prompt has no decision time (and V = 0 would divide by zero).
  const double scale = r.abs().max().item<double>();
  s.constant = !(s.total_variance > 0) || std::sqrt(s.total_variance) <= kConstantTolerance * scale;
  if (s.constant) return s;
  // 4. share_k = 1 − W_k / V (law of total variance: Var r = E[Var(r | x_{t_k})] + Var(E[r | x_{t_k}])),
  //    clamped because W_k and V are estimates; k50 / k90 the first k reaching 0.5 / 0.9.
  auto shares = [&](const std::vector<double>& within, std::vector<double>& share, std::optional<int64_t>& k50,
                    std::optional<int64_t>& k90) {
    for (int64_t i = 0; i < k_count; ++i) {
      const double value = std::clamp(1.0 - within[static_cast<std::size_t>(i)] / s.total_variance, 0.0, 1.0);
      share.push_back(value);
      if (!k50 && value >= 0.5) k50 = steps_done[static_cast<std::size_t>(i)];
      if (!k90 && value >= 0.9) k90 = steps_done[static_cast<std::size_t>(i)];
    }
  };
  shares(s.within_variance, s.share, s.k50, s.k90);
  // 5. The same from the non-increasing fit of W_k, which the true curve satisfies.
  shares(non_increasing_fit(s.within_variance), s.monotone_share, s.monotone_k50, s.monotone_k90);
  s.monotone = std::is_sorted(s.share.begin(), s.share.end());
  return s;
}

std::string decision_summary(const DecisionStatistics& s, int64_t steps) {
  if (s.constant) {
    return fmt::format("the reward does not vary given the prompt (variance {:.3g}): no sampling step decides it, "
                       "so it has no decision time", s.total_variance);
  }
  std::string text;
  if (!s.k50) {
    text = fmt::format("less than half of the variance is fixed even after {} of {} steps: the last step decides "
                       "most of it", s.steps_done.back(), steps);
  } else {
    text = fmt::format("half of the variance is fixed after {} of {} steps: the last {} steps decide the rest",
                       *s.k50, steps, steps - *s.k50);
    if (s.k90) {
      text += fmt::format("; 90% after {} (the last {} decide the final 10%)", *s.k90, steps - *s.k90);
    } else {
      text += fmt::format("; 90% is not reached before the last step (share {:.3f} at k = {})", s.share.back(),
                          s.steps_done.back());
    }
  }
  if (s.monotone) return text;
  auto at = [](const std::optional<int64_t>& k) { return k ? std::to_string(*k) : std::string("not reached"); };
  return text + fmt::format(". The share falls between some k, which the true curve never does: estimation noise "
                            "(more --trajectories / --completions narrow it); the monotone fit puts k50 at {} and k90 "
                            "at {}", at(s.monotone_k50), at(s.monotone_k90));
}

at::Tensor probe_initial_latents(const StableDiffusion& sd, uint64_t seed, int64_t index) {
  at::Generator generator = cpu_generator(derive_seed(seed, RandomStream::kSampleData, 0, index));
  const int64_t size = sd.default_image_size();
  return initial_latents(sd, 1, size, size, generator);
}

DecisionTimeResult measure_decision_time(const StableDiffusion& sd, const std::vector<Reward*>& rewards,
                                         const DecisionTimeOptions& o) {
  o.validate();
  DRAFT_CHECK(!rewards.empty(), "decision time: no reward given (--reward SPEC)");
  torch::NoGradGuard no_grad;
  const auto start = std::chrono::steady_clock::now();
  const int64_t n = o.steps, p_count = o.trajectories, m_count = o.completions;
  DecisionTimeResult result;
  result.steps_done = decision_steps(n, o.stride);
  const auto k_count = static_cast<int64_t>(result.steps_done.size());
  const auto r_count = static_cast<int64_t>(rewards.size());
  result.rewards = torch::zeros({r_count, k_count, p_count, m_count}, torch::kDouble);

  // 1. The trajectories' prompts, text conditioning and x_T.
  std::vector<std::string> prompts;
  std::vector<at::Tensor> x_T;
  for (int64_t p = 0; p < p_count; ++p) {
    const auto prompt = static_cast<int64_t>(static_cast<std::size_t>(p) % o.prompts.size());
    result.prompt_of_trajectory.push_back(prompt);
    prompts.push_back(o.prompts[static_cast<std::size_t>(prompt)]);
    x_T.push_back(probe_initial_latents(sd, o.seed, p));
  }
  const Conditioning conditioning = encode_prompts(sd, prompts, {}, 1, 0, o.guidance_scale > 1.0);
  const at::Tensor all_x_T = torch::cat(x_T);

  // 2. Reference trajectories x_T -> x_0 (η = 1), keeping x_{t_k} for every k measured.
  std::vector<std::vector<at::Tensor>> kept(static_cast<std::size_t>(k_count));
  for (int64_t first = 0; first < p_count; first += o.batch_size) {
    const int64_t count = std::min(o.batch_size, p_count - first);
    std::vector<at::Generator> generators = generators_for(o.seed, kReferenceDraws, first, count);
    const RolloutResult reference = stochastic_rollout(
        sd, select_rows(conditioning, torch::arange(first, first + count)), o.guidance_scale,
        all_x_T.narrow(0, first, count), n, 0, generators, /*keep_latents=*/true);
    for (int64_t i = 0; i < k_count; ++i) {
      kept[static_cast<std::size_t>(i)].push_back(reference.latents[static_cast<std::size_t>(result.steps_done[i])]);
    }
    result.sample_steps += count * n;
  }
  DRAFT_LOG_INFO("decision time: {} reference trajectories of {} steps sampled (eta 1)", p_count, n);

  // 3. For each k: M completions of every trajectory from x_{t_k}, row j = p M + m, scored by every reward.
  const int64_t rows = p_count * m_count;
  for (int64_t i = 0; i < k_count; ++i) {
    const int64_t k = result.steps_done[static_cast<std::size_t>(i)];
    const at::Tensor x_k = torch::cat(kept[static_cast<std::size_t>(i)]);
    for (int64_t first = 0; first < rows; first += o.batch_size) {
      const int64_t count = std::min(o.batch_size, rows - first);
      const at::Tensor trajectory = torch::arange(first, first + count).div(m_count, "floor");
      std::vector<std::string> chunk_prompts;
      for (int64_t j = 0; j < count; ++j) chunk_prompts.push_back(prompts[static_cast<std::size_t>((first + j) / m_count)]);
      std::vector<at::Generator> generators = generators_for(o.seed, k, first, count);
      const RolloutResult completion =
          stochastic_rollout(sd, select_rows(conditioning, trajectory), o.guidance_scale,
                             x_k.index_select(0, trajectory.to(x_k.device())), n, k, generators, false);
      AutoencoderKL vae = sd.vae;
      const at::Tensor images = vae->decode_latents_to_images(completion.x0);
      for (int64_t r = 0; r < r_count; ++r) {
        result.rewards[r][i].view({rows}).narrow(0, first, count).copy_(
            scores(*rewards[static_cast<std::size_t>(r)], images, chunk_prompts));
      }
      result.sample_steps += count * (n - k);
    }
    DRAFT_LOG_INFO("decision time: k = {} of {} steps done: {} completions of the last {} steps scored", k, n, rows,
                   n - k);
  }

  // 4. The share curve per reward.
  for (int64_t r = 0; r < r_count; ++r) {
    result.curves.push_back({rewards[static_cast<std::size_t>(r)]->name(),
                             decision_statistics(result.rewards[r], result.steps_done, result.prompt_of_trajectory)});
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace draft
