// draft plot: draws a metric of one or more runs (their metrics.jsonl) as an SVG line plot, e.g. the
// reward curve of a fine-tuning run, or several methods against reward queries.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "command.h"
#include "output_paths.h"
#include "train/metrics.h"
#include "io/svg_plot.h"
#include "util/error.h"

namespace draft::cli {
namespace {

struct PlotFlags {
  std::vector<std::string> runs;
  std::vector<std::string> labels;
  std::string x = "step";
  std::string y = "reward_mean";
  std::string band = "auto";
  std::string output;
  std::string title;
  bool log_x = false;
};

// The series of one run: every metrics.jsonl line that holds both keys.
PlotSeries read_series(const std::string& run, const PlotFlags& f, const std::string& band) {
  const std::string path = metrics_file(run);
  DRAFT_CHECK(std::filesystem::is_regular_file(path), path, ": cannot open the run's metrics (is ", run,
              " a run folder?)");
  PlotSeries s;
  for (const nlohmann::json& j : read_metrics(path)) {
    if (!j.contains(f.x) || !j.contains(f.y) || !j[f.x].is_number() || !j[f.y].is_number()) continue;
    s.x.push_back(j[f.x].get<double>());
    s.y.push_back(j[f.y].get<double>());
    if (!band.empty()) s.spread.push_back(j.contains(band) && j[band].is_number() ? j[band].get<double>() : NAN);
  }
  DRAFT_CHECK(!s.x.empty(), path, " has no line with both '", f.x, "' and '", f.y,
              "' (see the keys of its lines; --x and --y choose them)");
  return s;
}

int run_plot(const PlotFlags& f) {
  DRAFT_CHECK(f.labels.empty() || f.labels.size() == f.runs.size(), "give one --label per run (", f.runs.size(),
              " runs, ", f.labels.size(), " labels)");
  // "auto": the y key's "_std" twin when y ends in "_mean" (reward_mean -> reward_std).
  std::string band = f.band == "none" ? "" : f.band;
  if (band == "auto") {
    const std::string suffix = "_mean";
    band = f.y.size() > suffix.size() && f.y.compare(f.y.size() - suffix.size(), suffix.size(), suffix) == 0
               ? f.y.substr(0, f.y.size() - suffix.size()) + "_std"
               : "";
  }
  LinePlot plot;
  plot.title = f.title;
  plot.x_label = f.x;
  plot.y_label = f.y;
  plot.log_x = f.log_x;
  for (std::size_t i = 0; i < f.runs.size(); ++i) {
    PlotSeries s = read_series(f.runs[i], f, band);
    s.name = f.labels.empty() ? (f.runs.size() > 1 ? f.runs[i] : "") : f.labels[i];
    plot.series.push_back(std::move(s));
  }
  // After the runs are read (a missing run folder is the clearer message), before anything is written.
  const std::string output = f.output.empty() ? f.runs.front() + "/" + f.y + ".svg" : f.output;
  check_output_file(output, "-o");
  write_svg(output, plot);
  std::cout << "wrote " << output << '\n';
  return 0;
}

}  // namespace

Command add_plot_command(CLI::App& root) {
  auto f = std::make_shared<PlotFlags>();
  CLI::App* sub = root.add_subcommand("plot", "Plot a metric of one or more runs (metrics.jsonl) as an SVG");
  sub->add_option("runs", f->runs, "run folders (each holds metrics.jsonl)")->required();
  sub->add_option("--x", f->x, "x key, e.g. step, reward_queries, wall_time")->capture_default_str();
  sub->add_option("--y", f->y, "y key, e.g. reward_mean, loss, grad_norm, eval_reward_mean")->capture_default_str();
  sub->add_option("--band", f->band, "key of a ± band around y; auto: y's _std twin; none")->capture_default_str();
  sub->add_option("--label", f->labels, "legend label per run (repeat once per run)");
  sub->add_option("--title", f->title, "plot title");
  sub->add_flag("--log-x", f->log_x, "logarithmic x axis");
  sub->add_option("-o,--output", f->output, "SVG file (default: RUN_DIR/<y>.svg of the first run)");
  return {sub, [f] { return run_plot(*f); }};
}

}  // namespace draft::cli
