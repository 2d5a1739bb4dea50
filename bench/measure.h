// What the benchmark programs measure with: wall time (median of repeats, the device synchronised) and
// FLOPs as LibTorch's profiler counts them.
#pragma once

#include <functional>

#include <c10/core/Device.h>

namespace draft::bench {

/// Median wall time in milliseconds of `reps` calls after `warmups` calls; the device's queue is drained
/// before each clock read, so a CUDA call is timed to its end.
double median_ms(const std::function<void()>& fn, int reps, c10::Device device = c10::kCPU, int warmups = 1);

/// FLOPs of one call of `fn`, as LibTorch's profiler counts them from the operators' shapes (matmul,
/// convolution, elementwise ops it knows; attention's fused kernel is not counted).
double count_flops(const std::function<void()>& fn);

}  // namespace draft::bench
