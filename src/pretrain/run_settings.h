// The keys every `draft pretrain` config has (data, run folder, optimizer, schedule, seed, subset, flips,
// checkpoint and log intervals, TensorBoard files), declared once for the three recipes' tables, and the epoch loop they set.
// Each recipe's config struct has these members with these names; the functions are templates over it.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "io/config_table.h"
#include "train/epoch_loop.h"

namespace draft {

/// Adds the shared keys to a recipe's table.
template <typename Config>
void add_run_settings(ConfigTable<Config>& t) {
  t.add("data_dir", "--data", "folder with the training images: the Fashion-MNIST IDX files (.gz or plain) or "
        "DIR/<split>/<class>/*.png", DRAFT_MEMBER(data_dir), check_not_empty(), true);
  t.add("out_dir", "--run-dir", "run folder: config.json, metrics.jsonl, checkpoint, model/ (--out is the same)",
        DRAFT_MEMBER(out_dir), check_not_empty(), true);
  t.add("epochs", "--epochs", "passes over the training set (a resumed run may change it unless lr_schedule is "
        "cosine, which spans it)", DRAFT_MEMBER(epochs), check_at_least(1), true);
  t.add("batch_size", "--batch-size", "images per step", DRAFT_MEMBER(batch_size), check_at_least(1));
  t.add("lr", "--lr", "AdamW peak learning rate", DRAFT_MEMBER(lr), check_positive());
  t.add("weight_decay", "--weight-decay", "AdamW weight decay", DRAFT_MEMBER(weight_decay), check_non_negative());
  t.add("lr_schedule", "--lr-schedule", "cosine (to 0 at the end) or constant", DRAFT_MEMBER(lr_schedule),
        check_one_of({"cosine", "constant"}));
  t.add("seed", "--seed", "seed of the initial weights, data order, augmentation and noise", DRAFT_MEMBER(seed));
  t.add("limit", "--limit", "use only the first N train and test images (0: all)", DRAFT_MEMBER(limit),
        check_non_negative());
  t.add("hflip", "--hflip", "augmentation: random horizontal flips (p = 1/2)", DRAFT_MEMBER(hflip));
  t.add("checkpoint_every", "--checkpoint-every", "steps between checkpoints (0: epoch ends only)",
        DRAFT_MEMBER(checkpoint_every), check_non_negative(), true);
  t.add("log_every", "--log-every", "steps between metrics.jsonl records", DRAFT_MEMBER(log_every), check_at_least(1),
        true);
  t.add("device", "--device", "where the model trains: cpu, cuda or cuda:N (random draws stay on the CPU, so a "
        "seed gives the same run on any device up to rounding)", DRAFT_MEMBER(device), check_not_empty(), true);
  t.add("tensorboard", "--tensorboard", "write TensorBoard events files into the run folder's tensorboard/ "
        "(--no-tensorboard: false)", DRAFT_MEMBER(tensorboard), {}, true);
}

/// The keys a resumed run may change: those the table marks, less epochs under a cosine schedule.
template <typename Config>
std::vector<std::string> pretrain_resumable_keys(const ConfigTable<Config>& table, const Config& c) {
  std::vector<std::string> keys = table.resumable_paths();
  if (c.lr_schedule == "cosine") keys.erase(std::remove(keys.begin(), keys.end(), "epochs"), keys.end());
  return keys;
}

/// The epoch loop of a recipe's config over `examples` training images, from `start_step`.
template <typename Config>
EpochLoop make_epoch_loop(const Config& c, int64_t examples, int64_t start_step) {
  EpochLoopOptions o;
  o.examples = examples;
  o.batch_size = c.batch_size;
  o.epochs = c.epochs;
  o.checkpoint_every = c.checkpoint_every;
  o.log_every = c.log_every;
  o.stop_after_steps = c.stop_after_steps;
  o.seed = c.seed;
  return EpochLoop(o, start_step);
}

}  // namespace draft
