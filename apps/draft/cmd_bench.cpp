// draft bench efficiency: the method comparison by held-out reward against reward queries
// (bench/efficiency/efficiency_benchmark.h), driven by a preset such as configs/bench-efficiency.json.
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "efficiency/efficiency_benchmark.h"
#include "command.h"
#include "model_threads.h"
#include "output_paths.h"
#include "util/error.h"
#include "util/threads.h"

namespace draft::cli {
namespace {

struct BenchFlags {
  std::string config = "configs/bench-efficiency.json";
  bool quick = false;
  std::string out;
  std::string seeds;
  std::string tasks;
  std::string methods;
  bool report_only = false;
};

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> items;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) items.push_back(item);
  }
  return items;
}

std::vector<uint64_t> parse_seeds(const std::string& text) {
  std::vector<uint64_t> seeds;
  for (const auto& item : split_list(text)) {
    DRAFT_CHECK(item.find_first_not_of("0123456789") == std::string::npos && item.size() <= 19, "--seeds: '", item,
                "' is not a seed; give non-negative integers separated by commas, e.g. --seeds 0,1");
    seeds.push_back(std::stoull(item));
  }
  return seeds;
}

int run_bench_efficiency(const BenchFlags& f) {
  EfficiencyPreset preset = EfficiencyPreset::load(f.config, f.quick);
  if (!f.out.empty()) preset.out_dir = f.out;
  check_output_folder(preset.out_dir, f.out.empty() ? "the preset's out_dir" : "--out");
  EfficiencySelection selection;
  selection.seeds = parse_seeds(f.seeds);
  selection.tasks = split_list(f.tasks);
  selection.methods = split_list(f.methods);
  // As draft finetune: the embedded model's small tensors run fastest with one OpenBLAS thread, and
  // LibTorch's count is measured on the model.
  use_model_threading(preset.base.value("model", std::string()), preset.base.value("train", nlohmann::json::object())
                                                                      .value("batch_size", int64_t{4}));
  run_efficiency_benchmark(preset, selection, f.report_only, std::cout);
  return 0;
}

}  // namespace

Command add_bench_command(CLI::App& root) {
  auto f = std::make_shared<BenchFlags>();
  CLI::App* sub = root.add_subcommand("bench", "Benchmarks that fine-tune many runs and write reports");
  sub->require_subcommand(1);
  CLI::App* eff = sub->add_subcommand(
      "efficiency", "Compare fine-tuning methods by held-out reward against reward queries (tables and plots)");
  eff->add_option("--config", f->config, "benchmark preset (JSON)")->capture_default_str();
  eff->add_flag("--quick", f->quick, "apply the preset's \"quick\" patch (one seed, fewer steps)");
  eff->add_option("--out", f->out, "benchmark folder (default: the preset's out_dir)");
  eff->add_option("--seeds", f->seeds, "only these seeds, e.g. 0,1 (default: the preset's)");
  eff->add_option("--tasks", f->tasks, "only these tasks, e.g. classifier,compressibility");
  eff->add_option("--methods", f->methods, "only these methods, e.g. draft-lv,ddpo");
  eff->add_flag("--report-only", f->report_only, "no training: re-read the run folders and rewrite the report");
  return {sub, [f] { return run_bench_efficiency(*f); }};
}

}  // namespace draft::cli
