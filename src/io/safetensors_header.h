// The safetensors header: dtypes, per-tensor records and the validating parser. No LibTorch here, so
// the parser can be fuzzed on its own (fuzz/fuzz_safetensors.cpp).
//
// Format: 8-byte little-endian header size N, N bytes of JSON, then the raw tensor data. The JSON is an
// object: name -> {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]} (offsets relative to
// the data section), plus an optional "__metadata__": {string: string}.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace draft {

/// Element types that safetensors files may hold and draft.cpp reads and writes.
enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

/// "F32", "BF16", ...
const char* dtype_name(DType dtype);
/// The dtype for a name as written in safetensors headers, or nullopt.
std::optional<DType> parse_dtype(const std::string& name);
/// Bytes per element.
std::size_t dtype_size(DType dtype);

/// One tensor's record in the header.
struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  ///< byte offset of the first element, relative to the data section
  uint64_t end = 0;    ///< one past the last byte

  int64_t numel() const;
  uint64_t nbytes() const { return end - begin; }
};

/// A parsed, validated header.
struct SafeTensorsHeader {
  std::vector<TensorInfo> tensors;              ///< in data order (by begin offset)
  std::map<std::string, std::string> metadata;  ///< the "__metadata__" entry
  uint64_t data_start = 0;                      ///< file offset of the data section (8 + N)
  uint64_t data_size = 0;                       ///< bytes from data_start to the end of the file
};

/// The largest header accepted (as the reference implementation: 100 MB).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

/// Parses and validates the header of a safetensors file held in `bytes` (the whole file, or at least
/// all of it up to the end of the data section). `source` names the file in error messages.
/// Throws draft::Error for a malformed file: truncated, header size larger than the file or above
/// kMaxHeaderBytes, invalid or non-object JSON, a bad entry, unknown dtype, negative or overflowing
/// shape, offsets that disagree with the shape, lie outside the data or overlap, duplicate names.
/// Memory use is bounded by a small multiple of the header size; the parse is linear in it.
SafeTensorsHeader parse_safetensors_header(const uint8_t* bytes, std::size_t size,
                                           const std::string& source);

/// The header JSON (unpadded) for tensors laid out back to back in the given order; fills in each
/// record's begin/end. Throws for duplicate or reserved names.
std::string build_safetensors_header(std::vector<TensorInfo>& tensors,
                                     const std::map<std::string, std::string>& metadata);

}  // namespace draft
