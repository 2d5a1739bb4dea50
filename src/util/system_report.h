// What `draft doctor` reports: LibTorch build, BLAS, threads, devices, and measured matmul speed.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace draft {

/// Measured float32 matrix-product throughput of `batch` products of n x n matrices, in GFLOP/s, on
/// the CPU, repeated for about `seconds`.
double measure_matmul_gflops(int64_t n, int64_t batch, double seconds);

struct SystemReport {
  std::string draft_version;
  std::string torch_version;
  std::string blas;
  bool reference_blas = false;  ///< the slow Netlib BLAS: the user should install OpenBLAS
  int cores = 0;
  int intra_op_threads = 0;
  int inter_op_threads = 0;
  int openblas_threads = -1;
  int cuda_devices = 0;
  bool cudnn = false;
  double gflops_large = 0;    ///< one 512x512 product
  double gflops_batched = 0;  ///< 64 products of 64x64 (the attention-sized case)
};

/// Collects the report; the matmul measurement takes about one second.
SystemReport collect_system_report();

nlohmann::json to_json(const SystemReport& report);

}  // namespace draft
