// Logging set-up.
#include "util/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include "util/error.h"

namespace draft {

void set_log_level(const std::string& name) {
  static const std::pair<const char*, spdlog::level::level_enum> kLevels[] = {
      {"trace", spdlog::level::trace}, {"debug", spdlog::level::debug},
      {"info", spdlog::level::info},   {"warn", spdlog::level::warn},
      {"error", spdlog::level::err},   {"off", spdlog::level::off},
  };
  for (const auto& [level_name, level] : kLevels) {
    if (name == level_name) {
      spdlog::set_level(level);
      return;
    }
  }
  fail("unknown log level '", name, "': use one of trace, debug, info, warn, error, off");
}

void init_logging() {
  auto logger = spdlog::stderr_color_mt("draft");
  logger->set_pattern("[%^%l%$] %v");
  spdlog::set_default_logger(logger);
}

}  // namespace draft
