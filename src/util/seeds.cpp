// The seed derivation and CPU generators.
#include "util/seeds.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

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

at::Tensor randn_per_sample(std::vector<at::Generator>& generators, at::IntArrayRef sample_shape) {
  std::vector<int64_t> shape = {1};
  shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
  std::vector<at::Tensor> rows;
  rows.reserve(generators.size());
  for (auto& g : generators) rows.push_back(torch::randn(shape, g, torch::kFloat32));
  return torch::cat(rows);
}

}  // namespace draft
