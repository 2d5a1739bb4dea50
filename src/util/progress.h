// A progress bar for long loops (training, sampling, benchmarks): step/total, rate, ETA, live metrics.
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

namespace draft {

/// Named scalars shown after the bar, e.g. {{"loss", 0.12}, {"reward", 3.4}}.
using Metrics = std::vector<std::pair<std::string, double>>;

/// Formats seconds as "MM:SS" or "H:MM:SS"; "--:--" for a value that is not finite or negative.
std::string format_duration(double seconds);

/// Draws a live bar on a terminal (redrawn in place, at most every 100 ms) and, when the output is not a
/// terminal (a log file, CI), prints a plain line every 5% of the work or every 30 s, and at the end.
///
/// Example:
/// ```
///   draft::ProgressBar bar(steps, "train");
///   for (int64_t i = 0; i < steps; ++i) { ...; bar.update(i + 1, {{"loss", loss}}); }
///   bar.finish();
/// ```
class ProgressBar {
 public:
  /// Writes to stdout; the terminal mode is chosen with isatty(stdout).
  ProgressBar(int64_t total, std::string label);
  /// Writes to `out`; `terminal` chooses the live mode. Used by tests and by callers that log elsewhere.
  ProgressBar(int64_t total, std::string label, std::ostream& out, bool terminal);
  ~ProgressBar();

  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  /// Reports that `done` of `total` steps are complete, with the latest metrics.
  void update(int64_t done, const Metrics& metrics = {});
  /// Prints the final state (once) and ends the line.
  void finish();

  /// The text of one status line for the given state (no terminal control codes).
  std::string render(int64_t done, double elapsed_s, const Metrics& metrics) const;

 private:
  void print(int64_t done, const Metrics& metrics, bool final_line);

  int64_t total_;
  std::string label_;
  std::ostream& out_;
  bool terminal_;
  bool finished_ = false;
  int64_t done_ = 0;
  Metrics metrics_;
  int64_t last_printed_done_ = -1;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_print_;
};

}  // namespace draft
