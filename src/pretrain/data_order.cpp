// Seed derivation, CPU generators and per-epoch permutations.
#include "pretrain/data_order.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

namespace draft {
namespace {

// SplitMix64's output function: a bijection on 64 bits that spreads every input bit over the output.
uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

uint64_t derive_seed(uint64_t seed, RandomStream stream, uint64_t index) {
  return mix64(mix64(mix64(seed) ^ static_cast<uint64_t>(stream)) ^ index);
}

at::Generator cpu_generator(uint64_t seed) { return at::detail::createCPUGenerator(seed); }

at::Tensor epoch_permutation(int64_t n, uint64_t seed, int64_t epoch) {
  at::Generator gen = cpu_generator(derive_seed(seed, RandomStream::kShuffle, static_cast<uint64_t>(epoch)));
  return torch::randperm(n, gen, torch::kLong);
}

}  // namespace draft
