// The non-template parts of the config tables: kinds, checks and JSON paths.
#include "io/config_table.h"

#include <cmath>

namespace draft {
namespace {

std::string number_text(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

bool is_number(const nlohmann::json& v) { return v.is_number() && std::isfinite(v.get<double>()); }

}  // namespace

std::string config_kind_name(ConfigKind kind) {
  switch (kind) {
    case ConfigKind::kBool: return "bool";
    case ConfigKind::kInt: return "integer";
    case ConfigKind::kUInt: return "unsigned integer";
    case ConfigKind::kNumber: return "number";
    case ConfigKind::kString: return "string";
    case ConfigKind::kStringList: return "list of strings";
    case ConfigKind::kIntList: return "list of integers";
    case ConfigKind::kObject: return "object";
  }
  return "value";
}

ConfigCheck check_positive() {
  return [](const nlohmann::json& v) { return is_number(v) && v.get<double>() > 0 ? "" : std::string("must be > 0"); };
}

ConfigCheck check_non_negative() {
  return [](const nlohmann::json& v) { return is_number(v) && v.get<double>() >= 0 ? "" : std::string("must be >= 0"); };
}

ConfigCheck check_at_least(double minimum) {
  return [minimum](const nlohmann::json& v) {
    return is_number(v) && v.get<double>() >= minimum ? "" : "must be >= " + number_text(minimum);
  };
}

ConfigCheck check_range(double low, double high, bool high_inclusive) {
  return [=](const nlohmann::json& v) {
    const bool ok = is_number(v) && v.get<double>() >= low &&
                    (high_inclusive ? v.get<double>() <= high : v.get<double>() < high);
    return ok ? std::string() : "must be in [" + number_text(low) + ", " + number_text(high) + (high_inclusive ? "]" : ")");
  };
}

ConfigCheck check_one_of(std::vector<std::string> values) {
  return [values](const nlohmann::json& v) {
    for (const auto& allowed : values) {
      if (v.is_string() && v.get<std::string>() == allowed) return std::string();
    }
    std::string list;
    for (const auto& allowed : values) list += (list.empty() ? "" : ", ") + allowed;
    return "must be one of " + list;
  };
}

ConfigCheck check_not_empty() {
  // json::empty() is false for every string, so strings are checked by their text.
  return [](const nlohmann::json& v) {
    const bool empty = v.is_string() ? v.get<std::string>().empty() : v.empty();
    return empty ? std::string("must not be empty") : std::string();
  };
}

namespace config_table_detail {

nlohmann::json at_path(const nlohmann::json& j, const std::string& path) {
  const nlohmann::json* node = &j;
  std::size_t begin = 0;
  while (true) {
    const std::size_t dot = path.find('.', begin);
    const std::string part = path.substr(begin, dot == std::string::npos ? std::string::npos : dot - begin);
    if (!node->is_object() || !node->contains(part)) return nullptr;
    node = &node->at(part);
    if (dot == std::string::npos) return *node;
    begin = dot + 1;
  }
}

void set_path(nlohmann::json& j, const std::string& path, nlohmann::json value) {
  nlohmann::json* node = &j;
  std::size_t begin = 0;
  while (true) {
    const std::size_t dot = path.find('.', begin);
    if (dot == std::string::npos) {
      (*node)[path.substr(begin)] = std::move(value);
      return;
    }
    node = &(*node)[path.substr(begin, dot - begin)];
    begin = dot + 1;
  }
}

std::string value_text(const nlohmann::json& value) {
  return value.is_string() ? "'" + value.get<std::string>() + "'" : value.dump();
}

}  // namespace config_table_detail
}  // namespace draft
