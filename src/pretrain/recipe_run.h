// What every pretraining recipe's run holds besides its data and models: the resolved config, the run
// folder (started or resumed), the optimizer, the checkpointed modules, the epoch loop and the clock; and
// the steps all three recipes take in the same way (open the folder, begin or restore, log a train record).
#pragma once

#include <chrono>
#include <memory>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>
#include <torch/optim/adamw.h>

#include "models/weights.h"
#include "pretrain/run_settings.h"
#include "train/interval_means.h"
#include "train/resumable_run.h"
#include "util/log.h"

namespace draft {

template <typename Config>
struct RecipeRun {
  Config config;
  std::unique_ptr<ResumableRun> run;
  std::unique_ptr<torch::optim::AdamW> optimizer;
  std::vector<CheckpointModule> modules;
  std::unique_ptr<EpochLoop> loop;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

  /// The device the config names (checked: a CUDA device must exist).
  c10::Device device() const { return parse_device(config.device); }

  double elapsed() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(); }

  /// Opens the run folder (a folder holding another run is refused without --resume).
  void open_folder() { run = std::make_unique<ResumableRun>(config.out_dir, config.resume); }

  /// Fixes the resolved config (refused on resume when a fixed key changed).
  void start(const ConfigTable<Config>& table) {
    run->start(config.to_json(), pretrain_resumable_keys(table, config), config.tensorboard);
  }

  /// open_folder(), then start().
  void open(const ConfigTable<Config>& table) {
    open_folder();
    start(table);
  }

  /// AdamW over `params`, the modules a checkpoint holds, their state restored when resuming (onto the
  /// device the modules are on: move them there first), and the epoch loop over `examples` training images
  /// from the checkpoint's step.
  void begin(std::vector<at::Tensor> params, std::vector<CheckpointModule> checkpointed, int64_t examples) {
    optimizer = std::make_unique<torch::optim::AdamW>(
        std::move(params), torch::optim::AdamWOptions(config.lr).weight_decay(config.weight_decay));
    modules = std::move(checkpointed);
    const int64_t start = run->resuming() ? run->restore(modules, optimizer.get()).step : 0;
    loop = std::make_unique<EpochLoop>(make_epoch_loop(config, examples, start));
    if (start > 0) DRAFT_LOG_INFO("resuming {} at step {} of {}", config.out_dir, start, loop->total_steps());
  }

  /// A checkpoint when the loop says one is due.
  void save_if_due() const {
    if (loop->checkpoint_due()) run->save(modules, optimizer.get(), loop->progress());
  }

  /// The "train" record of metrics.jsonl when one is due: step, epoch, lr, elapsed time and the interval's
  /// means.
  void log_train(double lr, IntervalMeans& interval) const {
    if (!loop->log_due()) return;
    nlohmann::json record = {{"event", "train"}, {"step", loop->step()}, {"epoch", loop->epoch_progress()},
                             {"lr", lr}, {"elapsed_s", elapsed()}};
    record.update(interval.take());
    run->log(record);
  }
};

}  // namespace draft
