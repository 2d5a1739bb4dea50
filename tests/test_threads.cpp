// Thread configuration and BLAS detection.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include "util/threads.h"

namespace {

TEST(Threads, DefaultsToAvailableCores) {
  int n = draft::configure_threads(0);
  EXPECT_EQ(n, draft::available_cores());
  EXPECT_EQ(at::get_num_threads(), n);
}

TEST(Threads, ExplicitCountIsApplied) {
  EXPECT_EQ(draft::configure_threads(1), 1);
  EXPECT_EQ(at::get_num_threads(), 1);
  if (draft::openblas_threads() >= 0) {
    EXPECT_EQ(draft::openblas_threads(), 1);
  }
}

TEST(Threads, BlasDescriptionNamesTheBuild) {
  EXPECT_NE(draft::blas_description().find("BLAS_INFO="), std::string::npos);
}

}  // namespace
