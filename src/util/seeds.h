// Reproducible randomness: every draw of a run comes from a generator seeded by (run seed, stream, index),
// so a resumed run draws exactly what the uninterrupted one would have, without saving generator states.
// The one seed derivation of the project: the pretraining and fine-tuning trainers both use it.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

namespace draft {

/// Named streams. Pretraining: shuffle, augment, noise, caption. Fine-tuning: a sample's data (prompt, x_T)
/// and its method draws (K, re-noising, sampler noise), and the draws one optimizer step shares (ReFL's
/// stop step, DDPO's timestep order).
enum class RandomStream : uint64_t {
  kShuffle = 1,
  kAugment = 2,
  kNoise = 3,
  kCaption = 4,
  kSampleData = 5,
  kSampleMethod = 6,
  kStepMethod = 7
};

/// A 64-bit seed for draw `index` (a step, an epoch; -1 for a draw before the first step) of `stream` in a
/// run seeded with `seed`: the inputs are spread by multiplying with odd 64-bit constants (the golden ratio
/// and SplitMix64's first multiplier), xor-ed, then passed through the last rounds of SplitMix64's
/// finaliser (Steele et al. 2014) so that neighbouring indices give unrelated seeds.
uint64_t derive_seed(uint64_t seed, uint64_t stream, int64_t index);

/// derive_seed for a named stream.
inline uint64_t derive_seed(uint64_t seed, RandomStream stream, int64_t index) {
  return derive_seed(seed, static_cast<uint64_t>(stream), index);
}

/// A seed for sample `sample` (its index in the global batch) of optimizer step `step`: a data-parallel run
/// draws every sample's randomness from (seed, step, global sample index), so it computes the same thing
/// whatever the number of processes and however its batch is split.
inline uint64_t derive_seed(uint64_t seed, RandomStream stream, int64_t step, int64_t sample) {
  return derive_seed(derive_seed(seed, stream, step), stream, sample);
}

/// LibTorch's CPU generator (mt19937) seeded with `seed`.
at::Generator cpu_generator(uint64_t seed);

/// Standard normal draws of shape (B, sample_shape...) on the CPU in float32, row j from generators[j]: a
/// sample's noise does not depend on which other samples share its batch.
at::Tensor randn_per_sample(std::vector<at::Generator>& generators, at::IntArrayRef sample_shape);

}  // namespace draft
