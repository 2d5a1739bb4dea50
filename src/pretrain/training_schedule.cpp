// Learning-rate schedule, flip augmentation and the resume check of the pretraining loops.
#include "pretrain/training_schedule.h"

#include <algorithm>
#include <cmath>

#include <torch/torch.h>

#include "pretrain/data_order.h"
#include "util/error.h"

namespace draft {

double scheduled_learning_rate(double peak, const std::string& schedule, int64_t step, int64_t total_steps,
                               int64_t warmup_steps) {
  constexpr double kPi = 3.14159265358979323846;
  if (warmup_steps > 0 && step < warmup_steps) {
    return peak * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  }
  if (schedule == "constant") return peak;
  DRAFT_CHECK(schedule == "cosine", "learning-rate schedule '", schedule, "' is not supported (cosine or constant)");
  const int64_t span = std::max<int64_t>(1, total_steps - warmup_steps);
  const double progress = static_cast<double>(step - warmup_steps) / static_cast<double>(span);
  return 0.5 * peak * (1.0 + std::cos(kPi * progress));
}

void set_learning_rate(torch::optim::AdamW& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
}

at::Tensor random_hflip(const at::Tensor& images, uint64_t seed) {
  at::Generator gen = cpu_generator(seed);
  at::Tensor flip = torch::rand({images.size(0)}, gen) < 0.5;
  return torch::where(flip.view({-1, 1, 1, 1}).to(images.device()), images.flip({3}), images);
}

void check_resumable(const nlohmann::json& saved, const nlohmann::json& now, const std::vector<std::string>& keys,
                     const std::string& run_dir, const std::string& checkpoint) {
  for (const auto& key : keys) {
    const nlohmann::json was = saved.contains(key) ? saved.at(key) : nlohmann::json();
    const nlohmann::json is = now.contains(key) ? now.at(key) : nlohmann::json();
    DRAFT_CHECK(was == is, "--resume: ", key, " is ", is.dump(), " but ", checkpoint, " was written with ", was.dump(),
                ": resume with the run's settings (", run_dir, "/config.json) or start a new run folder");
  }
}

}  // namespace draft
