// PNG I/O through libpng's simplified API, which reports errors by return value (no setjmp/longjmp
// across C++ frames) and converts palette, 16-bit and alpha inputs for us.
#include "io/png.h"

#include <png.h>

#include <cstring>

#include <torch/torch.h>

#include "util/error.h"

namespace draft {

at::Tensor read_png(const std::string& path) {
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&image, path.c_str())) {
    fail(path, ": cannot read PNG: ", image.message);
  }
  bool color = (image.format & PNG_FORMAT_FLAG_COLOR) != 0;
  image.format = color ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  const int64_t channels = color ? 3 : 1;
  auto pixels = torch::empty({static_cast<int64_t>(image.height), static_cast<int64_t>(image.width), channels},
                             torch::kUInt8);
  png_color black{0, 0, 0};
  if (!png_image_finish_read(&image, &black, pixels.data_ptr<uint8_t>(), 0, nullptr)) {
    std::string message = image.message;
    png_image_free(&image);
    fail(path, ": cannot decode PNG: ", message);
  }
  return pixels.permute({2, 0, 1}).to(torch::kFloat32).div_(255.0f).contiguous();
}

void write_png(const std::string& path, const at::Tensor& image) {
  at::Tensor chw = image.dim() == 2 ? image.unsqueeze(0) : image;
  DRAFT_CHECK(chw.dim() == 3 && (chw.size(0) == 1 || chw.size(0) == 3), path,
              ": write_png needs a (C,H,W) tensor with C=1 or 3, got shape ", image.sizes());
  DRAFT_CHECK(chw.size(1) > 0 && chw.size(2) > 0, path, ": cannot write an empty image ", image.sizes());
  DRAFT_CHECK(at::isFloatingType(chw.scalar_type()), path, ": write_png needs a floating tensor in [0,1], got ",
              c10::toString(chw.scalar_type()));
  // Same quantisation as torchvision's save_image: floor(x * 255 + 0.5) after clamping.
  at::Tensor bytes = chw.detach()
                         .to(torch::kCPU, torch::kFloat32)
                         .clamp(0.0, 1.0)
                         .mul(255.0)
                         .add(0.5)
                         .floor()
                         .to(torch::kUInt8)
                         .permute({1, 2, 0})
                         .contiguous();
  png_image out;
  std::memset(&out, 0, sizeof(out));
  out.version = PNG_IMAGE_VERSION;
  out.width = static_cast<png_uint_32>(chw.size(2));
  out.height = static_cast<png_uint_32>(chw.size(1));
  out.format = chw.size(0) == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  if (!png_image_write_to_file(&out, path.c_str(), 0, bytes.data_ptr<uint8_t>(), 0, nullptr)) {
    fail(path, ": cannot write PNG: ", out.message);
  }
}

}  // namespace draft
