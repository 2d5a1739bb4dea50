// Per-prompt reward statistics for DDPO's advantages.
#include "finetune/prompt_stat_tracker.h"

#include <cmath>
#include <cstring>
#include <set>

#include <torch/torch.h>

#include "util/error.h"

namespace draft {
namespace {

// Mean and population standard deviation (numpy's default, ddof = 0).
std::pair<double, double> moments(const std::vector<double>& values) {
  double mean = 0;
  for (double v : values) mean += v;
  mean /= static_cast<double>(values.size());
  double var = 0;
  for (double v : values) var += (v - mean) * (v - mean);
  return {mean, std::sqrt(var / static_cast<double>(values.size()))};
}

}  // namespace

PromptStatTracker::PromptStatTracker(int64_t buffer_size, int64_t min_count)
    : buffer_size_(buffer_size), min_count_(min_count) {
  DRAFT_CHECK(buffer_size >= 1, "method.ddpo_buffer_size must be >= 1, got ", buffer_size);
  DRAFT_CHECK(min_count >= 1, "method.ddpo_min_count must be >= 1, got ", min_count);
}

at::Tensor PromptStatTracker::update(const std::vector<std::string>& prompts, const at::Tensor& rewards) {
  const at::Tensor r = rewards.detach().to(torch::kCPU, torch::kDouble).contiguous();
  DRAFT_CHECK(r.dim() == 1 && r.size(0) == static_cast<int64_t>(prompts.size()), "DDPO advantages: ",
              r.numel(), " rewards for ", prompts.size(), " prompts");
  const double* values = r.data_ptr<double>();
  const std::vector<double> all(values, values + r.size(0));
  const auto batch = moments(all);
  at::Tensor advantages = torch::empty_like(r);
  double* out = advantages.data_ptr<double>();
  // A prompt's buffer takes its new rewards before it is read (as ddpo-pytorch: extend, then read).
  for (const std::string& prompt : std::set<std::string>(prompts.begin(), prompts.end())) {
    std::deque<double>& buffer = buffers_[prompt];
    std::vector<std::size_t> members;
    for (std::size_t i = 0; i < prompts.size(); ++i) {
      if (prompts[i] != prompt) continue;
      members.push_back(i);
      buffer.push_back(all[i]);
      if (static_cast<int64_t>(buffer.size()) > buffer_size_) buffer.pop_front();
    }
    const bool enough = static_cast<int64_t>(buffer.size()) >= min_count_;
    const auto [mean, std] = enough ? moments(std::vector<double>(buffer.begin(), buffer.end())) : batch;
    for (std::size_t i : members) out[i] = (all[i] - mean) / (std + 1e-6);
  }
  return advantages;
}

at::Tensor PromptStatTracker::batch_advantages(const at::Tensor& rewards) {
  const at::Tensor r = rewards.detach().to(torch::kCPU, torch::kDouble);
  const double* values = r.contiguous().data_ptr<double>();
  const auto [mean, std] = moments(std::vector<double>(values, values + r.numel()));
  return (r - mean) / (std + 1e-8);
}

std::vector<std::pair<std::string, at::Tensor>> PromptStatTracker::state(const std::string& prefix) const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  int64_t i = 0;
  for (const auto& [prompt, buffer] : buffers_) {
    const std::string key = prefix + "_" + std::to_string(i++);
    at::Tensor bytes = torch::empty({static_cast<int64_t>(prompt.size())}, torch::kUInt8);
    if (!prompt.empty()) std::memcpy(bytes.data_ptr<uint8_t>(), prompt.data(), prompt.size());
    out.emplace_back(key + "_prompt", bytes);
    out.emplace_back(key + "_rewards",
                     torch::tensor(std::vector<double>(buffer.begin(), buffer.end()), torch::kDouble));
  }
  return out;
}

void PromptStatTracker::load_state(const std::string& prefix, const std::map<std::string, at::Tensor>& tensors) {
  buffers_.clear();
  for (int64_t i = 0;; ++i) {
    const std::string key = prefix + "_" + std::to_string(i);
    auto prompt = tensors.find(key + "_prompt");
    auto rewards = tensors.find(key + "_rewards");
    if (prompt == tensors.end()) break;
    DRAFT_CHECK(rewards != tensors.end(), "DDPO state: '", key, "_rewards' is missing from the checkpoint");
    const at::Tensor bytes = prompt->second.to(torch::kCPU, torch::kUInt8).contiguous();
    const std::string text(reinterpret_cast<const char*>(bytes.data_ptr<uint8_t>()),
                           static_cast<std::size_t>(bytes.numel()));
    const at::Tensor r = rewards->second.to(torch::kCPU, torch::kDouble).contiguous();
    buffers_[text] = std::deque<double>(r.data_ptr<double>(), r.data_ptr<double>() + r.numel());
  }
}

std::vector<double> PromptStatTracker::buffer(const std::string& prompt) const {
  auto it = buffers_.find(prompt);
  if (it == buffers_.end()) return {};
  return {it->second.begin(), it->second.end()};
}

}  // namespace draft
