// `draft launch`, torchrun for machines without Python: starts the ranks of one node as copies of the running
// executable, each with the environment torchrun (PyTorch 2.x elastic agent, static rendezvous) gives its
// workers, and supervises them: one failing rank stops the others, so a run never hangs on a dead peer.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace draft {

/// What to start: `nproc` ranks on this node, node `node_rank` of `nnodes`, all meeting at
/// master_addr:master_port (rank 0, on node 0, serves the c10d TCPStore there).
struct LaunchPlan {
  int nproc = 1;                         ///< --nproc: ranks on this node (torchrun's --nproc-per-node)
  int nnodes = 1;                        ///< --nnodes
  int node_rank = 0;                     ///< --node-rank
  std::string master_addr = "127.0.0.1"; ///< --master-addr
  int master_port = 29500;               ///< --master-port

  /// Throws draft::Error naming the flag that is out of range (e.g. "--nproc must be at least 1, got 0").
  void validate() const;
};

/// The variables torchrun sets for the worker with `local_rank` (0 <= local_rank < nproc): RANK, LOCAL_RANK,
/// WORLD_SIZE, LOCAL_WORLD_SIZE, GROUP_RANK, GROUP_WORLD_SIZE, ROLE_RANK, ROLE_WORLD_SIZE, ROLE_NAME,
/// MASTER_ADDR, MASTER_PORT, TORCHELASTIC_RESTART_COUNT, TORCHELASTIC_MAX_RESTARTS, TORCHELASTIC_RUN_ID,
/// TORCHELASTIC_USE_AGENT_STORE (False: there is no agent store, rank 0 serves the TCPStore), and, only
/// when this process's environment lacks them (else the workers inherit them), TORCH_NCCL_ASYNC_ERROR_HANDLING=1
/// and, for nproc > 1, OMP_NUM_THREADS=1.
std::vector<std::pair<std::string, std::string>> torchrun_environment(const LaunchPlan& plan, int local_rank);

/// Starts plan.nproc copies of this executable (/proc/self/exe) with argv [exe] + child_args and this
/// process's environment plus torchrun_environment(plan, local_rank) (which wins over same-named variables);
/// stdin, stdout and stderr are shared. Waits for all of them. When one exits non-zero or dies by a signal,
/// prints one line on stderr naming its rank, pid and exit code or signal, sends SIGTERM to the others and
/// SIGKILL to those still alive 10 s later. SIGINT and SIGTERM sent to this process are passed on to the
/// ranks (with the same 10 s grace). Returns 0 when every rank exited with 0, else the first failure's exit
/// code (128 + the signal for a rank killed by a signal). Throws draft::Error for an invalid plan, empty
/// child_args, or a rank that could not be started (after stopping the ranks already started).
int launch_local(const LaunchPlan& plan, const std::vector<std::string>& child_args);

}  // namespace draft
