// SVG line plots: nice ticks, the drawn elements, log axes, and errors.
#include <gtest/gtest.h>

#include "io/svg_plot.h"
#include "support.h"

namespace {

using draft::test::expect_error;

TEST(SvgPlot, NiceTicksAreRoundAndCoverTheRange) {
  EXPECT_EQ(draft::nice_ticks(0, 10, 6), (std::vector<double>{0, 2, 4, 6, 8, 10}));
  const auto small = draft::nice_ticks(-0.35, 0.1, 5);
  const std::vector<double> expected = {-0.3, -0.2, -0.1, 0, 0.1};
  ASSERT_EQ(small.size(), expected.size());
  for (std::size_t i = 0; i < small.size(); ++i) EXPECT_NEAR(small[i], expected[i], 1e-12);
  const auto ticks = draft::nice_ticks(3, 1234, 7);
  EXPECT_EQ(ticks.front(), 200);
  EXPECT_EQ(ticks.back(), 1200);
}

TEST(SvgPlot, DrawsSeriesBandsLegendAndReferenceLines) {
  draft::LinePlot plot;
  plot.title = "reward <held-out>";
  plot.x_label = "step";
  plot.y_label = "reward";
  plot.series.push_back({"DRaFT-LV", {0, 1, 2}, {-1, -0.5, -0.2}, {0.1, 0.1, 0.05}, "", false});
  plot.series.push_back({"ReFL", {0, 1, 2}, {-1, -0.8, NAN}, {}, "#000", true});
  plot.reference_lines.push_back({-0.3, "DDPO final"});
  const std::string svg = draft::render_svg(plot);
  EXPECT_EQ(svg.rfind("<svg", 0), 0U);
  EXPECT_NE(svg.find("reward &lt;held-out&gt;"), std::string::npos);  // escaped title
  EXPECT_EQ(std::count(svg.begin(), svg.end(), '\n') > 10, true);
  EXPECT_NE(svg.find("<polygon"), std::string::npos);     // the band
  EXPECT_NE(svg.find("stroke=\"#000\""), std::string::npos);
  EXPECT_NE(svg.find("stroke-dasharray=\"6 4\""), std::string::npos);
  EXPECT_NE(svg.find(">DRaFT-LV</text>"), std::string::npos);
  EXPECT_NE(svg.find(">DDPO final</text>"), std::string::npos);
  // The NaN point is skipped: the ReFL line has two points.
  const auto refl = svg.find("stroke=\"#000\"");
  const auto start = svg.rfind("points=\"", refl);
  const std::string points = svg.substr(start, refl - start);
  EXPECT_EQ(std::count(points.begin(), points.end(), ','), 2);
}

TEST(SvgPlot, LogAxisTicksArePowersOfTenAndRejectNonPositive) {
  draft::LinePlot plot;
  plot.log_x = true;
  plot.series.push_back({"a", {10, 100, 5000}, {1, 2, 3}, {}, "", false});
  const std::string svg = draft::render_svg(plot);
  EXPECT_NE(svg.find(">100</text>"), std::string::npos);
  EXPECT_NE(svg.find(">1000</text>"), std::string::npos);
  plot.series[0].x[0] = 0;
  EXPECT_NE(expect_error([&] { draft::render_svg(plot); }).find("log x axis needs x > 0"), std::string::npos);
  EXPECT_NE(expect_error([] { draft::render_svg(draft::LinePlot{}); }).find("no series"), std::string::npos);
}

TEST(SvgPlot, AsymmetricBandIsDrawnAndWidensTheAxis) {
  draft::LinePlot plot;
  draft::PlotSeries s{"median", {1, 2, 3}, {1, 2, 2}, {}, "", false};
  s.band_low = {0.5, 1, 1.5};
  s.band_high = {1.5, 6, 2.5};  // the band reaches 6, the line only 2
  plot.series.push_back(s);
  const std::string svg = draft::render_svg(plot);
  EXPECT_NE(svg.find("<polygon"), std::string::npos);
  EXPECT_NE(svg.find(">6</text>"), std::string::npos);
  plot.series[0].band_high.pop_back();
  EXPECT_NE(expect_error([&] { draft::render_svg(plot); }).find("band_low and band_high"), std::string::npos);
}

}  // namespace
