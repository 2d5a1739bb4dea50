// metrics.jsonl, the log of a run: one JSON object per line, each with a "step". Written by the trainers
// (RunFolder::append_metrics), read here by the trainers on resume, `draft plot` and the benchmark report.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace draft {

/// The metrics file of a run folder: `<run_dir>/metrics.jsonl`.
std::string metrics_file(const std::string& run_dir);

/// Every record of a metrics.jsonl file, in order; throws draft::Error naming the file and line. A last line
/// without its newline is a record cut short (the process was killed, or the disk filled, while appending
/// it): it is left out, with a warning.
std::vector<nlohmann::json> read_metrics(const std::string& path);

/// Writes `records` to `path`, one per line, atomically (a .tmp file renamed into place).
void write_metrics(const std::string& path, const std::vector<nlohmann::json>& records);

/// Appends `record` as one line of `path` in a single write; throws draft::Error naming the file on failure.
void append_metrics(const std::string& path, const nlohmann::json& record);

}  // namespace draft
