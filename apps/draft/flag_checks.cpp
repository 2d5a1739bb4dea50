// Range checks for numeric flags.
#include "flag_checks.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string>

#include <fmt/format.h>

namespace draft::cli {

CLI::Validator whole_number(int64_t min, int64_t max) {
  auto check = [min, max](std::string& text) -> std::string {
    const char* begin = text.c_str();
    char* end = nullptr;
    errno = 0;
    const long long value = std::strtoll(begin, &end, 10);
    if (text.empty() || end == begin || *end != '\0') return fmt::format("must be a whole number, got '{}'", text);
    // strtoll clamps an overflow to the type's limit and sets ERANGE; the digits' sign says which side.
    const bool too_large = errno == ERANGE ? value > 0 : value > max;
    const bool too_small = errno == ERANGE ? value < 0 : value < min;
    if (too_large) return fmt::format("must be at most {}, got {}", max, text);
    if (too_small) return fmt::format("must be at least {}, got {}", min, text);
    return "";
  };
  return CLI::Validator(check, fmt::format("{}..{}", min, max));
}

CLI::Validator real_number(double min, double max) {
  auto check = [min, max](std::string& text) -> std::string {
    const char* begin = text.c_str();
    char* end = nullptr;
    const double value = std::strtod(begin, &end);
    if (text.empty() || end == begin || *end != '\0' || !std::isfinite(value)) {
      return fmt::format("must be a number, got '{}'", text);
    }
    if (value < min || value > max) return fmt::format("must be between {} and {}, got {}", min, max, text);
    return "";
  };
  return CLI::Validator(check, fmt::format("{}..{}", min, max));
}

}  // namespace draft::cli
