// System report for `draft doctor`.
#include "util/system_report.h"

#include <chrono>

#include <torch/torch.h>

#include "util/threads.h"
#include "util/torch_compat.h"
#include "util/version.h"

namespace draft {

double measure_matmul_gflops(int64_t n, int64_t batch, double seconds) {
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(0);
  auto a = torch::randn({batch, n, n}, gen);
  auto b = torch::randn({batch, n, n}, gen);
  auto out = torch::empty({batch, n, n});
  torch::bmm_out(out, a, b);  // warm-up: thread pools, first-touch of the output
  using clock = std::chrono::steady_clock;
  int64_t reps = 0;
  auto start = clock::now();
  double elapsed = 0;
  do {
    torch::bmm_out(out, a, b);
    ++reps;
    elapsed = std::chrono::duration<double>(clock::now() - start).count();
  } while (elapsed < seconds);
  double flops = 2.0 * static_cast<double>(n * n * n * batch) * static_cast<double>(reps);
  return flops / elapsed / 1e9;
}

SystemReport collect_system_report() {
  SystemReport r;
  r.draft_version = std::string(DRAFT_VERSION) + " (git " + DRAFT_GIT_REVISION + ")";
  r.torch_version = torch_version();
  r.blas = blas_description();
  r.reference_blas = r.blas.rfind("reference BLAS", 0) == 0;
  r.cores = available_cores();
  r.intra_op_threads = at::get_num_threads();
  r.inter_op_threads = at::get_num_interop_threads();
  r.openblas_threads = openblas_threads();
  r.cuda_devices = static_cast<int>(torch::cuda::device_count());
  r.cudnn = torch::cuda::cudnn_is_available();
  r.gflops_large = measure_matmul_gflops(512, 1, 0.5);
  r.gflops_batched = measure_matmul_gflops(64, 64, 0.5);
  return r;
}

nlohmann::json to_json(const SystemReport& r) {
  return {{"draft_version", r.draft_version},   {"torch_version", r.torch_version},
          {"blas", r.blas},                     {"reference_blas", r.reference_blas},
          {"cores", r.cores},                   {"intra_op_threads", r.intra_op_threads},
          {"inter_op_threads", r.inter_op_threads}, {"openblas_threads", r.openblas_threads},
          {"cuda_devices", r.cuda_devices},     {"cudnn", r.cudnn},
          {"matmul_gflops_512", r.gflops_large}, {"matmul_gflops_64x64x64", r.gflops_batched}};
}

}  // namespace draft
