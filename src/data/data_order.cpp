// Per-epoch permutations.
#include "data/data_order.h"

#include <torch/torch.h>

#include "util/seeds.h"

namespace draft {

at::Tensor epoch_permutation(int64_t n, uint64_t seed, int64_t epoch) {
  at::Generator gen = cpu_generator(derive_seed(seed, RandomStream::kShuffle, epoch));
  return torch::randperm(n, gen, torch::kLong);
}

}  // namespace draft
