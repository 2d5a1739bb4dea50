// Reading a run folder back for reports: config, metrics records by kind, sample grids by step.
#include "train/run_history.h"

#include <algorithm>
#include <filesystem>

#include "io/json_file.h"
#include "train/metrics.h"
#include "util/error.h"

namespace draft {
namespace {

namespace fs = std::filesystem;

// The step of a sample grid's file name "step_NNNNNN.png"; none for any other name.
std::optional<int64_t> grid_step(const std::string& name) {
  const std::string prefix = "step_", suffix = ".png";
  if (name.size() <= prefix.size() + suffix.size() || name.compare(0, prefix.size(), prefix) != 0 ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
    return std::nullopt;
  }
  const std::string digits = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  if (digits.size() > 18 || digits.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  return std::stoll(digits);
}

}  // namespace

std::string record_kind_of(const nlohmann::json& record) {
  for (const char* key : {"kind", "event"}) {
    if (record.contains(key) && record.at(key).is_string()) return record.at(key).get<std::string>();
  }
  return "train";
}

std::optional<double> record_number(const nlohmann::json& record, const std::string& key) {
  if (!record.is_object()) return std::nullopt;
  const auto it = record.find(key);
  if (it == record.end() || !it->is_number()) return std::nullopt;
  return it->get<double>();
}

RunHistory read_run_history(const std::string& dir) {
  RunHistory run;
  run.dir = dir;
  while (run.dir.size() > 1 && run.dir.back() == '/') run.dir.pop_back();
  run.label = run.dir;
  DRAFT_CHECK(fs::is_directory(run.dir), run.dir,
              ": no such folder (expected a run folder of draft finetune or draft pretrain, holding metrics.jsonl)");
  const std::string metrics = metrics_file(run.dir);
  DRAFT_CHECK(fs::is_regular_file(metrics), run.dir,
              " is not a run folder: it has no metrics.jsonl (expected the --run-dir of draft finetune or "
              "draft pretrain)");
  const std::string config = run.dir + "/config.json";
  if (fs::is_regular_file(config)) run.config = read_json_file(config);
  for (nlohmann::json& record : read_metrics(metrics)) {
    const std::string kind = record_kind_of(record);
    (kind == "train" ? run.train : kind == "eval" ? run.evals : run.other).push_back(std::move(record));
  }
  const std::string samples = run.dir + "/samples";
  if (fs::is_directory(samples)) {
    for (const auto& entry : fs::directory_iterator(samples)) {
      const auto step = grid_step(entry.path().filename().string());
      if (step && entry.is_regular_file()) run.samples.push_back({*step, entry.path().string()});
    }
  }
  std::sort(run.samples.begin(), run.samples.end(),
            [](const SampleGrid& a, const SampleGrid& b) { return a.step < b.step; });
  return run;
}

}  // namespace draft
