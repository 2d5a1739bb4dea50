// Image augmentation of the pretraining recipes, its draws seeded per step so that resume is exact.
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

namespace draft {

/// Flips each image of (N, C, H, W) left-right with probability 1/2, the draws coming from `seed` alone.
at::Tensor random_hflip(const at::Tensor& images, uint64_t seed);

}  // namespace draft
