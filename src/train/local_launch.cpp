// `draft launch` (see local_launch.h): the ranks' environment, posix_spawn, and a supervisor that polls the
// ranks, so that neither a dead rank nor one stuck in a collective with a dead peer can hang the launcher.
#include "train/local_launch.h"

#include <signal.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>
#include <set>
#include <thread>

#include "util/error.h"
#include "util/log.h"

extern char** environ;

namespace draft {
namespace {

// How long ranks that were asked to stop get before SIGKILL.
constexpr auto kStopGrace = std::chrono::seconds(10);
// How often the supervisor looks at the ranks: short enough that a failure stops the others at once.
constexpr auto kPollInterval = std::chrono::milliseconds(10);

volatile std::sig_atomic_t g_received_signal = 0;

extern "C" void remember_signal(int sig) { g_received_signal = sig; }

// SIGINT and SIGTERM are remembered (and passed on to the ranks by the supervisor) instead of killing the
// launcher first, which would leave the ranks running without anyone to stop them. The previous handlers
// come back when the launch ends.
class SignalCatcher {
 public:
  SignalCatcher() {
    g_received_signal = 0;
    struct sigaction action {};
    action.sa_handler = remember_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &old_int_);
    sigaction(SIGTERM, &action, &old_term_);
  }
  ~SignalCatcher() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  SignalCatcher(const SignalCatcher&) = delete;
  SignalCatcher& operator=(const SignalCatcher&) = delete;

  /// The signal received since the last call, or 0.
  int take() {
    int sig = g_received_signal;
    g_received_signal = 0;
    return sig;
  }

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

std::string signal_text(int sig) {
  const char* name = strsignal(sig);
  return str_cat("signal ", sig, name ? str_cat(" (", name, ")") : "");
}

// The ranks of this node: waits for them, and stops them all when one fails or the launcher is signalled.
class RankSupervisor {
 public:
  void add(int rank, pid_t pid) { ranks_.push_back({rank, pid, true}); }

  /// Sends `sig` to the ranks still running; those alive kStopGrace after the first stop get SIGKILL.
  void stop(int sig) {
    for (const auto& r : ranks_) {
      if (r.alive) kill(r.pid, sig);
    }
    if (!kill_at_) kill_at_ = std::chrono::steady_clock::now() + kStopGrace;
  }

  /// Waits until every rank has exited; returns 0 or the first failure's exit code.
  int wait(SignalCatcher& signals) {
    while (alive() > 0) {
      if (int sig = signals.take()) {
        if (!kill_at_) std::cerr << "draft launch: got " << signal_text(sig) << "; passing it on to the ranks\n";
        stop(sig);
      }
      reap();
      if (kill_at_ && !killed_ && std::chrono::steady_clock::now() >= *kill_at_) {
        stop(SIGKILL);
        killed_ = true;
      }
      if (alive() > 0) std::this_thread::sleep_for(kPollInterval);
    }
    return first_failure_.value_or(0);
  }

 private:
  struct Rank {
    int rank;
    pid_t pid;
    bool alive;
  };

  int alive() const {
    int n = 0;
    for (const auto& r : ranks_) n += r.alive ? 1 : 0;
    return n;
  }

  void reap() {
    for (auto& r : ranks_) {
      if (!r.alive) continue;
      int status = 0;
      pid_t done = waitpid(r.pid, &status, WNOHANG);
      if (done == 0 || (done < 0 && errno == EINTR)) continue;
      r.alive = false;
      if (done < 0) {  // not our child any more (reaped elsewhere): its exit code is lost
        failed(r, 1, str_cat("was lost (waitpid: ", std::strerror(errno), ")"));
      } else if (WIFSIGNALED(status)) {
        failed(r, 128 + WTERMSIG(status), str_cat("was killed by ", signal_text(WTERMSIG(status))));
      } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
        failed(r, WEXITSTATUS(status), str_cat("exited with code ", WEXITSTATUS(status)));
      }
    }
  }

  // The first failure is reported and stops the others; later ones are mostly the stop itself.
  void failed(const Rank& r, int code, const std::string& what) {
    if (first_failure_) return;
    first_failure_ = code;
    if (kill_at_) return;  // already stopping (the launcher was signalled): the rank's exit is the expected one
    const bool others = alive() > 0;
    std::cerr << "draft launch: rank " << r.rank << " (pid " << r.pid << ") " << what
              << (others ? "; stopping the other ranks" : "") << '\n';
    if (others) stop(SIGTERM);
  }

  std::vector<Rank> ranks_;
  std::optional<int> first_failure_;
  std::optional<std::chrono::steady_clock::time_point> kill_at_;
  bool killed_ = false;
};

// This process's environment with `overrides` replacing same-named variables, as NAME=VALUE strings.
std::vector<std::string> merged_environment(const std::vector<std::pair<std::string, std::string>>& overrides) {
  std::set<std::string> replaced;
  for (const auto& [name, value] : overrides) replaced.insert(name);
  std::vector<std::string> env;
  for (char** entry = environ; entry && *entry; ++entry) {
    const std::string text = *entry;
    if (!replaced.count(text.substr(0, text.find('=')))) env.push_back(text);
  }
  for (const auto& [name, value] : overrides) env.push_back(name + "=" + value);
  return env;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

void LaunchPlan::validate() const {
  DRAFT_CHECK(nproc >= 1, "--nproc must be at least 1, got ", nproc);
  DRAFT_CHECK(nnodes >= 1, "--nnodes must be at least 1, got ", nnodes);
  DRAFT_CHECK(static_cast<long long>(nproc) * nnodes <= INT_MAX, "--nnodes x --nproc must be at most ", INT_MAX,
              ", got ", nnodes, " x ", nproc);
  DRAFT_CHECK(node_rank >= 0 && node_rank < nnodes, "--node-rank must be in [0, ", nnodes - 1, "] for --nnodes ",
              nnodes, ", got ", node_rank);
  DRAFT_CHECK(!master_addr.empty(), "--master-addr must not be empty: give node 0's host name or IP address");
  DRAFT_CHECK(master_port >= 1 && master_port <= 65535, "--master-port must be in [1, 65535], got ", master_port);
}

std::vector<std::pair<std::string, std::string>> torchrun_environment(const LaunchPlan& plan, int local_rank) {
  plan.validate();
  DRAFT_CHECK(local_rank >= 0 && local_rank < plan.nproc, "local rank ", local_rank, " is outside [0, ",
              plan.nproc - 1, "] for --nproc ", plan.nproc);
  const std::string rank = std::to_string(plan.node_rank * plan.nproc + local_rank);
  const std::string world_size = std::to_string(plan.nnodes * plan.nproc);
  std::vector<std::pair<std::string, std::string>> env = {
      {"RANK", rank},
      {"LOCAL_RANK", std::to_string(local_rank)},
      {"WORLD_SIZE", world_size},
      {"LOCAL_WORLD_SIZE", std::to_string(plan.nproc)},
      {"GROUP_RANK", std::to_string(plan.node_rank)},
      {"GROUP_WORLD_SIZE", std::to_string(plan.nnodes)},
      {"ROLE_RANK", rank},  // one role, so the rank within it is the global rank
      {"ROLE_WORLD_SIZE", world_size},
      {"ROLE_NAME", "default"},
      {"MASTER_ADDR", plan.master_addr},
      {"MASTER_PORT", std::to_string(plan.master_port)},
      {"TORCHELASTIC_RESTART_COUNT", "0"},
      {"TORCHELASTIC_MAX_RESTARTS", "0"},
      {"TORCHELASTIC_RUN_ID", "none"},
      // torchrun's agent serves the store itself; we have no agent, so rank 0 must serve it.
      {"TORCHELASTIC_USE_AGENT_STORE", "False"},
  };
  // torchrun passes these on from its own environment, with these defaults when they are not set.
  if (!std::getenv("TORCH_NCCL_ASYNC_ERROR_HANDLING")) env.emplace_back("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1");
  // Several ranks with a thread per core each would overload the machine.
  if (plan.nproc > 1 && !std::getenv("OMP_NUM_THREADS")) env.emplace_back("OMP_NUM_THREADS", "1");
  return env;
}

int launch_local(const LaunchPlan& plan, const std::vector<std::string>& child_args) {
  plan.validate();
  DRAFT_CHECK(!child_args.empty(), "draft launch: no draft arguments after '--': write each rank's whole draft command "
                                   "line after '--', e.g. 'draft launch --nproc 2 -- finetune --config c.json'");
  std::error_code ec;
  const std::string exe = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  DRAFT_CHECK(!ec, "draft launch: cannot find the running executable (/proc/self/exe): ", ec.message());
  if (plan.nnodes > 1 && plan.master_addr == "127.0.0.1") {
    DRAFT_LOG_WARN("draft launch: --nnodes {} with --master-addr 127.0.0.1: the other nodes cannot reach it; "
                   "give every node the address of node 0",
                   plan.nnodes);
  }
  if (plan.nproc > 1 && !std::getenv("OMP_NUM_THREADS")) {
    DRAFT_LOG_INFO("draft launch: each rank gets OMP_NUM_THREADS=1 (as with torchrun); set OMP_NUM_THREADS or "
                   "pass --threads after '--' for more threads per rank");
  }

  SignalCatcher signals;
  RankSupervisor ranks;
  std::cout.flush();
  std::fflush(nullptr);
  for (int local_rank = 0; local_rank < plan.nproc; ++local_rank) {
    std::vector<std::string> args = {exe};
    args.insert(args.end(), child_args.begin(), child_args.end());
    std::vector<std::string> env = merged_environment(torchrun_environment(plan, local_rank));
    std::vector<char*> argv = c_strings(args);
    std::vector<char*> envp = c_strings(env);
    pid_t pid = 0;
    // /proc/self/exe in the new process is still this executable, even when the file was replaced since.
    const int error = posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv.data(), envp.data());
    const int rank = plan.node_rank * plan.nproc + local_rank;
    if (error != 0) {
      ranks.stop(SIGTERM);
      ranks.wait(signals);
      fail("draft launch: could not start rank ", rank, " (", exe, "): ", std::strerror(error));
    }
    ranks.add(rank, pid);
  }
  return ranks.wait(signals);
}

}  // namespace draft
