// A config declared once: one table per config struct lists every key (its JSON path, the member that
// holds it, help text, CLI flag, check, and whether a resumed run may change it). Reading (with unknown-key
// and wrong-type errors that name `section.key`), writing, validation, the CLI flags and the docs tables are
// all produced from the table, so a key cannot be added in one of those places and forgotten in another.
// Defaults are the struct's member initialisers: the table reads them from a default-constructed struct.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/json_value.h"
#include "util/error.h"

namespace draft {

/// The JSON type of a key, for the CLI flag it gets and for the docs.
enum class ConfigKind { kBool, kInt, kUInt, kNumber, kString, kStringList, kIntList, kObject };

/// "an integer", "a list of strings", ... (error messages and docs).
std::string config_kind_name(ConfigKind kind);

/// Checks a key's value: returns "" when it is fine, else what is wrong in words ("must be > 0").
using ConfigCheck = std::function<std::string(const nlohmann::json& value)>;

/// Common checks.
ConfigCheck check_positive();                 ///< > 0
ConfigCheck check_non_negative();             ///< >= 0
ConfigCheck check_at_least(double minimum);   ///< >= minimum
ConfigCheck check_range(double low, double high, bool high_inclusive = true);  ///< in [low, high] or [low, high)
ConfigCheck check_one_of(std::vector<std::string> values);
ConfigCheck check_not_empty();                ///< a non-empty string or list

template <typename Config>
struct ConfigKey {
  std::string path;  ///< JSON path, sections separated by '.': "optimizer.lr"
  std::string flag;  ///< "--lr"; empty: no flag (set in a config file only)
  std::string help;
  ConfigKind kind = ConfigKind::kString;
  bool may_change_on_resume = false;  ///< a resumed run may give it another value (budgets, evaluation, output)
  std::function<nlohmann::json(const Config&)> get;
  std::function<void(Config&, const nlohmann::json&)> set;  ///< throws on a value of the wrong type
  ConfigCheck check;                                          ///< may be empty
};

namespace config_table_detail {

template <typename T>
constexpr ConfigKind kind_of() {
  if constexpr (std::is_same_v<T, bool>) return ConfigKind::kBool;
  else if constexpr (std::is_same_v<T, uint64_t>) return ConfigKind::kUInt;
  else if constexpr (std::is_integral_v<T>) return ConfigKind::kInt;
  else if constexpr (std::is_floating_point_v<T>) return ConfigKind::kNumber;
  else if constexpr (std::is_same_v<T, std::string>) return ConfigKind::kString;
  else if constexpr (std::is_same_v<T, std::vector<std::string>>) return ConfigKind::kStringList;
  else if constexpr (std::is_same_v<T, std::vector<int64_t>>) return ConfigKind::kIntList;
  else return ConfigKind::kObject;
}

// What a key's setter throws for a value that its member cannot hold exactly (see json_to).
struct WrongType {};
// The value at a dotted path of a JSON object, or null when a part is missing.
nlohmann::json at_path(const nlohmann::json& j, const std::string& path);
// Sets the value at a dotted path, creating the sections.
void set_path(nlohmann::json& j, const std::string& path, nlohmann::json value);
// The text of a value for messages and docs: strings unquoted, numbers as JSON writes them.
std::string value_text(const nlohmann::json& value);

}  // namespace config_table_detail

/// The keys of one config struct. Build it once (a function-local static) with add():
///   table.add("optimizer.lr", "--lr", "AdamW learning rate", DRAFT_MEMBER(optimizer.lr), check_positive());
template <typename Config>
class ConfigTable {
 public:
  /// Adds a key held in the member that `access` returns (a generic lambda, see DRAFT_MEMBER).
  template <typename Access>
  ConfigTable& add(std::string path, std::string flag, std::string help, Access access, ConfigCheck check = {},
                   bool may_change_on_resume = false) {
    using T = std::decay_t<decltype(access(std::declval<Config&>()))>;
    ConfigKey<Config> key;
    key.path = std::move(path);
    key.flag = std::move(flag);
    key.help = std::move(help);
    key.kind = config_table_detail::kind_of<T>();
    key.may_change_on_resume = may_change_on_resume;
    key.get = [access](const Config& c) { return nlohmann::json(access(c)); };
    key.set = [access](Config& c, const nlohmann::json& v) {
      if (!json_to(v, access(c))) throw config_table_detail::WrongType{};
    };
    key.check = std::move(check);
    keys_.push_back(std::move(key));
    return *this;
  }

  /// Adds a key whose value is a JSON object with a reader and writer of its own (a model config).
  ConfigTable& add_object(std::string path, std::string help, std::function<nlohmann::json(const Config&)> get,
                          std::function<void(Config&, const nlohmann::json&)> set) {
    ConfigKey<Config> key;
    key.path = std::move(path);
    key.help = std::move(help);
    key.kind = ConfigKind::kObject;
    key.get = std::move(get);
    key.set = std::move(set);
    keys_.push_back(std::move(key));
    return *this;
  }

  /// Adds every key of `sub` under `section` ("lora" + "rank" = "lora.rank"), held in the member that
  /// `access` returns: a sub-config's keys are declared once, in its own table.
  template <typename Sub, typename Access>
  ConfigTable& add_section(const std::string& section, const ConfigTable<Sub>& sub, Access access) {
    for (const auto& k : sub.keys()) {
      ConfigKey<Config> key;
      key.path = section + "." + k.path;
      key.flag = k.flag;
      key.help = k.help;
      key.kind = k.kind;
      key.may_change_on_resume = k.may_change_on_resume;
      key.check = k.check;
      auto get = k.get;
      auto set = k.set;
      key.get = [get, access](const Config& c) { return get(access(c)); };
      key.set = [set, access](Config& c, const nlohmann::json& v) { set(access(c), v); };
      keys_.push_back(std::move(key));
    }
    return *this;
  }

  /// Marks keys that a resumed run may change (the budget, evaluation and output settings).
  ConfigTable& may_change_on_resume(const std::vector<std::string>& paths) {
    for (const auto& p : paths) find(p).may_change_on_resume = true;
    return *this;
  }

  const std::vector<ConfigKey<Config>>& keys() const { return keys_; }

  /// Every key of `c` as nested JSON objects.
  nlohmann::json to_json(const Config& c) const {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& k : keys_) config_table_detail::set_path(j, k.path, k.get(c));
    return j;
  }

  /// Reads the keys present in `json` into `c` (absent or null keys keep c's values). Throws draft::Error
  /// naming `source` and the key for an unknown key ("unknown key 'optimizer.lrr'"), a section that is not an
  /// object, and a value of the wrong type. Not validated.
  /// `prefix` ("lora.") is put before every key named in errors, for a table read as a section of a larger one.
  void read(const nlohmann::json& json, const std::string& source, Config& c, const std::string& prefix = "") const {
    check_section(json, "", source, prefix);
    for (const auto& k : keys_) {
      const nlohmann::json v = config_table_detail::at_path(json, k.path);
      if (v.is_null()) continue;
      try {
        try {
          k.set(c, v);
        } catch (const nlohmann::json::exception&) {
          throw config_table_detail::WrongType{};
        }
      } catch (const config_table_detail::WrongType&) {
        fail(source, ": key '", prefix, k.path, "' has the wrong type: ", v.dump(), " (expected ",
             config_kind_name(k.kind), ")");
      } catch (const Error& e) {
        fail(source, ": key '", prefix, k.path, "': ", e.what());
      }
    }
  }

  /// Throws draft::Error for the first key whose check fails: "optimizer.lr must be > 0, got 0 (--lr)".
  void validate(const Config& c, const std::string& prefix = "") const {
    for (const auto& k : keys_) {
      if (!k.check) continue;
      const nlohmann::json v = k.get(c);
      const std::string problem = k.check(v);
      if (problem.empty()) continue;
      fail(prefix, k.path, " ", problem, ", got ", config_table_detail::value_text(v), k.flag.empty() ? "" : " (" + k.flag + ")");
    }
  }

  /// The paths a resumed run may change.
  std::vector<std::string> resumable_paths() const {
    std::vector<std::string> out;
    for (const auto& k : keys_) {
      if (k.may_change_on_resume) out.push_back(k.path);
    }
    return out;
  }

  /// The markdown reference table: key, flag, type, default (from `defaults`), may change on resume, meaning.
  std::string markdown(const Config& defaults) const {
    std::ostringstream out;
    out << "| key | flag | type | default | on resume | meaning |\n|---|---|---|---|---|---|\n";
    for (const auto& k : keys_) {
      std::string def = k.kind == ConfigKind::kObject ? "see below" : k.get(defaults).dump();
      if (def == "\"\"") def = "\"\" (none)";
      out << "| `" << k.path << "` | " << (k.flag.empty() ? "–" : "`" + k.flag + "`") << " | "
          << config_kind_name(k.kind) << " | `" << escape_pipes(def) << "` | "
          << (k.may_change_on_resume ? "may change" : "fixed") << " | " << escape_pipes(k.help) << " |\n";
    }
    return out.str();
  }

 private:
  ConfigKey<Config>& find(const std::string& path) {
    for (auto& k : keys_) {
      if (k.path == path) return k;
    }
    fail("config table: no key '", path, "'");
  }

  static std::string escape_pipes(const std::string& s) {
    std::string out;
    for (char ch : s) out += ch == '|' ? std::string("\\|") : std::string(1, ch);
    return out;
  }

  // Every key of the object at `prefix` must be a key of the table or a section holding some.
  void check_section(const nlohmann::json& object, const std::string& prefix, const std::string& source,
                     const std::string& shown) const {
    DRAFT_CHECK(object.is_object(), source, ": '",
                prefix.empty() ? (shown.empty() ? "the config" : shown.substr(0, shown.size() - 1))
                               : shown + prefix.substr(0, prefix.size() - 1),
                "' must be a JSON object, got ", object.dump());
    for (const auto& item : object.items()) {
      const std::string path = prefix + item.key();
      bool leaf = false, section = false;
      for (const auto& k : keys_) {
        if (k.path == path) leaf = true;
        if (k.path.rfind(path + ".", 0) == 0) section = true;
      }
      if (leaf) continue;
      if (section && !item.value().is_null()) {
        check_section(item.value(), path + ".", source, shown);
        continue;
      }
      if (section) continue;
      std::string known;
      for (const auto& k : keys_) {
        if (k.path.rfind(prefix, 0) != 0) continue;
        const std::string rest = k.path.substr(prefix.size());
        const std::string name = rest.substr(0, rest.find('.'));
        if (known.find("'" + name + "'") == std::string::npos) known += (known.empty() ? "'" : ", '") + name + "'";
      }
      fail(source, ": unknown key '", shown, path, "' (known", prefix.empty() ? "" : " in " + shown + prefix.substr(0, prefix.size() - 1),
           ": ", known, ")");
    }
  }

  std::vector<ConfigKey<Config>> keys_;
};

}  // namespace draft

/// The member a config key lives in, for ConfigTable::add: DRAFT_MEMBER(optimizer.lr).
#define DRAFT_MEMBER(member) [](auto& c) -> auto& { return c.member; }
