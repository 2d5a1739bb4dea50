// Correlations of paired samples and medians.
#include "util/statistics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "util/error.h"

namespace draft {

double pearson_correlation(const std::vector<double>& a, const std::vector<double>& b) {
  DRAFT_CHECK(a.size() == b.size() && a.size() >= 2, "a correlation needs two samples of equal length >= 2, got ",
              a.size(), " and ", b.size());
  const double n = static_cast<double>(a.size());
  const double mean_a = std::accumulate(a.begin(), a.end(), 0.0) / n;
  const double mean_b = std::accumulate(b.begin(), b.end(), 0.0) / n;
  double sab = 0, saa = 0, sbb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    sab += (a[i] - mean_a) * (b[i] - mean_b);
    saa += (a[i] - mean_a) * (a[i] - mean_a);
    sbb += (b[i] - mean_b) * (b[i] - mean_b);
  }
  DRAFT_CHECK(saa > 0 && sbb > 0, "a correlation is undefined for a constant sample");
  return sab / std::sqrt(saa * sbb);
}

std::vector<double> ranks_with_ties(const std::vector<double>& values) {
  std::vector<std::size_t> order(values.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t i, std::size_t j) { return values[i] < values[j]; });
  std::vector<double> ranks(values.size());
  for (std::size_t start = 0; start < order.size();) {
    std::size_t end = start;
    while (end + 1 < order.size() && values[order[end + 1]] == values[order[start]]) ++end;
    const double mean_rank = 0.5 * static_cast<double>(start + end);
    for (std::size_t k = start; k <= end; ++k) ranks[order[k]] = mean_rank;
    start = end + 1;
  }
  return ranks;
}

double spearman_correlation(const std::vector<double>& a, const std::vector<double>& b) {
  return pearson_correlation(ranks_with_ties(a), ranks_with_ties(b));
}

double median(std::vector<double> values) {
  DRAFT_CHECK(!values.empty(), "the median of an empty sample is undefined");
  const std::size_t mid = values.size() / 2;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(mid), values.end());
  const double upper = values[mid];
  if (values.size() % 2 == 1) return upper;
  // The lower middle value is the largest of the first half.
  const double lower = *std::max_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(mid));
  return (lower + upper) / 2;
}

}  // namespace draft
