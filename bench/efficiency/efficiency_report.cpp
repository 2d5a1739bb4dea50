// The efficiency benchmark's report (see efficiency_report.h): run folders -> numbers -> JSON and SVG; the
// Markdown of the numbers is efficiency_markdown.cpp's.
#include "efficiency/efficiency_report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include <fmt/format.h>

#include "efficiency/efficiency_claims.h"
#include "efficiency/efficiency_html.h"
#include "efficiency/efficiency_sweep.h"
#include "io/atomic_file.h"
#include "io/json_file.h"
#include "io/svg_plot.h"
#include "train/metrics.h"
#include "util/error.h"
#include "util/statistics.h"

namespace draft {
namespace {

namespace fs = std::filesystem;

// {median, min, max} of a sample, or null when it is empty.
nlohmann::json summary(const std::vector<double>& values) {
  if (values.empty()) return nullptr;
  return {{"median", median(values)},
          {"min", *std::min_element(values.begin(), values.end())},
          {"max", *std::max_element(values.begin(), values.end())}};
}

double average(const std::vector<double>& values) {
  double sum = 0;
  for (double v : values) sum += v;
  return sum / static_cast<double>(values.size());
}

int64_t train_steps(const std::string& run_dir) {
  const nlohmann::json config = read_json_file(run_dir + "/config.json");
  DRAFT_CHECK(config.contains("train") && config["train"].contains("steps"), run_dir,
              "/config.json has no train.steps: is this a `draft finetune` run folder?");
  return config["train"]["steps"].get<int64_t>();
}

// The run folder's records, or nothing when it is not finished.
std::optional<RunRecord> read_run(const std::string& run_dir, uint64_t seed) {
  if (!run_is_finished(run_dir)) return std::nullopt;
  RunRecord run;
  run.seed = seed;
  run.steps = train_steps(run_dir);
  for (const auto& record : read_metrics(metrics_file(run_dir))) {
    if (record.value("kind", "") == "eval") {
      EvalPoint e;
      e.step = record.at("step").get<int64_t>();
      e.reward_queries = record.value("reward_queries", int64_t{0});
      e.unet_evals = record.value("unet_evals", int64_t{0});
      e.wall_time = record.value("wall_time", 0.0);
      e.reward = record.at("eval_reward_mean").get<double>();
      run.evals.push_back(e);
      continue;
    }
    // DDPO's diagnostics mean something only where the ratio can leave 1: steps on re-used samples.
    if (record.value("ratio_max_deviation", 0.0) > 0 && record.contains("clip_frac")) {
      run.clip_fractions.push_back(record["clip_frac"].get<double>());
      run.approx_kls.push_back(record.value("approx_kl", 0.0));
    }
    if (record.contains("grad_norm") && record["grad_norm"].is_number()) {
      run.grad_norms.push_back(record["grad_norm"].get<double>());
    }
    run.skipped_steps += record.value("skipped", false) ? 1 : 0;
    run.reward_queries = record.value("reward_queries", int64_t{0});
    run.unet_evals = record.value("unet_evals", int64_t{0});
    run.wall_time = record.value("wall_time", 0.0);
  }
  std::stable_sort(run.evals.begin(), run.evals.end(),
                   [](const EvalPoint& a, const EvalPoint& b) { return a.step < b.step; });
  const std::string second_eta = run_dir + "/" + kSecondEtaFile;
  if (fs::is_regular_file(second_eta)) run.second_eta_reward = read_json_file(second_eta).at("eval_reward_mean");
  return run;
}

nlohmann::json run_json(const RunRecord& run) {
  nlohmann::json evals = nlohmann::json::array();
  for (const auto& e : run.evals) {
    evals.push_back({{"step", e.step},
                     {"reward_queries", e.reward_queries},
                     {"unet_evals", e.unet_evals},
                     {"wall_time", e.wall_time},
                     {"reward", e.reward}});
  }
  const nlohmann::json norms = summary(run.grad_norms);
  return {{"seed", run.seed},
          {"steps", run.steps},
          {"evals", evals},
          {"final_reward", run.evals.back().reward},
          {"reward_queries", run.reward_queries},
          {"unet_evals", run.unet_evals},
          {"wall_time", run.wall_time},
          {"skipped_steps", run.skipped_steps},
          {"grad_norm_median", norms.is_null() ? nlohmann::json() : norms["median"]},
          {"grad_norm_max", norms.is_null() ? nlohmann::json() : norms["max"]},
          {"second_eta_reward", run.second_eta_reward ? nlohmann::json(*run.second_eta_reward) : nlohmann::json()},
          {"clip_fraction_mean", run.clip_fractions.empty() ? nlohmann::json() : nlohmann::json(average(run.clip_fractions))},
          {"approx_kl_mean", run.approx_kls.empty() ? nlohmann::json() : nlohmann::json(average(run.approx_kls))}};
}

// Median and min..max over seeds at every evaluated step (the steps agree across seeds of a method).
nlohmann::json curve_json(const std::vector<RunRecord>& runs) {
  std::map<int64_t, std::vector<double>> rewards, queries;
  for (const auto& run : runs) {
    for (const auto& e : run.evals) {
      rewards[e.step].push_back(e.reward);
      queries[e.step].push_back(static_cast<double>(e.reward_queries));
    }
  }
  nlohmann::json curve = {{"step", nlohmann::json::array()},   {"reward_queries", nlohmann::json::array()},
                          {"median", nlohmann::json::array()}, {"min", nlohmann::json::array()},
                          {"max", nlohmann::json::array()},    {"seeds", nlohmann::json::array()}};
  for (const auto& [step, values] : rewards) {
    const nlohmann::json s = summary(values);
    curve["step"].push_back(step);
    curve["reward_queries"].push_back(median(queries[step]));
    curve["median"].push_back(s["median"]);
    curve["min"].push_back(s["min"]);
    curve["max"].push_back(s["max"]);
    curve["seeds"].push_back(values.size());
  }
  return curve;
}

std::vector<double> finals(const std::vector<RunRecord>& runs) {
  std::vector<double> out;
  for (const auto& run : runs) out.push_back(run.evals.back().reward);
  return out;
}

// The held-out reward of the last evaluation within `budget` reward queries (none: the final one).
double reward_within(const RunRecord& run, std::optional<int64_t> budget) {
  double reward = run.evals.front().reward;
  for (const auto& e : run.evals) {
    if (!budget || e.reward_queries <= *budget) reward = e.reward;
  }
  return reward;
}

// Table A for one reference method: the level L (the reference's median held-out reward, final or within
// `budget` queries), the reference's queries to reach it, every method's.
nlohmann::json reach_json(const std::string& reference, const std::vector<BenchEntry>& methods,
                          const std::map<std::string, std::vector<RunRecord>>& runs,
                          std::optional<int64_t> budget = std::nullopt) {
  nlohmann::json table = {{"reference", reference},
                          {"budget", budget ? nlohmann::json(*budget) : nlohmann::json()},
                          {"level", nullptr},
                          {"q_ref", nullptr},
                          {"q_ref_lower_bound", false},
                          {"reference_seeds", runs.at(reference).size()},
                          {"methods", nlohmann::json::array()}};
  const std::vector<RunRecord>& ref_runs = runs.at(reference);
  if (ref_runs.empty()) return table;
  std::vector<double> levels;
  for (const auto& run : ref_runs) levels.push_back(reward_within(run, budget));
  const double level = median(levels);
  std::vector<double> ref_queries;
  std::size_t unreached = 0;
  for (const auto& run : ref_runs) {
    // A reference seed that never reaches the level counts all of its queries: then q_ref, and every
    // speed-up against it, is a lower bound when such seeds make the median.
    const std::optional<int64_t> q = first_reach_queries(run, level);
    unreached += q ? 0 : 1;
    ref_queries.push_back(static_cast<double>(q.value_or(run.evals.back().reward_queries)));
  }
  const double q_ref = median(ref_queries);
  table["level"] = level;
  table["q_ref"] = q_ref;
  table["q_ref_lower_bound"] = 2 * unreached >= ref_runs.size();
  for (const auto& method : methods) {
    nlohmann::json row = {{"key", method.key},
                          {"label", method.label},
                          {"seeds", runs.at(method.key).size()},
                          {"first_reach", nlohmann::json::array()}};
    std::vector<double> reached, ratios;
    for (const auto& run : runs.at(method.key)) {
      const std::optional<int64_t> q = first_reach_queries(run, level);
      row["first_reach"].push_back({{"seed", run.seed}, {"reward_queries", q ? nlohmann::json(*q) : nlohmann::json()}});
      if (!q) continue;
      reached.push_back(static_cast<double>(*q));
      if (*q > 0) ratios.push_back(q_ref / static_cast<double>(*q));  // 0 queries: the base model already is there
    }
    row["reached"] = reached.size();
    row["reward_queries"] = summary(reached);
    row["ratio"] = summary(ratios);
    table["methods"].push_back(row);
  }
  return table;
}

nlohmann::json k_ablation_json(const std::vector<std::string>& keys, const std::vector<BenchEntry>& methods,
                               const std::map<std::string, std::vector<RunRecord>>& runs) {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& key : keys) {
    const auto entry = std::find_if(methods.begin(), methods.end(), [&](const BenchEntry& m) { return m.key == key; });
    DRAFT_CHECK(entry != methods.end(), "k_ablation names '", key, "', which is not one of the benchmark's methods");
    std::vector<double> norms;
    int64_t skipped = 0;
    for (const auto& run : runs.at(key)) {
      norms.insert(norms.end(), run.grad_norms.begin(), run.grad_norms.end());
      skipped += run.skipped_steps;
    }
    const nlohmann::json n = summary(norms);
    rows.push_back({{"key", key},
                    {"label", entry->label},
                    {"seeds", runs.at(key).size()},
                    {"reward", summary(finals(runs.at(key)))},
                    {"grad_norm_median", n.is_null() ? nlohmann::json() : n["median"]},
                    {"grad_norm_max", n.is_null() ? nlohmann::json() : n["max"]},
                    {"skipped_steps", skipped}});
  }
  return rows;
}

void write_plot(const std::string& path, const nlohmann::json& task) {
  LinePlot plot;
  plot.title = task["label"].get<std::string>() + ": held-out reward against reward queries";
  plot.x_label = "reward queries in training";
  plot.y_label = "held-out reward (median, min..max over seeds)";
  plot.log_x = true;
  for (const auto& method : task["methods"]) {
    const nlohmann::json& curve = method["curve"];
    PlotSeries s;
    s.name = fmt::format("{} ({} seeds)", method["label"].get<std::string>(), method["seeds"].size());
    for (std::size_t i = 0; i < curve["step"].size(); ++i) {
      if (curve["reward_queries"][i].get<double>() <= 0) continue;  // step 0: the base model's line instead
      s.x.push_back(curve["reward_queries"][i].get<double>());
      s.y.push_back(curve["median"][i].get<double>());
      s.band_low.push_back(curve["min"][i].get<double>());
      s.band_high.push_back(curve["max"][i].get<double>());
    }
    if (!s.x.empty()) plot.series.push_back(std::move(s));
  }
  if (plot.series.empty()) return;
  if (task["base_reward"].is_number())
    plot.reference_lines.push_back({task["base_reward"].get<double>(), "base model"});
  for (const auto& reach : task["reach"]) {
    if (!reach["level"].is_number() || !reach["budget"].is_null()) continue;
    plot.reference_lines.push_back(
        {reach["level"].get<double>(), reach["reference_label"].get<std::string>() + " final"});
    break;  // the first reference only: more lines would crowd the plot
  }
  write_svg(path, plot);
}

}  // namespace

bool run_is_finished(const std::string& run_dir) {
  if (!fs::is_regular_file(run_dir + "/config.json") || !fs::is_regular_file(metrics_file(run_dir)) ||
      !fs::is_regular_file(run_dir + "/lora_final.safetensors")) {
    return false;
  }
  const int64_t steps = train_steps(run_dir);
  bool step_done = false, eval_done = false;
  for (const auto& record : read_metrics(metrics_file(run_dir))) {
    if (!record.contains("step") || record["step"].get<int64_t>() != steps) continue;
    (record.value("kind", "") == "eval" ? eval_done : step_done) = true;
  }
  return step_done && eval_done;
}

std::vector<RunRecord> read_finished_runs(const std::string& method_dir) {
  std::vector<RunRecord> runs;
  if (!fs::is_directory(method_dir)) return runs;
  for (const auto& entry : fs::directory_iterator(method_dir)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory() || name.rfind("seed", 0) != 0 || name.size() == 4 ||
        name.find_first_not_of("0123456789", 4) != std::string::npos) {
      continue;
    }
    if (auto run = read_run(entry.path().string(), std::stoull(name.substr(4)))) runs.push_back(std::move(*run));
  }
  std::sort(runs.begin(), runs.end(), [](const RunRecord& a, const RunRecord& b) { return a.seed < b.seed; });
  return runs;
}

std::optional<int64_t> first_reach_queries(const RunRecord& run, double level) {
  for (const auto& e : run.evals) {
    if (e.reward >= level) return e.reward_queries;
  }
  return std::nullopt;
}

nlohmann::json compute_efficiency_report(const EfficiencyReportSpec& spec) {
  nlohmann::json report = {{"out_dir", spec.out_dir},
                            {"sweep_seed", spec.sweep_seed},
                            {"second_eta", spec.second_eta ? nlohmann::json(*spec.second_eta) : nlohmann::json()},
                            {"tasks", nlohmann::json::array()}};
  auto label_of = [&](const std::string& key) {
    for (const auto& m : spec.methods) {
      if (m.key == key) return m.label;
    }
    fail("the reference method '", key, "' is not one of the benchmark's methods");
  };
  for (const auto& task : spec.tasks) {
    std::map<std::string, std::vector<RunRecord>> runs;
    std::vector<double> base;
    nlohmann::json methods = nlohmann::json::array();
    for (const auto& method : spec.methods) {
      const std::string method_dir = spec.out_dir + "/" + task.key + "/" + method.key;
      nlohmann::json m = {{"key", method.key},
                          {"label", method.label},
                          {"seeds", nlohmann::json::array()},
                          {"runs", nlohmann::json::array()},
                          {"sweep", nullptr},
                          {"lr", nullptr}};
      const auto rates = spec.learning_rates.find(method.key);
      if (rates == spec.learning_rates.end()) {
        runs[method.key] = read_finished_runs(method_dir);
      } else {
        // The method's runs at its chosen rate; none until its sweep has finished.
        const SweepResult sweep = read_sweep(method_dir, rates->second, spec.sweep_seed);
        m["sweep"] = sweep_json(sweep);
        m["lr"] = sweep.chosen ? nlohmann::json(*sweep.chosen) : nlohmann::json();
        runs[method.key] =
            sweep.chosen ? read_finished_runs(method_dir + "/" + learning_rate_folder(*sweep.chosen))
                         : std::vector<RunRecord>{};
      }
      std::vector<double> queries, evals, walls, second_eta, clip, kl;
      for (const auto& run : runs[method.key]) {
        m["seeds"].push_back(run.seed);
        m["runs"].push_back(run_json(run));
        if (run.evals.front().step == 0) base.push_back(run.evals.front().reward);
        queries.push_back(static_cast<double>(run.reward_queries));
        evals.push_back(static_cast<double>(run.unet_evals));
        walls.push_back(run.wall_time);
        if (run.second_eta_reward) second_eta.push_back(*run.second_eta_reward);
        if (!run.clip_fractions.empty()) clip.push_back(average(run.clip_fractions));
        if (!run.approx_kls.empty()) kl.push_back(average(run.approx_kls));
      }
      auto median_or_null = [](const std::vector<double>& v) {
        return v.empty() ? nlohmann::json() : nlohmann::json(median(v));
      };
      m["curve"] = curve_json(runs[method.key]);
      m["final"] = {{"reward", summary(finals(runs[method.key]))},
                    {"reward_queries", median_or_null(queries)},
                    {"unet_evals", median_or_null(evals)},
                    {"wall_time", median_or_null(walls)},
                    {"second_eta_reward", summary(second_eta)},
                    {"clip_fraction", median_or_null(clip)},
                    {"ppo_seeds", clip.size()},
                    {"approx_kl", median_or_null(kl)}};
      methods.push_back(m);
    }
    nlohmann::json t = {{"key", task.key},
                        {"label", task.label},
                        {"base_reward", base.empty() ? nlohmann::json() : nlohmann::json(median(base))},
                        {"base_runs", base.size()},  // every run evaluates the base model at step 0
                        {"methods", methods},
                        {"reach", nlohmann::json::array()}};
    for (const std::string& reference : {spec.reference, spec.second_reference}) {
      if (reference.empty()) continue;
      const std::string label = label_of(reference);  // checks the key before the lookups below
      std::vector<std::optional<int64_t>> budgets;
      if (reference == spec.reference) budgets.assign(spec.reference_budgets.begin(), spec.reference_budgets.end());
      budgets.push_back(std::nullopt);  // the final level
      for (const auto& budget : budgets) {
        nlohmann::json reach = reach_json(reference, spec.methods, runs, budget);
        reach["reference_label"] = label;
        t["reach"].push_back(reach);
      }
    }
    t["k_ablation"] = k_ablation_json(spec.k_ablation, spec.methods, runs);
    t["claims"] = paper_claims_json(t);
    report["tasks"].push_back(t);
  }
  return report;
}

nlohmann::json write_efficiency_report(const EfficiencyReportSpec& spec) {
  const nlohmann::json report = compute_efficiency_report(spec);
  fs::create_directories(spec.out_dir);
  write_json_file(spec.out_dir + "/results.json", report);
  const std::string md_path = spec.out_dir + "/results.md";
  write_file_atomically(md_path, efficiency_report_markdown(report));
  for (const auto& task : report["tasks"]) {
    write_plot(spec.out_dir + "/efficiency_" + task["key"].get<std::string>() + ".svg", task);
  }
  write_file_atomically(spec.out_dir + "/report.html", efficiency_report_html(report, spec.out_dir));
  return report;
}

}  // namespace draft
