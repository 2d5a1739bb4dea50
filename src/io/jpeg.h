// JPEG encoding through libjpeg, for the true compressed size of an image (the JPEG rewards).
#pragma once

#include <cstddef>
#include <string>

#include <ATen/core/Tensor.h>

namespace draft {

/// Encodes a (C,H,W) image with values in [0, 1] (C = 1: grayscale, C = 3: RGB) as a baseline JPEG at
/// `quality` (1..100) with libjpeg's defaults (4:2:0 chroma subsampling, standard Huffman tables, a JFIF
/// header), which is what PIL's Image.save(format="JPEG", quality=q) writes. Values are rounded to 8
/// bits first: round(x * 255) clamped to [0, 255]. Returns the file's bytes.
std::string encode_jpeg(const at::Tensor& image, int quality);

/// The size in bytes of encode_jpeg(image, quality).
std::size_t jpeg_size(const at::Tensor& image, int quality);

}  // namespace draft
