// Range checks for numeric flags, with messages a user can act on ("--n: must be at least 1, got 0"). They
// replace CLI11's PositiveNumber / NonNegativeNumber / Range, whose messages print the bound DBL_MAX in full,
// and they see the flag's text before CLI11 converts it, which CLI11 2.1 saturates silently on overflow
// (--n 99999999999999999999 became INT64_MAX images).
#pragma once

#include <cstdint>

#include <CLI/CLI.hpp>

namespace draft::cli {

/// The largest image, step or batch count a flag takes: far above any real run, low enough that a typo
/// with extra digits is refused before it allocates anything.
inline constexpr int64_t kMaxCount = 1'000'000;
/// The largest image side in pixels (--height, --width): 8x Stable Diffusion 2's.
inline constexpr int64_t kMaxImageSide = 8192;
/// The most CPU threads --threads and --blas-threads take (starting 100,000 threads hangs the machine).
inline constexpr int64_t kMaxThreads = 1024;

/// A whole number in [min, max]; refuses anything else with "must be at least MIN, got VALUE" (or "at
/// most", or "a whole number").
CLI::Validator whole_number(int64_t min, int64_t max = kMaxCount);

/// A finite number in [min, max]; refuses anything else with "must be between MIN and MAX, got VALUE".
CLI::Validator real_number(double min, double max);

}  // namespace draft::cli
