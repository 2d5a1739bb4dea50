// Timing and FLOP counting for the benchmark programs (measure.h).
#include "measure.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include "util/torch_compat.h"

namespace draft::bench {

double median_ms(const std::function<void()>& fn, int reps, c10::Device device, int warmups) {
  for (int i = 0; i < warmups; ++i) fn();
  synchronize_device(device);
  std::vector<double> ms;
  for (int i = 0; i < reps; ++i) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    synchronize_device(device);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

double count_flops(const std::function<void()>& fn) {
  namespace prof = torch::autograd::profiler;
  prof::enableProfilerLegacy(torch::profiler::impl::ProfilerConfig(torch::profiler::impl::ProfilerState::CPU,
                                                                    /*report_input_shapes=*/true, false, false,
                                                                    /*with_flops=*/true));
  fn();
  double flops = 0;
  for (auto& thread_events : prof::disableProfilerLegacy()) {
    for (auto& e : thread_events) flops += static_cast<double>(e.flops());
  }
  return flops;
}

}  // namespace draft::bench
