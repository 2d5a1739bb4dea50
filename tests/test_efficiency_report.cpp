// The efficiency benchmark's report math on synthetic run folders (first-reach queries, medians, ratios,
// "not reached", partial results), the log-spaced evaluation steps, and the shipped preset's run plan.
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "efficiency/efficiency_benchmark.h"
#include "efficiency/efficiency_claims.h"
#include "efficiency/efficiency_report.h"
#include "efficiency/efficiency_sweep.h"
#include "cli_runner.h"
#include "io/json_file.h"
#include "support.h"

namespace {

using draft::test::expect_error;
using draft::test::TempDir;
using nlohmann::json;

struct Eval {
  int64_t step;
  int64_t queries;
  double reward;
};

// A run folder as run_finetune leaves it: config.json, metrics.jsonl (a step record per step, an eval record
// per evaluation) and, when finished, lora_final.safetensors. `norms`: grad_norm per step (nullopt: skipped).
void write_run(const std::string& dir, int64_t steps, const std::vector<Eval>& evals,
               const std::vector<std::optional<double>>& norms, bool finished = true) {
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/config.json") << json{{"train", {{"steps", steps}}}}.dump();
  std::ofstream metrics(dir + "/metrics.jsonl");
  const int64_t per_step = evals.size() > 1 ? evals[1].queries / evals[1].step : 1;
  std::size_t next_eval = 0;
  auto write_evals_up_to = [&](int64_t step) {
    for (; next_eval < evals.size() && evals[next_eval].step <= step; ++next_eval) {
      const Eval& e = evals[next_eval];
      metrics << json{{"kind", "eval"},
                      {"step", e.step},
                      {"eval_reward_mean", e.reward},
                      {"eval_reward_std", 0.1},
                      {"reward_queries", e.queries},
                      {"unet_evals", e.queries * 20},
                      {"wall_time", e.step * 0.5}}
                     .dump()
              << '\n';
    }
  };
  write_evals_up_to(0);
  const int64_t last = finished ? steps : steps - 1;
  for (int64_t step = 1; step <= last; ++step) {
    const auto norm = step - 1 < static_cast<int64_t>(norms.size()) ? norms[step - 1] : std::optional<double>(1.0);
    metrics << json{{"step", step},
                    {"reward_mean", 0.0},
                    {"grad_norm", norm ? json(*norm) : json()},
                    {"reward_queries", step * per_step},
                    {"unet_evals", step * per_step * 20},
                    {"wall_time", step * 0.5},
                    {"skipped", !norm}}
                   .dump()
            << '\n';
    write_evals_up_to(step);
  }
  if (finished) std::ofstream(dir + "/lora_final.safetensors") << "x";
}

draft::EfficiencyReportSpec spec_in(const std::string& out) {
  draft::EfficiencyReportSpec spec;
  spec.out_dir = out;
  spec.tasks = {{"t", "Task T"}};
  spec.methods = {{"ref", "Reference"}, {"fast", "Fast"}, {"slow", "Slow"}, {"none", "None"}};
  spec.reference = "ref";
  spec.second_reference = "fast";
  spec.k_ablation = {"fast", "none"};
  return spec;
}

// ref: 3 seeds, final rewards 0.8, 0.6, 0.7 -> level L = 0.7; first reach 20, never (counts its final 40), 40
//      -> q_ref = 40. fast: seeds 0 and 1 (seed 2 missing), reach L at 5 and 10. slow: seed 0 never reaches
//      L; its seed 1 is unfinished and left out. none: no runs.
void write_benchmark(const std::string& out) {
  const std::string t = out + "/t/";
  write_run(t + "ref/seed0", 4, {{0, 0, -0.5}, {1, 10, 0.2}, {2, 20, 0.75}, {4, 40, 0.8}}, {});
  write_run(t + "ref/seed1", 4, {{0, 0, -0.5}, {1, 10, 0.3}, {2, 20, 0.6}, {4, 40, 0.6}}, {});
  write_run(t + "ref/seed2", 4, {{0, 0, -0.4}, {1, 10, 0.1}, {2, 20, 0.4}, {4, 40, 0.7}}, {});
  write_run(t + "fast/seed0", 2, {{0, 0, -0.5}, {1, 5, 0.7}, {2, 10, 0.9}}, {1.0, 3.0});
  write_run(t + "fast/seed1", 2, {{0, 0, -0.5}, {1, 5, 0.5}, {2, 10, 0.72}}, {2.0, std::nullopt});
  write_run(t + "slow/seed0", 2, {{0, 0, -0.5}, {1, 20, 0.1}, {2, 40, 0.3}}, {});
  write_run(t + "slow/seed1", 2, {{0, 0, -0.5}, {1, 20, 0.9}}, {}, /*finished=*/false);
}

const json& method_of(const json& task, const std::string& key) {
  for (const auto& m : task["methods"]) {
    if (m["key"] == key) return m;
  }
  throw std::runtime_error("no method " + key);
}

const json& row_of(const json& table, const std::string& key) {
  for (const auto& r : table) {
    if (r["key"] == key) return r;
  }
  throw std::runtime_error("no row " + key);
}

TEST(EfficiencyReport, FirstReachIsTheFirstEvaluationAtOrAboveTheLevel) {
  draft::RunRecord run;
  run.evals = {{0, 0, 0, 0, -1}, {1, 4, 0, 0, 0.5}, {2, 8, 0, 0, 0.4}, {3, 12, 0, 0, 0.6}};
  EXPECT_EQ(draft::first_reach_queries(run, 0.5), 4);  // >=, and the first one, not the best
  EXPECT_EQ(draft::first_reach_queries(run, 0.55), 12);
  EXPECT_EQ(draft::first_reach_queries(run, -2), 0);  // the base model already reaches it
  EXPECT_FALSE(draft::first_reach_queries(run, 0.7).has_value());
}

TEST(EfficiencyReport, OnlyFinishedRunsCount) {
  TempDir dir;
  write_benchmark(dir.path());
  EXPECT_TRUE(draft::run_is_finished(dir.file("t/slow/seed0")));
  EXPECT_FALSE(draft::run_is_finished(dir.file("t/slow/seed1")));
  EXPECT_FALSE(draft::run_is_finished(dir.file("t/none/seed0")));
  const auto runs = draft::read_finished_runs(dir.file("t/ref"));
  ASSERT_EQ(runs.size(), 3U);
  EXPECT_EQ(runs[2].seed, 2U);
  EXPECT_EQ(runs[0].steps, 4);
  EXPECT_EQ(runs[0].evals.size(), 4U);
  EXPECT_EQ(runs[0].reward_queries, 40);
}

TEST(EfficiencyReport, ReachTableLevelsQueriesAndRatios) {
  TempDir dir;
  write_benchmark(dir.path());
  const json report = draft::write_efficiency_report(spec_in(dir.path()));
  const json& task = report["tasks"][0];
  EXPECT_DOUBLE_EQ(task["base_reward"].get<double>(), -0.5);  // median of five -0.5 and one -0.4
  EXPECT_EQ(task["base_runs"], 6);

  const json& a = task["reach"][0];
  EXPECT_EQ(a["reference"], "ref");
  EXPECT_DOUBLE_EQ(a["level"].get<double>(), 0.7);
  EXPECT_DOUBLE_EQ(a["q_ref"].get<double>(), 40);  // median of 20, 40 (never: its final), 40
  const json& ref = row_of(a["methods"], "ref");
  EXPECT_EQ(ref["seeds"], 3);
  EXPECT_EQ(ref["reached"], 2);
  EXPECT_TRUE(ref["first_reach"][1]["reward_queries"].is_null());
  EXPECT_DOUBLE_EQ(ref["reward_queries"]["median"].get<double>(), 30);
  EXPECT_DOUBLE_EQ(ref["ratio"]["median"].get<double>(), 1.5);  // 40/20 and 40/40
  EXPECT_DOUBLE_EQ(ref["ratio"]["min"].get<double>(), 1);
  EXPECT_DOUBLE_EQ(ref["ratio"]["max"].get<double>(), 2);
  const json& fast = row_of(a["methods"], "fast");
  EXPECT_EQ(fast["seeds"], 2);  // seed 2 missing: partial results
  EXPECT_EQ(fast["reached"], 2);
  EXPECT_DOUBLE_EQ(fast["reward_queries"]["median"].get<double>(), 7.5);
  EXPECT_DOUBLE_EQ(fast["ratio"]["median"].get<double>(), 6);  // 40/5 and 40/10
  EXPECT_DOUBLE_EQ(fast["ratio"]["min"].get<double>(), 4);
  EXPECT_DOUBLE_EQ(fast["ratio"]["max"].get<double>(), 8);
  const json& slow = row_of(a["methods"], "slow");
  EXPECT_EQ(slow["seeds"], 1);
  EXPECT_EQ(slow["reached"], 0);
  EXPECT_TRUE(slow["reward_queries"].is_null());
  EXPECT_TRUE(slow["ratio"].is_null());
  EXPECT_EQ(row_of(a["methods"], "none")["seeds"], 0);

  // The second reference: L = median(0.9, 0.72) = 0.81, reached by fast's seed 0 at 10, its seed 1 never
  // (counts its final 10) -> q_ref 10; the reference method never gets there.
  const json& b = task["reach"][1];
  EXPECT_DOUBLE_EQ(b["level"].get<double>(), 0.81);
  EXPECT_DOUBLE_EQ(b["q_ref"].get<double>(), 10);
  EXPECT_EQ(row_of(b["methods"], "ref")["reached"], 0);
}

TEST(EfficiencyReport, CurvesFinalsAndKAblation) {
  TempDir dir;
  write_benchmark(dir.path());
  const json report = draft::compute_efficiency_report(spec_in(dir.path()));
  const json& task = report["tasks"][0];
  const json& fast = method_of(task, "fast");
  EXPECT_EQ(fast["seeds"], json::array({0, 1}));
  const json& curve = fast["curve"];
  EXPECT_EQ(curve["step"], json::array({0, 1, 2}));
  EXPECT_EQ(curve["reward_queries"], json::array({0.0, 5.0, 10.0}));
  EXPECT_DOUBLE_EQ(curve["median"][1].get<double>(), 0.6);
  EXPECT_DOUBLE_EQ(curve["min"][1].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(curve["max"][1].get<double>(), 0.7);
  EXPECT_DOUBLE_EQ(fast["final"]["reward"]["median"].get<double>(), 0.81);
  EXPECT_DOUBLE_EQ(fast["final"]["reward_queries"].get<double>(), 10);
  EXPECT_DOUBLE_EQ(fast["final"]["unet_evals"].get<double>(), 200);
  EXPECT_DOUBLE_EQ(fast["final"]["wall_time"].get<double>(), 1.0);
  EXPECT_TRUE(method_of(task, "none")["final"]["reward"].is_null());

  const json& k = task["k_ablation"];
  ASSERT_EQ(k.size(), 2U);
  EXPECT_EQ(k[0]["key"], "fast");
  EXPECT_DOUBLE_EQ(k[0]["grad_norm_median"].get<double>(),
                   2);  // pooled over seeds: 1, 3, 2 (the skipped step has none)
  EXPECT_DOUBLE_EQ(k[0]["grad_norm_max"].get<double>(), 3);
  EXPECT_EQ(k[0]["skipped_steps"], 1);
  EXPECT_TRUE(k[1]["grad_norm_median"].is_null());
}

TEST(EfficiencyReport, WritesJsonMarkdownAndPlot) {
  TempDir dir;
  write_benchmark(dir.path());
  draft::write_efficiency_report(spec_in(dir.path()));
  const std::string md = draft::test::slurp(dir.file("results.md"));
  EXPECT_NE(md.find("| Reference | 2/3 | 30 [20, 40] | 1.50x [1.00, 2.00] |"), std::string::npos) << md;
  EXPECT_NE(md.find("| Fast | 2/2 | 7.5 [5, 10] | 6.00x [4.00, 8.00] |"), std::string::npos) << md;
  EXPECT_NE(md.find("| Slow | 0/1 | not reached | n/a |"), std::string::npos) << md;
  EXPECT_NE(md.find("| None | 0/0 | n/a | n/a |"), std::string::npos) << md;
  EXPECT_NE(md.find("| Fast | 2 | 0.810 [0.720, 0.900] | 10 | 200 | 1 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| base model (step 0) | 6 runs | -0.500 |"), std::string::npos) << md;
  EXPECT_NE(md.find("Level L = 0.700"), std::string::npos) << md;
  EXPECT_EQ(json::parse(draft::test::slurp(dir.file("results.json")))["tasks"][0]["key"], "t");
  const std::string svg = draft::test::slurp(dir.file("efficiency_t.svg"));
  EXPECT_NE(svg.find(">Fast (2 seeds)</text>"), std::string::npos);
  EXPECT_NE(svg.find(">base model</text>"), std::string::npos);
  EXPECT_NE(svg.find(">Reference final</text>"), std::string::npos);
  EXPECT_NE(svg.find("(log scale)"), std::string::npos);
}

TEST(EfficiencyReport, WritesASelfContainedHtmlPageWithTheTablesAndPlots) {
  TempDir dir;
  write_benchmark(dir.path());
  draft::write_efficiency_report(spec_in(dir.path()));
  const std::string html = draft::test::slurp(dir.file("report.html"));
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0U);
  EXPECT_NE(html.find("<h2>Task T (<code>t</code>)</h2>"), std::string::npos);
  EXPECT_NE(html.find("<tr><td>Fast</td><td>2/2</td><td>7.5 [5, 10]</td><td>6.00x [4.00, 8.00]</td></tr>"),
            std::string::npos);
  EXPECT_NE(html.find("<th>method</th>"), std::string::npos);
  // The plot inline, not linked; no address anywhere.
  EXPECT_NE(html.find(">Fast (2 seeds)</text>"), std::string::npos);
  EXPECT_EQ(html.find("efficiency_t.svg)"), std::string::npos);
  EXPECT_EQ(html.find("http"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
}

TEST(EfficiencyReport, EmptyBenchmarkSaysSo) {
  TempDir dir;
  draft::write_efficiency_report(spec_in(dir.path()));
  EXPECT_NE(draft::test::slurp(dir.file("results.md")).find("No finished runs yet."), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir.file("efficiency_t.svg")));
}

TEST(EfficiencyBenchmark, LogSpacedStepsAreDistinctIncreasingAndEndAtTheLast) {
  EXPECT_EQ(draft::log_spaced_steps(100, 10), (std::vector<int64_t>{1, 2, 3, 5, 8, 13, 22, 36, 60, 100}));
  EXPECT_EQ(draft::log_spaced_steps(5, 10), (std::vector<int64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(draft::log_spaced_steps(7, 1), (std::vector<int64_t>{7}));
  for (int64_t steps : {1, 2, 3, 9, 20, 30, 150, 1000}) {
    for (int64_t points : {1, 2, 3, 6, 10, 25}) {
      const auto s = draft::log_spaced_steps(steps, points);
      ASSERT_EQ(static_cast<int64_t>(s.size()), std::min(steps, points)) << steps << " " << points;
      EXPECT_EQ(s.back(), steps);
      EXPECT_GE(s.front(), 1);
      for (std::size_t i = 1; i < s.size(); ++i) EXPECT_LT(s[i - 1], s[i]) << steps << " " << points;
    }
  }
}

std::string shipped_preset() { return draft::test::test_data("../../configs/bench-efficiency.json"); }

TEST(EfficiencyBenchmark, ShippedPresetPlansValidRuns) {
  auto preset = draft::EfficiencyPreset::load(shipped_preset(), false);
  EXPECT_EQ(preset.out_dir, "runs/bench-efficiency");
  TempDir dir;  // not the working directory's runs/, which may hold a real benchmark's finished sweeps
  preset.out_dir = dir.file("runs/bench-efficiency");
  std::vector<std::string> waiting;
  // Resolves and validates every run's config. Nothing has run: only the sweeps (seed 0 at every rate;
  // DDPO has one rate and one seed), the other seeds wait for them.
  const auto runs = draft::plan_efficiency_runs(preset, {}, &waiting);
  ASSERT_EQ(preset.tasks.size(), 2U);
  EXPECT_EQ(runs.size(), 2U * (6U * 3U + 1U));
  EXPECT_EQ(waiting.size(), 2U * 6U);
  EXPECT_EQ(runs[0].dir, preset.out_dir + "/detail/draft-lv/lr0.0003/seed0");
  EXPECT_EQ(runs[2].dir, preset.out_dir + "/detail/draft-lv/lr0.003/seed0");
  EXPECT_EQ(runs[19].task, "compressibility");
  for (const auto& run : runs) {
    const json& c = run.config;
    EXPECT_EQ(c["out_dir"], run.dir);
    EXPECT_EQ(c["train"]["seed"], 0);
    EXPECT_EQ(c["eval"]["every"], 0);
    EXPECT_EQ(c["eval"]["at"].back(), c["train"]["steps"]);
    EXPECT_EQ(c["eval"]["eta"], 0.0);
    EXPECT_EQ(c["sampler"]["guidance"], 3.0);  // the same guidance for every method
    EXPECT_EQ(c["sampler"]["eta"], -1.0);      // each method's own: DDPO samples at 1, the others at 0
    ASSERT_TRUE(run.lr.has_value());
    EXPECT_EQ(c["optimizer"]["lr"], *run.lr);
    // Compressibility: every method is judged by the true JPEG size (minus kB); the gradient methods
    // train on the differentiable proxy, DDPO on the true size.
    EXPECT_EQ(c["eval"]["reward"], run.task == "detail" ? "detail" : "compressibility");
    if (run.task == "compressibility") {
      EXPECT_EQ(c["reward"], run.method == "ddpo" ? "compressibility" : "jpeg-proxy:-1");
    }
  }
  const json& ddpo = runs[18].config;
  EXPECT_EQ(runs[18].method, "ddpo");
  EXPECT_EQ(*runs[18].lr, 3e-4);
  EXPECT_EQ(ddpo["method"]["ddpo_inner_epochs"], 2);  // the second update re-uses the samples: the clip acts
  // 400 steps, a sampled batch of 32 every 2: 6,400 queries; step 150 (2,400 queries) is evaluated too.
  EXPECT_EQ(ddpo["train"]["steps"].get<int64_t>() * ddpo["train"]["batch_size"].get<int64_t>() *
                ddpo["train"]["grad_accumulation"].get<int64_t>() / ddpo["method"]["ddpo_inner_epochs"].get<int64_t>(),
            6400);
  const json at = ddpo["eval"]["at"];
  EXPECT_NE(std::find(at.begin(), at.end(), json(150)), at.end()) << at;
  EXPECT_EQ(runs[0].config["eval"]["at"], json::array({1, 2, 3, 5, 8, 13, 22, 36, 60, 100}));
  EXPECT_EQ(preset.report_spec().learning_rates.at("draft-1"), (std::vector<double>{3e-4, 1e-3, 3e-3}));
  EXPECT_EQ(preset.report_spec().reference_budgets, (std::vector<int64_t>{2400}));

  auto quick = draft::EfficiencyPreset::load(shipped_preset(), true);
  EXPECT_EQ(quick.out_dir, "runs/bench-efficiency-quick");  // quick results never mix with full ones
  quick.out_dir = dir.file("runs/bench-efficiency-quick");
  const auto quick_runs = draft::plan_efficiency_runs(quick);
  EXPECT_EQ(quick_runs.size(), 2U * (6U * 2U + 1U));
}

// A finished sweep chooses the best rate, and the method's other seeds are planned at it.
TEST(EfficiencyBenchmark, SweepChoosesTheBestRateAndPlansTheOtherSeedsAtIt) {
  TempDir dir;
  const std::string out = dir.file("bench");
  auto preset = draft::EfficiencyPreset::load(shipped_preset(), false);
  preset.out_dir = out;
  draft::EfficiencySelection only;
  only.tasks = {"detail"};
  only.methods = {"draft-1"};
  const std::string method = out + "/detail/draft-1/";
  EXPECT_EQ(draft::learning_rate_folder(3e-4), "lr0.0003");
  write_run(method + "lr0.0003/seed0", 2, {{0, 0, -5.0}, {1, 4, -4.0}, {2, 8, -3.0}}, {});
  write_run(method + "lr0.001/seed0", 2, {{0, 0, -5.0}, {1, 4, -3.0}, {2, 8, -2.0}}, {});
  std::vector<std::string> waiting;
  auto runs = draft::plan_efficiency_runs(preset, only, &waiting);
  EXPECT_EQ(runs.size(), 3U);  // the sweep only: lr 0.003 has not run
  EXPECT_EQ(waiting, std::vector<std::string>{"detail/draft-1"});
  EXPECT_FALSE(draft::read_sweep(method, {3e-4, 1e-3, 3e-3}, 0).chosen.has_value());

  write_run(method + "lr0.003/seed0", 2, {{0, 0, -5.0}, {1, 4, -2.5}, {2, 8, -2.4}}, {});
  const draft::SweepResult sweep = draft::read_sweep(method, {3e-4, 1e-3, 3e-3}, 0);
  ASSERT_TRUE(sweep.chosen.has_value());
  EXPECT_EQ(*sweep.chosen, 1e-3);  // -2.0 beats -2.4 and -3.0
  waiting.clear();
  runs = draft::plan_efficiency_runs(preset, only, &waiting);
  ASSERT_EQ(runs.size(), 5U);
  EXPECT_TRUE(waiting.empty());
  EXPECT_EQ(runs[3].dir, method + "lr0.001/seed1");
  EXPECT_EQ(runs[4].dir, method + "lr0.001/seed2");
  EXPECT_EQ(runs[4].config["optimizer"]["lr"], 1e-3);

  // The report: the method's runs are those at its rate, and the sweep table marks it.
  write_run(method + "lr0.001/seed1", 2, {{0, 0, -5.0}, {1, 4, -3.5}, {2, 8, -2.2}}, {});
  write_run(method + "lr0.003/seed1", 2, {{0, 0, -5.0}, {1, 4, 9.0}, {2, 8, 9.0}}, {});  // not its rate: ignored
  const json report = draft::write_efficiency_report(preset.report_spec());
  const json& task = report["tasks"][0];
  const json& m = method_of(task, "draft-1");
  EXPECT_EQ(m["lr"], 1e-3);
  EXPECT_EQ(m["seeds"], json::array({0, 1}));
  EXPECT_DOUBLE_EQ(m["final"]["reward"]["median"].get<double>(), -2.1);
  EXPECT_TRUE(method_of(task, "draft-lv")["lr"].is_null());  // no sweep run yet
  const std::string md = draft::test::slurp(out + "/results.md");
  EXPECT_NE(md.find("| method | lr 0.0003 | lr 0.001 | lr 0.003 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| DRaFT-1 | -3.000 | **-2.000** | -2.400 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| DRaFT-1 | 0.001 | 2 | -2.100 [-2.200, -2.000] |"), std::string::npos) << md;
}

// The reach table at the reference's level within a budget, lower bounds, the second η and PPO diagnostics.
TEST(EfficiencyReport, BudgetLevelsSecondEtaAndPpoDiagnostics) {
  TempDir dir;
  write_benchmark(dir.path());
  // ref seed 0 also judged at the second η, and two PPO steps (the fresh-sample step's ratio is 1: not counted).
  draft::write_json_file(dir.file("t/ref/seed0/eval_second_eta.json"), {{"eta", 1.0}, {"eval_reward_mean", 0.42}});
  {
    std::ofstream metrics(dir.file("t/ref/seed0/metrics.jsonl"), std::ios::app);
    metrics << json{{"step", 5}, {"clip_frac", 0.0}, {"approx_kl", 0.0}, {"ratio_max_deviation", 0.0}}.dump() << '\n'
            << json{{"step", 6}, {"clip_frac", 0.2}, {"approx_kl", 1e-6}, {"ratio_max_deviation", 0.01}}.dump() << '\n'
            << json{{"step", 7}, {"clip_frac", 0.4}, {"approx_kl", 3e-6}, {"ratio_max_deviation", 0.02}}.dump() << '\n';
  }
  auto spec = spec_in(dir.path());
  spec.reference_budgets = {10};
  spec.second_eta = 1.0;
  const json report = draft::write_efficiency_report(spec);
  const json& task = report["tasks"][0];
  // Reach tables: ref within 10 queries (levels 0.2, 0.3, 0.1 -> L = 0.2), ref final, fast final.
  ASSERT_EQ(task["reach"].size(), 3U);
  const json& budget = task["reach"][0];
  EXPECT_EQ(budget["budget"], 10);
  EXPECT_DOUBLE_EQ(budget["level"].get<double>(), 0.2);
  EXPECT_DOUBLE_EQ(budget["q_ref"].get<double>(), 10);  // first reach 10, 10, 20
  EXPECT_FALSE(budget["q_ref_lower_bound"].get<bool>());
  EXPECT_TRUE(task["reach"][1]["budget"].is_null());
  // fast's median final 0.81: its seed 1 never gets there and counts all its queries -> a lower bound.
  EXPECT_TRUE(task["reach"][2]["q_ref_lower_bound"].get<bool>());
  const json& ref = method_of(task, "ref");
  EXPECT_DOUBLE_EQ(ref["final"]["second_eta_reward"]["median"].get<double>(), 0.42);
  EXPECT_DOUBLE_EQ(ref["final"]["clip_fraction"].get<double>(), 0.3);
  EXPECT_DOUBLE_EQ(ref["final"]["approx_kl"].get<double>(), 2e-6);
  const std::string md = draft::test::slurp(dir.file("results.md"));
  EXPECT_NE(md.find("### Reward queries to reach Reference's level after 10 queries"), std::string::npos) << md;
  EXPECT_NE(md.find("| final held-out reward | at η = 1 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| Reference | 1 | 0.300 | 2e-06 |"), std::string::npos) << md;  // one seed has them
  EXPECT_NE(md.find("so q_ref and the speed-ups are lower bounds"), std::string::npos) << md;
}

TEST(EfficiencyBenchmark, SelectionAndPresetErrorsNameTheKey) {
  const auto preset = draft::EfficiencyPreset::load(shipped_preset(), false);
  draft::EfficiencySelection only;
  only.tasks = {"compressibility"};
  only.methods = {"ddpo", "draft-lv"};
  const auto runs = draft::plan_efficiency_runs(preset, only);
  ASSERT_EQ(runs.size(), 4U);
  EXPECT_EQ(runs[0].method, "draft-lv");  // the preset's order, not the flag's
  EXPECT_EQ(runs[3].dir, "runs/bench-efficiency/compressibility/ddpo/lr0.0003/seed0");
  only.seeds = {1};  // without the sweep seed: nothing can run yet, and DDPO runs seed 0 only
  std::vector<std::string> waiting;
  EXPECT_TRUE(draft::plan_efficiency_runs(preset, only, &waiting).empty());
  EXPECT_EQ(waiting, std::vector<std::string>{"compressibility/draft-lv"});

  only.methods = {"dpo"};
  const std::string bad = expect_error([&] { draft::plan_efficiency_runs(preset, only); });
  EXPECT_NE(bad.find("--methods: unknown method 'dpo'"), std::string::npos) << bad;
  EXPECT_NE(bad.find("draft-lv, draft-1"), std::string::npos) << bad;

  const json shipped = draft::read_json_file(shipped_preset());
  auto error_of = [&](const json& patch) {
    json j = shipped;
    j.merge_patch(patch);
    return expect_error([&] { draft::plan_efficiency_runs(draft::EfficiencyPreset::from_json(j, "p.json", false)); });
  };
  EXPECT_NE(error_of({{"sedes", {0}}}).find("p.json: unknown key 'sedes'"), std::string::npos);
  EXPECT_NE(error_of({{"reference", "ppo"}}).find("reference names 'ppo', which is not a method"), std::string::npos);
  EXPECT_NE(error_of({{"methods", {{"extra", {{"config", json::object()}}}}}})
                .find("methods.extra is missing from "
                      "method_order"),
            std::string::npos);
  const std::string k = error_of({{"methods", {{"draft-1", {{"config", {{"method", {{"k", 50}}}}}}}}}});
  EXPECT_NE(k.find("run detail/draft-1/lr0.0003/seed0"), std::string::npos) << k;
  EXPECT_NE(k.find("method.k"), std::string::npos) << k;
  EXPECT_NE(error_of({{"lr_sweep", {1e-3, -1.0}}}).find("learning rates must be positive"), std::string::npos);
  EXPECT_NE(error_of({{"methods", {{"ddpo", {{"seeds", {7}}}}}}}).find("methods.ddpo.seeds holds 7"),
            std::string::npos);
  EXPECT_NE(error_of({{"methods", {{"ddpo", {{"extra_eval_steps", {4000}}}}}}}).find("outside 1..400"),
            std::string::npos);
}

// A finished run whose config differs from the preset only in settings that do not change what it computes
// (checkpoint interval, TensorBoard) is kept; any other difference is refused, naming the key.
TEST(EfficiencyBenchmark, FinishedRunsMayDifferOnlyInWhatDoesNotChangeTheirNumbers) {
  TempDir dir;
  auto preset = draft::EfficiencyPreset::load(shipped_preset(), true);
  preset.out_dir = dir.file("bench");
  draft::EfficiencySelection only;
  only.tasks = {"detail"};
  only.methods = {"ddpo"};
  only.seeds = {0};
  const auto runs = draft::plan_efficiency_runs(preset, only);
  ASSERT_EQ(runs.size(), 1U);
  const draft::EfficiencyRun& run = runs[0];
  const int64_t steps = run.config["train"]["steps"];
  write_run(run.dir, steps, {{0, 0, -0.5}, {steps, 8 * steps, 0.2}}, {});
  std::ofstream(run.dir + "/" + draft::kSecondEtaFile) << json{{"eta", 1.0}, {"eval_reward_mean", 0.1}}.dump();
  auto write_config = [&](const json& patch) {
    json config = run.config;
    config.merge_patch(patch);
    std::ofstream(run.dir + "/config.json") << config.dump();
  };
  write_config({{"train", {{"save_every", 7}, {"tensorboard", false}}}});
  std::ostringstream out;
  draft::run_efficiency_benchmark(preset, only, /*report_only=*/false, out);
  EXPECT_NE(out.str().find("finished earlier, skipped"), std::string::npos) << out.str();

  write_config({{"optimizer", {{"lr", 0.5}}}});
  const std::string message = expect_error([&] { draft::run_efficiency_benchmark(preset, only, false, out); });
  EXPECT_NE(message.find("holds a run with other settings than the preset gives it"), std::string::npos) << message;
  EXPECT_NE(message.find("optimizer.lr"), std::string::npos) << message;
}

// The CLI: the report of existing run folders without training, and flag errors before any training.
TEST(EfficiencyBenchmark, CliReportOnlyAndErrors) {
  TempDir dir;
  const std::string out = dir.file("bench");
  write_run(out + "/detail/ddpo/lr0.0003/seed0", 2, {{0, 0, -0.5}, {1, 5, 0.1}, {2, 10, 0.2}}, {});
  for (const char* lr : {"lr0.0003", "lr0.001", "lr0.003"}) {
    write_run(out + "/detail/draft-lv/" + lr + "/seed0", 2, {{0, 0, -0.5}, {1, 8, 0.3}, {2, 16, 0.4}}, {});
  }
  const std::string config = "--config " + shipped_preset() + " --out " + out;
  const auto report = draft::test::run_cli("bench efficiency --report-only " + config);
  ASSERT_EQ(report.code, 0) << report.err;
  EXPECT_NE(report.out.find("| DRaFT-LV (n=2) | 1/1 | 8 [8, 8] | 1.25x [1.25, 1.25] |"), std::string::npos)
      << report.out;
  EXPECT_TRUE(std::filesystem::exists(out + "/results.md"));
  EXPECT_TRUE(std::filesystem::exists(out + "/efficiency_detail.svg"));

  const auto bad = draft::test::run_cli("bench efficiency --methods draft-lv,dpo " + config);
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("--methods: unknown method 'dpo'"), std::string::npos) << bad.err;
  EXPECT_FALSE(std::filesystem::exists(out + "/detail/draft-lv/lr0.0003/seed1"));  // nothing ran
  const auto seeds = draft::test::run_cli("bench efficiency --seeds 0,x " + config);
  EXPECT_EQ(seeds.code, 1);
  EXPECT_NE(seeds.err.find("--seeds: 'x' is not a seed"), std::string::npos) << seeds.err;
  EXPECT_EQ(draft::test::run_cli("bench").code, 2);
}

}  // namespace

// ---- the paper's claims, judged from a computed task (bench/efficiency/efficiency_claims.h) ----

namespace {

json claim_method(const std::string& key, std::optional<double> final_reward, json sweep = nullptr) {
  json reward = final_reward ? json{{"median", *final_reward}, {"min", *final_reward}, {"max", *final_reward}} : json();
  return {{"key", key}, {"label", key}, {"final", {{"reward", reward}}}, {"sweep", sweep}};
}

json reach_of(const std::string& reference, double level, double q_ref, const std::string& key, int64_t seeds,
              int64_t reached, std::optional<double> ratio) {
  json r = ratio ? json{{"median", *ratio}, {"min", *ratio}, {"max", *ratio}} : json();
  return {{"reference", reference}, {"budget", nullptr}, {"level", level}, {"q_ref", q_ref},
          {"q_ref_lower_bound", false},
          {"methods", json::array({{{"key", key}, {"seeds", seeds}, {"reached", reached}, {"ratio", r}}})}};
}

// A task whose numbers satisfy every criterion; the tests below break one at a time.
json claims_task() {
  const json full_sweep = {{"lr", {3e-4, 1e-3}}, {"final_reward", {-3.0, -7.0}}, {"chosen", 3e-4}};
  const json k1_sweep = {{"lr", {3e-4, 1e-3}}, {"final_reward", {-2.5, -1.5}}, {"chosen", 1e-3}};
  return {{"base_reward", -4.3},
          {"methods", json::array({claim_method("draft-lv", -1.4), claim_method("draft-1", -1.5, k1_sweep),
                                   claim_method("draft-k5", -1.6), claim_method("draft", -3.0, full_sweep),
                                   claim_method("refl", -1.9), claim_method("ddpo", -3.5)})},
          {"reach", json::array({reach_of("ddpo", -3.5, 6000, "draft-lv", 3, 3, 25.0),
                                 reach_of("refl", -1.9, 400, "draft-lv", 3, 3, 2.0)})},
          {"k_ablation", json::array({{{"key", "draft"}, {"skipped_steps", 0}}})}};
}

std::string verdict(const json& claims, std::size_t i) { return claims.at(i)["verdict"].get<std::string>(); }

TEST(EfficiencyClaims, EveryCriterionMetIsReproduced) {
  const json claims = draft::paper_claims_json(claims_task());
  ASSERT_EQ(claims.size(), 4U);
  for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(verdict(claims, i), "reproduced") << claims[i].dump();
  EXPECT_NE(claims[0]["measured"].get<std::string>().find("25.0x fewer queries"), std::string::npos);
  EXPECT_NE(claims[3]["measured"].get<std::string>().find("lr 0.001: -7.000 vs DRaFT-1 -1.500"), std::string::npos)
      << claims[3]["measured"];
  const std::string md = draft::paper_claims_markdown(claims);
  EXPECT_NE(md.find("| claim | paper | measured | verdict | criterion |"), std::string::npos);
  EXPECT_NE(md.find("| **reproduced** |"), std::string::npos);
}

TEST(EfficiencyClaims, EachCriterionMissedSaysSo) {
  json task = claims_task();
  task["reach"][0]["methods"][0]["ratio"] = {{"median", 3.0}, {"min", 2.0}, {"max", 4.0}};  // 3x < 10x
  task["reach"][1]["methods"][0]["reached"] = 1;                                           // 1 of 3 seeds
  task["methods"][2]["final"]["reward"]["median"] = -1.3;                                  // K=5 beats K=1
  task["methods"][3]["sweep"]["final_reward"][1] = -2.0;                                   // no collapse
  const json claims = draft::paper_claims_json(task);
  EXPECT_EQ(verdict(claims, 0), "weaker");
  EXPECT_EQ(verdict(claims, 1), "not reproduced");
  EXPECT_NE(claims[1]["measured"].get<std::string>().find("in 1 of 3 seeds"), std::string::npos);
  EXPECT_EQ(verdict(claims, 2), "not reproduced");
  EXPECT_EQ(verdict(claims, 3), "not reproduced");
  task["k_ablation"][0]["skipped_steps"] = 2;  // non-finite steps count as instability
  EXPECT_EQ(verdict(draft::paper_claims_json(task), 3), "reproduced");
}

TEST(EfficiencyClaims, MissingRunsAreNotApplicable) {
  json task = claims_task();
  task["reach"][0]["level"] = nullptr;  // DDPO has not finished
  task["methods"][3]["final"]["reward"] = nullptr;
  task["methods"][2]["final"]["reward"] = nullptr;
  const json claims = draft::paper_claims_json(task);
  EXPECT_EQ(verdict(claims, 0), "n/a");
  EXPECT_NE(claims[0]["measured"].get<std::string>().find("ddpo has no finished run"), std::string::npos);
  EXPECT_EQ(verdict(claims, 1), "reproduced");
  EXPECT_EQ(verdict(claims, 2), "n/a");
}

}  // namespace
