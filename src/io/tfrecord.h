// TFRecord files, the framing of TensorFlow's and TensorBoard's event files: each record is its length
// (uint64, little-endian), a masked CRC-32C of those 8 bytes, the data, and a masked CRC-32C of the data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace draft {

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) of `size` bytes, continuing from `crc` (the CRC of
/// the bytes before them; 0 to start). crc32c("123456789") = 0xE3069283.
uint32_t crc32c(const void* data, std::size_t size, uint32_t crc = 0);

/// TFRecord's masked CRC: ((crc >> 15) | (crc << 17)) + 0xa282ead8, so that a CRC stored inside the data
/// it covers does not make the CRC of the whole degenerate.
uint32_t masked_crc32c(const void* data, std::size_t size);

/// `data` framed as one TFRecord: length, masked CRC of the length, data, masked CRC of the data.
std::string tfrecord(std::string_view data);

/// The records of a TFRecord file, in order. Throws draft::Error naming the file and the byte offset of a
/// record whose length or data fails its CRC (a corrupt file). A last record cut short (a process killed
/// while appending it, a full disk) is left out without error: the records before it are intact.
std::vector<std::string> read_tfrecords(const std::string& path);

}  // namespace draft
