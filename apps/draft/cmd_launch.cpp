// draft launch --nproc N [--nnodes M --node-rank R --master-addr A --master-port P] -- ARGS: torchrun for
// machines without Python. Starts N ranks of `draft ARGS` with torchrun's variables and supervises them.
#include <memory>
#include <string>
#include <vector>

#include "command.h"
#include "train/local_launch.h"
#include "util/error.h"

namespace draft::cli {
namespace {

struct LaunchFlags {
  LaunchPlan plan;
  std::vector<std::string> args;
};

int run_launch(const LaunchFlags& f, const CLI::App& sub) {
  // CLI11 keeps the "--" it consumed among the command's leftovers; without it, a leftover word was taken
  // as the rank's arguments although it may have been meant for the launcher.
  bool separator = false;
  for (const auto& word : sub.remaining()) separator = separator || word == "--";
  DRAFT_CHECK(!f.args.empty() && separator,
              "draft launch: no draft arguments after '--': write each rank's whole draft command line after "
              "'--', e.g. 'draft launch --nproc 2 -- finetune --config c.json'");
  return launch_local(f.plan, f.args);
}

}  // namespace

Command add_launch_command(CLI::App& root) {
  auto f = std::make_shared<LaunchFlags>();
  CLI::App* sub = root.add_subcommand(
      "launch",
      "Run a draft command as several data-parallel processes, like torchrun (sets the same variables: RANK, "
      "WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, ...); one failing rank stops the others");
  sub->add_option("--nproc", f->plan.nproc, "processes (ranks) on this node (torchrun's --nproc-per-node)")
      ->capture_default_str();
  sub->add_option("--nnodes", f->plan.nnodes, "nodes taking part; run draft launch once on each")
      ->capture_default_str();
  sub->add_option("--node-rank", f->plan.node_rank, "this node's index, 0 .. --nnodes - 1")->capture_default_str();
  sub->add_option("--master-addr", f->plan.master_addr, "node 0's address, where rank 0 serves the rendezvous")
      ->capture_default_str();
  sub->add_option("--master-port", f->plan.master_port, "the rendezvous port on --master-addr")
      ->capture_default_str();
  sub->add_option("args", f->args,
                  "after '--': each rank's whole draft argument list, global flags included "
                  "(e.g. -- --threads 1 finetune --config c.json)");
  sub->footer("Example: draft launch --nproc 2 -- --threads 1 finetune --config c.json");
  return {sub, [f, sub] { return run_launch(*f, *sub); }};
}

}  // namespace draft::cli
