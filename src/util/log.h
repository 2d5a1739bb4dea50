// Logging: spdlog to stderr, so that stdout stays for results (tables, JSON).
#pragma once

#include <string>

#include <spdlog/spdlog.h>

namespace draft {

/// Sets the global log level from a name: trace, debug, info, warn, error, off.
/// Throws draft::Error naming the accepted values for any other name.
void set_log_level(const std::string& name);

/// Sends logs to stderr with a compact "[level] message" pattern. Called once by the CLI.
void init_logging();

}  // namespace draft

#define DRAFT_LOG_TRACE(...) SPDLOG_TRACE(__VA_ARGS__)
#define DRAFT_LOG_DEBUG(...) SPDLOG_DEBUG(__VA_ARGS__)
#define DRAFT_LOG_INFO(...) ::spdlog::info(__VA_ARGS__)
#define DRAFT_LOG_WARN(...) ::spdlog::warn(__VA_ARGS__)
#define DRAFT_LOG_ERROR(...) ::spdlog::error(__VA_ARGS__)
