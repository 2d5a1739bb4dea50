// `draft report`'s HTML (train/run_report.h) on synthetic run folders: curves as inline SVG, the grids as
// data: URIs in step order, the config, nothing from the network, the diversity warning exactly when the
// fall passes the threshold, one series per run when several are overlaid, pretraining runs, and the
// folders it refuses.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "io/html.h"
#include "support.h"
#include "synthetic_run.h"
#include "train/run_report.h"

namespace {

using draft::test::expect_error;
using draft::test::TempDir;
using nlohmann::json;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string report_of(const std::vector<std::string>& dirs, double threshold = 0.3) {
  std::vector<draft::RunHistory> runs;
  for (const auto& dir : dirs) runs.push_back(draft::read_run_history(dir));
  draft::RunReportOptions options;
  options.diversity_warning = threshold;
  return draft::render_run_report(runs, options);
}

// The inline SVG of the plot `name` (its data-plot attribute), or "" when the page has none.
std::string plot_of(const std::string& html, const std::string& name) {
  const std::size_t at = html.find("data-plot=\"" + name + "\"");
  if (at == std::string::npos) return "";
  return html.substr(at, html.find("</svg>", at) - at);
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(RunReport, HoldsCurvesGridsInStepOrderConfigAndNothingFromTheNetwork) {
  TempDir dir;
  draft::test::write_synthetic_run(dir.file("run"));
  const std::string html = report_of({dir.file("run")});

  for (const char* plot : {"train-reward_mean-step", "train-reward_mean-reward_queries", "eval-eval_reward_mean-step",
                           "eval-eval_reward_mean-reward_queries", "train-loss-step", "train-grad_norm-step",
                           "train-lr-step", "eval-diversity-step"}) {
    const std::string svg = plot_of(html, plot);
    EXPECT_NE(svg.find("<svg"), std::string::npos) << "no inline SVG plot " << plot;
    EXPECT_EQ(count(svg, "<polyline"), 1U) << plot;
  }
  // Both grids, embedded, step 0 (the base model) first although step 4 was written first.
  const std::string base = draft::data_uri(read_file(dir.file("run/samples/step_000000.png")), "image/png");
  const std::string tuned = draft::data_uri(read_file(dir.file("run/samples/step_000004.png")), "image/png");
  const std::size_t base_at = html.find("src=\"" + base + "\""), tuned_at = html.find("src=\"" + tuned + "\"");
  ASSERT_NE(base_at, std::string::npos);
  ASSERT_NE(tuned_at, std::string::npos);
  EXPECT_LT(base_at, tuned_at);
  EXPECT_NE(html.find("step 0 (base model), held-out reward -4"), std::string::npos);
  EXPECT_NE(html.find("step 4, held-out reward -2"), std::string::npos);
  // The config and method.
  EXPECT_NE(html.find("<td>method</td><td>draft-lv (lv_n = 2)</td>"), std::string::npos);
  EXPECT_NE(html.find("&quot;schedule&quot;: &quot;constant&quot;"), std::string::npos);
  EXPECT_NE(html.find("<td>optimizer/lr</td><td>0.0003</td>"), std::string::npos);
  // Timings: 4 steps in 2 s.
  EXPECT_NE(html.find("<td>4</td><td>2</td><td>0.5</td><td>16</td><td>80</td>"), std::string::npos);
  // Offline: no address at all (the SVGs' xmlns are dropped), no external script, style sheet or font.
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find("<script src"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("@import"), std::string::npos);
  EXPECT_EQ(html.find("url("), std::string::npos);
  // Diversity 10 -> 8.5 is a 15% fall: no warning at 30%. Drift is not in the records.
  EXPECT_EQ(html.find("possible reward hacking"), std::string::npos);
  EXPECT_NE(html.find("drift: not measured in this run (draft eval --base measures it)"), std::string::npos);
  EXPECT_EQ(plot_of(html, "eval-drift-step"), "");
}

TEST(RunReport, DiversityCheckFlagsAFallBeyondTheThresholdOnly) {
  auto evals = [](const std::vector<std::pair<int64_t, double>>& points) {
    std::vector<json> records;
    for (const auto& [step, diversity] : points) records.push_back({{"kind", "eval"}, {"step", step}, {"diversity", diversity}});
    return records;
  };
  // Out of file order on purpose: the reference is the step-0 evaluation.
  const auto records = evals({{4, 6.5}, {0, 10.0}, {2, 8.0}, {6, 7.5}});
  const draft::DiversityCheck d = draft::check_diversity(records, 0.3);
  EXPECT_TRUE(d.measured);
  EXPECT_EQ(d.base_step, 0);
  EXPECT_DOUBLE_EQ(d.base, 10.0);
  EXPECT_EQ(d.lowest_step, 4);
  EXPECT_DOUBLE_EQ(d.largest_fall, 0.35);
  EXPECT_EQ(d.last_step, 6);
  EXPECT_DOUBLE_EQ(d.last, 7.5);
  EXPECT_TRUE(d.warn);
  EXPECT_EQ(d.first_warn_step, 4);
  EXPECT_FALSE(draft::check_diversity(records, 0.4).warn);  // 35% < 40%
  const draft::DiversityCheck low = draft::check_diversity(records, 0.1);
  EXPECT_TRUE(low.warn);
  EXPECT_EQ(low.first_warn_step, 2);  // 20% > 10%
  EXPECT_FALSE(draft::check_diversity(evals({{0, 10.0}, {2, 10.5}}), 0.0).warn);  // a rise is no fall
  EXPECT_FALSE(draft::check_diversity({json{{"kind", "eval"}, {"step", 0}}}, 0.3).measured);
  EXPECT_NE(expect_error([&] { draft::check_diversity(records, 1.5); }).find("must be a fraction in [0, 1], got 1.5"),
            std::string::npos);
}

TEST(RunReport, WarnsOnThePageExactlyWhenDiversityFellMoreThanTheThreshold) {
  TempDir dir;
  draft::test::write_synthetic_run(dir.file("collapsed"), {10.0, 8.0, 6.5});  // 35% fall
  const std::string warned = report_of({dir.file("collapsed")});
  EXPECT_NE(warned.find("possible reward hacking in " + dir.file("collapsed")), std::string::npos);
  EXPECT_NE(warned.find("diversity fell by 35.0%"), std::string::npos);
  EXPECT_NE(warned.find("WARNING: fell more than 30.0%"), std::string::npos);
  EXPECT_EQ(report_of({dir.file("collapsed")}, 0.4).find("possible reward hacking"), std::string::npos);
  draft::test::write_synthetic_run(dir.file("healthy"), {10.0, 9.0, 8.5});  // 15% fall
  EXPECT_EQ(report_of({dir.file("healthy")}).find("possible reward hacking"), std::string::npos);
  EXPECT_NE(report_of({dir.file("healthy")}, 0.1).find("possible reward hacking"), std::string::npos);
}

TEST(RunReport, SeveralRunsAreOverlaidOneSeriesAndColourPerRun) {
  TempDir dir;
  draft::test::write_synthetic_run(dir.file("a"));
  draft::test::write_synthetic_run(dir.file("b/"), {10.0, 8.0, 6.0}, 1.0);
  const std::string html = report_of({dir.file("a"), dir.file("b/")});
  for (const char* plot : {"train-reward_mean-step", "eval-eval_reward_mean-reward_queries", "train-loss-step"}) {
    const std::string svg = plot_of(html, plot);
    EXPECT_EQ(count(svg, "<polyline"), 2U) << plot;
    EXPECT_NE(svg.find(">" + dir.file("a") + "</text>"), std::string::npos) << plot;
    EXPECT_NE(svg.find(">" + dir.file("b") + "</text>"), std::string::npos) << plot;  // trailing '/' dropped
    EXPECT_NE(svg.find("stroke=\"#1f77b4\""), std::string::npos);
    EXPECT_NE(svg.find("stroke=\"#d62728\""), std::string::npos);
  }
  // The settings side by side, one column per run.
  EXPECT_NE(html.find("<tr><th>key</th><th>" + dir.file("a") + "</th><th>" + dir.file("b") + "</th></tr>"),
            std::string::npos);
  EXPECT_NE(html.find("<tr><td>method</td><td>draft-lv (lv_n = 2)</td><td>draft-lv (lv_n = 2)</td></tr>"),
            std::string::npos);
  // Four grids, the second run's warning only.
  EXPECT_EQ(count(html, "<img src=\"data:image/png;base64,"), 4U);
  EXPECT_EQ(html.find("possible reward hacking in " + dir.file("a")), std::string::npos);
  EXPECT_NE(html.find("possible reward hacking in " + dir.file("b")), std::string::npos);
}

TEST(RunReport, PretrainingRunsGetCurvesOfTheirNumbers) {
  TempDir dir;
  std::filesystem::create_directories(dir.file("vae"));
  std::ofstream(dir.file("vae/config.json")) << json{{"steps", 20}, {"lr", 0.001}}.dump();
  std::ofstream metrics(dir.file("vae/metrics.jsonl"));
  for (int step = 10; step <= 20; step += 10) {
    metrics << json{{"event", "train"}, {"step", step}, {"epoch", 0.5}, {"lr", 0.001}, {"elapsed_s", step * 2},
                    {"mse", 1.0 / step}, {"kl", 0.1}}.dump() << '\n';
    metrics << json{{"event", "eval"}, {"step", step}, {"split", "test"}, {"psnr", 20.0 + step}}.dump() << '\n';
  }
  metrics << json{{"event", "final"}, {"step", 20}, {"test_psnr", 40.0}}.dump() << '\n';
  metrics << "{\"event\": \"train\", \"step\": 3";  // a torn last line (the run was killed): left out
  metrics.close();
  const std::string html = report_of({dir.file("vae")});
  for (const char* plot : {"train-mse-step", "train-kl-step", "train-lr-step", "eval-psnr-step"}) {
    EXPECT_NE(plot_of(html, plot).find("<svg"), std::string::npos) << plot;
  }
  EXPECT_EQ(plot_of(html, "train-epoch-step"), "");
  EXPECT_NE(html.find("<td>pretraining</td>"), std::string::npos);
  EXPECT_NE(html.find("<h4>final record of " + dir.file("vae") + "</h4>"), std::string::npos);
  EXPECT_NE(html.find("<td>test_psnr</td><td>40</td>"), std::string::npos);
  EXPECT_NE(html.find("No sample grids"), std::string::npos);
  EXPECT_NE(html.find("<td>not measured in this run</td>"), std::string::npos);  // no diversity in its records
}

TEST(RunReport, RefusesFoldersThatAreNotRuns) {
  TempDir dir;
  std::filesystem::create_directories(dir.file("empty"));
  EXPECT_NE(expect_error([&] { draft::read_run_history(dir.file("missing")); })
                .find(dir.file("missing") + ": no such folder (expected a run folder"),
            std::string::npos);
  EXPECT_NE(expect_error([&] { draft::read_run_history(dir.file("empty")); })
                .find(dir.file("empty") + " is not a run folder: it has no metrics.jsonl"),
            std::string::npos);
  draft::test::write_synthetic_run(dir.file("run"));
  EXPECT_NE(expect_error([&] {
              draft::write_run_report({dir.file("run"), dir.file("empty")}, dir.file("r.html"), {});
            }).find("is not a run folder"),
            std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir.file("r.html")));
  EXPECT_NE(expect_error([] { draft::render_run_report({}, {}); }).find("at least one run folder"), std::string::npos);
}

TEST(RunReport, WritesTheFileAtomically) {
  TempDir dir;
  draft::test::write_synthetic_run(dir.file("run"));
  draft::RunReportOptions options;
  options.title = "Demo <run>";
  draft::write_run_report({dir.file("run")}, dir.file("report.html"), options);
  const std::string html = read_file(dir.file("report.html"));
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0U);
  EXPECT_NE(html.find("<title>Demo &lt;run&gt;</title>"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir.file("report.html.tmp")));
}

}  // namespace
