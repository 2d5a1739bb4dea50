// PromptStatTracker: DDPO's advantage normalisation (Black et al. 2023, ddpo-pytorch's
// PerPromptStatTracker). Each prompt keeps its last `buffer_size` rewards; a sample's advantage is its
// reward standardised by its prompt's buffer, or by the whole batch while the buffer holds fewer than
// `min_count` rewards. Per-prompt baselines remove the prompt's difficulty from the learning signal.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

namespace draft {

class PromptStatTracker {
 public:
  PromptStatTracker(int64_t buffer_size, int64_t min_count);

  /// Adds the batch's rewards to their prompts' buffers, then returns the advantages (B), float64:
  ///   A_i = (r_i − μ) / (σ + 1e-6),  μ, σ of prompt_i's buffer (population std), or of the batch
  ///   when that buffer holds fewer than min_count rewards.
  at::Tensor update(const std::vector<std::string>& prompts, const at::Tensor& rewards);

  /// A_i = (r_i − mean r) / (std r + 1e-8) over the batch (ddpo-pytorch without per-prompt tracking).
  static at::Tensor batch_advantages(const at::Tensor& rewards);

  /// The buffers as tensors for a checkpoint: "<prefix>_<i>_prompt" (the UTF-8 bytes, uint8) and
  /// "<prefix>_<i>_rewards" (float64) for the i-th prompt in sorted order.
  std::vector<std::pair<std::string, at::Tensor>> state(const std::string& prefix) const;
  /// Replaces the buffers with those of state(prefix) found in `tensors`.
  void load_state(const std::string& prefix, const std::map<std::string, at::Tensor>& tensors);

  /// The buffer of `prompt` (empty when unseen).
  std::vector<double> buffer(const std::string& prompt) const;

 private:
  int64_t buffer_size_;
  int64_t min_count_;
  std::map<std::string, std::deque<double>> buffers_;
};

}  // namespace draft
