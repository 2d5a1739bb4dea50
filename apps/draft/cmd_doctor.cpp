// draft doctor: is this machine set up well? LibTorch, BLAS, threads, GPUs, and measured matmul speed.
#include <cstdio>
#include <iostream>
#include <memory>

#include "command.h"
#include "util/log.h"
#include "util/system_report.h"

namespace draft::cli {
namespace {

int run_doctor(bool json) {
  SystemReport r = collect_system_report();
  if (json) {
    std::cout << to_json(r).dump(2) << '\n';
    return 0;
  }
  std::printf("draft.cpp   %s\n", r.draft_version.c_str());
  std::printf("LibTorch    %s\n", r.torch_version.c_str());
  std::printf("BLAS        %s\n", r.blas.c_str());
  std::printf("threads     %d intra-op (of %d cores), %d inter-op", r.intra_op_threads, r.cores, r.inter_op_threads);
  if (r.openblas_threads >= 0) std::printf(", OpenBLAS %d", r.openblas_threads);
  std::printf("\n");
  if (r.cuda_devices > 0) {
    std::printf("CUDA        %d device(s), cuDNN %s\n", r.cuda_devices, r.cudnn ? "yes" : "no");
  } else {
    std::printf("CUDA        no devices (this LibTorch build or machine has no CUDA)\n");
  }
  std::printf("matmul      %.1f GFLOP/s (512x512 fp32), %.1f GFLOP/s (64 x 64x64 batched fp32)\n",
              r.gflops_large, r.gflops_batched);
  if (r.reference_blas) {
    DRAFT_LOG_WARN("LibTorch is running on the reference BLAS, which is many times slower: "
                   "run scripts/install-deps.sh (installs libopenblas0-pthread)");
  }
  return 0;
}

}  // namespace

Command add_doctor_command(CLI::App& root) {
  auto json = std::make_shared<bool>(false);
  CLI::App* sub = root.add_subcommand("doctor", "Check the set-up: LibTorch, BLAS, threads, GPUs, matmul speed");
  sub->add_flag("--json", *json, "print JSON instead of text");
  return {sub, [json] { return run_doctor(*json); }};
}

}  // namespace draft::cli
