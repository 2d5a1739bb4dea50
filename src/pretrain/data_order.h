// Reproducible randomness for training runs: every epoch's shuffle and every step's augmentation is a
// pure function of (seed, epoch) or (seed, step), so a resumed run draws exactly what the uninterrupted
// one would have, without saving generator states.
#pragma once

#include <cstdint>

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

namespace draft {

/// Independent random streams of one run.
enum class RandomStream : uint64_t { kShuffle = 1, kAugment = 2, kNoise = 3, kCaption = 4 };

/// A 64-bit seed for draw `index` of `stream` in a run seeded with `seed` (SplitMix64 finaliser,
/// Steele et al. 2014, applied to the mixed inputs).
uint64_t derive_seed(uint64_t seed, RandomStream stream, uint64_t index);

/// LibTorch's CPU generator (mt19937) seeded with `seed`.
at::Generator cpu_generator(uint64_t seed);

/// The order in which epoch `epoch` visits `n` examples: a permutation of 0..n-1 (int64), the same for the
/// same (n, seed, epoch).
at::Tensor epoch_permutation(int64_t n, uint64_t seed, int64_t epoch);

}  // namespace draft
