// The process group of a data-parallel run, on torch.distributed's c10d (never a transport of our own):
// the launcher's environment (torchrun: RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR,
// MASTER_PORT; SLURM: SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID), a c10d::TCPStore rendezvous, and a
// c10d::ProcessGroupGloo. Without those variables a run is one process and has no group.
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
  std::string source;        ///< "torchrun", "slurm" or "" (for messages)
};

/// Reads torchrun's variables, else SLURM's (with MASTER_ADDR and MASTER_PORT), else returns a
/// not-launched env. `getenv` is the lookup (tests pass their own). Throws draft::Error naming the variable
/// that is missing or malformed (e.g. RANK set without WORLD_SIZE, RANK >= WORLD_SIZE, a port out of range).
DistributedEnv read_distributed_env(const std::function<const char*(const char*)>& getenv);
/// read_distributed_env on the process's environment.
DistributedEnv read_distributed_env();

/// A joined c10d group (Gloo). All collectives block until every rank took part or `timeout` passed; a
/// timeout or a lost rank throws draft::Error naming the operation, never hangs.
class ProcessGroup {
 public:
  /// Joins the group: rank 0 serves the TCPStore at MASTER_ADDR:MASTER_PORT (unless the launcher's agent
  /// does), every rank connects, and the Gloo group forms once WORLD_SIZE ranks arrived. Throws
  /// draft::Error with one line saying what failed (a busy port, an unreachable master, ranks that never
  /// arrived) within `timeout`.
  static std::unique_ptr<ProcessGroup> join(const DistributedEnv& env, std::chrono::milliseconds timeout);
  ~ProcessGroup();

  int rank() const;
  int size() const;

  /// Replaces each tensor by the mean of it over the ranks, with one all-reduce of one flat float buffer
  /// (the tensors are copied in and out, so any number of them costs one collective).
  void all_reduce_mean(const std::vector<at::Tensor>& tensors);
  /// The sum of `value` over the ranks.
  double all_reduce_sum(double value);
  /// Copies rank `root`'s tensors into every rank's (one flat buffer).
  void broadcast(const std::vector<at::Tensor>& tensors, int root = 0);
  /// Returns once every rank called it.
  void barrier();

 private:
  struct Impl;
  explicit ProcessGroup(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace draft
