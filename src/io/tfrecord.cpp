// TFRecord framing and CRC-32C, as TensorFlow's record writer and reader define them
// (tensorflow/core/lib/io/record_writer.cc and crc32c.h: length, masked CRC of the length, data, masked CRC).
#include "io/tfrecord.h"

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include "util/error.h"

namespace draft {
namespace {

constexpr std::size_t kLengthBytes = 8, kCrcBytes = 4, kHeaderBytes = kLengthBytes + kCrcBytes;

// The table of the byte-at-a-time CRC-32C: the CRC of each byte value.
std::array<uint32_t, 256> make_crc32c_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1u) ? 0x82F63B78u : 0u);
    table[i] = crc;
  }
  return table;
}

uint32_t mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

void put_le(std::string& out, uint64_t value, std::size_t bytes) {
  for (std::size_t i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xffu));
}

uint64_t get_le(const char* p, std::size_t bytes) {
  uint64_t value = 0;
  for (std::size_t i = 0; i < bytes; ++i) value |= uint64_t{static_cast<unsigned char>(p[i])} << (8 * i);
  return value;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot read TFRecord file: ", std::strerror(errno));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  DRAFT_CHECK(!in.bad(), path, ": cannot read TFRecord file: read failed");
  return bytes;
}

}  // namespace

uint32_t crc32c(const void* data, std::size_t size, uint32_t crc) {
  static const std::array<uint32_t, 256> table = make_crc32c_table();
  const auto* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (std::size_t i = 0; i < size; ++i) crc = table[(crc ^ p[i]) & 0xffu] ^ (crc >> 8);
  return ~crc;
}

uint32_t masked_crc32c(const void* data, std::size_t size) { return mask(crc32c(data, size)); }

std::string tfrecord(std::string_view data) {
  std::string out;
  out.reserve(kHeaderBytes + data.size() + kCrcBytes);
  put_le(out, data.size(), kLengthBytes);
  put_le(out, masked_crc32c(out.data(), kLengthBytes), kCrcBytes);
  out.append(data);
  put_le(out, masked_crc32c(data.data(), data.size()), kCrcBytes);
  return out;
}

std::vector<std::string> read_tfrecords(const std::string& path) {
  const std::string bytes = read_file(path);
  std::vector<std::string> records;
  std::size_t pos = 0;
  while (bytes.size() - pos >= kHeaderBytes) {
    const char* header = bytes.data() + pos;
    DRAFT_CHECK(get_le(header + kLengthBytes, kCrcBytes) == masked_crc32c(header, kLengthBytes), path,
                ": corrupt TFRecord file: the length of the record at byte ", pos, " fails its CRC");
    const uint64_t length = get_le(header, kLengthBytes);
    if (length > bytes.size() - pos - kHeaderBytes || bytes.size() - pos - kHeaderBytes - length < kCrcBytes) {
      break;  // the last record, cut short
    }
    const char* data = header + kHeaderBytes;
    DRAFT_CHECK(get_le(data + length, kCrcBytes) == masked_crc32c(data, length), path,
                ": corrupt TFRecord file: the data of the record at byte ", pos, " (", length,
                " bytes) fails its CRC");
    records.emplace_back(data, length);
    pos += kHeaderBytes + length + kCrcBytes;
  }
  return records;
}

}  // namespace draft
