// IDX files (the MNIST / Fashion-MNIST format), optionally gzip-compressed.
#pragma once

#include <string>

#include <ATen/core/Tensor.h>

namespace draft {

/// Reads an IDX file of unsigned bytes (type code 0x08), plain or gzip-compressed (detected from the
/// content), into a uint8 tensor with the file's dimensions: (N, 28, 28) for images, (N) for labels.
/// Throws draft::Error naming the file for a missing, truncated or corrupt file, or another element type.
at::Tensor read_idx(const std::string& path);

/// Writes a uint8 tensor as a gzip-compressed IDX file (for tests and for exporting datasets).
void write_idx_gz(const std::string& path, const at::Tensor& data);

}  // namespace draft
