// draft launch: torchrun's variables, the plan's checks naming the flag, and the supervisor with real
// processes (this test binary started by launch_local, running one DISABLED_ worker test) and via the CLI.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "cli_runner.h"
#include "support.h"
#include "train/local_launch.h"

namespace {

using draft::test::expect_error;
using draft::test::run_cli;
using Env = std::map<std::string, std::string>;

// The folder a worker reports to, passed down through the environment the launcher copies to the ranks.
constexpr const char* kReportDirVariable = "DRAFT_TEST_LAUNCH_DIR";

Env as_map(const std::vector<std::pair<std::string, std::string>>& pairs) { return Env(pairs.begin(), pairs.end()); }

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Sets (or, for nullptr, unsets) an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    value ? setenv(name, value, 1) : unsetenv(name);
  }
  ~ScopedEnv() { old_ ? setenv(name_.c_str(), old_->c_str(), 1) : unsetenv(name_.c_str()); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

int count(const std::string& text, const std::string& part) {
  int n = 0;
  for (auto pos = text.find(part); pos != std::string::npos; pos = text.find(part, pos + 1)) ++n;
  return n;
}

// Runs this binary's worker test `name` as `nproc` ranks through launch_local.
int launch_worker(const std::string& name, int nproc = 2) {
  draft::LaunchPlan plan;
  plan.nproc = nproc;
  return draft::launch_local(plan, {"--gtest_filter=LaunchWorker.DISABLED_" + name, "--gtest_also_run_disabled_tests"});
}

TEST(LocalLaunch, TorchrunEnvironmentOfTheSecondRankOfTheSecondNode) {
  ScopedEnv omp("OMP_NUM_THREADS", nullptr);
  draft::LaunchPlan plan;
  plan.nproc = 2;
  plan.nnodes = 2;
  plan.node_rank = 1;
  plan.master_addr = "10.0.0.1";
  plan.master_port = 29501;
  const Env env = as_map(draft::torchrun_environment(plan, 1));
  const Env expected = {{"RANK", "3"},
                        {"LOCAL_RANK", "1"},
                        {"WORLD_SIZE", "4"},
                        {"LOCAL_WORLD_SIZE", "2"},
                        {"GROUP_RANK", "1"},
                        {"GROUP_WORLD_SIZE", "2"},
                        {"ROLE_RANK", "3"},
                        {"ROLE_WORLD_SIZE", "4"},
                        {"ROLE_NAME", "default"},
                        {"MASTER_ADDR", "10.0.0.1"},
                        {"MASTER_PORT", "29501"},
                        {"TORCHELASTIC_RESTART_COUNT", "0"},
                        {"TORCHELASTIC_MAX_RESTARTS", "0"},
                        {"TORCHELASTIC_RUN_ID", "none"},
                        {"TORCHELASTIC_USE_AGENT_STORE", "False"},
                        {"OMP_NUM_THREADS", "1"}};
  for (const auto& [name, value] : expected) {
    ASSERT_TRUE(env.count(name)) << name;
    EXPECT_EQ(env.at(name), value) << name;
  }
}

TEST(LocalLaunch, OmpNumThreadsOnlyWhenUnsetAndSeveralRanks) {
  draft::LaunchPlan plan;
  {
    ScopedEnv omp("OMP_NUM_THREADS", nullptr);
    EXPECT_FALSE(as_map(draft::torchrun_environment(plan, 0)).count("OMP_NUM_THREADS"));  // one rank: all cores
  }
  plan.nproc = 2;
  ScopedEnv omp("OMP_NUM_THREADS", "3");
  EXPECT_FALSE(as_map(draft::torchrun_environment(plan, 0)).count("OMP_NUM_THREADS"));  // the ranks inherit 3
}

TEST(LocalLaunch, PlanErrorsNameTheFlag) {
  auto error_of = [](auto change) {
    draft::LaunchPlan plan;
    change(plan);
    return expect_error([&] { plan.validate(); });
  };
  EXPECT_NE(error_of([](auto& p) { p.nproc = 0; }).find("--nproc must be at least 1, got 0"), std::string::npos);
  EXPECT_NE(error_of([](auto& p) { p.nnodes = 0; }).find("--nnodes"), std::string::npos);
  EXPECT_NE(error_of([](auto& p) { p.node_rank = 1; }).find("--node-rank must be in [0, 0]"), std::string::npos);
  EXPECT_NE(error_of([](auto& p) { p.node_rank = -1; }).find("--node-rank"), std::string::npos);
  EXPECT_NE(error_of([](auto& p) { p.master_port = 0; }).find("--master-port must be in [1, 65535], got 0"),
            std::string::npos);
  EXPECT_NE(error_of([](auto& p) { p.master_port = 70000; }).find("--master-port"), std::string::npos);
  EXPECT_NE(error_of([](auto& p) { p.master_addr = ""; }).find("--master-addr"), std::string::npos);
  draft::LaunchPlan plan;
  plan.nproc = 2;
  EXPECT_NE(expect_error([&] { draft::torchrun_environment(plan, 2); }).find("local rank 2"), std::string::npos);
  EXPECT_NE(expect_error([&] { draft::launch_local(plan, {}); }).find("after '--'"), std::string::npos);
}

// Workers: run only as ranks started by the tests below (DISABLED_: not run by ctest itself).
TEST(LaunchWorker, DISABLED_ReportEnvironment) {
  const char* dir = std::getenv(kReportDirVariable);
  ASSERT_NE(dir, nullptr);
  std::ofstream out(std::string(dir) + "/rank" + std::getenv("RANK") + ".env");
  for (const char* name : {"RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_PORT", "OMP_NUM_THREADS"}) {
    const char* value = std::getenv(name);
    out << name << '=' << (value ? value : "(unset)") << '\n';
  }
}

TEST(LaunchWorker, DISABLED_RankZeroIsKilledRankOneHangs) {
  if (std::string(std::getenv("RANK")) == "0") raise(SIGKILL);
  std::this_thread::sleep_for(std::chrono::seconds(60));
}

TEST(LaunchWorker, DISABLED_ReportStartThenHang) {
  std::ofstream(std::string(std::getenv(kReportDirVariable)) + "/started" + std::getenv("RANK"));
  std::this_thread::sleep_for(std::chrono::seconds(60));
}

TEST(LocalLaunch, RanksGetTheirOwnVariablesOverTheParents) {
  draft::test::TempDir dir;
  ScopedEnv report(kReportDirVariable, dir.path().c_str());
  ScopedEnv rank("RANK", "7");  // the launcher's own variables must not leak into the ranks
  ScopedEnv omp("OMP_NUM_THREADS", nullptr);
  ASSERT_EQ(launch_worker("ReportEnvironment"), 0);
  for (int r = 0; r < 2; ++r) {
    const std::string text = draft::test::slurp(dir.file("rank" + std::to_string(r) + ".env"));
    EXPECT_NE(text.find("RANK=" + std::to_string(r) + "\n"), std::string::npos) << text;
    EXPECT_NE(text.find("LOCAL_RANK=" + std::to_string(r)), std::string::npos) << text;
    EXPECT_NE(text.find("WORLD_SIZE=2"), std::string::npos) << text;
    EXPECT_NE(text.find("MASTER_PORT=29500"), std::string::npos) << text;
    EXPECT_NE(text.find("OMP_NUM_THREADS=1"), std::string::npos) << text;
  }
}

TEST(LocalLaunch, ARankKilledByASignalStopsTheOthersAndGives128PlusTheSignal) {
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(launch_worker("RankZeroIsKilledRankOneHangs"), 128 + SIGKILL);
  EXPECT_LT(seconds_since(start), 8.0);  // well before the 10 s SIGKILL: SIGTERM stopped rank 1
}

TEST(LocalLaunch, SigtermToTheLauncherReachesTheRanks) {
  draft::test::TempDir dir;
  ScopedEnv report(kReportDirVariable, dir.path().c_str());
  // The signal goes out once both ranks run, so the launcher's handler (set before the first spawn) is in place.
  std::thread sender([&] {
    const auto start = std::chrono::steady_clock::now();
    while (seconds_since(start) < 20 && !(std::filesystem::exists(dir.file("started0")) &&
                                          std::filesystem::exists(dir.file("started1")))) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    kill(getpid(), SIGTERM);
  });
  const auto start = std::chrono::steady_clock::now();
  const int code = launch_worker("ReportStartThenHang");
  sender.join();
  EXPECT_EQ(code, 128 + SIGTERM);
  EXPECT_LT(seconds_since(start), 8.0);
}

// The CLI tests start few processes: each draft process spends about 0.5 s loading LibTorch.
TEST(LocalLaunch, CliPassesEverythingAfterTheSeparatorToEachRank) {
  const draft::test::CliRun r = run_cli("launch --nproc 2 -- --threads 1 config finetune");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(count(r.out, "\"out_dir\""), 2) << r.out;  // one config from each rank
}

TEST(LocalLaunch, CliFailingRanksEndTheLaunchWithOneLine) {
  const auto start = std::chrono::steady_clock::now();
  // "--nproc" after "--" is the ranks' (which have no such flag), not the launcher's.
  const draft::test::CliRun r = run_cli("launch --nproc 2 -- --nproc 3 no-such-command");
  EXPECT_LT(seconds_since(start), 10.0);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_EQ(count(r.err, "draft launch: rank "), 1) << r.err;
  EXPECT_NE(r.err.find("exited with code 2"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--nproc"), std::string::npos) << r.err;  // the ranks' own one-line usage errors
}

TEST(LocalLaunch, CliWithoutArgumentsSaysWhatToWrite) {
  const draft::test::CliRun r = run_cli("launch --nproc 2");
  EXPECT_TRUE(r.code == 1 || r.code == 2) << r.code;
  EXPECT_EQ(count(r.err, "\n"), 1) << r.err;
  EXPECT_NE(r.err.find("after '--'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("draft launch --nproc 2 -- finetune"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

}  // namespace
