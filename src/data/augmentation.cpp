// Random horizontal flips.
#include "data/augmentation.h"

#include <torch/torch.h>

#include "util/seeds.h"

namespace draft {

at::Tensor random_hflip(const at::Tensor& images, uint64_t seed) {
  at::Generator gen = cpu_generator(seed);
  at::Tensor flip = torch::rand({images.size(0)}, gen) < 0.5;
  return torch::where(flip.view({-1, 1, 1, 1}).to(images.device()), images.flip({3}), images);
}

}  // namespace draft
