// IDX files: gzip and plain round trips, and errors for missing, truncated and corrupt files.
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <zlib.h>

#include "io/idx.h"
#include "support.h"

namespace {

using draft::test::expect_error;
using draft::test::TempDir;

using draft::test::slurp;

// A plain (uncompressed) IDX file of unsigned bytes, written by hand as the format describes it.
std::string plain_idx(const std::vector<uint32_t>& dims, const std::string& data) {
  std::string out = {0, 0, 0x08, static_cast<char>(dims.size())};
  for (uint32_t d : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((d >> shift) & 0xff));
  }
  return out + data;
}

at::Tensor sample_bytes() {
  torch::manual_seed(0);
  return torch::randint(0, 256, {3, 4, 5}, torch::kUInt8);
}

TEST(Idx, GzipRoundTrip) {
  TempDir dir;
  at::Tensor data = sample_bytes();
  draft::write_idx_gz(dir.file("a.idx.gz"), data);
  at::Tensor back = draft::read_idx(dir.file("a.idx.gz"));
  EXPECT_EQ(back.scalar_type(), torch::kUInt8);
  EXPECT_EQ(back.sizes(), data.sizes());
  EXPECT_TRUE(torch::equal(back, data));
  // It really is gzip (magic 1f 8b), not a plain copy.
  std::string bytes = slurp(dir.file("a.idx.gz"));
  ASSERT_GE(bytes.size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>(bytes[0]), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>(bytes[1]), 0x8b);
}

TEST(Idx, PlainFile) {
  TempDir dir;
  at::Tensor data = sample_bytes();
  std::string raw(reinterpret_cast<const char*>(data.data_ptr<uint8_t>()), static_cast<std::size_t>(data.numel()));
  draft::test::write_bytes(dir.file("a.idx"), plain_idx({3, 4, 5}, raw));
  EXPECT_TRUE(torch::equal(draft::read_idx(dir.file("a.idx")), data));
}

TEST(Idx, OneDimensionalLabels) {
  TempDir dir;
  at::Tensor labels = torch::arange(10, torch::kUInt8);
  draft::write_idx_gz(dir.file("labels.gz"), labels);
  at::Tensor back = draft::read_idx(dir.file("labels.gz"));
  EXPECT_EQ(back.dim(), 1);
  EXPECT_TRUE(torch::equal(back, labels));
}

TEST(Idx, TruncatedPlainFile) {
  TempDir dir;
  draft::test::write_bytes(dir.file("short.idx"), plain_idx({2, 3}, "abc"));  // 6 bytes declared, 3 present
  std::string message = expect_error([&] { draft::read_idx(dir.file("short.idx")); });
  EXPECT_NE(message.find("short.idx"), std::string::npos) << message;
  EXPECT_NE(message.find("truncated"), std::string::npos) << message;
}

TEST(Idx, TruncatedGzipFile) {
  TempDir dir;
  draft::write_idx_gz(dir.file("full.gz"), torch::randint(0, 256, {64, 28, 28}, torch::kUInt8));
  std::string bytes = slurp(dir.file("full.gz"));
  draft::test::write_bytes(dir.file("cut.gz"), bytes.substr(0, bytes.size() / 2));
  std::string message = expect_error([&] { draft::read_idx(dir.file("cut.gz")); });
  EXPECT_NE(message.find("cut.gz"), std::string::npos) << message;
  EXPECT_NE(message.find("truncated or corrupt"), std::string::npos) << message;
}

TEST(Idx, BadMagic) {
  TempDir dir;
  std::string bytes = plain_idx({1}, "x");
  bytes[0] = 0x12;
  draft::test::write_bytes(dir.file("bad.idx"), bytes);
  std::string message = expect_error([&] { draft::read_idx(dir.file("bad.idx")); });
  EXPECT_NE(message.find("bad.idx"), std::string::npos) << message;
  EXPECT_NE(message.find("bad magic"), std::string::npos) << message;
}

TEST(Idx, UnsupportedElementType) {
  TempDir dir;
  std::string bytes = plain_idx({1}, "abcd");
  bytes[2] = 0x0D;  // float32
  draft::test::write_bytes(dir.file("float.idx"), bytes);
  std::string message = expect_error([&] { draft::read_idx(dir.file("float.idx")); });
  EXPECT_NE(message.find("not supported"), std::string::npos) << message;
}

TEST(Idx, MissingFileIsNamed) {
  TempDir dir;
  std::string message = expect_error([&] { draft::read_idx(dir.file("nowhere-images.gz")); });
  EXPECT_NE(message.find("nowhere-images.gz"), std::string::npos) << message;
}

TEST(Idx, ExportNeedsBytes) {
  TempDir dir;
  std::string message = expect_error([&] { draft::write_idx_gz(dir.file("f.gz"), torch::zeros({2, 2})); });
  EXPECT_NE(message.find("uint8"), std::string::npos) << message;
}

// Found in review while writing fuzz/fuzz_idx.cpp (seed fuzz/corpus/idx/huge_declared): a 17-byte file declaring
// 60000x28x28 images made the reader allocate 47 MB before finding the data missing (4 GiB for a worse header,
// past libFuzzer's malloc limit); a zero dimension hid the others from the 4 GiB check.
TEST(Idx, DeclaredSizeBeyondTheFileIsRefusedBeforeAllocating) {
  TempDir dir;
  draft::test::write_bytes(dir.file("huge.idx"), plain_idx({60000, 28, 28}, "x"));
  std::string message = expect_error([&] { draft::read_idx(dir.file("huge.idx")); });
  EXPECT_NE(message.find("declares 47040000 bytes of data, more than the 17-byte file holds"), std::string::npos)
      << message;
  // gzip: deflate inflates at most 1032:1, so a small compressed file cannot hold 4 GiB either.
  const std::string big = plain_idx({65535, 65535}, "");  // 4.29e9 bytes declared, just under 4 GiB
  gzFile gz = gzopen(dir.file("big.gz").c_str(), "wb");
  ASSERT_NE(gz, nullptr);
  ASSERT_EQ(gzwrite(gz, big.data(), static_cast<unsigned>(big.size())), static_cast<int>(big.size()));
  gzclose(gz);
  message = expect_error([&] { draft::read_idx(dir.file("big.gz")); });
  EXPECT_NE(message.find("compressed file can hold"), std::string::npos) << message;
  draft::test::write_bytes(dir.file("plain-header.idx"), big);
  message = expect_error([&] { draft::read_idx(dir.file("plain-header.idx")); });
  EXPECT_NE(message.find("more than the 12-byte file holds"), std::string::npos) << message;
  draft::test::write_bytes(dir.file("zero.idx"), plain_idx({0, 65536, 65536, 65536}, ""));
  message = expect_error([&] { draft::read_idx(dir.file("zero.idx")); });
  EXPECT_NE(message.find("more than 4 GiB"), std::string::npos) << message;
  // A file that holds what it declares still reads, an empty one included.
  draft::test::write_bytes(dir.file("empty.idx"), plain_idx({0, 28, 28}, ""));
  EXPECT_EQ(draft::read_idx(dir.file("empty.idx")).sizes(), (std::vector<int64_t>{0, 28, 28}));
  draft::write_idx_gz(dir.file("small.gz"), torch::zeros({4}, torch::kUInt8));
  EXPECT_EQ(draft::read_idx(dir.file("small.gz")).numel(), 4);
}

}  // namespace
