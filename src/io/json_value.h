// Typed values out of JSON without undefined behaviour. nlohmann's get<T>() turns a float into an integer with a
// plain cast, which is undefined for 1e30 or -1e30 (a config typo would then be whatever the machine makes of it),
// truncates 2.5 to 2 and wraps -1 into a huge unsigned. json_to accepts only values that T holds exactly.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

namespace draft {

namespace json_value_detail {
template <typename T>
struct is_vector : std::false_type {};
template <typename T, typename A>
struct is_vector<std::vector<T, A>> : std::true_type {};
}  // namespace json_value_detail

/// Stores `value` in `out` and returns true when it is a T: a bool for bool; for an integer type, an integer
/// or an integral float in T's range (so 1e3 is 1000, but 2.5, 1e30, -1 for unsigned and true are not); any
/// finite or infinite number for a floating type; a string for std::string; an array whose every element is
/// one for std::vector; otherwise what nlohmann's get<T>() accepts. Returns false, leaving `out` as it was,
/// for anything else.
template <typename T>
bool json_to(const nlohmann::json& value, T& out) {
  if constexpr (std::is_same_v<T, bool>) {
    if (!value.is_boolean()) return false;
    out = value.get<bool>();
    return true;
  } else if constexpr (std::is_integral_v<T>) {
    using Limits = std::numeric_limits<T>;
    if (value.is_number_unsigned()) {
      const uint64_t u = value.get<uint64_t>();
      if (u > static_cast<uint64_t>(Limits::max())) return false;
      out = static_cast<T>(u);
      return true;
    }
    if (value.is_number_integer()) {
      const int64_t i = value.get<int64_t>();
      if (i < 0 ? i < static_cast<int64_t>(Limits::min()) : static_cast<uint64_t>(i) > static_cast<uint64_t>(Limits::max())) {
        return false;
      }
      out = static_cast<T>(i);
      return true;
    }
    if (value.is_number_float()) {
      const double d = value.get<double>();
      // [min, 2^digits): both bounds are exact doubles, so the cast below is defined.
      const double upper = std::ldexp(1.0, Limits::digits);
      if (!std::isfinite(d) || d != std::trunc(d) || d < static_cast<double>(Limits::min()) || d >= upper) return false;
      out = static_cast<T>(d);
      return true;
    }
    return false;
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!value.is_number()) return false;
    out = value.get<T>();
    return true;
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!value.is_string()) return false;
    out = value.get_ref<const std::string&>();
    return true;
  } else if constexpr (json_value_detail::is_vector<T>::value) {
    if (!value.is_array()) return false;
    T items;
    items.reserve(value.size());
    for (const auto& element : value) {
      typename T::value_type item{};
      if (!json_to(element, item)) return false;
      items.push_back(std::move(item));
    }
    out = std::move(items);
    return true;
  } else {
    try {
      out = value.get<T>();
      return true;
    } catch (const nlohmann::json::exception&) {
      return false;
    }
  }
}

}  // namespace draft
