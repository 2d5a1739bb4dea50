// The process group of a data-parallel run, on torch.distributed's c10d (never a transport of our own):
// the launcher's environment (torchrun: RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR,
// MASTER_PORT; SLURM: SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID), a c10d::TCPStore rendezvous, and a
// c10d::ProcessGroupGloo (CPU) or c10d::ProcessGroupNCCL (CUDA, in a CUDA LibTorch build). Without those
// variables a run is one process: ProcessGroup::single(), whose collectives return their inputs.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace draft {

/// Where this process sits in a launched run, read from the environment.
struct DistributedEnv {
  bool launched = false;   ///< the variables were set (else: one process, the fields below as for rank 0 of 1)
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  bool agent_store = false;  ///< TORCHELASTIC_USE_AGENT_STORE: torchrun's agent already serves the store
  int restart_count = 0;     ///< TORCHELASTIC_RESTART_COUNT: the agent's attempt (keys live under its prefix)
  std::string source;        ///< "torchrun", "slurm" or "" (for messages)
};

/// Reads torchrun's variables, else SLURM's (with MASTER_ADDR and MASTER_PORT), else returns a
/// not-launched env. `getenv` is the lookup (tests pass their own). Throws draft::Error naming the variable
/// that is missing or malformed (e.g. RANK set without WORLD_SIZE, RANK >= WORLD_SIZE, a port out of range).
DistributedEnv read_distributed_env(const std::function<const char*(const char*)>& getenv);
/// read_distributed_env on the process's environment.
DistributedEnv read_distributed_env();

/// The c10d backend of a group: "auto" is NCCL for a CUDA device (when this build has NCCL), else Gloo.
enum class DistBackend { kGloo, kNccl };

/// Parses "auto" | "gloo" | "nccl" for a run on `device` ("cpu", "cuda", "cuda:1"); "nccl" without NCCL in
/// this build, or for a CPU run, throws draft::Error saying to use gloo.
DistBackend resolve_dist_backend(const std::string& name, const std::string& device);

/// Whether this build's LibTorch has c10d's NCCL backend (a CUDA LibTorch built with NCCL).
bool nccl_available();

/// A joined c10d group, or the one-process group. All collectives block until every rank took part or
/// `timeout` passed; a timeout or a lost rank throws draft::Error naming the operation, never hangs. Each
/// collective reduces one flat buffer however many tensors it is given (one call on the wire per use).
class ProcessGroup {
 public:
  /// Joins the group: rank 0 serves the TCPStore at MASTER_ADDR:MASTER_PORT (unless the launcher's agent
  /// does), every rank connects, and the Gloo or NCCL group forms once WORLD_SIZE ranks arrived. Throws
  /// draft::Error with one line saying what failed (a busy port, an unreachable master, ranks that never
  /// arrived) within `timeout`.
  static std::unique_ptr<ProcessGroup> join(const DistributedEnv& env, std::chrono::milliseconds timeout,
                                            DistBackend backend = DistBackend::kGloo);
  /// The group of a process that was not launched as one of several: rank 0 of 1, collectives are no-ops.
  static std::unique_ptr<ProcessGroup> single();
  ~ProcessGroup();

  int rank() const;
  int size() const;
  bool is_main() const { return rank() == 0; }
  /// "rank R of W (MASTER_ADDR:PORT)" for messages; "" for the one-process group.
  std::string where() const;

  /// Replaces each tensor by the mean of it over the ranks.
  void all_reduce_mean(const std::vector<at::Tensor>& tensors);
  /// Replaces each tensor by the sum of it over the ranks (a gather, when each rank fills only its own
  /// slice of a zeroed buffer).
  void all_reduce_sum(const std::vector<at::Tensor>& tensors);
  /// Replaces each tensor by its element-wise maximum over the ranks.
  void all_reduce_max(const std::vector<at::Tensor>& tensors);
  /// The sum of `value` over the ranks.
  double all_reduce_sum(double value);
  /// Copies rank `root`'s tensors into every rank's.
  void broadcast(const std::vector<at::Tensor>& tensors, int root = 0);
  /// Rank `root`'s text, on every rank.
  std::string broadcast(const std::string& text, int root = 0);
  /// Returns once every rank called it.
  void barrier();

 private:
  struct Impl;
  explicit ProcessGroup(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace draft
