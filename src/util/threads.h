// Thread set-up: LibTorch's intra-op pool and OpenBLAS's own pool.
#pragma once

#include <functional>
#include <string>

namespace draft {

/// Cores this process may run on (sched_getaffinity), at least 1.
int available_cores();

/// Sets LibTorch's intra-op threads to `requested` and returns the number set. `requested` <= 0 means
/// OMP_NUM_THREADS when it is a positive whole number (as in PyTorch; torchrun and draft launch set it to 1
/// for several ranks on one machine), else available_cores(); an invalid OMP_NUM_THREADS is ignored with a
/// warning. Debian's LibTorch starts with 1 thread, which is about 2x slower on 2 cores. OpenBLAS, when it
/// is the BLAS in use, keeps a pool of its own that LibTorch does not control; it is set to the same count.
/// `blas_requested` > 0 fixes OpenBLAS's pool to that size instead, and small-tensor threading below
/// then leaves it alone.
int configure_threads(int requested, int blas_requested = 0);

/// For models whose tensors are small (the embedded model: 8x8 latents, 32x32 images), OpenBLAS's pool
/// and LibTorch's OpenMP pool spin-wait against each other between the many small operations: on 2
/// cores sampling took 2.1x and a training step 1.8x as long with both pools at 2 threads as with
/// OpenBLAS at 1 (bench_fashion_sd, docs/performance.md). Sets OpenBLAS to 1 thread unless configure_threads fixed it.
void use_small_tensor_threading();

/// True when the last configure_threads call was given a count, or OMP_NUM_THREADS gave one: the thread
/// count is the user's, and nothing should second-guess it.
bool threads_chosen_by_user();

/// Sets LibTorch's intra-op threads to whichever of 1 and `max_threads` runs `work` faster, and returns
/// that count. Each count is warmed up once, then the two are timed `reps` times interleaved and their
/// medians compared; 1 wins only when at least 5% faster. For work made of many small operations, where
/// handing each to a thread pool can cost more than the second core gives: the embedded model sampled 16
/// images in 3.15 s with 1 thread and 5.23 s with 2 on a 2-core Zen 5 VM, but 3.52 s and 3.04 s on this
/// project's 2-core EPYC (docs/performance.md), so the core count alone cannot decide.
int choose_threads_by_timing(const std::function<void()>& work, int max_threads, int reps = 3);

/// OpenBLAS's thread count, or -1 when the process does not use OpenBLAS.
int openblas_threads();

/// A description of the BLAS library loaded into this process, e.g. "OpenBLAS 0.3.21 (pthread) ...,
/// /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3", or "reference BLAS (...)".
std::string blas_description();

}  // namespace draft
