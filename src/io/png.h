// PNG files <-> image tensors (C,H,W) with values in [0, 1].
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <ATen/core/Tensor.h>

namespace draft {

/// Reads an 8-bit PNG as a float tensor (C,H,W) in [0, 1]: C=1 for grayscale files, C=3 for colour.
/// Palette, 16-bit and alpha files are converted by libpng (alpha composited onto black).
/// Throws draft::Error naming the file when it is missing or not a valid PNG, and when the image it declares is
/// larger than its compressed data could hold (a corrupt header), before allocating anything for it.
at::Tensor read_png(const std::string& path);

/// read_png on a PNG file's bytes held in memory; `source` names it in errors.
at::Tensor decode_png(const uint8_t* data, std::size_t size, const std::string& source);

/// Writes a (C,H,W) or (H,W) tensor with values in [0, 1] (clamped; rounded to the nearest of 256 levels)
/// as an 8-bit grayscale (C=1) or RGB (C=3) PNG. Any device and floating dtype.
void write_png(const std::string& path, const at::Tensor& image);

/// The PNG file write_png writes, as bytes in memory; `source` names the image in errors.
std::string encode_png(const at::Tensor& image, const std::string& source = "image");

}  // namespace draft
