// `draft report`'s page in a real browser (label `browser`, `make test-browser`; skipped without Chromium,
// which `scripts/install-deps.sh --browser` installs): headless Chromium opens the report of two synthetic
// runs from a file:// URL and must find every image loaded, no script error and nothing it failed to load
// (the page's own load check, read from --dump-dom, and Chromium's console log), and its screenshot must
// show the page: not blank, with the first run's plot colour in it.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "io/png.h"
#include "support.h"
#include "synthetic_run.h"
#include "train/run_report.h"

namespace {

using draft::test::TempDir;

using draft::test::slurp;

// The first of chromium, chromium-browser on PATH; "" when there is none.
std::string find_chromium() {
  const char* path = std::getenv("PATH");
  if (!path) return "";
  for (const char* name : {"chromium", "chromium-browser"}) {
    std::stringstream dirs(path);
    for (std::string dir; std::getline(dirs, dir, ':');) {
      const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
      if (std::filesystem::is_regular_file(candidate) && ::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
  }
  return "";
}

// Runs a shell command line; its exit status (-1 when it did not exit normally).
int run(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(ReportBrowser, HeadlessChromiumLoadsEveryImageWithoutScriptErrorsAndDrawsThePage) {
  const std::string chromium = find_chromium();
  if (chromium.empty()) GTEST_SKIP() << "no chromium or chromium-browser on PATH (scripts/install-deps.sh --browser)";
  TempDir dir;
  draft::test::write_synthetic_run(dir.file("a"));
  draft::test::write_synthetic_run(dir.file("b"), {10.0, 8.0, 6.0}, 1.0);  // with the diversity warning
  draft::write_run_report({dir.file("a"), dir.file("b")}, dir.file("report.html"), {});
  const std::string url = "file://" + dir.file("report.html");
  const std::string browser = "timeout 120 " + chromium +
                              " --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run"
                              " --user-data-dir=" + dir.file("profile") + " ";

  // 1. The DOM after the load event, with the console on stderr.
  const int dom_code = run(browser + "--enable-logging=stderr --v=0 --virtual-time-budget=10000 --dump-dom " + url +
                           " >" + dir.file("dom.html") + " 2>" + dir.file("dom.log"));
  const std::string dom = slurp(dir.file("dom.html")), log = slurp(dir.file("dom.log"));
  ASSERT_EQ(dom_code, 0) << log;
  EXPECT_NE(dom.find("data-report-ready=\"1\""), std::string::npos) << "the page's load check did not run\n" << log;
  EXPECT_NE(dom.find("data-images=\"4\""), std::string::npos) << "expected the 4 sample grids of two runs";
  EXPECT_NE(dom.find("data-broken-images=\"0\""), std::string::npos) << "an image did not load";
  EXPECT_NE(dom.find("data-js-errors=\"0\""), std::string::npos) << log;
  EXPECT_EQ(log.find("Uncaught"), std::string::npos) << log;
  EXPECT_EQ(log.find("Failed to load resource"), std::string::npos) << log;
  EXPECT_NE(dom.find("possible reward hacking in " + dir.file("b")), std::string::npos);

  // 2. A screenshot of the top of the page: not blank, and the plots are drawn.
  const std::string shot = dir.file("shot.png");
  const int shot_code = run(browser + "--window-size=1200,2000 --screenshot=" + shot + " " + url + " >" +
                            dir.file("shot.log") + " 2>&1");
  ASSERT_EQ(shot_code, 0) << slurp(dir.file("shot.log"));
  ASSERT_TRUE(std::filesystem::exists(shot)) << slurp(dir.file("shot.log"));
  const at::Tensor image = draft::read_png(shot);
  ASSERT_EQ(image.size(0), 3);
  EXPECT_EQ(image.size(1), 2000);
  EXPECT_EQ(image.size(2), 1200);
  const double variance = image.var().item<double>();
  const double inked = (std::get<0>(image.min(0)) < 0.9).to(torch::kFloat).mean().item<double>();
  EXPECT_GT(variance, 1e-3) << "blank screenshot";
  EXPECT_GT(inked, 0.01) << "almost nothing drawn: " << inked;
  // The first run's colour, #1f77b4, in its curves.
  const at::Tensor blue = torch::tensor({0x1f / 255.0, 0x77 / 255.0, 0xb4 / 255.0}, torch::kFloat).view({3, 1, 1});
  const int64_t blue_pixels = ((image - blue).abs().amax(0) < 0.08).sum().item<int64_t>();
  EXPECT_GT(blue_pixels, 100) << "no curve of the first run in the screenshot";
  std::cout << "screenshot: variance " << variance << ", non-white " << inked << ", #1f77b4 pixels " << blue_pixels
            << " (" << chromium << ")\n";
}

}  // namespace
