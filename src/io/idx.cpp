// IDX reading through zlib's gz* functions, which read plain and gzip files alike.
#include "io/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>

#include <torch/torch.h>

#include "util/error.h"

namespace draft {
namespace {

constexpr int kUByte = 0x08;
constexpr int kMaxDims = 8;
constexpr uint64_t kMaxBytes = uint64_t{1} << 32;  // 4 GiB: far above any IDX data set
// Deflate never compresses better than 1032:1: a gzip file of N bytes inflates to at most 1032 N.
constexpr uint64_t kMaxDeflateRatio = 1032;

struct GzCloser {
  void operator()(gzFile f) const { gzclose(f); }
};
using GzHandle = std::unique_ptr<std::remove_pointer_t<gzFile>, GzCloser>;

void read_exact(gzFile f, void* out, std::size_t n, const std::string& path, const char* what) {
  auto* p = static_cast<unsigned char*>(out);
  while (n > 0) {
    unsigned chunk = static_cast<unsigned>(std::min<std::size_t>(n, 1u << 30));
    int got = gzread(f, p, chunk);
    if (got <= 0) {
      int code = 0;
      const char* msg = gzerror(f, &code);
      fail(path, ": truncated or corrupt IDX file while reading the ", what,
           code != Z_OK && code != Z_BUF_ERROR ? std::string(" (") + msg + ")" : std::string());
    }
    p += got;
    n -= static_cast<std::size_t>(got);
  }
}

}  // namespace

at::Tensor read_idx(const std::string& path) {
  GzHandle f(gzopen(path.c_str(), "rb"));
  if (!f) fail(path, ": cannot open: ", std::strerror(errno));
  unsigned char magic[4];
  read_exact(f.get(), magic, 4, path, "header");
  DRAFT_CHECK(magic[0] == 0 && magic[1] == 0, path, ": not an IDX file (bad magic number)");
  DRAFT_CHECK(magic[2] == kUByte, path, ": IDX element type 0x", std::hex, int{magic[2]},
              " is not supported (only unsigned bytes, 0x08)");
  const int dims = magic[3];
  DRAFT_CHECK(dims >= 1 && dims <= kMaxDims, path, ": IDX file declares ", dims, " dimensions (expected 1 to ",
              kMaxDims, ")");
  std::vector<int64_t> shape;
  uint64_t total = 1;
  uint64_t extent = 1;  // the product of the non-zero dimensions: LibTorch's strides must not overflow either
  for (int i = 0; i < dims; ++i) {
    unsigned char b[4];
    read_exact(f.get(), b, 4, path, "dimensions");
    uint64_t d = (uint64_t{b[0]} << 24) | (uint64_t{b[1]} << 16) | (uint64_t{b[2]} << 8) | b[3];
    total *= d;
    extent *= std::max<uint64_t>(d, 1);
    DRAFT_CHECK(extent <= kMaxBytes, path, ": IDX dimensions declare more than 4 GiB of data (corrupt header)");
    shape.push_back(static_cast<int64_t>(d));
  }
  // A header that declares more data than the file can hold is corrupt: refuse it before allocating.
  std::error_code ec;
  const uint64_t file_size = std::filesystem::file_size(path, ec);
  if (!ec) {
    const uint64_t header = 4 + 4 * static_cast<uint64_t>(dims);
    const bool plain = gzdirect(f.get()) != 0;
    const uint64_t can_hold = plain ? (file_size > header ? file_size - header : 0) : kMaxDeflateRatio * file_size;
    DRAFT_CHECK(total <= can_hold, path, ": truncated or corrupt IDX file: the header declares ", total,
                " bytes of data, more than the ", file_size, "-byte ", plain ? "file holds" : "compressed file can hold");
  }
  at::Tensor data = torch::empty(shape, torch::kUInt8);
  if (total > 0) read_exact(f.get(), data.data_ptr<uint8_t>(), total, path, "data");
  return data;
}

void write_idx_gz(const std::string& path, const at::Tensor& data) {
  DRAFT_CHECK(data.scalar_type() == torch::kUInt8, path, ": IDX export needs a uint8 tensor");
  DRAFT_CHECK(data.dim() >= 1 && data.dim() <= kMaxDims, path, ": IDX export needs 1 to 8 dimensions");
  GzHandle f(gzopen(path.c_str(), "wb"));
  if (!f) fail(path, ": cannot create: ", std::strerror(errno));
  std::vector<unsigned char> header = {0, 0, kUByte, static_cast<unsigned char>(data.dim())};
  for (int64_t d : data.sizes()) {
    for (int shift = 24; shift >= 0; shift -= 8) header.push_back(static_cast<unsigned char>((d >> shift) & 0xff));
  }
  at::Tensor c = data.contiguous();
  bool ok = gzwrite(f.get(), header.data(), static_cast<unsigned>(header.size())) > 0 &&
            (c.numel() == 0 || gzwrite(f.get(), c.data_ptr<uint8_t>(), static_cast<unsigned>(c.numel())) > 0);
  DRAFT_CHECK(ok, path, ": write failed");
}

}  // namespace draft
