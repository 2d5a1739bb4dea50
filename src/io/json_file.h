// Reading and writing JSON files (configs, run metadata) with errors that name the file.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace draft {

/// Parses the JSON file at `path`; throws draft::Error naming the file and the parse position.
nlohmann::json read_json_file(const std::string& path);

/// Writes `value` to `path`, indented, atomically (io/atomic_file.h).
void write_json_file(const std::string& path, const nlohmann::json& value);

}  // namespace draft
