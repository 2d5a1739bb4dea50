// A training run on disk: the folder with the resolved config, the metrics log and the checkpoint that
// lets `--resume` continue exactly where a run stopped. Every trainer (pretrain and finetune) uses it.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace draft {

/// A run folder:
///   config.json              the resolved config (defaults < --config < flags)
///   metrics.jsonl            one JSON object per logged step or evaluation, each with a "step" (metrics.h)
///   checkpoint.safetensors   modules, AdamW state, progress and the config (checkpoint.h)
class RunFolder {
 public:
  /// Creates `dir` (and its parents) when missing, unless `create` is false (a process that only reads the
  /// run, e.g. a data-parallel rank other than 0); throws draft::Error naming it when that fails.
  explicit RunFolder(std::string dir, bool create = true);

  const std::string& dir() const { return dir_; }
  std::string file(const std::string& name) const { return dir_ + "/" + name; }
  std::string config_path() const { return file("config.json"); }
  std::string metrics_path() const { return file("metrics.jsonl"); }
  std::string checkpoint_path() const { return file("checkpoint.safetensors"); }
  bool has_checkpoint() const;
  bool has_metrics() const;

  /// Writes config.json (atomically).
  void write_config(const nlohmann::json& config) const;
  /// Appends `record` as one line of metrics.jsonl and flushes it.
  void append_metrics(const nlohmann::json& record) const;
  /// Drops the records whose "step" is above `step`: a resumed run logs them again from its checkpoint.
  void truncate_metrics_after(int64_t step) const;

 private:
  std::string dir_;
};

}  // namespace draft
