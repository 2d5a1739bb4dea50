// Small statistics for reports: correlations of paired samples (the JPEG proxy's agreement with the true
// size) and medians (benchmark tables over seeds).
#pragma once

#include <vector>

namespace draft {

/// Pearson's correlation coefficient of two equally long samples (at least 2 values, neither constant).
double pearson_correlation(const std::vector<double>& a, const std::vector<double>& b);

/// Ranks 0..n-1 of the values, ties sharing the mean of their ranks.
std::vector<double> ranks_with_ties(const std::vector<double>& values);

/// Spearman's rank correlation: Pearson's correlation of the tie-averaged ranks.
double spearman_correlation(const std::vector<double>& a, const std::vector<double>& b);

/// The median of a non-empty sample (the mean of the two middle values for an even count).
double median(std::vector<double> values);

}  // namespace draft
