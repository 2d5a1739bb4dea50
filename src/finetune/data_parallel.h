// A fine-tuning run on several processes (docs/distributed.md): joining the group the launcher described,
// refusing ranks started with other settings, and splitting every micro-batch over the ranks. The
// trainer's step (finetune_step.cpp) averages the gradients; the methods see only their BatchShard.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "finetune/finetune_config.h"
#include "finetune/method.h"
#include "train/process_group.h"

namespace draft {

/// The group of a `draft finetune` run: joined (dist.backend, dist.timeout) when torchrun, srun or
/// `draft launch` set the environment, else the one-process group. Then rank 0's resolved config is
/// compared with every rank's: a rank started with other settings makes every rank fail with one line
/// (the differing rank names the keys, with rank 0's and its own values).
std::unique_ptr<ProcessGroup> join_finetune_group(const FinetuneConfig& config);

/// This process's part of every global micro-batch of `batch_size` samples: a contiguous block of
/// batch_size / ranks samples. Throws draft::Error when the batch does not split evenly.
BatchShard micro_batch_shard(ProcessGroup& group, int64_t batch_size);

/// The device this rank computes on: `device` as configured, with "cuda" made "cuda:LOCAL_RANK" in a
/// launched run (one GPU per process, as torchrun expects).
std::string rank_device(const std::string& device);

}  // namespace draft
