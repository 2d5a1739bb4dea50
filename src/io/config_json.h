// Typed access to config.json files (diffusers / transformers model configs) with errors that name the
// file and key.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/json_value.h"
#include "util/error.h"

namespace draft {

/// A parsed config.json and the file it came from, for error messages.
struct ConfigJson {
  nlohmann::json json;
  std::string source;

  static ConfigJson load(const std::string& path);

  bool has(const std::string& key) const { return json.contains(key) && !json.at(key).is_null(); }

  /// The value at `key`, or `fallback` when absent or null; throws naming file and key on a wrong type.
  template <typename T>
  T get(const std::string& key, const T& fallback) const {
    if (!has(key)) return fallback;
    return required<T>(key);
  }

  /// The value at `key`; throws naming file and key when absent or of the wrong type.
  template <typename T>
  T required(const std::string& key) const {
    DRAFT_CHECK(has(key), source, ": missing key '", key, "'");
    T value{};
    DRAFT_CHECK(json_to(json.at(key), value), source, ": key '", key, "' has the wrong type: ", json.at(key).dump());
    return value;
  }
};

}  // namespace draft
