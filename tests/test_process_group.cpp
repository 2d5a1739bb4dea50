// The process group on c10d (Gloo over localhost): the launcher's environment, collectives between two real
// processes (this test binary started twice by posix_spawn, as a launcher would), and a rank that never
// arrives failing within the timeout instead of hanging.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/torch.h>

#include "process_spawn.h"
#include "support.h"
#include "train/process_group.h"

namespace {

using draft::test::expect_error;
using draft::test::free_port;
using draft::test::wait_for;

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

TEST(DistributedEnv, ReadsTorchrunAndSlurmVariables) {
  EXPECT_FALSE(draft::read_distributed_env(env_of({})).launched);
  auto env = draft::read_distributed_env(env_of({{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"},
                                                 {"LOCAL_WORLD_SIZE", "2"}, {"MASTER_ADDR", "10.0.0.5"},
                                                 {"MASTER_PORT", "29511"}, {"TORCHELASTIC_USE_AGENT_STORE", "True"},
                                                 {"TORCHELASTIC_RESTART_COUNT", "2"}}));
  EXPECT_TRUE(env.launched);
  EXPECT_EQ(env.source, "torchrun");
  EXPECT_EQ(env.rank, 3);
  EXPECT_EQ(env.world_size, 4);
  EXPECT_EQ(env.local_rank, 1);
  EXPECT_EQ(env.local_world_size, 2);
  EXPECT_EQ(env.master_addr, "10.0.0.5");
  EXPECT_EQ(env.master_port, 29511);
  EXPECT_TRUE(env.agent_store);
  EXPECT_EQ(env.restart_count, 2);
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
  EXPECT_EQ(group->broadcast(r == 0 ? std::string("from rank 0") : std::string("other")), "from rank 0");
  const at::Tensor highest = torch::full({2}, r, torch::kFloat);
  group->all_reduce_max({highest});
  EXPECT_TRUE(torch::equal(highest, torch::full({2}, 1.0f)));
  group->barrier();
}

pid_t spawn_worker(int rank, int port, const std::string& log, std::map<std::string, std::string> extra = {}) {
  auto env = draft::test::rank_env(rank, 2, port);
  env.insert(extra.begin(), extra.end());
  return draft::test::spawn_process({"/proc/self/exe", "--gtest_filter=ProcessGroupWorker.DISABLED_Collectives",
                                     "--gtest_also_run_disabled_tests"},
                                    env, log);
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

// Under torchrun the agent serves the store and sets TORCHELASTIC_USE_AGENT_STORE=True: here the test is
// the agent. Rank 0 must then connect as a client: serving the port itself would fail, the agent holds it.
TEST(ProcessGroup, RanksUseTheStoreOfTorchrunsAgent) {
  draft::test::TempDir dir;
  const int port = free_port();
  c10d::TCPStoreOptions options;
  options.port = static_cast<std::uint16_t>(port);
  options.isServer = true;
  options.waitWorkers = false;
  options.timeout = std::chrono::seconds(60);
  auto agent_store = c10::make_intrusive<c10d::TCPStore>("127.0.0.1", options);
  const std::map<std::string, std::string> agent = {{"TORCHELASTIC_USE_AGENT_STORE", "True"},
                                                    {"TORCHELASTIC_RESTART_COUNT", "1"}};
  const pid_t a = spawn_worker(0, port, dir.file("rank0.log"), agent);
  const pid_t b = spawn_worker(1, port, dir.file("rank1.log"), agent);
  ASSERT_GT(a, 0);
  ASSERT_GT(b, 0);
  EXPECT_EQ(wait_for(a, 60), 0) << read_text(dir.file("rank0.log"));
  EXPECT_EQ(wait_for(b, 60), 0) << read_text(dir.file("rank1.log"));
  EXPECT_GT(agent_store->getNumKeys(), 0);  // the ranks' rendezvous went through the agent's store
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

// A port another program holds: rank 0 cannot serve the store there and says so, at once.
TEST(ProcessGroup, ABusyMasterPortIsOneClearLine) {
  const int holder = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  addr.sin_port = 0;
  ASSERT_EQ(bind(holder, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(holder, 1), 0);
  socklen_t len = sizeof(addr);
  getsockname(holder, reinterpret_cast<sockaddr*>(&addr), &len);
  draft::DistributedEnv env;
  env.launched = true;
  env.world_size = 2;
  env.master_port = ntohs(addr.sin_port);
  const auto start = std::chrono::steady_clock::now();
  const std::string m = expect_error([&] { draft::ProcessGroup::join(env, std::chrono::milliseconds(3000)); });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  close(holder);
  EXPECT_NE(m.find("already in use"), std::string::npos) << m;
  EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  EXPECT_LT(seconds, 10.0) << m;
  std::printf("busy MASTER_PORT: failed after %.1f s: %s\n", seconds, m.c_str());
}

// Rank 1 with nobody serving MASTER_ADDR:MASTER_PORT: one line naming the master, within the timeout.
TEST(ProcessGroup, AnUnreachableMasterIsOneClearLine) {
  draft::DistributedEnv env;
  env.launched = true;
  env.rank = 1;
  env.world_size = 2;
  env.master_port = free_port();
  const auto start = std::chrono::steady_clock::now();
  const std::string m = expect_error([&] { draft::ProcessGroup::join(env, std::chrono::milliseconds(2000)); });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_NE(m.find("reaching the master"), std::string::npos) << m;
  EXPECT_NE(m.find("127.0.0.1:" + std::to_string(env.master_port)), std::string::npos) << m;
  EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  EXPECT_LT(seconds, 30.0) << m;
  std::printf("unreachable master: failed after %.1f s: %s\n", seconds, m.c_str());
}

TEST(ProcessGroup, TheOneProcessGroupReturnsItsInputs) {
  auto group = draft::ProcessGroup::single();
  EXPECT_EQ(group->size(), 1);
  EXPECT_TRUE(group->is_main());
  const at::Tensor t = torch::arange(4, torch::kFloat);
  group->all_reduce_mean({t});
  group->all_reduce_sum({t});
  group->all_reduce_max({t});
  group->broadcast({t});
  EXPECT_TRUE(torch::equal(t, torch::arange(4, torch::kFloat)));
  EXPECT_EQ(group->broadcast(std::string("text")), "text");
  EXPECT_DOUBLE_EQ(group->all_reduce_sum(2.5), 2.5);
}

TEST(DistBackend, AutoPicksGlooOnTheCpuAndNcclNeedsCuda) {
  EXPECT_EQ(draft::resolve_dist_backend("auto", "cpu"), draft::DistBackend::kGloo);
  EXPECT_EQ(draft::resolve_dist_backend("gloo", "cuda"), draft::DistBackend::kGloo);
  EXPECT_NE(expect_error([] { draft::resolve_dist_backend("nccl", "cpu"); }).find("gloo"), std::string::npos);
  EXPECT_NE(expect_error([] { draft::resolve_dist_backend("mpi", "cpu"); }).find("auto, gloo, nccl"),
            std::string::npos);
}

}  // namespace
