// Run folders.
#include "train/run_folder.h"

#include <filesystem>
#include <utility>

#include "io/json_file.h"
#include "train/metrics.h"
#include "util/error.h"

namespace draft {

RunFolder::RunFolder(std::string dir, bool create) : dir_(std::move(dir)) {
  DRAFT_CHECK(!dir_.empty(), "the run folder path is empty");
  if (!create) return;
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  DRAFT_CHECK(!ec, dir_, ": cannot create the run folder: ", ec.message());
}

bool RunFolder::has_checkpoint() const { return std::filesystem::is_regular_file(checkpoint_path()); }

bool RunFolder::has_metrics() const { return std::filesystem::exists(metrics_path()); }

void RunFolder::write_config(const nlohmann::json& config) const { write_json_file(config_path(), config); }

void RunFolder::append_metrics(const nlohmann::json& record) const { draft::append_metrics(metrics_path(), record); }

void RunFolder::truncate_metrics_after(int64_t step) const {
  if (!has_metrics()) return;
  std::vector<nlohmann::json> kept;
  for (auto& record : read_metrics(metrics_path())) {
    if (!record.contains("step") || record.at("step").get<int64_t>() <= step) kept.push_back(std::move(record));
  }
  write_metrics(metrics_path(), kept);
}

}  // namespace draft
