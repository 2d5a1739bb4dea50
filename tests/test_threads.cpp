// Thread configuration and BLAS detection.
#include <stdlib.h>

#include <chrono>
#include <thread>

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

// The measured choice: work that is slower with more threads gets 1 thread, work that is faster keeps all,
// and 1 must win by 5% (20 ms against 19 keeps all). The work sleeps, so the outcome does not depend on
// the machine.
TEST(Threads, TimingPicksTheFasterThreadCount) {
  auto sleeping = [](double ms_one, double ms_many) {
    return [=] {
      const double ms = at::get_num_threads() == 1 ? ms_one : ms_many;
      std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int64_t>(ms * 1000)));
    };
  };
  EXPECT_EQ(draft::choose_threads_by_timing(sleeping(2.0, 8.0), 2), 1);
  EXPECT_EQ(at::get_num_threads(), 1);
  EXPECT_EQ(draft::choose_threads_by_timing(sleeping(8.0, 2.0), 2), 2);
  EXPECT_EQ(at::get_num_threads(), 2);
  EXPECT_EQ(draft::choose_threads_by_timing(sleeping(20.0, 19.0), 2), 2);
  EXPECT_EQ(draft::choose_threads_by_timing(sleeping(5.0, 1.0), 1), 1);  // one core: nothing to choose
  draft::configure_threads(3);
  EXPECT_TRUE(draft::threads_chosen_by_user());
  unsetenv("OMP_NUM_THREADS");
  draft::configure_threads(0);
  EXPECT_FALSE(draft::threads_chosen_by_user());
}

TEST(Threads, BlasDescriptionNamesTheBuild) {
  EXPECT_NE(draft::blas_description().find("BLAS_INFO="), std::string::npos);
}

}  // namespace
