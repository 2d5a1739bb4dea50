// Interval means.
#include "train/interval_means.h"

namespace draft {

void IntervalMeans::add(const std::string& name, double value) {
  auto& [sum, count] = sums_[name];
  sum += value;
  ++count;
}

nlohmann::json IntervalMeans::take() {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [name, sc] : sums_) out[name] = sc.first / double(sc.second);
  sums_.clear();
  return out;
}

}  // namespace draft
