// Thread configuration and BLAS detection.
#include <stdlib.h>

#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include "util/threads.h"

namespace {

TEST(Threads, DefaultsToAvailableCores) {
  unsetenv("OMP_NUM_THREADS");
  int n = draft::configure_threads(0);
  EXPECT_EQ(n, draft::available_cores());
  EXPECT_EQ(at::get_num_threads(), n);
}

TEST(Threads, DefaultIsOmpNumThreadsWhenSet) {
  // What torchrun and draft launch give each of several ranks on one machine.
  setenv("OMP_NUM_THREADS", "3", 1);
  EXPECT_EQ(draft::configure_threads(0), 3);
  EXPECT_EQ(at::get_num_threads(), 3);
  EXPECT_EQ(draft::configure_threads(2), 2);  // --threads wins
  for (const char* bad : {"", "0", "-2", "four", "4x", "99999999999"}) {
    setenv("OMP_NUM_THREADS", bad, 1);
    EXPECT_EQ(draft::configure_threads(0), draft::available_cores()) << "'" << bad << "'";
  }
  unsetenv("OMP_NUM_THREADS");
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
