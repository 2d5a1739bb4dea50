// Progress bar: live on a terminal, plain periodic lines elsewhere.
#include "util/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <sstream>

namespace draft {
namespace {

constexpr int kBarWidth = 24;
constexpr double kTerminalRedrawS = 0.1;
constexpr double kPlainLineEveryS = 30.0;
constexpr int64_t kPlainLinesPerRun = 20;  // a plain line every 5% of the work

std::string format_metric(double value) {
  std::ostringstream s;
  double a = std::fabs(value);
  if (value != 0.0 && (a < 1e-3 || a >= 1e5)) {
    s << std::scientific << std::setprecision(3) << value;
  } else {
    s << std::fixed << std::setprecision(a >= 100 ? 1 : 4) << value;
  }
  return s.str();
}

}  // namespace

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  auto total = static_cast<int64_t>(std::llround(seconds));
  int64_t h = total / 3600, m = (total / 60) % 60, s = total % 60;
  char buf[32];
  if (h > 0) {
    std::snprintf(buf, sizeof(buf), "%lld:%02lld:%02lld", static_cast<long long>(h),
                  static_cast<long long>(m), static_cast<long long>(s));
  } else {
    std::snprintf(buf, sizeof(buf), "%02lld:%02lld", static_cast<long long>(m),
                  static_cast<long long>(s));
  }
  return buf;
}

ProgressBar::ProgressBar(int64_t total, std::string label)
    : ProgressBar(total, std::move(label), std::cout, isatty(fileno(stdout)) != 0) {}

ProgressBar::ProgressBar(int64_t total, std::string label, std::ostream& out, bool terminal)
    : total_(total < 0 ? 0 : total),
      label_(std::move(label)),
      out_(out),
      terminal_(terminal),
      start_(std::chrono::steady_clock::now()),
      last_print_(start_) {}

ProgressBar::~ProgressBar() {
  // An exception may unwind through the loop: end the live line so the error message starts clean.
  if (terminal_ && !finished_ && last_printed_done_ >= 0) out_ << '\n' << std::flush;
}

std::string ProgressBar::render(int64_t done, double elapsed_s, const Metrics& metrics) const {
  std::ostringstream line;
  if (!label_.empty()) line << label_ << ' ';
  line << done << '/' << total_;
  if (total_ > 0) {
    double frac = std::min(1.0, static_cast<double>(done) / static_cast<double>(total_));
    int filled = static_cast<int>(frac * kBarWidth);
    line << " [" << std::string(filled, '=') << (filled < kBarWidth ? ">" : "")
         << std::string(kBarWidth - filled - (filled < kBarWidth ? 1 : 0), ' ') << "] "
         << std::setw(3) << static_cast<int>(frac * 100) << '%';
  }
  double rate = elapsed_s > 0 ? static_cast<double>(done) / elapsed_s : 0.0;
  if (rate >= 1.0 || rate == 0.0) {
    line << ' ' << std::fixed << std::setprecision(2) << rate << " it/s";
  } else {
    line << ' ' << std::fixed << std::setprecision(2) << 1.0 / rate << " s/it";
  }
  double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : -1.0;
  line << " elapsed " << format_duration(elapsed_s);
  if (done < total_) line << " ETA " << format_duration(eta);
  for (const auto& [name, value] : metrics) line << ' ' << name << '=' << format_metric(value);
  return line.str();
}

void ProgressBar::update(int64_t done, const Metrics& metrics) {
  if (finished_) return;
  done_ = done;
  metrics_ = metrics;
  auto now = std::chrono::steady_clock::now();
  double since_print = std::chrono::duration<double>(now - last_print_).count();
  bool due;
  if (terminal_) {
    due = since_print >= kTerminalRedrawS || done >= total_;
  } else {
    int64_t every = std::max<int64_t>(1, total_ / kPlainLinesPerRun);
    due = done / every != last_printed_done_ / every || since_print >= kPlainLineEveryS;
    due = due && done < total_;  // the last line comes from finish()
  }
  if (due) print(done, metrics, false);
}

void ProgressBar::finish() {
  if (finished_) return;
  print(done_, metrics_, true);
  finished_ = true;
}

void ProgressBar::print(int64_t done, const Metrics& metrics, bool final_line) {
  auto now = std::chrono::steady_clock::now();
  double elapsed = std::chrono::duration<double>(now - start_).count();
  std::string text = render(done, elapsed, metrics);
  if (terminal_) {
    out_ << "\r\033[2K" << text;
    if (final_line) out_ << '\n';
  } else {
    out_ << text << '\n';
  }
  out_ << std::flush;
  last_print_ = now;
  last_printed_done_ = done;
}

}  // namespace draft
