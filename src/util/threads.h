// Thread set-up: LibTorch's intra-op pool and OpenBLAS's own pool.
#pragma once

#include <string>

namespace draft {

/// Cores this process may run on (sched_getaffinity), at least 1.
int available_cores();

/// Sets LibTorch's intra-op threads to `requested` (<= 0: available_cores()) and returns the number set.
/// Debian's LibTorch starts with 1 thread, which is about 2x slower on 2 cores. OpenBLAS, when it is the
/// BLAS in use, keeps a pool of its own that LibTorch does not control; it is set to the same count.
int configure_threads(int requested);

/// OpenBLAS's thread count, or -1 when the process does not use OpenBLAS.
int openblas_threads();

/// A description of the BLAS library loaded into this process, e.g. "OpenBLAS 0.3.21 (pthread) ...,
/// /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3", or "reference BLAS (...)".
std::string blas_description();

}  // namespace draft
