// The settings every `draft pretrain` config has under the same keys (data, run folder, optimizer,
// schedule, seed, subset, flips, checkpoint and log intervals), read, written and checked in one place.
// Each trainer's config struct has these members with these names; the functions are templates over it.
#pragma once

#include <cmath>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "io/config_json.h"
#include "util/error.h"

namespace draft {

/// The keys of the shared settings, for a config's list of known keys.
inline std::set<std::string> run_setting_keys() {
  return {"data_dir", "out_dir",     "epochs", "batch_size", "lr",    "weight_decay",
          "lr_schedule", "seed", "limit", "hflip", "checkpoint_every", "log_every"};
}

/// Throws draft::Error naming the file and key when `c` is not an object or has a key outside `known`.
inline void check_known_keys(const ConfigJson& c, const std::set<std::string>& known) {
  DRAFT_CHECK(c.json.is_object(), c.source, ": expected a JSON object");
  for (const auto& item : c.json.items()) {
    DRAFT_CHECK(known.count(item.key()) > 0, c.source, ": unknown key '", item.key(), "'");
  }
}

/// Reads the shared keys present in `c` into `v` (absent keys keep v's values).
template <typename Config>
void read_run_settings(const ConfigJson& c, Config& v) {
  v.data_dir = c.get<std::string>("data_dir", v.data_dir);
  v.out_dir = c.get<std::string>("out_dir", v.out_dir);
  v.epochs = c.get<int64_t>("epochs", v.epochs);
  v.batch_size = c.get<int64_t>("batch_size", v.batch_size);
  v.lr = c.get<double>("lr", v.lr);
  v.weight_decay = c.get<double>("weight_decay", v.weight_decay);
  v.lr_schedule = c.get<std::string>("lr_schedule", v.lr_schedule);
  v.seed = c.get<uint64_t>("seed", v.seed);
  v.limit = c.get<int64_t>("limit", v.limit);
  v.hflip = c.get<bool>("hflip", v.hflip);
  v.checkpoint_every = c.get<int64_t>("checkpoint_every", v.checkpoint_every);
  v.log_every = c.get<int64_t>("log_every", v.log_every);
}

/// The shared keys of `v` as a JSON object (a trainer's to_json adds its own).
template <typename Config>
nlohmann::json write_run_settings(const Config& v) {
  return {{"data_dir", v.data_dir},   {"out_dir", v.out_dir},       {"epochs", v.epochs},
          {"batch_size", v.batch_size}, {"lr", v.lr},                 {"weight_decay", v.weight_decay},
          {"lr_schedule", v.lr_schedule}, {"seed", v.seed},           {"limit", v.limit},
          {"hflip", v.hflip},         {"checkpoint_every", v.checkpoint_every}, {"log_every", v.log_every}};
}

/// Throws draft::Error naming the first shared key out of range (and the flag that sets it).
template <typename Config>
void validate_run_settings(const Config& v) {
  DRAFT_CHECK(!v.out_dir.empty(), "out_dir is empty: give the run folder (--out RUN_DIR)");
  DRAFT_CHECK(!v.data_dir.empty(), "data_dir is empty: give the folder with the training images (--data DIR)");
  DRAFT_CHECK(v.epochs > 0, "epochs must be positive (got ", v.epochs, ")");
  DRAFT_CHECK(v.batch_size > 0, "batch_size must be positive (got ", v.batch_size, ")");
  DRAFT_CHECK(std::isfinite(v.lr) && v.lr > 0, "lr must be a positive number (got ", v.lr, ")");
  DRAFT_CHECK(std::isfinite(v.weight_decay) && v.weight_decay >= 0, "weight_decay must be >= 0 (got ",
              v.weight_decay, ")");
  DRAFT_CHECK(v.lr_schedule == "cosine" || v.lr_schedule == "constant", "lr_schedule '", v.lr_schedule,
              "' is not supported (cosine or constant)");
  DRAFT_CHECK(v.limit >= 0, "limit must be >= 0 (got ", v.limit, ")");
  DRAFT_CHECK(v.checkpoint_every >= 0, "checkpoint_every must be >= 0 (got ", v.checkpoint_every, ")");
  DRAFT_CHECK(v.log_every > 0, "log_every must be positive (got ", v.log_every, ")");
  DRAFT_CHECK(v.stop_after_steps >= 0, "stop_after_steps must be >= 0 (got ", v.stop_after_steps, ")");
}

}  // namespace draft
