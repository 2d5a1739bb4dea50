// Flags that override keys of a JSON run config, so that every training command composes its settings
// the same way: defaults < the run's own config.json (with --resume) < --config FILE < flags.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "io/config_json.h"

namespace draft::cli {

class ConfigFlags {
 public:
  explicit ConfigFlags(CLI::App* app) : app_(app) {}

  /// Adds `--flag VALUE`, stored under `key` of the overrides only when given on the command line; a key
  /// starting with '/' is a JSON pointer into nested objects.
  template <typename T>
  CLI::Option* add(const std::string& flag, const std::string& key, const std::string& help, T default_value) {
    auto value = std::make_shared<T>(std::move(default_value));
    CLI::Option* option = app_->add_option(flag, *value, help)->capture_default_str();
    setters_.push_back([option, value, key](nlohmann::json& j) {
      if (option->count() == 0) return;
      // "/a/b" is a JSON pointer into nested objects ("/method/k"); other keys are top-level.
      if (!key.empty() && key.front() == '/') {
        j[nlohmann::json::json_pointer(key)] = *value;
      } else {
        j[key] = *value;
      }
    });
    return option;
  }

  /// The keys of the flags that were given, with their values.
  nlohmann::json overrides() const {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& set : setters_) set(j);
    return j;
  }

  /// The resolved config: `defaults`, then (when resuming) `<out_dir>/config.json`, then `config_file`,
  /// then the flags. Config needs `static Config from_json(const ConfigJson&, const Config& base)`.
  template <typename Config>
  Config resolve(const Config& defaults, const std::string& config_file, bool resume) const {
    Config c = defaults;
    const nlohmann::json flags = overrides();
    if (resume && flags.contains("out_dir")) {
      // A resumed run starts from the settings it was started with, so `--out DIR --resume` is enough.
      const std::string saved = flags.at("out_dir").get<std::string>() + "/config.json";
      if (std::filesystem::is_regular_file(saved)) c = Config::from_json(ConfigJson::load(saved), c);
    }
    if (!config_file.empty()) c = Config::from_json(ConfigJson::load(config_file), c);
    return Config::from_json(ConfigJson{flags, "command-line flags"}, c);
  }

 private:
  CLI::App* app_;
  std::vector<std::function<void(nlohmann::json&)>> setters_;
};

}  // namespace draft::cli
