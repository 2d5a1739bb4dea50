// draft::Error, the one exception type the library throws, and DRAFT_CHECK to raise it.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace draft {

/// The library's error. Its message names the thing that is wrong (file, key, value) and, where it
/// can, what to do about it. Only the CLI's main() catches it.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

namespace detail {
inline void append_all(std::ostringstream&) {}
template <typename T, typename... Rest>
void append_all(std::ostringstream& out, const T& first, const Rest&... rest) {
  out << first;
  append_all(out, rest...);
}
}  // namespace detail

/// Concatenates the arguments with operator<< into one string.
template <typename... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream out;
  detail::append_all(out, args...);
  return out.str();
}

/// Throws draft::Error with the concatenated arguments as message.
template <typename... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(str_cat(args...));
}

}  // namespace draft

/// DRAFT_CHECK(cond, parts...): throws draft::Error(parts...) when cond is false. The message parts are
/// only evaluated on failure.
#define DRAFT_CHECK(cond, ...)      \
  do {                              \
    if (!(cond)) {                  \
      ::draft::fail(__VA_ARGS__);   \
    }                               \
  } while (false)
