// The learning-rate sweep of `draft bench efficiency`: a method's runs at learning rate η sit in
// <out>/<task>/<method>/lr<η>/seed<k>. The sweep runs one seed (the preset's first) at every rate of the
// method's list; the rate whose run ends with the highest held-out reward is the method's, and its other
// seeds run at that rate only. A method with one rate is not swept.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace draft {

/// The folder name of a learning rate: "lr0.0003", "lr0.001" (shortest round-trip decimal).
std::string learning_rate_folder(double lr);

/// One rate of a sweep: its seed's final held-out reward, unset while that run is not finished.
struct SweepPoint {
  double lr = 0;
  std::optional<double> final_reward;
};

struct SweepResult {
  std::vector<SweepPoint> points;  ///< in the order of the rates given
  /// The chosen rate: the highest final held-out reward (ties: the earlier rate in the list), known once
  /// every sweep run has finished; with a single rate, that rate at once.
  std::optional<double> chosen;
};

/// Reads the sweep of one method (`method_dir` = <out>/<task>/<method>) at `learning_rates` on `seed`.
SweepResult read_sweep(const std::string& method_dir, const std::vector<double>& learning_rates, uint64_t seed);

/// {"lr": [...], "final_reward": [... or null], "chosen": rate or null} for results.json.
nlohmann::json sweep_json(const SweepResult& sweep);

}  // namespace draft
