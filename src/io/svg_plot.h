// Line plots as SVG text (no font or image library needed; browsers and GitHub render them): what
// `draft plot` draws from a run's metrics.jsonl and what the benchmarks draw for docs/.
#pragma once

#include <string>
#include <vector>

namespace draft {

struct PlotSeries {
  std::string name;        ///< legend entry; empty: not in the legend
  std::vector<double> x;
  std::vector<double> y;
  /// Optional symmetric band y ± spread (e.g. a standard deviation), drawn shaded; empty: none.
  std::vector<double> spread;
  std::string color;  ///< CSS colour; empty: the palette's next colour
  bool dashed = false;
  /// Optional band from band_low to band_high (e.g. min..max over seeds), one value each per point, drawn
  /// shaded like `spread`; used instead of `spread` when given. Empty: none.
  std::vector<double> band_low = {};  // "= {}": aggregate initialisers may leave them out without a warning
  std::vector<double> band_high = {};
};

struct LinePlot {
  std::string title;
  std::string x_label;
  std::string y_label;
  bool log_x = false;  ///< base-10 logarithmic x axis (x values must be > 0)
  std::vector<PlotSeries> series;
  /// Optional horizontal reference lines (value, label), drawn dotted.
  std::vector<std::pair<double, std::string>> reference_lines;
  int width = 720;
  int height = 420;
};

/// The plot as a complete SVG document. Non-finite points are skipped. Throws draft::Error when there is
/// nothing to draw or a log axis meets a value <= 0.
std::string render_svg(const LinePlot& plot);

/// render_svg written to `path`.
void write_svg(const std::string& path, const LinePlot& plot);

/// About `count` "nice" tick values (1, 2 or 5 times a power of ten) covering [low, high].
std::vector<double> nice_ticks(double low, double high, int count);

}  // namespace draft
