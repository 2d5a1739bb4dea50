// PNG read/write round trips and image grids.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <zlib.h>

#include "io/image_grid.h"
#include "io/png.h"
#include "support.h"
#include "util/error.h"

namespace {

using draft::test::TempDir;

// Images whose values are exact 8-bit levels survive a round trip bit for bit.
at::Tensor random_levels(std::vector<int64_t> shape, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  return torch::randint(0, 256, shape, gen, torch::kFloat32).div(255.0);
}

TEST(Png, RoundTripRgb) {
  TempDir dir;
  at::Tensor image = random_levels({3, 17, 23}, 1);
  draft::write_png(dir.file("rgb.png"), image);
  at::Tensor back = draft::read_png(dir.file("rgb.png"));
  EXPECT_TRUE(draft::test::tensors_close(back, image, 1e-6));
}

TEST(Png, RoundTripGray) {
  TempDir dir;
  at::Tensor image = random_levels({1, 32, 32}, 2);
  draft::write_png(dir.file("gray.png"), image);
  at::Tensor back = draft::read_png(dir.file("gray.png"));
  ASSERT_EQ(back.size(0), 1);
  EXPECT_TRUE(draft::test::tensors_close(back, image, 1e-6));
  // (H,W) is accepted as one channel.
  draft::write_png(dir.file("hw.png"), image[0]);
  EXPECT_TRUE(draft::test::tensors_close(draft::read_png(dir.file("hw.png")), image, 1e-6));
}

TEST(Png, QuantisesAndClamps) {
  TempDir dir;
  at::Tensor image = torch::tensor({-0.5f, 0.0f, 0.5f / 255.0f, 0.4f / 255.0f, 1.0f, 2.0f}).view({1, 1, 6});
  draft::write_png(dir.file("q.png"), image);
  at::Tensor back = draft::read_png(dir.file("q.png")).mul(255.0).round();
  EXPECT_TRUE(torch::equal(back.flatten(), torch::tensor({0.f, 0.f, 1.f, 0.f, 255.f, 255.f})));
}

TEST(Png, ErrorsNameTheFile) {
  TempDir dir;
  try {
    draft::read_png(dir.file("missing.png"));
    FAIL();
  } catch (const draft::Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.png"), std::string::npos);
  }
  draft::test::write_bytes(dir.file("junk.png"), "this is not a png");
  EXPECT_THROW(draft::read_png(dir.file("junk.png")), draft::Error);
  EXPECT_THROW(draft::write_png(dir.file("c2.png"), torch::zeros({2, 4, 4})), draft::Error);
  EXPECT_THROW(draft::write_png(dir.file("i.png"), torch::zeros({3, 4, 4}, torch::kLong)), draft::Error);
}

// A PNG file written by hand: signature, IHDR, one IDAT of `scanlines` deflated, IEND.
std::string png_bytes(uint32_t width, uint32_t height, uint8_t color_type, const std::string& scanlines) {
  auto be32 = [](uint32_t v) {
    return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                       static_cast<char>(v)};
  };
  auto chunk = [&](const std::string& type, const std::string& data) {
    const std::string body = type + data;
    const uLong crc = crc32(0, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size()));
    return be32(static_cast<uint32_t>(data.size())) + body + be32(static_cast<uint32_t>(crc));
  };
  std::string deflated(compressBound(scanlines.size()), '\0');
  uLongf size = deflated.size();
  compress(reinterpret_cast<Bytef*>(deflated.data()), &size, reinterpret_cast<const Bytef*>(scanlines.data()),
           scanlines.size());
  deflated.resize(size);
  const std::string ihdr = be32(width) + be32(height) + std::string{8, static_cast<char>(color_type), 0, 0, 0};
  return std::string("\x89PNG\r\n\x1a\n", 8) + chunk("IHDR", ihdr) + chunk("IDAT", deflated) + chunk("IEND", "");
}

// Found in review while writing fuzz/fuzz_png.cpp (seed fuzz/corpus/png/huge_declared): a 60-byte file declaring a
// 100000x100000 RGB image made read_png allocate 30 GB before libpng found the data missing.
TEST(Png, DeclaredSizeBeyondTheDataIsRefusedBeforeAllocating) {
  TempDir dir;
  const std::string huge = png_bytes(100000, 100000, 2, "");
  draft::test::write_bytes(dir.file("huge.png"), huge);
  const std::string message = draft::test::expect_error([&] { draft::read_png(dir.file("huge.png")); });
  EXPECT_NE(message.find("huge.png: cannot read PNG: the header declares a 100000x100000 image"), std::string::npos)
      << message;
  EXPECT_THROW(draft::decode_png(reinterpret_cast<const uint8_t*>(huge.data()), huge.size(), "mem"), draft::Error);
  // The same bytes with the image they declare decode, from memory and from the file alike.
  const std::string ok = png_bytes(2, 1, 0, std::string("\0\x00\xff", 3));
  draft::test::write_bytes(dir.file("ok.png"), ok);
  const at::Tensor from_file = draft::read_png(dir.file("ok.png"));
  EXPECT_TRUE(torch::equal(from_file, torch::tensor({0.0f, 1.0f}).view({1, 1, 2})));
  EXPECT_TRUE(torch::equal(draft::decode_png(reinterpret_cast<const uint8_t*>(ok.data()), ok.size(), "mem"), from_file));
}

// Found by fuzz/fuzz_png.cpp (out-of-memory, now seed fuzz/corpus/png/oversized_text_chunk): a 46-byte file whose
// tEXt chunk declared 0x69545874 bytes made libpng allocate and touch 1.7 GB before finding the data missing.
TEST(Png, ChunkPastTheEndOfTheFileIsRefused) {
  const std::string valid = png_bytes(3, 1, 0, std::string("\0abc", 4));
  const std::string hostile = valid.substr(0, 33) + "iTXttEXtIDAT`";  // signature + IHDR, then the lying chunk
  const std::string message = draft::test::expect_error(
      [&] { draft::decode_png(reinterpret_cast<const uint8_t*>(hostile.data()), hostile.size(), "text.png"); });
  EXPECT_NE(message.find("text.png: cannot read PNG: chunk 'tEXt' at byte 33 declares 1767135348 bytes, past the end "
                         "of the 46-byte file"),
            std::string::npos)
      << message;
  const std::string cut = valid.substr(0, valid.size() - 14);  // IDAT's last bytes and IEND missing
  EXPECT_NE(draft::test::expect_error([&] {
              draft::decode_png(reinterpret_cast<const uint8_t*>(cut.data()), cut.size(), "cut.png");
            }).find("chunk 'IDAT'"),
            std::string::npos);
  EXPECT_EQ(draft::decode_png(reinterpret_cast<const uint8_t*>(valid.data()), valid.size(), "ok.png").sizes(),
            (std::vector<int64_t>{1, 1, 3}));
}

TEST(ImageGrid, LayoutAndPadding) {
  at::Tensor images = torch::zeros({5, 3, 4, 6});
  for (int64_t i = 0; i < 5; ++i) images[i].fill_(static_cast<double>(i + 1) / 10.0);
  at::Tensor grid = draft::make_grid(images, {/*columns=*/3, /*padding=*/2, /*pad_value=*/1.0});
  // 2 rows x 3 columns of 4x6 cells with 2-pixel padding.
  EXPECT_EQ(grid.sizes(), (std::vector<int64_t>{3, 2 * 6 + 2, 3 * 8 + 2}));
  EXPECT_FLOAT_EQ(grid[0][2][2].item<float>(), 0.1f);           // image 0, top-left cell
  EXPECT_FLOAT_EQ(grid[0][2][2 + 2 * 8].item<float>(), 0.3f);   // image 2, top-right cell
  EXPECT_FLOAT_EQ(grid[0][2 + 6][2 + 8].item<float>(), 0.5f);   // image 4, second row
  EXPECT_FLOAT_EQ(grid[0][2 + 6][2 + 16].item<float>(), 1.0f);  // empty cell keeps pad_value
  EXPECT_FLOAT_EQ(grid[1][0][0].item<float>(), 1.0f);           // border
}

TEST(ImageGrid, RejectsBadInput) {
  EXPECT_THROW(draft::make_grid(torch::zeros({3, 4, 4})), draft::Error);
  EXPECT_THROW(draft::make_grid(torch::zeros({0, 3, 4, 4})), draft::Error);
  EXPECT_THROW(draft::make_grid(torch::zeros({1, 3, 4, 4}), {0, 2, 1.0}), draft::Error);
}

}  // namespace
