// Joining a fine-tuning run's process group and splitting its micro-batches (see data_parallel.h).
#include "finetune/data_parallel.h"

#include <chrono>

#include "train/resumable_run.h"
#include "util/error.h"

namespace draft {
namespace {

// Every rank must run the same config: rank 0 sends its resolved config; each rank compares; the count of
// differing ranks is summed so that every rank stops, not only the one that differs.
void check_same_config(ProcessGroup& group, const nlohmann::json& config) {
  if (group.size() == 1) return;
  const std::string mine = config.dump();
  const std::string main = group.broadcast(mine, 0);
  std::vector<std::string> changes;
  if (main != mine) changes = changed_settings(nlohmann::json::parse(main), config, {});
  const double differing = group.all_reduce_sum(changes.empty() ? 0.0 : 1.0);
  if (!changes.empty()) {
    std::string list;
    for (const auto& c : changes) list += (list.empty() ? " " : "; ") + c;
    fail("data-parallel start: ", group.where(), " was started with other settings than rank 0 (rank 0 -> this "
         "rank):", list, ". Launch every rank with the same command line and config file");
  }
  DRAFT_CHECK(differing == 0, "data-parallel start: ", static_cast<int>(differing), " of ", group.size(),
              " ranks were started with other settings than rank 0 (each names its keys); launch every rank with "
              "the same command line and config file");
}

}  // namespace

std::unique_ptr<ProcessGroup> join_finetune_group(const FinetuneConfig& config) {
  const DistributedEnv env = read_distributed_env();
  if (!env.launched || env.world_size == 1) return ProcessGroup::single();
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(config.dist.timeout_s * 1000.0));
  std::unique_ptr<ProcessGroup> group =
      ProcessGroup::join(env, timeout, resolve_dist_backend(config.dist.backend, config.device));
  check_same_config(*group, config.to_json());
  return group;
}

BatchShard micro_batch_shard(ProcessGroup& group, int64_t batch_size) {
  const int64_t ranks = group.size();
  DRAFT_CHECK(batch_size % ranks == 0, "train.batch_size ", batch_size, " does not split over ", ranks,
              " processes: use a batch size that is a multiple of ", ranks, " (each process computes batch_size / ",
              ranks, " samples of every micro-batch)");
  BatchShard shard;
  shard.group = &group;
  shard.local = batch_size / ranks;
  shard.offset = group.rank() * shard.local;
  shard.global = batch_size;
  return shard;
}

std::string rank_device(const std::string& device) {
  if (device != "cuda") return device;
  const DistributedEnv env = read_distributed_env();
  return env.launched ? "cuda:" + std::to_string(env.local_rank) : device;
}

}  // namespace draft
