// The shape of a CLI subcommand: its CLI11 parser and the function that runs it once flags are parsed.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace draft::cli {

struct Command {
  CLI::App* parser = nullptr;
  std::function<int()> run;  ///< returns the process exit code; throws draft::Error on failure
};

// One function per subcommand, each in its own cmd_<name>.cpp.
Command add_info_command(CLI::App& root);
Command add_doctor_command(CLI::App& root);
Command add_sample_command(CLI::App& root);
Command add_pretrain_command(CLI::App& root);
Command add_eval_command(CLI::App& root);
Command add_probe_command(CLI::App& root);
Command add_score_command(CLI::App& root);
Command add_lora_command(CLI::App& root);
Command add_plot_command(CLI::App& root);
Command add_report_command(CLI::App& root);
Command add_finetune_command(CLI::App& root);
Command add_bench_command(CLI::App& root);
Command add_config_command(CLI::App& root);
Command add_launch_command(CLI::App& root);

}  // namespace draft::cli
