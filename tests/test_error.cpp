// draft::Error and DRAFT_CHECK.
#include <gtest/gtest.h>

#include "util/error.h"

namespace {

TEST(Error, CheckThrowsWithConcatenatedMessage) {
  try {
    int k = 7;
    DRAFT_CHECK(k < 5, "method.k must be in [1, ", 5, "], got ", k);
    FAIL() << "DRAFT_CHECK did not throw";
  } catch (const draft::Error& e) {
    EXPECT_STREQ(e.what(), "method.k must be in [1, 5], got 7");
  }
}

TEST(Error, CheckEvaluatesMessageOnlyOnFailure) {
  int evaluated = 0;
  auto part = [&] { return ++evaluated; };
  DRAFT_CHECK(true, "never ", part());
  EXPECT_EQ(evaluated, 0);
  EXPECT_THROW(DRAFT_CHECK(false, "now ", part()), draft::Error);
  EXPECT_EQ(evaluated, 1);
}

TEST(Error, IsARuntimeError) {
  EXPECT_THROW(draft::fail("x"), std::runtime_error);
}

}  // namespace
