// Means of named values over a logging interval: the "train" records of metrics.jsonl average the steps
// since the previous record.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

namespace draft {

class IntervalMeans {
 public:
  void add(const std::string& name, double value);
  /// The means since the last take(), as a JSON object; then starts a new interval.
  nlohmann::json take();

 private:
  std::map<std::string, std::pair<double, int64_t>> sums_;  // name -> (sum, count)
};

}  // namespace draft
