// draft: the command-line interface. Parses flags, sets up logging and threads, runs one subcommand,
// and is the only place that catches errors: one line on stderr and a non-zero exit.
#include <iostream>
#include <string>
#include <vector>

#include <c10/util/Exception.h>

#include "command.h"
#include "flag_checks.h"
#include "util/error.h"
#include "util/log.h"
#include "util/threads.h"
#include "util/torch_compat.h"
#include "util/version.h"

namespace {

constexpr int kExitRuntimeError = 1;
constexpr int kExitUsageError = 2;

std::string version_text() {
  return std::string("draft ") + DRAFT_VERSION + " (git " + DRAFT_GIT_REVISION + "), LibTorch " + draft::torch_version();
}

// The first line of a message: LibTorch appends C++ stack traces we do not want on a user's terminal.
std::string first_line(const std::string& message) { return message.substr(0, message.find('\n')); }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"draft: fine-tune diffusion models on differentiable rewards (DRaFT) with LibTorch", "draft"};
  app.set_version_flag("--version", version_text());
  app.require_subcommand(0, 1);  // no command is reported by us, after unknown flags are
  app.fallthrough();  // global flags are accepted after the subcommand too

  int threads = 0;
  int blas_threads = 0;
  std::string log_level = "info";
  app.add_option("--threads", threads,
                 "CPU threads for LibTorch and OpenBLAS (default: OMP_NUM_THREADS, else all available cores)")
      ->check(draft::cli::whole_number(0, draft::cli::kMaxThreads));
  app.add_option("--blas-threads", blas_threads,
                 "OpenBLAS threads (default: --threads, or 1 for the embedded model's small tensors)")
      ->check(draft::cli::whole_number(0, draft::cli::kMaxThreads));
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));

  std::vector<draft::cli::Command> commands = {
      draft::cli::add_info_command(app),
      draft::cli::add_doctor_command(app),
      draft::cli::add_sample_command(app),
      draft::cli::add_pretrain_command(app),
      draft::cli::add_eval_command(app),
      draft::cli::add_probe_command(app),
      draft::cli::add_score_command(app),
      draft::cli::add_lora_command(app),
      draft::cli::add_plot_command(app),
      draft::cli::add_report_command(app),
      draft::cli::add_finetune_command(app),
      draft::cli::add_bench_command(app),
      draft::cli::add_config_command(app),
      draft::cli::add_launch_command(app),
  };

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string help = "draft --help";
    for (const auto& command : commands) {
      if (command.parser->parsed()) help = "draft " + command.parser->get_name() + " --help";
    }
    std::cerr << "draft: error: " << first_line(e.what()) << " (see '" << help << "')\n";
    return kExitUsageError;
  }

  const draft::cli::Command* chosen = nullptr;
  std::string names;
  for (const auto& command : commands) {
    if (command.parser->parsed()) chosen = &command;
    names += (names.empty() ? "" : ", ") + command.parser->get_name();
  }
  if (!chosen) {
    std::cerr << "draft: error: no command given: use one of " << names << " (see 'draft --help')\n";
    return kExitUsageError;
  }

  try {
    draft::init_logging();
    draft::set_log_level(log_level);
    draft::configure_threads(threads, blas_threads);
    return chosen->run();
  } catch (const draft::Error& e) {
    std::cerr << "draft: error: " << e.what() << '\n';
  } catch (const c10::Error& e) {
    std::cerr << "draft: error: " << first_line(e.what_without_backtrace()) << '\n';
  } catch (const std::exception& e) {
    std::cerr << "draft: error: " << first_line(e.what()) << '\n';
  }
  return kExitRuntimeError;
}
