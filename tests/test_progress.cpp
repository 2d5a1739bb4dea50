// Progress bar formatting and its plain-line mode.
#include <sstream>

#include <gtest/gtest.h>

#include "util/progress.h"

namespace {

int count_lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

TEST(Progress, FormatDuration) {
  EXPECT_EQ(draft::format_duration(0), "00:00");
  EXPECT_EQ(draft::format_duration(65.4), "01:05");
  EXPECT_EQ(draft::format_duration(3723), "1:02:03");
  EXPECT_EQ(draft::format_duration(-1), "--:--");
  EXPECT_EQ(draft::format_duration(1.0 / 0.0), "--:--");
}

TEST(Progress, RenderShowsStepRateEtaAndMetrics) {
  std::ostringstream out;
  draft::ProgressBar bar(100, "train", out, false);
  std::string line = bar.render(25, 10.0, {{"loss", 0.5}, {"reward", 1234567.0}});
  EXPECT_NE(line.find("train 25/100"), std::string::npos) << line;
  EXPECT_NE(line.find(" 25%"), std::string::npos) << line;
  EXPECT_NE(line.find("2.50 it/s"), std::string::npos) << line;
  EXPECT_NE(line.find("ETA 00:30"), std::string::npos) << line;
  EXPECT_NE(line.find("loss=0.5000"), std::string::npos) << line;
  EXPECT_NE(line.find("reward=1.235e+06"), std::string::npos) << line;
  EXPECT_NE(bar.render(1, 4.0, {}).find("4.00 s/it"), std::string::npos);
}

TEST(Progress, PlainModePrintsAboutTwentyLinesAndNoControlCodes) {
  std::ostringstream out;
  {
    draft::ProgressBar bar(1000, "x", out, false);
    for (int i = 1; i <= 1000; ++i) bar.update(i, {{"m", i}});
    bar.finish();
    bar.finish();  // idempotent
  }
  std::string text = out.str();
  EXPECT_EQ(text.find('\r'), std::string::npos);
  EXPECT_EQ(text.find('\033'), std::string::npos);
  EXPECT_GE(count_lines(text), 19);
  EXPECT_LE(count_lines(text), 21);
  EXPECT_NE(text.rfind("x 1000/1000"), std::string::npos);
}

TEST(Progress, TerminalModeRedrawsInPlace) {
  std::ostringstream out;
  draft::ProgressBar bar(3, "t", out, true);
  for (int i = 1; i <= 3; ++i) bar.update(i);
  bar.finish();
  std::string text = out.str();
  EXPECT_NE(text.find("\r\033[2K"), std::string::npos);
  EXPECT_EQ(text.back(), '\n');
  EXPECT_EQ(count_lines(text), 1);
}

}  // namespace
