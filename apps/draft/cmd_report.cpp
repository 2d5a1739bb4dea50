// draft report: one self-contained HTML file (opens offline) about one or several run folders: reward and
// held-out reward curves, loss, gradient norm, learning rate, every evaluation's sample grid, the config,
// timings and the diversity / drift monitors with a reward-hacking warning (train/run_report.h).
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "command.h"
#include "flag_checks.h"
#include "output_paths.h"
#include "train/run_report.h"

namespace draft::cli {
namespace {

struct ReportFlags {
  std::vector<std::string> runs;
  std::string output = "report.html";
  RunReportOptions options;
};

int run_report(const ReportFlags& f) {
  check_output_file(f.output, "-o");
  write_run_report(f.runs, f.output, f.options);
  std::cout << "wrote " << f.output << " (" << f.runs.size() << (f.runs.size() == 1 ? " run" : " runs") << ")\n";
  return 0;
}

}  // namespace

Command add_report_command(CLI::App& root) {
  auto f = std::make_shared<ReportFlags>();
  CLI::App* sub = root.add_subcommand(
      "report", "Write one self-contained HTML report (curves, sample grids, config, monitors) of run folders");
  sub->add_option("runs", f->runs, "run folders of draft finetune or draft pretrain (each holds metrics.jsonl)")
      ->required();
  sub->add_option("-o,--out", f->output, "the HTML file")->capture_default_str();
  sub->add_option("--diversity-warning", f->options.diversity_warning,
                  "warn when a run's diversity falls by more than this fraction of its step-0 value (0.1: 10%)")
      ->check(real_number(0.0, 1.0))
      ->capture_default_str();
  sub->add_option("--title", f->options.title, "the page title (default: the run folders)");
  return {sub, [f] { return run_report(*f); }};
}

}  // namespace draft::cli
