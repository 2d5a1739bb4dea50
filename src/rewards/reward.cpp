// Shared pieces of the Reward interface: the context's weight folder, typed options and image checks.
#include "rewards/reward.h"

#include <cmath>
#include <cstdlib>
#include <sstream>

#include <torch/torch.h>

#include "util/error.h"

namespace draft {

std::string RewardContext::resolved_weights_dir() const {
  if (!weights_dir.empty()) return weights_dir;
  if (const char* env = std::getenv("DRAFT_REWARD_WEIGHTS"); env != nullptr && *env != '\0') return env;
  return "models/rewards";
}

RewardOptions::RewardOptions(std::string reward_name, std::map<std::string, std::string> values)
    : reward_name_(std::move(reward_name)), values_(std::move(values)) {}

std::string RewardOptions::get(const std::string& key, const std::string& fallback) const {
  used_[key] = true;
  auto it = values_.find(key);
  return it == values_.end() ? fallback : it->second;
}

double RewardOptions::get_double(const std::string& key, double fallback) const {
  const std::string text = get(key, "");
  if (text.empty()) return fallback;
  std::size_t end = 0;
  double value = 0;
  try {
    value = std::stod(text, &end);
  } catch (const std::exception&) {
    end = 0;
  }
  DRAFT_CHECK(end == text.size() && end > 0, "reward '", reward_name_, "': option ", key, "=", text,
              " is not a number");
  return value;
}

int64_t RewardOptions::get_int(const std::string& key, int64_t fallback) const {
  const double value = get_double(key, static_cast<double>(fallback));
  // Only doubles in [-2^63, 2^63) convert to int64_t; casting 1e300 is undefined (fuzz/fuzz_reward_spec.cpp).
  constexpr double kLimit = 9223372036854775808.0;  // 2^63
  DRAFT_CHECK(std::isfinite(value) && value == std::trunc(value) && value >= -kLimit && value < kLimit, "reward '",
              reward_name_, "': option ", key, "=", values_.at(key), " must be an integer (of magnitude below 2^63)");
  return static_cast<int64_t>(value);
}

void RewardOptions::check_all_used() const {
  for (const auto& [key, value] : values_) {
    if (used_.count(key)) continue;
    std::string known;
    for (const auto& [k, used] : used_) known += (known.empty() ? "" : ", ") + k;
    fail("reward '", reward_name_, "' has no option '", key, "' (", key, "=", value, "); ",
         known.empty() ? std::string("it takes no options") : "its options are: " + known);
  }
}

void check_reward_images(const at::Tensor& images, const std::string& reward, const std::vector<int64_t>& channels) {
  DRAFT_CHECK(images.defined() && images.dim() == 4, "reward '", reward,
              "': images must be a (B, C, H, W) tensor, got ", images.defined() ? images.sizes() : at::IntArrayRef{});
  DRAFT_CHECK(at::isFloatingType(images.scalar_type()), "reward '", reward,
              "': images must be floating point in [0, 1], got ", images.scalar_type(),
              " (divide 8-bit images by 255)");
  bool channel_ok = false;
  std::string accepted;
  for (int64_t c : channels) {
    channel_ok = channel_ok || images.size(1) == c;
    accepted += (accepted.empty() ? "" : " or ") + std::to_string(c);
  }
  DRAFT_CHECK(channel_ok, "reward '", reward, "': images have ", images.size(1), " channels, it takes ", accepted);
  if (images.numel() == 0) return;
  constexpr double kSlack = 1e-4;
  const auto [low, high] = torch::aminmax(images.detach());
  const double lo = low.item<double>();
  const double hi = high.item<double>();
  DRAFT_CHECK(lo >= -kSlack && hi <= 1.0 + kSlack, "reward '", reward, "': image values must lie in [0, 1], got [",
              lo, ", ", hi, "]", lo < -kSlack ? " (images in [-1, 1] convert with (x + 1) / 2)" : "");
}

std::vector<std::string> prompts_for_batch(const std::vector<std::string>& prompts, int64_t batch,
                                           const std::string& reward) {
  if (prompts.empty()) return std::vector<std::string>(static_cast<std::size_t>(batch));
  if (static_cast<int64_t>(prompts.size()) == batch) return prompts;
  DRAFT_CHECK(prompts.size() == 1, "reward '", reward, "': got ", prompts.size(), " prompts for ", batch,
              " images; give one prompt per image or one for all");
  return std::vector<std::string>(static_cast<std::size_t>(batch), prompts.front());
}

c10::ScalarType score_dtype(const at::Tensor& images) {
  return images.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
}

at::Tensor gray_to_rgb(const at::Tensor& images) {
  return images.size(1) == 1 ? images.expand({images.size(0), 3, images.size(2), images.size(3)}) : images;
}

at::Tensor rgb_to_gray(const at::Tensor& images) {
  if (images.size(1) == 1) return images;
  return images.select(1, 0).mul(0.299).add(images.select(1, 1), 0.587).add(images.select(1, 2), 0.114).unsqueeze(1);
}

}  // namespace draft
