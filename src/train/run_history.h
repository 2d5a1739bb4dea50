// What a finished or running run folder holds, read back for reports (`draft report`): the resolved
// config, the metrics.jsonl records split by kind, and the evaluation sample grids in step order. Works for
// `draft finetune` folders (records with "kind") and `draft pretrain` ones (records with "event").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace draft {

/// One evaluation grid of a run: samples/step_NNNNNN.png.
struct SampleGrid {
  int64_t step = 0;
  std::string path;
};

/// A run folder, read.
struct RunHistory {
  std::string dir;    ///< as given, without a trailing '/'
  std::string label;  ///< the name shown for the run (legends, headings): `dir`
  nlohmann::json config;  ///< config.json; null when the folder has none
  std::vector<nlohmann::json> train;  ///< training-step records ("kind"/"event" absent or "train"), in file order
  std::vector<nlohmann::json> evals;  ///< evaluation records ("kind" or "event" == "eval"), in file order
  std::vector<nlohmann::json> other;  ///< records of any other kind (a pretraining run's "final")
  std::vector<SampleGrid> samples;    ///< in step order (step 0, the base model, first)
};

/// "train", "eval", "final", ...: a record's "kind" (fine-tuning) or "event" (pretraining); a fine-tuning
/// step's record has neither and is "train".
std::string record_kind_of(const nlohmann::json& record);

/// Reads the run folder `dir`. Throws draft::Error naming it when it is missing or not a run folder (no
/// metrics.jsonl), and naming the file when config.json or metrics.jsonl does not parse. A last metrics
/// line cut short (a run killed while writing) is left out (train/metrics.h).
RunHistory read_run_history(const std::string& dir);

/// The number `key` of `record`, or none when it is absent or not a number (null, a string, a boolean).
std::optional<double> record_number(const nlohmann::json& record, const std::string& key);

}  // namespace draft
