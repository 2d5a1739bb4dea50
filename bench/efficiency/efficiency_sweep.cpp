// The learning-rate sweep (efficiency_sweep.h): which runs of a sweep have finished, and the rate chosen.
#include "efficiency/efficiency_sweep.h"

#include <cmath>

#include <fmt/format.h>

#include "efficiency/efficiency_report.h"
#include "util/error.h"

namespace draft {

std::string learning_rate_folder(double lr) {
  DRAFT_CHECK(lr > 0, "a learning rate must be positive, got ", lr);
  return fmt::format("lr{}", lr);  // {fmt}'s default: the shortest representation that reads back exactly
}

SweepResult read_sweep(const std::string& method_dir, const std::vector<double>& learning_rates, uint64_t seed) {
  SweepResult sweep;
  bool all_finished = true;
  for (double lr : learning_rates) {
    SweepPoint point;
    point.lr = lr;
    for (const RunRecord& run : read_finished_runs(method_dir + "/" + learning_rate_folder(lr))) {
      if (run.seed == seed) point.final_reward = run.evals.back().reward;
    }
    all_finished = all_finished && point.final_reward.has_value();
    sweep.points.push_back(point);
  }
  if (learning_rates.size() == 1) {
    sweep.chosen = learning_rates.front();
  } else if (all_finished && !learning_rates.empty()) {
    const SweepPoint* best = &sweep.points.front();
    for (const SweepPoint& p : sweep.points) {
      // A diverged run's NaN never wins: NaN > x is false, and a NaN best is replaced by any number.
      if (*p.final_reward > *best->final_reward || (std::isnan(*best->final_reward) && !std::isnan(*p.final_reward)))
        best = &p;
    }
    sweep.chosen = best->lr;
  }
  return sweep;
}

nlohmann::json sweep_json(const SweepResult& sweep) {
  nlohmann::json out = {{"lr", nlohmann::json::array()},
                        {"final_reward", nlohmann::json::array()},
                        {"chosen", sweep.chosen ? nlohmann::json(*sweep.chosen) : nlohmann::json()}};
  for (const SweepPoint& p : sweep.points) {
    out["lr"].push_back(p.lr);
    out["final_reward"].push_back(p.final_reward ? nlohmann::json(*p.final_reward) : nlohmann::json());
  }
  return out;
}

}  // namespace draft
