// SVG line plots: axes with nice ticks (linear or log10 x), series with optional shaded bands (± spread or
// low..high), legend.
#include "io/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>

#include <fmt/format.h>

#include "io/atomic_file.h"
#include "io/html.h"
#include "util/error.h"

namespace draft {
namespace {

const std::vector<std::string>& palette() {
  static const std::vector<std::string> colors = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                                  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  return colors;
}

std::string tick_label(double value) {
  if (value == 0) return "0";
  const double magnitude = std::abs(value);
  if (magnitude >= 1e5 || magnitude < 1e-3) return fmt::format("{:.0e}", value);
  return fmt::format("{:g}", std::round(value * 1e6) / 1e6);
}

struct Range {
  double low = std::numeric_limits<double>::infinity();
  double high = -std::numeric_limits<double>::infinity();
  void add(double v) {
    if (!std::isfinite(v)) return;
    low = std::min(low, v);
    high = std::max(high, v);
  }
  void pad() {
    if (low == high) {
      const double d = low == 0 ? 1.0 : std::abs(low) * 0.1;
      low -= d;
      high += d;
    }
  }
};

// The band around point i: [band_low, band_high] when given, else y ± spread; NaN when there is none.
std::pair<double, double> band_at(const PlotSeries& s, std::size_t i) {
  if (!s.band_low.empty()) return {s.band_low[i], s.band_high[i]};
  if (!s.spread.empty() && std::isfinite(s.spread[i])) return {s.y[i] - s.spread[i], s.y[i] + s.spread[i]};
  return {NAN, NAN};
}

}  // namespace

std::vector<double> nice_ticks(double low, double high, int count) {
  DRAFT_CHECK(high > low && count >= 2, "nice_ticks needs high > low and count >= 2");
  // The 1-2-5 step whose number of ticks is closest to `count`.
  const double raw = (high - low) / (count - 1);
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  double step = power;
  double best = std::numeric_limits<double>::infinity();
  for (double m : {0.5, 1.0, 2.0, 5.0, 10.0}) {
    const double candidate = m * power;
    const double n = std::floor(high / candidate + 1e-9) - std::ceil(low / candidate - 1e-9) + 1;
    if (std::abs(n - count) < best) {
      best = std::abs(n - count);
      step = candidate;
    }
  }
  std::vector<double> ticks;
  const auto first = static_cast<int64_t>(std::ceil(low / step - 1e-9));
  const auto last = static_cast<int64_t>(std::floor(high / step + 1e-9));
  for (int64_t k = first; k <= last; ++k) ticks.push_back(static_cast<double>(k) * step);  // k * step: no drift
  return ticks;
}

std::string render_svg(const LinePlot& plot) {
  DRAFT_CHECK(!plot.series.empty(), "plot '", plot.title, "' has no series to draw");
  Range xr, yr;
  for (const auto& s : plot.series) {
    DRAFT_CHECK(s.x.size() == s.y.size(), "plot series '", s.name, "' has ", s.x.size(), " x values and ",
                s.y.size(), " y values");
    DRAFT_CHECK(s.spread.empty() || s.spread.size() == s.y.size(), "plot series '", s.name,
                "': spread must have one value per point");
    DRAFT_CHECK(s.band_low.size() == s.band_high.size() && (s.band_low.empty() || s.band_low.size() == s.y.size()),
                "plot series '", s.name, "': band_low and band_high must have one value per point");
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      DRAFT_CHECK(!plot.log_x || s.x[i] > 0, "plot '", plot.title, "': a log x axis needs x > 0, series '", s.name,
                  "' has x = ", s.x[i]);
      xr.add(plot.log_x ? std::log10(s.x[i]) : s.x[i]);
      const auto [low, high] = band_at(s, i);
      yr.add(std::isfinite(low) ? low : s.y[i]);
      yr.add(std::isfinite(high) ? high : s.y[i]);
    }
  }
  for (const auto& [value, label] : plot.reference_lines) yr.add(value);
  DRAFT_CHECK(std::isfinite(xr.low) && std::isfinite(yr.low), "plot '", plot.title, "' has no finite point");
  xr.pad();
  yr.pad();
  const double y_margin = (yr.high - yr.low) * 0.05;
  yr.low -= y_margin;
  yr.high += y_margin;

  const double left = 70, right = 20, top = plot.title.empty() ? 20 : 40, bottom = 50;
  const double pw = plot.width - left - right, ph = plot.height - top - bottom;
  auto px = [&](double x) { return left + ((plot.log_x ? std::log10(x) : x) - xr.low) / (xr.high - xr.low) * pw; };
  auto py = [&](double y) { return top + (yr.high - y) / (yr.high - yr.low) * ph; };

  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
      plot.width, plot.height, plot.width, plot.height);
  if (!plot.title.empty()) {
    svg += fmt::format("<text x=\"{}\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">{}</text>\n",
                       plot.width / 2, html_escape(plot.title));
  }
  // Grid and ticks.
  for (double v : nice_ticks(yr.low, yr.high, 6)) {
    svg += fmt::format("<line x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#e5e5e5\"/>\n", left,
                       left + pw, py(v), py(v));
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n", left - 6, py(v) + 4,
                       tick_label(v));
  }
  std::vector<double> x_ticks;
  if (plot.log_x) {
    for (double e = std::ceil(xr.low - 1e-9); e <= xr.high + 1e-9; e += 1) x_ticks.push_back(std::pow(10.0, e));
  } else {
    x_ticks = nice_ticks(xr.low, xr.high, 7);
  }
  for (double v : x_ticks) {
    svg += fmt::format("<line x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#e5e5e5\"/>\n", px(v),
                       px(v), top, top + ph);
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n", px(v), top + ph + 16,
                       tick_label(v));
  }
  svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#333\"/>\n", left,
                     top, pw, ph);
  svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n", left + pw / 2,
                     plot.height - 10.0, html_escape(plot.x_label + (plot.log_x ? " (log scale)" : "")));
  svg += fmt::format("<text transform=\"translate(16 {:.1f}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n",
                     top + ph / 2, html_escape(plot.y_label));
  for (const auto& [value, label] : plot.reference_lines) {
    svg += fmt::format(
        "<line x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#555\" stroke-dasharray=\"2 3\"/>\n"
        "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\" fill=\"#555\">{}</text>\n",
        left, left + pw, py(value), py(value), left + pw - 4, py(value) - 4, html_escape(label));
  }
  // Series: band first, then the line.
  std::size_t color_index = 0;
  std::vector<std::pair<std::string, std::string>> legend;
  for (const auto& s : plot.series) {
    const std::string color = s.color.empty() ? palette()[color_index++ % palette().size()] : s.color;
    std::string line, upper, lower;
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      line += fmt::format("{}{:.1f},{:.1f}", line.empty() ? "" : " ", px(s.x[i]), py(s.y[i]));
      const auto [low, high] = band_at(s, i);
      if (std::isfinite(low) && std::isfinite(high)) {
        upper += fmt::format(" {:.1f},{:.1f}", px(s.x[i]), py(high));
        lower = fmt::format(" {:.1f},{:.1f}", px(s.x[i]), py(low)) + lower;
      }
    }
    if (!upper.empty()) {
      svg += fmt::format("<polygon points=\"{}{}\" fill=\"{}\" fill-opacity=\"0.15\" stroke=\"none\"/>\n", upper,
                         lower, color);
    }
    svg += fmt::format("<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.8\"{}/>\n", line, color,
                       s.dashed ? " stroke-dasharray=\"6 4\"" : "");
    if (!s.name.empty()) legend.emplace_back(s.name, color);
  }
  for (std::size_t i = 0; i < legend.size(); ++i) {
    const double y = top + 14 + 16 * static_cast<double>(i);
    svg += fmt::format(
        "<line x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" stroke-width=\"2\"/>"
        "<text x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n",
        left + 10, left + 30, y - 4, y - 4, legend[i].second, left + 36, y, html_escape(legend[i].first));
  }
  svg += "</svg>\n";
  return svg;
}

void write_svg(const std::string& path, const LinePlot& plot) {
  write_file_atomically(path, render_svg(plot));
}

}  // namespace draft
