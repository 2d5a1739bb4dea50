// Tiling a batch of images into one image, for sample sheets.
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

namespace draft {

struct GridOptions {
  int64_t columns = 8;     ///< images per row (fewer if the batch is smaller)
  int64_t padding = 2;     ///< pixels between images and around the border
  double pad_value = 1.0;  ///< colour of the padding, in [0, 1]
};

/// Tiles (B,C,H,W) images into one (C, rows*(H+p)+p, cols*(W+p)+p) image, row-major, like torchvision's
/// make_grid. Cells past the end of the batch are left at pad_value.
at::Tensor make_grid(const at::Tensor& images, const GridOptions& options = {});

}  // namespace draft
