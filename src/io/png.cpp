// PNG I/O through libpng's simplified API, which reports errors by return value (no setjmp/longjmp
// across C++ frames) and converts palette, 16-bit and alpha inputs for us.
#include "io/png.h"

#include <png.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

#include <torch/torch.h>

#include "io/atomic_file.h"
#include "util/error.h"

namespace draft {
namespace {

// Deflate never compresses better than 1032:1, so IDAT data of N bytes inflates to at most 1032 N bytes of
// scanlines, each at least ceil(width / 8) bytes plus a filter byte. A header that declares more than the
// file can hold is corrupt: refuse it before allocating the pixels it asks for.
constexpr uint64_t kMaxDeflateRatio = 1032;

void check_declared_size(const png_image& image, std::size_t file_size, const std::string& source) {
  const uint64_t min_scanlines = uint64_t{image.height} * ((uint64_t{image.width} + 7) / 8 + 1);
  DRAFT_CHECK(min_scanlines <= kMaxDeflateRatio * file_size, source, ": cannot read PNG: the header declares a ",
              image.width, "x", image.height, " image, more than ", file_size,
              " bytes of compressed data can hold (corrupt or truncated file)");
}

// libpng allocates each chunk's declared length before reading its data, and Debian's libpng sets no limit on it:
// a 46-byte file whose tEXt chunk declared 1.7 GB made it allocate (and touch) that much (fuzz/fuzz_png.cpp).
// So every chunk up to IEND must end inside the file, which bounds what libpng allocates by the file's size.
void check_chunks(const uint8_t* data, std::size_t size, const std::string& source) {
  constexpr std::size_t kSignature = 8, kFraming = 12;  // length, type, CRC
  DRAFT_CHECK(size >= kSignature && std::memcmp(data, "\x89PNG\r\n\x1a\n", kSignature) == 0, source,
              ": cannot read PNG: not a PNG file (it does not start with the PNG signature); convert it to PNG first");
  for (std::size_t pos = kSignature; pos + 8 <= size;) {
    const uint64_t length = (uint64_t{data[pos]} << 24) | (uint64_t{data[pos + 1]} << 16) |
                            (uint64_t{data[pos + 2]} << 8) | uint64_t{data[pos + 3]};
    std::string type(reinterpret_cast<const char*>(data + pos + 4), 4);
    for (char& c : type) c = std::isalpha(static_cast<unsigned char>(c)) ? c : '?';
    DRAFT_CHECK(length + kFraming <= size - pos, source, ": cannot read PNG: chunk '", type, "' at byte ", pos,
                " declares ", length, " bytes, past the end of the ", size, "-byte file (truncated or corrupt)");
    if (type == "IEND") return;
    pos += kFraming + length;
  }
}

}  // namespace

at::Tensor decode_png(const uint8_t* data, std::size_t size, const std::string& source) {
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  check_chunks(data, size, source);
  if (!png_image_begin_read_from_memory(&image, data, size)) {
    fail(source, ": cannot read PNG: ", image.message);
  }
  try {
    check_declared_size(image, size, source);
  } catch (...) {
    png_image_free(&image);
    throw;
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
    fail(source, ": cannot decode PNG: ", message);
  }
  return pixels.permute({2, 0, 1}).to(torch::kFloat32).div_(255.0f).contiguous();
}

at::Tensor read_png(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot read PNG: cannot open: ", std::strerror(errno));
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  DRAFT_CHECK(!in.bad(), path, ": cannot read PNG: read failed");
  return decode_png(bytes.data(), bytes.size(), path);
}

std::string encode_png(const at::Tensor& image, const std::string& source) {
  at::Tensor chw = image.dim() == 2 ? image.unsqueeze(0) : image;
  DRAFT_CHECK(chw.dim() == 3 && (chw.size(0) == 1 || chw.size(0) == 3), source,
              ": write_png needs a (C,H,W) tensor with C=1 or 3, got shape ", image.sizes());
  DRAFT_CHECK(chw.size(1) > 0 && chw.size(2) > 0, source, ": cannot write an empty image ", image.sizes());
  DRAFT_CHECK(at::isFloatingType(chw.scalar_type()), source, ": write_png needs a floating tensor in [0,1], got ",
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
  png_alloc_size_t size = 0;  // a call without a buffer measures
  if (!png_image_write_to_memory(&out, nullptr, &size, 0, bytes.data_ptr<uint8_t>(), 0, nullptr)) {
    fail(source, ": cannot encode PNG: ", out.message);
  }
  std::string encoded(size, '\0');
  if (!png_image_write_to_memory(&out, encoded.data(), &size, 0, bytes.data_ptr<uint8_t>(), 0, nullptr)) {
    fail(source, ": cannot encode PNG: ", out.message);
  }
  encoded.resize(size);
  return encoded;
}

void write_png(const std::string& path, const at::Tensor& image) {
  // Encoded in memory first, then written atomically: a killed run never leaves a half-written sample grid.
  write_file_atomically(path, encode_png(image, path));
}

}  // namespace draft
