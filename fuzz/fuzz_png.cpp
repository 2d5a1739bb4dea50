// libFuzzer target over the PNG reader `draft score` uses (decode_png, the in-memory core of read_png). The input
// is the file's bytes. A pass: draft::Error, or a float (C, H, W) tensor with C 1 or 3 and every value in
// [0, 1], which the true-JPEG-size reward's encoder (jpeg_size) then takes; never a crash, a sanitizer report,
// another exception, or an allocation larger than the file's compressed data could back.
#include <cstdint>
#include <cstdlib>

#include "fuzz_support.h"
#include "io/jpeg.h"
#include "io/png.h"
#include "util/error.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  draft::fuzz::quiet_single_threaded_torch();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  at::Tensor image;
  try {
    image = draft::decode_png(data, size, "fuzz-input.png");
  } catch (const draft::Error&) {
    return 0;
  }
  if (image.scalar_type() != torch::kFloat32 || image.dim() != 3 || (image.size(0) != 1 && image.size(0) != 3)) {
    std::abort();
  }
  if (image.numel() > 0 && (image.min().item<float>() < 0.0f || image.max().item<float>() > 1.0f)) std::abort();
  // Small images go on to the JPEG encoder, as `draft score --reward jpeg` does (large ones only cost time).
  if (image.numel() > 0 && image.numel() <= 3 * 128 * 128) {
    try {
      (void)draft::jpeg_size(image, 95);
    } catch (const draft::Error&) {
    }
  }
  return 0;
}
