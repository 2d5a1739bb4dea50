// The order in which a training run visits its examples: one permutation per epoch, a pure function of
// (seed, epoch), so a resumed run visits them exactly as the uninterrupted one.
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

namespace draft {

/// The order in which epoch `epoch` visits `n` examples: a permutation of 0..n-1 (int64), the same for the
/// same (n, seed, epoch).
at::Tensor epoch_permutation(int64_t n, uint64_t seed, int64_t epoch);

}  // namespace draft
