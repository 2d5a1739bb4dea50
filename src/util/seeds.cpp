// The seed derivation and CPU generators.
#include "util/seeds.h"

#include <ATen/CPUGeneratorImpl.h>

namespace draft {
namespace {

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ULL;       // 2^64 / golden ratio, odd
constexpr uint64_t kStreamMultiplier = 0xBF58476D1CE4E5B9ULL;  // SplitMix64's first multiplier
constexpr uint64_t kFinalMultiplier = 0x94D049BB133111EBULL;   // SplitMix64's second multiplier

}  // namespace

uint64_t derive_seed(uint64_t seed, uint64_t stream, int64_t index) {
  uint64_t x = seed ^ (static_cast<uint64_t>(index) * kGolden) ^ (stream * kStreamMultiplier);
  x ^= x >> 31;
  x *= kFinalMultiplier;
  x ^= x >> 29;
  return x;
}

at::Generator cpu_generator(uint64_t seed) { return at::detail::createCPUGenerator(seed); }

}  // namespace draft
