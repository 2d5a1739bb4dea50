// Pearson and Spearman correlations and medians against hand-computed values.
#include <gtest/gtest.h>

#include "support.h"
#include "util/statistics.h"

namespace {

TEST(Statistics, PearsonOfLinearAndAntiLinearSamples) {
  EXPECT_NEAR(draft::pearson_correlation({1, 2, 3, 4}, {3, 5, 7, 9}), 1.0, 1e-12);
  EXPECT_NEAR(draft::pearson_correlation({1, 2, 3, 4}, {4, 3, 2, 1}), -1.0, 1e-12);
  // x = (1,2,3), y = (1,3,2): cov 0.5, var 1 each -> 0.5.
  EXPECT_NEAR(draft::pearson_correlation({1, 2, 3}, {1, 3, 2}), 0.5, 1e-12);
}

TEST(Statistics, SpearmanUsesRanksAndAveragesTies) {
  EXPECT_NEAR(draft::spearman_correlation({1, 10, 100, 1000}, {1, 2, 3, 4}), 1.0, 1e-12);
  EXPECT_EQ(draft::ranks_with_ties({5, 1, 5, 3}), (std::vector<double>{2.5, 0, 2.5, 1}));
  EXPECT_NE(draft::test::expect_error([] { draft::spearman_correlation({1, 1}, {1, 2}); }).find("constant"),
            std::string::npos);
}

TEST(Statistics, MedianOfOddAndEvenCounts) {
  EXPECT_EQ(draft::median({3, 1, 2}), 2);
  EXPECT_EQ(draft::median({4, 1, 3, 2}), 2.5);
  EXPECT_EQ(draft::median({-7}), -7);
  EXPECT_NE(draft::test::expect_error([] { draft::median({}); }).find("empty"), std::string::npos);
}

}  // namespace
