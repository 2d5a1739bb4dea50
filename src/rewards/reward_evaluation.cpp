// Reward evaluation: sample with fixed seeds, score, summarise, and measure diversity and drift.
#include "rewards/reward_evaluation.h"

#include <cmath>
#include <functional>

#include <torch/torch.h>

#include "diffusion/text_to_image.h"
#include "rewards/reward_registry.h"
#include "util/error.h"

namespace draft {
namespace {

// Two-sided 97.5% quantile of Student's t with `df` degrees of freedom (df >= 1).
double student_t_975(int64_t df) {
  static const double table[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                                 2.201,  2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                                 2.080,  2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};
  if (df <= 30) return table[df - 1];
  if (df <= 60) return 2.042 + (2.000 - 2.042) * static_cast<double>(df - 30) / 30.0;
  if (df <= 120) return 2.000 + (1.980 - 2.000) * static_cast<double>(df - 60) / 60.0;
  return 1.960;
}

// The images of one prompt: x_T drawn once for all n images, then sampled in batches.
at::Tensor sample_prompt(const StableDiffusion& sd, const std::string& prompt, const RewardEvalOptions& options,
                         uint64_t seed) {
  const int64_t size = sd.default_image_size();
  auto generator = at::detail::createCPUGenerator(seed);
  const at::Tensor latents = initial_latents(sd, options.images_per_prompt, size, size, generator);
  std::vector<at::Tensor> images;
  for (int64_t start = 0; start < options.images_per_prompt; start += options.batch_size) {
    const int64_t count = std::min(options.batch_size, options.images_per_prompt - start);
    TextToImageOptions t2i;
    t2i.prompts = {prompt};
    t2i.images_per_prompt = count;
    t2i.steps = options.steps;
    t2i.guidance_scale = options.guidance_scale;
    t2i.eta = options.eta;
    t2i.seed = seed + static_cast<uint64_t>(start);  // used only by eta > 0's noise
    t2i.latents = latents.narrow(0, start, count);
    images.push_back(text_to_image(sd, t2i).images);
  }
  return torch::cat(images);
}

at::Tensor sample_all(const StableDiffusion& sd, const RewardEvalOptions& options) {
  std::vector<at::Tensor> images;
  for (std::size_t i = 0; i < options.prompts.size(); ++i) {
    images.push_back(sample_prompt(sd, options.prompts[i], options, options.seed + i));
  }
  return torch::cat(images);
}

// The monitors' feature function, chosen as RewardEvalOptions::features documents.
struct FeatureSpace {
  std::string name;
  std::function<at::Tensor(const at::Tensor&)> features;
};

FeatureSpace choose_features(Reward& reward, const at::Tensor& images, const RewardEvalOptions& options) {
  const std::string& wanted = options.features;
  DRAFT_CHECK(wanted == "auto" || wanted == "reward" || wanted == "classifier" || wanted == "pixels",
              "features must be auto, reward, classifier or pixels, got '", wanted, "'");
  if (wanted == "auto" || wanted == "reward") {
    if (reward.image_features(images.narrow(0, 0, 1)).defined()) {
      return {"reward:" + reward.name(), [&reward](const at::Tensor& x) { return reward.image_features(x); }};
    }
    DRAFT_CHECK(wanted == "auto", "reward '", reward.name(),
                "' has no feature space; use --features classifier or pixels");
  }
  const bool fits_classifier = images.size(1) == 1 && images.size(2) == 32 && images.size(3) == 32;
  if (wanted == "classifier" || (wanted == "auto" && fits_classifier)) {
    RewardContext context;
    context.models_dir = options.models_dir;
    try {
      RewardPtr classifier = make_reward("classifier", context);
      return {"classifier", [classifier](const at::Tensor& x) { return classifier->image_features(x); }};
    } catch (const Error&) {
      if (wanted == "classifier") throw;  // asked for explicitly: say why it is missing
    }
  }
  // Pixels, average-pooled to at most 64x64 so that distances do not grow with the resolution.
  return {"pixels", [](const at::Tensor& x) {
            const int64_t factor = std::max<int64_t>(1, std::max(x.size(2), x.size(3)) / 64);
            const at::Tensor pooled = factor > 1 ? torch::avg_pool2d(x, factor) : x;
            return pooled.flatten(1) / std::sqrt(static_cast<double>(pooled[0].numel()));
          }};
}

at::Tensor features_in_batches(const FeatureSpace& space, const at::Tensor& images, int64_t batch) {
  std::vector<at::Tensor> parts;
  for (int64_t start = 0; start < images.size(0); start += batch) {
    parts.push_back(space.features(images.narrow(0, start, std::min(batch, images.size(0) - start))).to(torch::kCPU, torch::kDouble));
  }
  return torch::cat(parts);
}

at::Tensor score_in_batches(Reward& reward, const at::Tensor& images, const std::vector<std::string>& prompts,
                            int64_t per_prompt, int64_t batch) {
  std::vector<at::Tensor> parts;
  for (std::size_t p = 0; p < prompts.size(); ++p) {
    for (int64_t start = 0; start < per_prompt; start += batch) {
      const int64_t count = std::min(batch, per_prompt - start);
      const at::Tensor chunk = images.narrow(0, static_cast<int64_t>(p) * per_prompt + start, count);
      parts.push_back(reward.score(chunk, {prompts[p]}).to(torch::kCPU, torch::kFloat));
    }
  }
  return torch::cat(parts);
}

}  // namespace

RewardStats reward_stats(const at::Tensor& scores) {
  RewardStats s;
  const at::Tensor x = scores.detach().to(torch::kCPU, torch::kDouble).flatten();
  s.count = x.numel();
  if (s.count == 0) return s;
  s.mean = x.mean().item<double>();
  s.std = s.count > 1 ? x.std().item<double>() : 0.0;
  const double half = s.count > 1 ? student_t_975(s.count - 1) * s.std / std::sqrt(static_cast<double>(s.count)) : 0.0;
  s.ci_low = s.mean - half;
  s.ci_high = s.mean + half;
  return s;
}

std::optional<double> mean_pairwise_distance(const at::Tensor& features, int64_t group) {
  if (group < 2) return std::nullopt;
  DRAFT_CHECK(features.dim() == 2 && features.size(0) % group == 0, "mean_pairwise_distance: ", features.size(0),
              " rows are not whole groups of ", group);
  double total = 0;
  int64_t pairs = 0;
  for (int64_t start = 0; start < features.size(0); start += group) {
    const at::Tensor f = features.narrow(0, start, group).to(torch::kDouble);
    const at::Tensor d = torch::cdist(f, f);
    total += d.sum().item<double>();  // each unordered pair twice, the diagonal is zero
    pairs += group * (group - 1);
  }
  return total / static_cast<double>(pairs);
}

RewardEvalResult evaluate_reward(const StableDiffusion& model, Reward& reward, const RewardEvalOptions& options,
                                 const StableDiffusion* base) {
  DRAFT_CHECK(!options.prompts.empty(), "evaluation needs at least one prompt");
  DRAFT_CHECK(options.images_per_prompt >= 1, "evaluation needs n >= 1 images per prompt, got ",
              options.images_per_prompt);
  DRAFT_CHECK(options.batch_size >= 1, "evaluation batch size must be >= 1, got ", options.batch_size);
  torch::NoGradGuard no_grad;
  const int64_t n = options.images_per_prompt;

  RewardEvalResult result;
  result.reward = reward.name();
  result.images = sample_all(model, options).to(torch::kCPU, torch::kFloat);
  result.scores = score_in_batches(reward, result.images, options.prompts, n, options.batch_size);
  result.overall = reward_stats(result.scores);
  for (std::size_t p = 0; p < options.prompts.size(); ++p) {
    result.per_prompt.push_back({options.prompts[p], reward_stats(result.scores.narrow(0, static_cast<int64_t>(p) * n, n))});
  }

  const FeatureSpace space = choose_features(reward, result.images, options);
  result.feature_space = space.name;
  const at::Tensor features = features_in_batches(space, result.images, options.batch_size);
  result.diversity = mean_pairwise_distance(features, n);
  if (base != nullptr) {
    const at::Tensor base_images = sample_all(*base, options).to(torch::kCPU, torch::kFloat);
    result.base = reward_stats(score_in_batches(reward, base_images, options.prompts, n, options.batch_size));
    const at::Tensor base_features = features_in_batches(space, base_images, options.batch_size);
    result.drift = (features - base_features).norm(2, 1).mean().item<double>();
  }
  return result;
}

}  // namespace draft
