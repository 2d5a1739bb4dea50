// The process group on c10d (Gloo over localhost): the launcher's environment, collectives between two real
// processes (this test binary started twice by posix_spawn, as a launcher would), and a rank that never
// arrives failing within the timeout instead of hanging.
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "support.h"
#include "train/process_group.h"

extern char** environ;

namespace {

using draft::test::expect_error;

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::function<const char*(const char*)> env_of(const std::map<std::string, std::string>& vars) {
  return [vars](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

// A TCP port that was free a moment ago (bound to port 0, then closed).
int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

TEST(DistributedEnv, ReadsTorchrunAndSlurmVariables) {
  EXPECT_FALSE(draft::read_distributed_env(env_of({})).launched);
  auto env = draft::read_distributed_env(env_of({{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"},
                                                 {"LOCAL_WORLD_SIZE", "2"}, {"MASTER_ADDR", "10.0.0.5"},
                                                 {"MASTER_PORT", "29511"}, {"TORCHELASTIC_USE_AGENT_STORE", "True"}}));
  EXPECT_TRUE(env.launched);
  EXPECT_EQ(env.source, "torchrun");
  EXPECT_EQ(env.rank, 3);
  EXPECT_EQ(env.world_size, 4);
  EXPECT_EQ(env.local_rank, 1);
  EXPECT_EQ(env.local_world_size, 2);
  EXPECT_EQ(env.master_addr, "10.0.0.5");
  EXPECT_EQ(env.master_port, 29511);
  EXPECT_TRUE(env.agent_store);
  env = draft::read_distributed_env(env_of({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "1"},
                                            {"MASTER_ADDR", "node1"}, {"MASTER_PORT", "29600"}}));
  EXPECT_EQ(env.source, "slurm");
  EXPECT_EQ(env.rank, 5);
  EXPECT_EQ(env.world_size, 8);
  EXPECT_EQ(env.local_rank, 1);
}

TEST(DistributedEnv, ErrorsNameTheVariable) {
  EXPECT_NE(expect_error([] { draft::read_distributed_env(env_of({{"RANK", "0"}})); }).find("WORLD_SIZE"),
            std::string::npos);
  EXPECT_NE(expect_error([] { draft::read_distributed_env(env_of({{"RANK", "2"}, {"WORLD_SIZE", "2"}})); })
                .find("RANK='2' must be an integer in [0, 1]"),
            std::string::npos);
  EXPECT_NE(expect_error([] {
              draft::read_distributed_env(env_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "http"}}));
            }).find("MASTER_PORT"),
            std::string::npos);
  EXPECT_NE(expect_error([] { draft::read_distributed_env(env_of({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}})); })
                .find("MASTER_ADDR"),
            std::string::npos);
}

// Run only as a child of TwoProcessesAgreeOnEveryCollective (DISABLED_: not run by ctest itself).
TEST(ProcessGroupWorker, DISABLED_Collectives) {
  const draft::DistributedEnv env = draft::read_distributed_env();
  ASSERT_TRUE(env.launched);
  auto group = draft::ProcessGroup::join(env, std::chrono::milliseconds(20000));
  ASSERT_EQ(group->size(), 2);
  const double r = group->rank();
  // Two tensors of different shapes, reduced in one flat buffer: the mean of (r + 1) * base is 1.5 * base.
  std::vector<at::Tensor> grads = {torch::arange(6, torch::kFloat).view({2, 3}) * (r + 1),
                                   torch::full({4}, 10.0f) * (r + 1)};
  group->all_reduce_mean(grads);
  EXPECT_TRUE(torch::allclose(grads[0], torch::arange(6, torch::kFloat).view({2, 3}) * 1.5));
  EXPECT_TRUE(torch::allclose(grads[1], torch::full({4}, 15.0f)));
  EXPECT_DOUBLE_EQ(group->all_reduce_sum(r + 1), 3.0);
  std::vector<at::Tensor> weights = {torch::full({3}, r)};
  group->broadcast(weights, 0);
  EXPECT_TRUE(torch::equal(weights[0], torch::zeros({3})));
  group->barrier();
}

pid_t spawn_worker(int rank, int port, const std::string& log) {
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  for (const std::string& v : {"RANK=" + std::to_string(rank), std::string("WORLD_SIZE=2"),
                               "LOCAL_RANK=" + std::to_string(rank), std::string("LOCAL_WORLD_SIZE=2"),
                               std::string("MASTER_ADDR=127.0.0.1"), "MASTER_PORT=" + std::to_string(port)}) {
    env_strings.push_back(v);
  }
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string exe = "/proc/self/exe", filter = "--gtest_filter=ProcessGroupWorker.DISABLED_Collectives",
              disabled = "--gtest_also_run_disabled_tests";
  std::vector<char*> argv = {exe.data(), filter.data(), disabled.data(), nullptr};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, exe.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

// The exit status of `pid`, or -1 after `seconds` (the child is then killed).
int wait_for(pid_t pid, int seconds) {
  for (int i = 0; i < seconds * 10; ++i) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  return -1;
}

TEST(ProcessGroup, TwoProcessesAgreeOnEveryCollective) {
  draft::test::TempDir dir;
  const int port = free_port();
  const pid_t a = spawn_worker(0, port, dir.file("rank0.log"));
  const pid_t b = spawn_worker(1, port, dir.file("rank1.log"));
  ASSERT_GT(a, 0);
  ASSERT_GT(b, 0);
  EXPECT_EQ(wait_for(a, 60), 0) << read_text(dir.file("rank0.log"));
  EXPECT_EQ(wait_for(b, 60), 0) << read_text(dir.file("rank1.log"));
}

TEST(ProcessGroup, ARankThatNeverArrivesFailsWithinTheTimeout) {
  draft::DistributedEnv env;
  env.launched = true;
  env.world_size = 2;
  env.master_port = free_port();
  const auto start = std::chrono::steady_clock::now();
  const std::string m = expect_error([&] { draft::ProcessGroup::join(env, std::chrono::milliseconds(2000)); });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_NE(m.find("rank 0 of 2"), std::string::npos) << m;
  EXPECT_LT(seconds, 30.0) << m;
  std::printf("lone rank 0 of 2: failed after %.1f s: %s\n", seconds, m.c_str());
}

}  // namespace
