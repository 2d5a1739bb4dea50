// Learning-rate schedules.
#include "train/lr_schedule.h"

#include <algorithm>
#include <cmath>

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

}  // namespace draft
