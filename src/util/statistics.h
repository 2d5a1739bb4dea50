// Correlations of paired samples, for reports such as the JPEG proxy's agreement with the true size.
#pragma once

#include <vector>

namespace draft {

/// Pearson's correlation coefficient of two equally long samples (at least 2 values, neither constant).
double pearson_correlation(const std::vector<double>& a, const std::vector<double>& b);

/// Ranks 0..n-1 of the values, ties sharing the mean of their ranks.
std::vector<double> ranks_with_ties(const std::vector<double>& values);

/// Spearman's rank correlation: Pearson's correlation of the tie-averaged ranks.
double spearman_correlation(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace draft
