// JPEG encoding with libjpeg into memory. libjpeg reports errors through error_exit, which must not
// return; we leave with longjmp and turn the message into a draft::Error.
#include "io/jpeg.h"

#include <csetjmp>
#include <cstdio>
#include <cstdlib>

#include <jpeglib.h>
#include <torch/torch.h>

#include "util/error.h"

namespace draft {
namespace {

struct ErrorManager {
  jpeg_error_mgr base;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void on_error(j_common_ptr cinfo) {
  auto* manager = reinterpret_cast<ErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, manager->message);
  std::longjmp(manager->jump, 1);
}

// Owns the compressor and the output buffer libjpeg allocates with malloc.
struct Compressor {
  jpeg_compress_struct cinfo{};
  ErrorManager errors{};
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  ~Compressor() {
    jpeg_destroy_compress(&cinfo);
    std::free(buffer);
  }
};

}  // namespace

std::string encode_jpeg(const at::Tensor& image, int quality) {
  DRAFT_CHECK(image.defined() && image.dim() == 3 && (image.size(0) == 1 || image.size(0) == 3),
              "encode_jpeg: expected a (C, H, W) image with C = 1 or 3, got ",
              image.defined() ? image.sizes() : at::IntArrayRef{});
  DRAFT_CHECK(quality >= 1 && quality <= 100, "JPEG quality must be in 1..100, got ", quality);
  DRAFT_CHECK(image.size(1) > 0 && image.size(2) > 0, "encode_jpeg: the image is empty");
  // (H, W, C) bytes, rounded as (x * 255).round().clamp(0, 255), the conversion ddpo-pytorch applies.
  const at::Tensor pixels = image.detach()
                                .to(torch::kCPU, torch::kFloat)
                                .mul(255.0)
                                .round()
                                .clamp(0.0, 255.0)
                                .to(torch::kUInt8)
                                .permute({1, 2, 0})
                                .contiguous();
  const auto channels = static_cast<int>(image.size(0));
  const auto height = static_cast<JDIMENSION>(image.size(1));
  const auto width = static_cast<JDIMENSION>(image.size(2));

  Compressor c;
  c.cinfo.err = jpeg_std_error(&c.errors.base);
  c.errors.base.error_exit = on_error;
  if (setjmp(c.errors.jump) != 0) fail("libjpeg failed to encode a ", width, "x", height, " image: ", c.errors.message);
  jpeg_create_compress(&c.cinfo);
  jpeg_mem_dest(&c.cinfo, &c.buffer, &c.size);
  c.cinfo.image_width = width;
  c.cinfo.image_height = height;
  c.cinfo.input_components = channels;
  c.cinfo.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&c.cinfo);
  jpeg_set_quality(&c.cinfo, quality, TRUE);
  jpeg_start_compress(&c.cinfo, TRUE);
  const auto* data = pixels.data_ptr<uint8_t>();
  const std::size_t stride = static_cast<std::size_t>(width) * static_cast<std::size_t>(channels);
  while (c.cinfo.next_scanline < c.cinfo.image_height) {
    auto* row = const_cast<JSAMPLE*>(data + c.cinfo.next_scanline * stride);
    jpeg_write_scanlines(&c.cinfo, &row, 1);
  }
  jpeg_finish_compress(&c.cinfo);
  return std::string(reinterpret_cast<const char*>(c.buffer), c.size);
}

std::size_t jpeg_size(const at::Tensor& image, int quality) { return encode_jpeg(image, quality).size(); }

}  // namespace draft
