// The efficiency benchmark runner (see efficiency_benchmark.h): preset -> planned runs -> run_finetune ->
// progress lines and a report rewritten after every run.
#include "efficiency/efficiency_benchmark.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <set>

#include <fmt/format.h>

#include "diffusion/pipeline_lora.h"
#include "efficiency/efficiency_sweep.h"
#include "finetune/finetune_config.h"
#include "finetune/trainer.h"
#include "io/json_file.h"
#include "io/json_value.h"
#include "rewards/reward_evaluation.h"
#include "rewards/reward_registry.h"
#include "train/metrics.h"
#include "train/resumable_run.h"
#include "train/run_lock.h"
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
  T value{};
  DRAFT_CHECK(json_to(object.at(key), value), source, ": key '", path.empty() ? "" : path + ".", key,
              "' has the wrong type: ", object.at(key).dump());
  return value;
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
                          uint64_t seed, std::optional<double> lr, const std::string& dir) {
  const std::string what = fmt::format("{}: run {}", p.source, dir.substr(p.out_dir.size() + 1));
  nlohmann::json c = FinetuneConfig().to_json();
  c.merge_patch(p.base);
  c.merge_patch(method.config);
  const int64_t steps = FinetuneConfig::from_json(c, what).train.steps;
  const auto reward = task.reward_for.find(method.key);
  nlohmann::json fixed;
  fixed["reward"] = reward == task.reward_for.end() ? task.reward : reward->second;
  fixed["eval"]["reward"] = task.eval_reward;
  std::vector<int64_t> at = log_spaced_steps(steps, p.eval_points);
  for (int64_t step : method.extra_eval_steps) {
    DRAFT_CHECK(step >= 1 && step <= steps, what, ": extra_eval_steps holds ", step, ", outside 1..", steps);
    at.push_back(step);
  }
  std::sort(at.begin(), at.end());
  at.erase(std::unique(at.begin(), at.end()), at.end());
  fixed["eval"]["at"] = at;
  if (lr) fixed["optimizer"]["lr"] = *lr;
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
// otherwise mix two configurations in one curve). Settings that do not change what a run computes may
// differ: out_dir (the benchmark folder can move), how often it checkpoints, whether it writes TensorBoard.
void check_same_settings(const EfficiencyRun& run) {
  const std::string saved_path = run.dir + "/config.json";
  if (!fs::is_regular_file(saved_path)) return;
  const nlohmann::json saved = FinetuneConfig::from_json(read_json_file(saved_path), saved_path).to_json();
  const std::vector<std::string> changes =
      changed_settings(saved, run.config, {"out_dir", "train.save_every", "train.tensorboard"});
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

// The run's final LoRA judged like its held-out evaluation, but sampled at DDIM η = `eta`; written to
// kSecondEtaFile. Returns the mean reward.
double evaluate_at_second_eta(const EfficiencyRun& run, double eta) {
  const FinetuneConfig config = FinetuneConfig::from_json(run.config, run.dir);
  WeightsOptions weights;
  weights.dtype = parse_compute_dtype(config.dtype);
  weights.device = parse_device(config.device);
  StableDiffusion sd = load_stable_diffusion(config.model, weights);
  apply_loras(sd, {run.dir + "/lora_final.safetensors"});
  RewardContext context;
  context.device = weights.device;
  context.dtype = weights.dtype;
  const RewardPtr reward = make_reward(config.eval.reward.empty() ? config.reward : config.eval.reward, context);
  RewardEvalOptions eval = held_out_eval_options(config, config.training_prompts());
  eval.eta = eta;
  eval.features = "pixels";  // only the mean is kept: no feature model to load
  const RewardEvalResult result = evaluate_reward(sd, *reward, eval);
  write_json_file(run.dir + "/" + kSecondEtaFile, {{"eta", eta},
                                                   {"eval_reward_mean", result.overall.mean},
                                                   {"eval_reward_std", result.overall.std},
                                                   {"eval_reward_ci95", {result.overall.ci_low, result.overall.ci_high}},
                                                   {"images", result.overall.count}});
  return result.overall.mean;
}

double unix_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
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
              "method_order", "reference", "second_reference", "k_ablation", "lr_sweep", "reference_budgets",
              "second_eta", "quick"},
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
  const bool preset_sweeps = json.contains("lr_sweep") && !json.at("lr_sweep").is_null();
  const std::vector<double> lr_sweep = get<std::vector<double>>(json, "lr_sweep", "", source, {});
  DRAFT_CHECK(!preset_sweeps || !lr_sweep.empty(), source, ": lr_sweep must list at least one learning rate");
  const nlohmann::json methods = required<nlohmann::json>(json, "methods", "", source);
  DRAFT_CHECK(methods.is_object() && !methods.empty(), source, ": 'methods' must be a non-empty JSON object");
  for (const auto& key :
       ordered_keys(methods, get<std::vector<std::string>>(json, "method_order", "", source, {}), "method", source)) {
    const nlohmann::json& m = methods.at(key);
    const std::string path = "methods." + key;
    check_keys(m, path, {"label", "config", "lr_sweep", "extra_eval_steps", "seeds"}, source);
    EfficiencyMethod method;
    method.key = key;
    method.label = get<std::string>(m, "label", path, source, key);
    method.config = get<nlohmann::json>(m, "config", path, source, nlohmann::json::object());
    DRAFT_CHECK(method.config.is_object(), source, ": '", path,
                ".config' must be a JSON object (a finetune config patch)");
    method.extra_eval_steps = get<std::vector<int64_t>>(m, "extra_eval_steps", path, source, {});
    method.seeds = get<std::vector<uint64_t>>(m, "seeds", path, source, {});
    for (uint64_t seed : method.seeds) {
      DRAFT_CHECK(std::find(p.seeds.begin(), p.seeds.end(), seed) != p.seeds.end(), source, ": ", path,
                  ".seeds holds ", seed, ", which is not one of the preset's seeds");
    }
    if (m.contains("lr_sweep")) {
      method.learning_rates = get<std::vector<double>>(m, "lr_sweep", path, source, {});
      if (method.learning_rates.empty()) {  // not swept: the rate its config gives
        nlohmann::json c = FinetuneConfig().to_json();
        c.merge_patch(p.base);
        c.merge_patch(method.config);
        method.learning_rates = {FinetuneConfig::from_json(c, source + ": " + path).optimizer.lr};
      }
    } else if (preset_sweeps) {
      method.learning_rates = lr_sweep;
    }
    for (double lr : method.learning_rates) {
      DRAFT_CHECK(lr > 0 && std::isfinite(lr), source, ": ", path, ": learning rates must be positive, got ", lr);
    }
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
  p.reference_budgets = get<std::vector<int64_t>>(json, "reference_budgets", "", source, {});
  for (int64_t budget : p.reference_budgets) {
    DRAFT_CHECK(budget > 0, source, ": reference_budgets must be positive query counts, got ", budget);
  }
  if (json.contains("second_eta") && !json.at("second_eta").is_null()) {
    p.second_eta = get<double>(json, "second_eta", "", source, 0.0);
    DRAFT_CHECK(*p.second_eta >= 0 && *p.second_eta <= 1, source, ": second_eta must be in [0, 1], got ",
                *p.second_eta);
  }
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
  for (const auto& m : methods) {
    if (!m.learning_rates.empty()) spec.learning_rates[m.key] = m.learning_rates;
  }
  spec.sweep_seed = seeds.front();
  spec.reference_budgets = reference_budgets;
  spec.second_eta = second_eta;
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

std::vector<EfficiencyRun> plan_efficiency_runs(const EfficiencyPreset& preset, const EfficiencySelection& selection,
                                                std::vector<std::string>* waiting) {
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

  const uint64_t sweep_seed = preset.seeds.front();
  const bool sweep_selected = std::find(seeds.begin(), seeds.end(), sweep_seed) != seeds.end();

  std::vector<EfficiencyRun> runs;
  auto add = [&](const EfficiencyTask& task, const EfficiencyMethod& method, uint64_t seed, std::optional<double> lr) {
    EfficiencyRun run;
    run.task = task.key;
    run.method = method.key;
    run.seed = seed;
    run.lr = lr;
    const std::string method_dir = preset.out_dir + "/" + task.key + "/" + method.key;
    run.dir = lr ? fmt::format("{}/{}/seed{}", method_dir, learning_rate_folder(*lr), seed)
                 : fmt::format("{}/seed{}", method_dir, seed);
    run.config = run_config(preset, task, method, seed, lr, run.dir);
    runs.push_back(std::move(run));
  };
  // 1. The sweeps: the first seed at every rate of every swept method.
  for (const auto& task : preset.tasks) {
    if (!task_chosen(task.key) || !sweep_selected) continue;
    for (const auto& method : preset.methods) {
      if (!method_chosen(method.key)) continue;
      for (double lr : method.learning_rates) add(task, method, sweep_seed, lr);
    }
  }
  // 2. Seed by seed, every method at its rate (the seed of the sweep has run there already).
  for (uint64_t seed : seeds) {
    for (const auto& task : preset.tasks) {
      if (!task_chosen(task.key)) continue;
      for (const auto& method : preset.methods) {
        if (!method_chosen(method.key)) continue;
        if (!method.seeds.empty() && std::find(method.seeds.begin(), method.seeds.end(), seed) == method.seeds.end())
          continue;
        if (method.learning_rates.empty()) {
          add(task, method, seed, std::nullopt);
          continue;
        }
        if (seed == sweep_seed) continue;
        const SweepResult sweep = read_sweep(preset.out_dir + "/" + task.key + "/" + method.key,
                                             method.learning_rates, sweep_seed);
        if (sweep.chosen) {
          add(task, method, seed, sweep.chosen);
        } else if (waiting != nullptr) {
          const std::string name = task.key + "/" + method.key;
          if (std::find(waiting->begin(), waiting->end(), name) == waiting->end()) waiting->push_back(name);
        }
      }
    }
  }
  return runs;
}

void run_efficiency_benchmark(const EfficiencyPreset& preset, const EfficiencySelection& selection, bool report_only,
                              std::ostream& out) {
  const EfficiencyReportSpec spec = preset.report_spec();
  std::size_t failed = 0, attempted_count = 0;
  std::vector<std::string> waiting;
  if (!report_only) {
    std::vector<EfficiencyRun> runs = plan_efficiency_runs(preset, selection, &waiting);
    for (const auto& run : runs) check_same_settings(run);  // before hours of training, not after
    fs::create_directories(preset.out_dir);
    const RunLock lock(preset.out_dir);  // one benchmark process per folder; each run also locks its own
    const auto start = std::chrono::steady_clock::now();
    out << "benchmark: " << runs.size() << (runs.size() == 1 ? " run" : " runs") << " planned into "
        << preset.out_dir << (waiting.empty() ? "" : " (more follow the learning-rate sweeps)") << '\n';
    std::set<std::string> attempted;
    while (true) {
      // Planned again after every run: a finished sweep brings its method's other seeds.
      waiting.clear();
      runs = plan_efficiency_runs(preset, selection, &waiting);
      const auto next = std::find_if(runs.begin(), runs.end(),
                                     [&](const EfficiencyRun& r) { return attempted.count(r.dir) == 0; });
      if (next == runs.end()) break;
      const EfficiencyRun& run = *next;
      attempted.insert(run.dir);
      ++attempted_count;
      const std::string name =
          fmt::format("[{}/{}] {}", attempted.size(), runs.size(), run.dir.substr(preset.out_dir.size() + 1));
      nlohmann::json line = {{"task", run.task}, {"method", run.method}, {"seed", run.seed}, {"dir", run.dir}};
      if (run.lr) line["lr"] = *run.lr;
      const double started_at = unix_seconds();
      const bool finished_before = run_is_finished(run.dir);
      try {
        check_same_settings(run);
        if (!finished_before) {
          const FinetuneConfig config = FinetuneConfig::from_json(run.config, run.dir);
          FinetuneHooks hooks;
          hooks.quiet = true;
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
        }
        if (preset.second_eta && !fs::is_regular_file(run.dir + "/" + kSecondEtaFile)) {
          line["second_eta_reward"] = evaluate_at_second_eta(run, *preset.second_eta);
        }
      } catch (const std::exception& e) {
        // A diverged run must not end a benchmark of hours: report it, go on, retry it next time. (LibTorch
        // errors too, e.g. out of memory; their first line, without the C++ backtrace.)
        ++failed;
        const std::string message = e.what();
        line["error"] = message.substr(0, message.find('\n'));
      }
      if (finished_before && !line.contains("error") && !line.contains("second_eta_reward")) {
        out << name << ": finished earlier, skipped\n";
        continue;
      }
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      line["runs_done"] = attempted.size();
      // Unix seconds at the run's start and end (training, the second-η evaluation, this line): they place
      // the run in time, so that pauses of the process logged elsewhere (e.g. while the machine builds) can
      // be taken out of the measured budget (scripts/bench-budget.py).
      line["started_at"] = started_at;
      line["finished_at"] = unix_seconds();
      line["runs_planned"] = runs.size();
      line["elapsed"] = elapsed;
      if (line.contains("error")) {
        out << name << ": FAILED: " << line["error"].get<std::string>() << " | " << duration_text(elapsed)
            << " elapsed\n";
      } else if (finished_before) {
        out << name << fmt::format(": finished earlier; held-out reward at eta {} {}\n", *preset.second_eta,
                                   reward_text(line["second_eta_reward"]));
      } else {
        out << name
            << fmt::format(": held-out reward {} (base {}), {} reward queries, {} training | {} elapsed\n",
                           reward_text(line["eval_reward_final"]), reward_text(line["eval_reward_base"]),
                           line["reward_queries"].get<int64_t>(), duration_text(line["wall_time"].get<double>()),
                           duration_text(elapsed));
      }
      out.flush();
      append_metrics(preset.out_dir + "/progress.jsonl", line);  // one JSON line per run, as metrics.jsonl
      write_efficiency_report(spec);  // partial results are always on disk
    }
  } else {
    plan_efficiency_runs(preset, selection, &waiting);
  }
  out << '\n' << efficiency_report_markdown(write_efficiency_report(spec));
  out << "\nwrote " << preset.out_dir << "/results.md, results.json and efficiency_<task>.svg\n";
  if (!waiting.empty()) {
    out << "waiting for their learning-rate sweep (seed " << preset.seeds.front() << ", not selected or not "
        << "finished): " << joined(waiting) << '\n';
  }
  DRAFT_CHECK(failed == 0, failed, " of ", attempted_count, " runs failed (see the FAILED lines and ", preset.out_dir,
              "/progress.jsonl); the others are in the report. Run the same command again to retry them");
}

}  // namespace draft
