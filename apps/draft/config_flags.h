// The flags of a training command, made from its config table (one flag per key that has one, with the
// struct's default), and the resolved config: defaults < the run's own config.json (with --resume) <
// --config FILE < flags, the same for `draft finetune` and `draft pretrain`.
#pragma once

#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "flag_checks.h"
#include "io/config_table.h"
#include "io/json_file.h"
#include "util/error.h"

namespace draft::cli {

/// The flags every training command has besides its config keys.
struct RunFlags {
  std::string config_file;
  std::string resume_dir;
  CLI::Option* resume = nullptr;

  /// --config FILE and --resume [RUN_DIR] (without a value: the run folder given by --run-dir).
  void add(CLI::App* sub) {
    sub->add_option("--config", config_file, "JSON config (keys as in a run's config.json); flags override it")
        ->check(CLI::ExistingFile);
    resume = sub->add_option("--resume", resume_dir,
                             "continue the run in RUN_DIR (default: --run-dir) from its checkpoint, with its settings")
                 ->expected(0, 1);
  }
  bool resuming() const { return resume != nullptr && resume->count() > 0; }
};

template <typename Config>
class ConfigFlags {
 public:
  /// Adds a flag for every key of `table` that names one; `aliases` maps a flag to further names
  /// ("--run-dir" -> {"--out"}).
  ConfigFlags(CLI::App* app, const ConfigTable<Config>& table, const Config& defaults,
              const std::map<std::string, std::vector<std::string>>& aliases = {})
      : app_(app), table_(table) {
    for (const auto& key : table.keys()) {
      if (key.flag.empty()) continue;
      std::string names = key.flag;
      if (auto it = aliases.find(key.flag); it != aliases.end()) {
        for (const auto& alias : it->second) names += "," + alias;
      }
      const nlohmann::json def = key.get(defaults);
      switch (key.kind) {
        case ConfigKind::kBool: add<bool>(names, key, def); break;
        case ConfigKind::kInt: add<int64_t>(names, key, def)->check(any_int64()); break;
        case ConfigKind::kUInt: add<uint64_t>(names, key, def); break;
        case ConfigKind::kNumber: add<double>(names, key, def); break;
        case ConfigKind::kString: add<std::string>(names, key, def); break;
        case ConfigKind::kStringList: add<std::vector<std::string>>(names, key, def); break;
        case ConfigKind::kIntList: add<std::vector<int64_t>>(names, key, def)->check(any_int64()); break;
        case ConfigKind::kObject: fail("config key '", key.path, "' is an object and cannot have a flag");
      }
    }
  }

  /// The keys of the flags that were given, with their values, as nested JSON objects.
  nlohmann::json overrides() const {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& set : setters_) set(j);
    return j;
  }

  /// The resolved config: `defaults`, then (with --resume) the run's config.json, then --config FILE, then
  /// `extra` (flags that set keys in their own way), then the flags. Throws draft::Error naming the key
  /// for an unknown key or a wrong type.
  Config resolve(const Config& defaults, const RunFlags& run, nlohmann::json extra = nlohmann::json::object()) const {
    nlohmann::json resolved = table_.to_json(defaults);
    nlohmann::json flags = overrides();
    if (run.resuming()) {
      const std::string dir = !run.resume_dir.empty() ? run.resume_dir : flags.value("out_dir", std::string());
      DRAFT_CHECK(!dir.empty(), "--resume needs the run folder: --resume RUN_DIR (or --run-dir RUN_DIR --resume)");
      const std::string saved = dir + "/config.json";
      DRAFT_CHECK(std::filesystem::is_regular_file(saved), dir, " is not a run folder (no config.json): --resume "
                  "takes the run folder of an earlier run; start a new run without --resume");
      resolved.merge_patch(read_json_file(saved));
      flags["out_dir"] = dir;
    }
    if (!run.config_file.empty()) resolved.merge_patch(read_json_file(run.config_file));
    resolved.merge_patch(extra);
    resolved.merge_patch(flags);
    Config c = defaults;
    table_.read(resolved, "the resolved config (defaults < the run's config.json < --config < flags)", c);
    return c;
  }

 private:
  // The config's validate() checks each key's range with a message naming the key; this only refuses what
  // would not survive conversion (CLI11 clamps an overflowing number to INT64_MAX, which then passes).
  static CLI::Validator any_int64() {
    CLI::Validator v = whole_number(std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max());
    v.description("");  // --help shows no bound this wide
    return v;
  }

  template <typename T>
  CLI::Option* add(const std::string& names, const ConfigKey<Config>& key, const nlohmann::json& def) {
    auto value = std::make_shared<T>(def.get<T>());
    CLI::Option* option = app_->add_option(names, *value, key.help)->capture_default_str();
    nlohmann::json::json_pointer pointer("/" + slash_path(key.path));
    setters_.push_back([option, value, pointer](nlohmann::json& j) {
      if (option->count() > 0) j[pointer] = *value;
    });
    return option;
  }

  static std::string slash_path(std::string path) {
    for (char& ch : path) {
      if (ch == '.') ch = '/';
    }
    return path;
  }

  CLI::App* app_;
  const ConfigTable<Config>& table_;
  std::vector<std::function<void(nlohmann::json&)>> setters_;
};

}  // namespace draft::cli
