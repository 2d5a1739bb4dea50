// Image grid.
#include "io/image_grid.h"

#include <torch/torch.h>

#include "util/error.h"

namespace draft {

at::Tensor make_grid(const at::Tensor& images, const GridOptions& options) {
  DRAFT_CHECK(images.dim() == 4, "make_grid needs images shaped (B,C,H,W), got ", images.sizes());
  DRAFT_CHECK(images.size(0) > 0, "make_grid got an empty batch");
  DRAFT_CHECK(options.columns > 0, "grid columns must be positive, got ", options.columns);
  DRAFT_CHECK(options.padding >= 0, "grid padding must be non-negative, got ", options.padding);
  const int64_t n = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
  const int64_t p = options.padding;
  const int64_t cols = std::min(options.columns, n);
  const int64_t rows = (n + cols - 1) / cols;
  at::Tensor grid = torch::full({c, rows * (h + p) + p, cols * (w + p) + p}, options.pad_value, images.options());
  for (int64_t i = 0; i < n; ++i) {
    int64_t y = p + (i / cols) * (h + p), x = p + (i % cols) * (w + p);
    grid.narrow(1, y, h).narrow(2, x, w).copy_(images[i]);
  }
  return grid;
}

}  // namespace draft
