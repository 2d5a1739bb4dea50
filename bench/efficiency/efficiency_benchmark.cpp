// The efficiency benchmark runner (see efficiency_benchmark.h): preset -> planned runs -> run_finetune ->
// progress lines and a report rewritten after every run.
#include "efficiency/efficiency_benchmark.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include <fmt/format.h>

#include "finetune/finetune_config.h"
#include "finetune/trainer.h"
#include "io/json_file.h"
#include "train/resumable_run.h"
#include "util/error.h"

namespace draft {
namespace {

namespace fs = std::filesystem;

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

void check_keys(const nlohmann::json& object, const std::string& path, const std::set<std::string>& known,
                const std::string& source) {
  DRAFT_CHECK(object.is_object(), source, ": '", path, "' must be a JSON object");
  for (const auto& item : object.items()) {
    DRAFT_CHECK(known.count(item.key()), source, ": unknown key '", path.empty() ? "" : path + ".", item.key(),
                "' (known: ", joined({known.begin(), known.end()}), ")");
  }
}

template <typename T>
T get(const nlohmann::json& object, const std::string& key, const std::string& path, const std::string& source,
      const T& fallback) {
  if (!object.contains(key) || object.at(key).is_null()) return fallback;
  try {
    return object.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    fail(source, ": key '", path.empty() ? "" : path + ".", key, "' has the wrong type: ", object.at(key).dump());
  }
}

template <typename T>
T required(const nlohmann::json& object, const std::string& key, const std::string& path, const std::string& source) {
  DRAFT_CHECK(object.contains(key) && !object.at(key).is_null(), source, ": missing key '",
              path.empty() ? "" : path + ".", key, "'");
  return get<T>(object, key, path, source, T{});
}

// The keys of `object` in the order `order` gives; both must name the same keys, each once.
std::vector<std::string> ordered_keys(const nlohmann::json& object, const std::vector<std::string>& order,
                                      const std::string& what, const std::string& source) {
  std::vector<std::string> keys;
  for (const auto& item : object.items()) keys.push_back(item.key());
  if (order.empty()) return keys;  // nlohmann sorts object keys: alphabetical
  for (const auto& key : order) {
    DRAFT_CHECK(object.contains(key), source, ": ", what, "_order names '", key, "', which is not in ", what,
                "s (known: ", joined(keys), ")");
    DRAFT_CHECK(std::count(order.begin(), order.end(), key) == 1, source, ": ", what, "_order names '", key, "' twice");
  }
  for (const auto& key : keys) {
    DRAFT_CHECK(std::find(order.begin(), order.end(), key) != order.end(), source, ": ", what, "s.", key,
                " is missing from ", what, "_order: add it there (or remove it)");
  }
  return order;
}

void check_method_key(const EfficiencyPreset& p, const std::string& key, const std::string& what) {
  for (const auto& m : p.methods) {
    if (m.key == key) return;
  }
  std::vector<std::string> known;
  for (const auto& m : p.methods) known.push_back(m.key);
  fail(p.source, ": ", what, " names '", key, "', which is not a method (known: ", joined(known), ")");
}

// The resolved and validated config of one run, as JSON.
nlohmann::json run_config(const EfficiencyPreset& p, const EfficiencyTask& task, const EfficiencyMethod& method,
                          uint64_t seed, const std::string& dir) {
  const std::string what = fmt::format("{}: run {}/{}/seed{}", p.source, task.key, method.key, seed);
  nlohmann::json c = FinetuneConfig().to_json();
  c.merge_patch(p.base);
  c.merge_patch(method.config);
  const int64_t steps = FinetuneConfig::from_json(c, what).train.steps;
  const auto reward = task.reward_for.find(method.key);
  nlohmann::json fixed;
  fixed["reward"] = reward == task.reward_for.end() ? task.reward : reward->second;
  fixed["eval"]["reward"] = task.eval_reward;
  fixed["eval"]["at"] = log_spaced_steps(steps, p.eval_points);
  fixed["eval"]["every"] = 0;  // only the log-spaced steps (and step 0)
  fixed["train"]["seed"] = seed;
  fixed["out_dir"] = dir;
  c.merge_patch(fixed);
  const FinetuneConfig config = FinetuneConfig::from_json(c, what);
  try {
    config.validate();
  } catch (const Error& e) {
    fail(what, ": ", e.what());
  }
  return config.to_json();
}

// Refuses to continue a run folder that holds a run with other settings (a changed preset would
// otherwise mix two configurations in one curve). out_dir may differ: the benchmark folder can move.
void check_same_settings(const EfficiencyRun& run) {
  const std::string saved_path = run.dir + "/config.json";
  if (!fs::is_regular_file(saved_path)) return;
  const nlohmann::json saved = FinetuneConfig::from_json(read_json_file(saved_path), saved_path).to_json();
  const std::vector<std::string> changes = changed_settings(saved, run.config, {"out_dir"});
  if (changes.empty()) return;
  std::string where;
  for (std::size_t i = 0; i < changes.size() && i < 3; ++i) where += (i ? "; " : "") + changes[i];
  fail(run.dir, " holds a run with other settings than the preset gives it (saved -> preset: ", where,
       changes.size() > 3 ? "; ..." : "", "); delete that folder to rerun it, or give another --out");
}

std::string reward_text(const nlohmann::json& value) {
  return value.is_number() ? fmt::format("{:.4f}", value.get<double>()) : "n/a";
}

std::string duration_text(double seconds) {
  if (seconds < 120) return fmt::format("{:.0f} s", seconds);
  if (seconds < 7200) return fmt::format("{:.1f} min", seconds / 60);
  return fmt::format("{:.1f} h", seconds / 3600);
}

}  // namespace

EfficiencyPreset EfficiencyPreset::from_json(nlohmann::json json, const std::string& source, bool quick) {
  DRAFT_CHECK(json.is_object(), source, ": a benchmark preset must be a JSON object");
  if (quick) {
    DRAFT_CHECK(json.contains("quick"), source, ": --quick needs a \"quick\" object (a merge patch of the preset)");
    const nlohmann::json patch = json["quick"];
    json.merge_patch(patch);
  }
  check_keys(json, "",
             {"description", "out_dir", "seeds", "eval_points", "base", "tasks", "task_order", "methods",
              "method_order", "reference", "second_reference", "k_ablation", "quick"},
             source);
  EfficiencyPreset p;
  p.source = source;
  p.out_dir = required<std::string>(json, "out_dir", "", source);
  p.seeds = required<std::vector<uint64_t>>(json, "seeds", "", source);
  DRAFT_CHECK(!p.seeds.empty(), source, ": seeds must list at least one seed");
  p.eval_points = get<int64_t>(json, "eval_points", "", source, p.eval_points);
  DRAFT_CHECK(p.eval_points >= 1, source, ": eval_points must be >= 1, got ", p.eval_points);
  p.base = get<nlohmann::json>(json, "base", "", source, nlohmann::json::object());
  DRAFT_CHECK(p.base.is_object(), source, ": 'base' must be a JSON object (a partial finetune config)");

  const nlohmann::json tasks = required<nlohmann::json>(json, "tasks", "", source);
  DRAFT_CHECK(tasks.is_object() && !tasks.empty(), source, ": 'tasks' must be a non-empty JSON object");
  for (const auto& key :
       ordered_keys(tasks, get<std::vector<std::string>>(json, "task_order", "", source, {}), "task", source)) {
    const nlohmann::json& t = tasks.at(key);
    const std::string path = "tasks." + key;
    check_keys(t, path, {"label", "reward", "eval_reward", "reward_for"}, source);
    EfficiencyTask task;
    task.key = key;
    task.label = get<std::string>(t, "label", path, source, key);
    task.reward = required<std::string>(t, "reward", path, source);
    task.eval_reward = get<std::string>(t, "eval_reward", path, source, task.reward);
    task.reward_for = get<std::map<std::string, std::string>>(t, "reward_for", path, source, {});
    p.tasks.push_back(task);
  }
  const nlohmann::json methods = required<nlohmann::json>(json, "methods", "", source);
  DRAFT_CHECK(methods.is_object() && !methods.empty(), source, ": 'methods' must be a non-empty JSON object");
  for (const auto& key :
       ordered_keys(methods, get<std::vector<std::string>>(json, "method_order", "", source, {}), "method", source)) {
    const nlohmann::json& m = methods.at(key);
    const std::string path = "methods." + key;
    check_keys(m, path, {"label", "config"}, source);
    EfficiencyMethod method;
    method.key = key;
    method.label = get<std::string>(m, "label", path, source, key);
    method.config = get<nlohmann::json>(m, "config", path, source, nlohmann::json::object());
    DRAFT_CHECK(method.config.is_object(), source, ": '", path,
                ".config' must be a JSON object (a finetune config patch)");
    p.methods.push_back(method);
  }
  for (const auto& task : p.tasks) {
    for (const auto& [method, reward] : task.reward_for)
      check_method_key(p, method, "tasks." + task.key + ".reward_for");
  }
  p.reference = get<std::string>(json, "reference", "", source, "");
  p.second_reference = get<std::string>(json, "second_reference", "", source, "");
  p.k_ablation = get<std::vector<std::string>>(json, "k_ablation", "", source, {});
  if (!p.reference.empty()) check_method_key(p, p.reference, "reference");
  if (!p.second_reference.empty()) check_method_key(p, p.second_reference, "second_reference");
  for (const auto& key : p.k_ablation) check_method_key(p, key, "k_ablation");
  return p;
}

EfficiencyPreset EfficiencyPreset::load(const std::string& path, bool quick) {
  return from_json(read_json_file(path), path, quick);
}

EfficiencyReportSpec EfficiencyPreset::report_spec() const {
  EfficiencyReportSpec spec;
  spec.out_dir = out_dir;
  for (const auto& t : tasks) spec.tasks.push_back({t.key, t.label});
  for (const auto& m : methods) spec.methods.push_back({m.key, m.label});
  spec.reference = reference;
  spec.second_reference = second_reference;
  spec.k_ablation = k_ablation;
  return spec;
}

std::vector<int64_t> log_spaced_steps(int64_t steps, int64_t points) {
  DRAFT_CHECK(steps >= 1 && points >= 1, "log_spaced_steps needs steps >= 1 and points >= 1, got ", steps, " and ",
              points);
  const int64_t n = std::min(points, steps);
  if (n == 1) return {steps};
  std::vector<int64_t> out;
  for (int64_t i = 0; i < n; ++i) {
    const auto geometric =
        static_cast<int64_t>(std::llround(std::pow(static_cast<double>(steps), static_cast<double>(i) / (n - 1))));
    // Rounding collides at small steps: move up past the previous one, leaving room for the rest.
    int64_t step = out.empty() ? geometric : std::max(geometric, out.back() + 1);
    step = std::min(step, steps - (n - 1 - i));
    out.push_back(step);
  }
  return out;
}

std::vector<EfficiencyRun> plan_efficiency_runs(const EfficiencyPreset& preset, const EfficiencySelection& selection) {
  auto pick = [&](const std::vector<std::string>& wanted, const std::vector<std::string>& known, const char* what,
                  const char* flag) {
    for (const auto& key : wanted) {
      DRAFT_CHECK(std::find(known.begin(), known.end(), key) != known.end(), flag, ": unknown ", what, " '", key, "' (",
                  preset.source, " has: ", joined(known), ")");
    }
    return [&wanted](const std::string& key) {
      return wanted.empty() || std::find(wanted.begin(), wanted.end(), key) != wanted.end();
    };
  };
  std::vector<std::string> task_keys, method_keys;
  for (const auto& t : preset.tasks) task_keys.push_back(t.key);
  for (const auto& m : preset.methods) method_keys.push_back(m.key);
  const auto task_chosen = pick(selection.tasks, task_keys, "task", "--tasks");
  const auto method_chosen = pick(selection.methods, method_keys, "method", "--methods");
  const std::vector<uint64_t>& seeds = selection.seeds.empty() ? preset.seeds : selection.seeds;

  std::vector<EfficiencyRun> runs;
  for (uint64_t seed : seeds) {
    for (const auto& task : preset.tasks) {
      if (!task_chosen(task.key)) continue;
      for (const auto& method : preset.methods) {
        if (!method_chosen(method.key)) continue;
        EfficiencyRun run;
        run.task = task.key;
        run.method = method.key;
        run.seed = seed;
        run.dir = fmt::format("{}/{}/{}/seed{}", preset.out_dir, task.key, method.key, seed);
        run.config = run_config(preset, task, method, seed, run.dir);
        runs.push_back(std::move(run));
      }
    }
  }
  return runs;
}

void run_efficiency_benchmark(const EfficiencyPreset& preset, const EfficiencySelection& selection, bool report_only,
                              std::ostream& out) {
  const EfficiencyReportSpec spec = preset.report_spec();
  std::size_t failed = 0, planned = 0;
  if (!report_only) {
    const std::vector<EfficiencyRun> runs = plan_efficiency_runs(preset, selection);
    for (const auto& run : runs) check_same_settings(run);  // before hours of training, not after
    fs::create_directories(preset.out_dir);
    const auto start = std::chrono::steady_clock::now();
    out << "benchmark: " << runs.size() << (runs.size() == 1 ? " run" : " runs") << " into " << preset.out_dir << '\n';
    planned = runs.size();
    std::size_t done = 0;
    for (const auto& run : runs) {
      ++done;
      const std::string name =
          fmt::format("[{}/{}] {} / {} / seed {}", done, runs.size(), run.task, run.method, run.seed);
      if (run_is_finished(run.dir)) {
        out << name << ": finished earlier, skipped\n";
        continue;
      }
      const FinetuneConfig config = FinetuneConfig::from_json(run.config, run.dir);
      FinetuneHooks hooks;
      hooks.quiet = true;
      nlohmann::json line = {{"task", run.task}, {"method", run.method}, {"seed", run.seed}, {"dir", run.dir}};
      try {
        // resume: continues from the run's checkpoint, or starts over when it has none.
        const FinetuneSummary s = run_finetune(config, /*resume=*/true, hooks);
        DRAFT_CHECK(run_is_finished(run.dir), run.dir,
                    " is still not finished after running (no evaluation at its last step or no "
                    "lora_final.safetensors); delete the folder to rerun it");
        line["eval_reward_base"] = s.first_eval.is_object() ? s.first_eval["eval_reward_mean"] : nlohmann::json();
        line["eval_reward_final"] = s.last_eval.is_object() ? s.last_eval["eval_reward_mean"] : nlohmann::json();
        line["reward_queries"] = s.reward_queries;
        line["unet_evals"] = s.unet_evals;
        line["wall_time"] = s.wall_time_s;
        line["skipped_steps"] = s.skipped_steps;
      } catch (const std::exception& e) {
        // A diverged run must not end a benchmark of hours: report it, go on, retry it next time. (LibTorch
        // errors too, e.g. out of memory; their first line, without the C++ backtrace.)
        ++failed;
        const std::string message = e.what();
        line["error"] = message.substr(0, message.find('\n'));
      }
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      line["runs_done"] = done;
      line["runs_total"] = runs.size();
      line["elapsed"] = elapsed;
      if (line.contains("error")) {
        out << name << ": FAILED: " << line["error"].get<std::string>() << " | " << duration_text(elapsed)
            << " elapsed\n";
      } else {
        out << name
            << fmt::format(": held-out reward {} (base {}), {} reward queries, {} training | {} elapsed\n",
                           reward_text(line["eval_reward_final"]), reward_text(line["eval_reward_base"]),
                           line["reward_queries"].get<int64_t>(), duration_text(line["wall_time"].get<double>()),
                           duration_text(elapsed));
      }
      out.flush();
      {
        std::ofstream progress(preset.out_dir + "/progress.jsonl", std::ios::app);
        DRAFT_CHECK(progress.good(), preset.out_dir, "/progress.jsonl: cannot append (is the folder writable?)");
        progress << line.dump() << '\n';
      }
      write_efficiency_report(spec);  // partial results are always on disk
    }
  }
  out << '\n' << efficiency_report_markdown(write_efficiency_report(spec));
  out << "\nwrote " << preset.out_dir << "/results.md, results.json and efficiency_<task>.svg\n";
  DRAFT_CHECK(failed == 0, failed, " of ", planned, " runs failed (see the FAILED lines and ", preset.out_dir,
              "/progress.jsonl); the others are in the report. Run the same command again to retry them");
}

}  // namespace draft
