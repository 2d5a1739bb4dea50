// The efficiency benchmark's report math on synthetic run folders (first-reach queries, medians, ratios,
// "not reached", partial results), the log-spaced evaluation steps, and the shipped preset's run plan.
#include <filesystem>
#include <fstream>
#include <optional>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "efficiency/efficiency_benchmark.h"
#include "efficiency/efficiency_report.h"
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
  const auto preset = draft::EfficiencyPreset::load(shipped_preset(), false);
  const auto runs = draft::plan_efficiency_runs(preset);  // resolves and validates every run's config
  ASSERT_EQ(runs.size(), preset.seeds.size() * preset.tasks.size() * preset.methods.size());
  EXPECT_EQ(runs.size(), 3U * 2U * 7U);
  // Seed first, then task, then method.
  EXPECT_EQ(runs[0].dir, "runs/bench-efficiency/classifier/draft-lv/seed0");
  EXPECT_EQ(runs[7].task, "compressibility");
  EXPECT_EQ(runs[14].seed, 1U);
  for (const auto& run : runs) {
    const json& c = run.config;
    EXPECT_EQ(c["out_dir"], run.dir);
    EXPECT_EQ(c["train"]["seed"], run.seed);
    EXPECT_EQ(c["eval"]["every"], 0);
    EXPECT_EQ(c["eval"]["at"].back(), c["train"]["steps"]);
    EXPECT_EQ(c["eval"]["eta"], 0.0);
    // Compressibility: every method is judged by the true JPEG size (minus kB); the gradient methods
    // train on the differentiable proxy, DDPO on the true size.
    EXPECT_EQ(c["eval"]["reward"], run.task == "classifier" ? "classifier" : "compressibility");
    if (run.task == "compressibility") {
      EXPECT_EQ(c["reward"], run.method == "ddpo" ? "compressibility" : "jpeg-proxy:-1");
    }
  }
  const json& ddpo = runs[6].config;
  EXPECT_EQ(ddpo["method"]["name"], "ddpo");
  EXPECT_EQ(ddpo["sampler"]["eta"], 1.0);
  EXPECT_EQ(runs[0].config["eval"]["at"], json::array({1, 2, 3, 5, 8, 13, 22, 36, 60, 100}));

  const auto quick = draft::EfficiencyPreset::load(shipped_preset(), true);
  const auto quick_runs = draft::plan_efficiency_runs(quick);
  EXPECT_EQ(quick_runs.size(), 2U * 7U);
  EXPECT_NE(quick.out_dir, preset.out_dir);  // quick results never mix with full ones
  EXPECT_EQ(quick_runs[0].config["eval"]["at"].size(), 6U);
}

TEST(EfficiencyBenchmark, SelectionAndPresetErrorsNameTheKey) {
  const auto preset = draft::EfficiencyPreset::load(shipped_preset(), false);
  draft::EfficiencySelection only;
  only.seeds = {5};
  only.tasks = {"compressibility"};
  only.methods = {"ddpo", "draft-lv"};
  const auto runs = draft::plan_efficiency_runs(preset, only);
  ASSERT_EQ(runs.size(), 2U);
  EXPECT_EQ(runs[0].method, "draft-lv");  // the preset's order, not the flag's
  EXPECT_EQ(runs[1].dir, "runs/bench-efficiency/compressibility/ddpo/seed5");

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
  EXPECT_NE(k.find("run classifier/draft-1/seed0"), std::string::npos) << k;
  EXPECT_NE(k.find("method.k"), std::string::npos) << k;
}

// The CLI: the report of existing run folders without training, and flag errors before any training.
TEST(EfficiencyBenchmark, CliReportOnlyAndErrors) {
  TempDir dir;
  const std::string out = dir.file("bench");
  write_run(out + "/classifier/ddpo/seed0", 2, {{0, 0, -0.5}, {1, 5, 0.1}, {2, 10, 0.2}}, {});
  write_run(out + "/classifier/draft-lv/seed0", 2, {{0, 0, -0.5}, {1, 8, 0.3}, {2, 16, 0.4}}, {});
  const std::string config = "--config " + shipped_preset() + " --out " + out;
  const auto report = draft::test::run_cli("bench efficiency --report-only " + config);
  ASSERT_EQ(report.code, 0) << report.err;
  EXPECT_NE(report.out.find("| DRaFT-LV (n=2) | 1/1 | 8 [8, 8] | 1.25x [1.25, 1.25] |"), std::string::npos)
      << report.out;
  EXPECT_TRUE(std::filesystem::exists(out + "/results.md"));
  EXPECT_TRUE(std::filesystem::exists(out + "/efficiency_classifier.svg"));

  const auto bad = draft::test::run_cli("bench efficiency --methods draft-lv,dpo " + config);
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("--methods: unknown method 'dpo'"), std::string::npos) << bad.err;
  EXPECT_FALSE(std::filesystem::exists(out + "/classifier/draft-lv/seed1"));  // nothing ran
  const auto seeds = draft::test::run_cli("bench efficiency --seeds 0,x " + config);
  EXPECT_EQ(seeds.code, 1);
  EXPECT_NE(seeds.err.find("--seeds: 'x' is not a seed"), std::string::npos) << seeds.err;
  EXPECT_EQ(draft::test::run_cli("bench").code, 2);
}

}  // namespace
