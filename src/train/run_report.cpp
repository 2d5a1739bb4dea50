// The HTML report of training runs (run_report.h): curves as inline SVG, grids as data: URIs, config,
// timings and the diversity / drift monitors, built from io/html.h and io/svg_plot.h.
#include "train/run_report.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <tuple>

#include <fmt/format.h>

#include "io/atomic_file.h"
#include "io/html.h"
#include "io/svg_plot.h"
#include "util/error.h"

namespace draft {
namespace {

using nlohmann::json;

// One colour per run, the same in every plot.
const std::string& run_color(std::size_t index) {
  static const std::vector<std::string> colors = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                                  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  return colors[index % colors.size()];
}

std::string number(double v) { return fmt::format("{:.4g}", v); }
std::string number_or_dash(std::optional<double> v) { return v ? number(*v) : "-"; }

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  DRAFT_CHECK(in, path, ": cannot open the sample grid: ", std::strerror(errno));
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The value at a '/'-separated path of the config ("optimizer/lr"), or null.
json config_value(const json& config, const std::string& path) {
  const json* node = &config;
  for (std::size_t start = 0; start <= path.size();) {
    const std::size_t end = std::min(path.find('/', start), path.size());
    const std::string key = path.substr(start, end - start);
    if (!node->is_object() || !node->contains(key)) return nullptr;
    node = &node->at(key);
    start = end + 1;
  }
  return *node;
}

std::string json_text(const json& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) return number(v.get<double>());
  return v.dump();
}

bool is_pretraining(const RunHistory& run) {
  for (const auto* records : {&run.train, &run.evals, &run.other}) {
    for (const auto& r : *records) {
      if (r.contains("event")) return true;
    }
  }
  return false;
}

// The method and its own settings (draft-k's K, DRaFT-LV's n, ReFL's, AlignProp's and DDPO's keys).
std::string method_text(const RunHistory& run) {
  const json name = config_value(run.config, "method/name");
  if (!name.is_string()) return is_pretraining(run) ? "pretraining" : "-";
  const std::string method = name.get<std::string>();
  const std::map<std::string, std::string> prefix = {
      {"draft-k", "k"}, {"draft-lv", "lv_"}, {"refl", "refl_"}, {"alignprop", "alignprop_"}, {"ddpo", "ddpo_"}};
  std::string settings;
  const auto p = prefix.find(method);
  if (p != prefix.end()) {
    for (const auto& [key, value] : run.config["method"].items()) {
      if (key.rfind(p->second, 0) == 0 && (p->second != "k" || key == "k")) {
        settings += (settings.empty() ? "" : ", ") + key + " = " + json_text(value);
      }
    }
  }
  return settings.empty() ? method : method + " (" + settings + ")";
}

// The records of one kind ("train" or "eval").
const std::vector<json>& records_of(const RunHistory& run, const std::string& kind) {
  return kind == "eval" ? run.evals : run.train;
}

// What one plot shows: `y` of the records of `kind` against `x`, one series per run.
struct Curve {
  std::string kind;  ///< "train" or "eval"
  std::string y;
  std::string x = "step";
  std::string title;
  std::string spread;  ///< key of a ± band ("" none; "ci95": eval_reward_ci95's interval)
};

std::string plot_html(const std::vector<RunHistory>& runs, const Curve& c,
                      const std::vector<std::pair<double, std::string>>& references = {}) {
  LinePlot plot;
  plot.title = c.title;
  plot.x_label = c.x == "step" ? "step" : c.x == "reward_queries" ? "reward queries" : c.x;
  plot.y_label = c.y;
  plot.width = 560;
  plot.height = 340;
  plot.reference_lines = references;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    PlotSeries s;
    s.name = runs.size() > 1 ? runs[i].label : "";
    s.color = run_color(i);
    for (const json& r : records_of(runs[i], c.kind)) {
      const auto x = record_number(r, c.x), y = record_number(r, c.y);
      if (!x || !y || !std::isfinite(*x) || !std::isfinite(*y)) continue;
      s.x.push_back(*x);
      s.y.push_back(*y);
      if (c.spread == "ci95") {
        const json ci = r.value("eval_reward_ci95", json());
        const bool ok = ci.is_array() && ci.size() == 2 && ci[0].is_number() && ci[1].is_number();
        s.band_low.push_back(ok ? ci[0].get<double>() : *y);
        s.band_high.push_back(ok ? ci[1].get<double>() : *y);
      } else if (!c.spread.empty()) {
        s.spread.push_back(record_number(r, c.spread).value_or(NAN));
      }
    }
    if (!s.x.empty()) plot.series.push_back(std::move(s));
  }
  if (plot.series.empty()) return "";
  return "<div class=\"plot\" data-plot=\"" + html_escape(c.kind + "-" + c.y + "-" + c.x) + "\">" +
         html_inline_svg(render_svg(plot)) + "</div>\n";
}

// The keys plotted by name; every other number of a record gets a plot of its own under "Other metrics".
const std::set<std::string>& named_keys() {
  static const std::set<std::string> keys = {
      "step",       "epoch",          "reward_mean",     "reward_std", "loss",      "grad_norm",
      "lr",         "reward_queries", "unet_evals",      "wall_time",  "elapsed_s", "eval_reward_mean",
      "diversity",  "drift"};
  return keys;
}

std::string curves_html(const std::vector<RunHistory>& runs) {
  const std::vector<Curve> named = {
      {"train", "reward_mean", "step", "training reward (mean ± std of the batch)", "reward_std"},
      {"train", "reward_mean", "reward_queries", "training reward against reward queries", "reward_std"},
      {"eval", "eval_reward_mean", "step", "held-out reward (95% interval)", "ci95"},
      {"eval", "eval_reward_mean", "reward_queries", "held-out reward against reward queries", "ci95"},
      {"train", "loss", "step", "loss", ""},
      {"train", "grad_norm", "step", "gradient norm (before clipping)", ""},
      {"train", "lr", "step", "learning rate", ""},
  };
  std::string body;
  for (const Curve& c : named) body += plot_html(runs, c);
  // Every other number of the records, per kind, in key order (a pretraining run's loss terms, accuracy,
  // PSNR, ...; a fine-tuning method's own diagnostics).
  std::string other;
  for (const char* kind : {"train", "eval"}) {
    std::set<std::string> keys;
    for (const auto& run : runs) {
      for (const json& r : records_of(run, kind)) {
        for (const auto& [key, value] : r.items()) {
          if (value.is_number() && !named_keys().count(key)) keys.insert(key);
        }
      }
    }
    for (const auto& key : keys) {
      const bool eval = std::string(kind) == "eval";
      other += plot_html(runs, {kind, key, "step", key + (eval ? " (evaluations)" : " (training steps)"), ""});
    }
  }
  if (body.empty() && other.empty()) return "<p class=\"note\">No numbers to plot yet.</p>\n";
  std::string html = "<div class=\"plots\">\n" + body + "</div>\n";
  if (!other.empty()) html += "<h3>Other metrics</h3>\n<div class=\"plots\">\n" + other + "</div>\n";
  return html;
}

std::string fall_text(double fall) { return fmt::format("{:.1f}%", 100.0 * fall); }

std::string warning_html(const RunHistory& run, const DiversityCheck& d, double threshold) {
  return fmt::format(
      "<div class=\"warning\"><strong>Warning: possible reward hacking in {}</strong>: diversity fell by {} "
      "from {} at step {} to {} at step {} (first below the warning level at step {}; the warning level is a "
      "{} fall, --diversity-warning {}). Look at the sample grids.</div>\n",
      html_escape(run.label), fall_text(d.largest_fall), number(d.base), d.base_step, number(d.lowest),
      d.lowest_step, d.first_warn_step, fall_text(threshold), number(threshold));
}

std::string monitors_html(const std::vector<RunHistory>& runs, const std::vector<DiversityCheck>& checks,
                          double threshold) {
  std::vector<std::pair<double, std::string>> references;
  if (runs.size() == 1 && checks[0].measured && checks[0].base > 0) {
    references = {{checks[0].base, "step " + std::to_string(checks[0].base_step)},
                  {checks[0].base * (1 - threshold), "warning level"}};
  }
  std::string html = "<p>Diversity: the mean pairwise distance between the held-out images' features (a fall "
                     "means the model collapses onto fewer images, a sign of reward hacking). Warning level: a fall "
                     "of more than " + fall_text(threshold) + " from the run's step-0 value.</p>\n";
  html += "<div class=\"plots\">\n" + plot_html(runs, {"eval", "diversity", "step", "diversity", ""}, references);
  html += plot_html(runs, {"eval", "drift", "step", "drift (distance to the base model's images)", ""}) + "</div>\n";
  std::vector<std::vector<std::string>> rows;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const DiversityCheck& d = checks[i];
    bool drift = false;
    for (const json& r : runs[i].evals) drift = drift || record_number(r, "drift").has_value();
    const std::string drift_text = drift ? "measured (see the plot)"
                                         : "drift: not measured in this run (draft eval --base measures it)";
    if (!d.measured) {
      rows.push_back({runs[i].label, "not measured in this run", "-", "-", "-", drift_text});
      continue;
    }
    rows.push_back({runs[i].label, fmt::format("{} (step {})", number(d.base), d.base_step),
                    fmt::format("{} (step {})", number(d.last), d.last_step),
                    fmt::format("{} (step {}, fall {})", number(d.lowest), d.lowest_step, fall_text(d.largest_fall)),
                    d.warn ? "WARNING: fell more than " + fall_text(threshold) : "ok", drift_text});
  }
  html += html_table({"run", "diversity, first", "diversity, last", "diversity, lowest", "monitor", "drift"}, rows);
  for (std::size_t i = 0; i < runs.size(); ++i) {
    if (checks[i].warn) html += warning_html(runs[i], checks[i], threshold);
  }
  return html;
}

std::string summary_html(const std::vector<RunHistory>& runs) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& run : runs) {
    std::optional<double> first_eval, last_eval;
    for (const json& r : run.evals) {
      if (const auto v = record_number(r, "eval_reward_mean")) (first_eval ? last_eval : first_eval) = *v;
    }
    int64_t skipped = 0;
    for (const json& r : run.train) skipped += r.contains("skipped") && r.at("skipped") == true ? 1 : 0;
    const std::optional<double> last_step = run.train.empty() ? std::nullopt : record_number(run.train.back(), "step");
    rows.push_back({run.label, method_text(run), json_text(config_value(run.config, "reward")),
                    json_text(config_value(run.config, "optimizer/lr")), number_or_dash(last_step),
                    std::to_string(run.evals.size()), number_or_dash(first_eval),
                    number_or_dash(last_eval ? last_eval : first_eval), std::to_string(skipped)});
  }
  return html_table({"run", "method", "reward", "lr", "last step", "evaluations", "held-out reward, first",
                     "held-out reward, last", "skipped steps"},
                    rows);
}

std::string timings_html(const std::vector<RunHistory>& runs) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& run : runs) {
    const json last = run.train.empty() ? json::object() : run.train.back();
    const auto steps = record_number(last, "step"), wall = record_number(last, "wall_time");
    std::optional<double> elapsed;
    for (const auto* records : {&run.train, &run.evals, &run.other}) {
      for (const json& r : *records) {
        if (const auto e = record_number(r, "elapsed_s")) elapsed = std::max(elapsed.value_or(0.0), *e);
      }
    }
    rows.push_back({run.label, number_or_dash(steps), number_or_dash(wall),
                    steps && wall && *steps > 0 ? number(*wall / *steps) : "-",
                    number_or_dash(record_number(last, "reward_queries")),
                    number_or_dash(record_number(last, "unet_evals")), number_or_dash(elapsed)});
  }
  return html_table({"run", "steps", "training time (s, evaluations excluded)", "s per step", "reward queries",
                     "UNet evaluations", "elapsed (s, pretraining)"},
                    rows) +
         "<p class=\"note\">Reward queries: images scored during training; UNet evaluations: forward passes of "
         "the UNet during training.</p>\n";
}

std::string samples_html(const RunHistory& run) {
  if (run.samples.empty()) return "<p class=\"note\">No sample grids (samples/step_NNNNNN.png) in this run.</p>\n";
  std::map<int64_t, double> reward_at;
  for (const json& r : run.evals) {
    const auto step = record_number(r, "step"), reward = record_number(r, "eval_reward_mean");
    if (step && reward) reward_at[static_cast<int64_t>(*step)] = *reward;
  }
  std::string html;
  for (const SampleGrid& grid : run.samples) {
    std::string caption = grid.step == 0 ? "step 0 (base model)" : "step " + std::to_string(grid.step);
    const auto reward = reward_at.find(grid.step);
    if (reward != reward_at.end()) caption += ", held-out reward " + number(reward->second);
    html += "<figure data-step=\"" + std::to_string(grid.step) + "\">" +
            html_png_image(read_bytes(grid.path), run.label + " " + caption) + "<figcaption>" +
            html_escape(caption) + "</figcaption></figure>\n";
  }
  return html;
}

// The key settings side by side (one column per run), then each run's whole config.json and its records of
// other kinds (a pretraining run's "final").
std::string config_html(const std::vector<RunHistory>& runs) {
  std::vector<std::string> header = {"key"};
  for (const auto& run : runs) header.push_back(runs.size() == 1 ? "value" : run.label);
  std::vector<std::vector<std::string>> rows = {std::vector<std::string>{"method"}};
  for (const auto& run : runs) rows[0].push_back(method_text(run));
  for (const char* path : {"model", "reward", "eval/reward", "optimizer/lr", "optimizer/schedule", "train/steps",
                           "train/batch_size", "train/grad_accumulation", "train/seed", "lora/rank", "lora/alpha",
                           "sampler/steps", "sampler/guidance", "sampler/eta", "device", "dtype"}) {
    std::vector<std::string> row = {path};
    bool any = false;
    for (const auto& run : runs) {
      const json v = config_value(run.config, path);
      any = any || !v.is_null();
      row.push_back(json_text(v));
    }
    if (any) rows.push_back(std::move(row));
  }
  std::string html = html_table(header, rows);
  for (const auto& run : runs) {
    html += run.config.is_null()
                ? "<p class=\"note\">" + html_escape(run.label) + ": no config.json in this run folder.</p>\n"
                : "<details><summary>" + html_escape(run.label) + "/config.json</summary><pre class=\"config\">" +
                      html_escape(run.config.dump(2)) + "</pre></details>\n";
  }
  return html;
}

std::string final_records_html(const RunHistory& run) {
  std::string html;
  for (const json& r : run.other) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& [key, value] : r.items()) rows.push_back({key, json_text(value)});
    html += "<h4>" + html_escape(record_kind_of(r)) + " record of " + html_escape(run.label) + "</h4>\n" +
            html_table({"key", "value"}, rows);
  }
  return html;
}

}  // namespace

DiversityCheck check_diversity(const std::vector<json>& evals, double threshold) {
  DRAFT_CHECK(threshold >= 0 && threshold <= 1, "the diversity warning level must be a fraction in [0, 1], got ",
              threshold);
  std::vector<std::pair<int64_t, double>> points;
  for (const json& r : evals) {
    const auto step = record_number(r, "step"), diversity = record_number(r, "diversity");
    if (step && diversity && std::isfinite(*diversity)) points.emplace_back(static_cast<int64_t>(*step), *diversity);
  }
  DiversityCheck d;
  if (points.empty()) return d;
  std::stable_sort(points.begin(), points.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  d.measured = true;
  std::tie(d.base_step, d.base) = points.front();
  std::tie(d.lowest_step, d.lowest) = points.front();
  for (const auto& [step, value] : points) {
    if (value < d.lowest) std::tie(d.lowest_step, d.lowest) = std::make_pair(step, value);
    if (d.base > 0 && (d.base - value) / d.base > threshold && d.first_warn_step < 0) d.first_warn_step = step;
  }
  std::tie(d.last_step, d.last) = points.back();
  d.largest_fall = d.base > 0 ? (d.base - d.lowest) / d.base : 0;
  d.warn = d.first_warn_step >= 0;
  return d;
}

std::string render_run_report(const std::vector<RunHistory>& runs, const RunReportOptions& options) {
  DRAFT_CHECK(!runs.empty(), "a report needs at least one run folder");
  std::vector<DiversityCheck> checks;
  for (const auto& run : runs) checks.push_back(check_diversity(run.evals, options.diversity_warning));
  std::string title = options.title;
  if (title.empty()) {
    title = "draft report:";
    for (const auto& run : runs) title += " " + run.label;
  }
  std::string body = "<h1>" + html_escape(title) + "</h1>\n";
  body += fmt::format("<p class=\"note\">Written by <code>draft report</code> from {} run folder{}. This file is "
                      "self-contained: plots are inline SVG, images are embedded, nothing is loaded from the "
                      "network.</p>\n",
                      runs.size(), runs.size() == 1 ? "" : "s");
  body += "<nav><a href=\"#runs\">runs</a><a href=\"#curves\">curves</a><a href=\"#monitors\">monitors</a>"
          "<a href=\"#samples\">samples</a><a href=\"#config\">config</a><a href=\"#timings\">timings</a></nav>\n";
  for (std::size_t i = 0; i < runs.size(); ++i) {
    if (checks[i].warn) body += warning_html(runs[i], checks[i], options.diversity_warning);
  }
  std::string legend;
  if (runs.size() > 1) {
    for (std::size_t i = 0; i < runs.size(); ++i) {
      legend += "<span style=\"color:" + run_color(i) + "\">&#9632;</span> " + html_escape(runs[i].label) + " ";
    }
    legend = "<p>Colours: " + legend + "</p>\n";
  }
  body += html_section("Runs", legend + summary_html(runs), "runs");
  body += html_section("Curves", curves_html(runs), "curves");
  body += html_section("Monitors: diversity and drift", monitors_html(runs, checks, options.diversity_warning),
                       "monitors");
  std::string samples, config = config_html(runs);
  for (const auto& run : runs) {
    samples += "<h3>" + html_escape(run.label) + "</h3>\n" + samples_html(run);
    config += final_records_html(run);
  }
  body += html_section("Sample grids (held-out prompts, one row per prompt; step 0 is the base model)", samples,
                       "samples");
  body += html_section("Config and method", config, "config");
  body += html_section("Timings", timings_html(runs), "timings");
  return html_document(title, body);
}

void write_run_report(const std::vector<std::string>& run_dirs, const std::string& path,
                      const RunReportOptions& options) {
  std::vector<RunHistory> runs;
  for (const auto& dir : run_dirs) runs.push_back(read_run_history(dir));
  write_file_atomically(path, render_run_report(runs, options));
}

}  // namespace draft
