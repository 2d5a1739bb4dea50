// Reproducible randomness: every draw of a run comes from a generator seeded by (run seed, stream, index),
// so a resumed run draws exactly what the uninterrupted one would have, without saving generator states.
// The one seed derivation of the project: the pretraining and fine-tuning trainers both use it.
#pragma once

#include <cstdint>

#include <ATen/core/Generator.h>

namespace draft {

/// Named streams of the pretraining runs (the fine-tuning trainer numbers its streams per micro-batch).
enum class RandomStream : uint64_t { kShuffle = 1, kAugment = 2, kNoise = 3, kCaption = 4 };

/// A 64-bit seed for draw `index` (a step, an epoch; -1 for a draw before the first step) of `stream` in a
/// run seeded with `seed`: the inputs are spread by multiplying with odd 64-bit constants (the golden ratio
/// and SplitMix64's first multiplier), xor-ed, then passed through the last rounds of SplitMix64's
/// finaliser (Steele et al. 2014) so that neighbouring indices give unrelated seeds.
uint64_t derive_seed(uint64_t seed, uint64_t stream, int64_t index);

/// derive_seed for a named stream.
inline uint64_t derive_seed(uint64_t seed, RandomStream stream, int64_t index) {
  return derive_seed(seed, static_cast<uint64_t>(stream), index);
}

/// LibTorch's CPU generator (mt19937) seeded with `seed`.
at::Generator cpu_generator(uint64_t seed);

}  // namespace draft
