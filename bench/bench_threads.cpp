// Benchmark: float32 matrix-product throughput against the thread count, to choose thread defaults and to
// show which BLAS is in use. Prints a markdown table and writes JSON (argv[1], default bench_threads.json).
//   build/bin/bench_threads [out.json]
//   LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/blas build/bin/bench_threads   # force the reference BLAS
#include <cstdio>
#include <fstream>

#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>

#include "util/system_report.h"
#include "util/threads.h"

int main(int argc, char** argv) {
  std::string out_path = argc > 1 ? argv[1] : "bench_threads.json";
  struct Shape {
    const char* name;
    int64_t n, batch;
  };
  const Shape shapes[] = {{"512x512", 512, 1}, {"64 x 64x64", 64, 64}, {"8 x 256x256", 256, 8}};
  std::vector<int> counts = {1};
  if (draft::available_cores() > 1) counts.push_back(draft::available_cores());

  std::printf("BLAS: %s\n\n", draft::blas_description().c_str());
  std::printf("| shape | threads | GFLOP/s |\n|---|---|---|\n");
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& s : shapes) {
    for (int t : counts) {
      draft::configure_threads(t);
      double g = draft::measure_matmul_gflops(s.n, s.batch, 1.0);
      std::printf("| %s | %d | %.1f |\n", s.name, t, g);
      rows.push_back({{"shape", s.name}, {"threads", t}, {"gflops", g}});
    }
  }
  std::ofstream(out_path) << nlohmann::json{{"blas", draft::blas_description()}, {"rows", rows}}.dump(2) << '\n';
  return 0;
}
