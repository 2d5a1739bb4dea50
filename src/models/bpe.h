// Byte-level byte-pair encoding (GPT-2 / CLIP): the bytes-to-unicode table and rank-ordered merging.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace draft {

/// The UTF-8 string of the printable character that byte `b` maps to under GPT-2/CLIP's
/// `bytes_to_unicode()`: bytes '!'..'~', '¡'..'¬', '®'..'ÿ' map to themselves, the other 68 bytes to
/// U+0100, U+0101, ... in byte order (so BPE symbols never contain whitespace or control characters).
const std::string& byte_to_unicode(uint8_t b);

/// Maps every byte of `bytes` through byte_to_unicode and concatenates the results.
std::string bytes_to_unicode_string(const std::string& bytes);

/// The inverse of bytes_to_unicode_string: each character of `text` (UTF-8) that is in the table
/// becomes its byte; characters outside the table are copied unchanged (the reference raises there).
std::string unicode_string_to_bytes(const std::string& text);

/// The merge table of a byte-level BPE vocabulary (merges.txt) and the merge loop of
/// transformers' CLIPTokenizer.bpe.
class BytePairEncoding {
 public:
  /// Reads `path`: the first line is a version header and skipped, then one merge "left right" per
  /// line; at most `max_merges` merges are used (CLIP: 49152 - 256 - 2 = 48894). Throws draft::Error
  /// naming the file when it is missing or a line is malformed.
  static BytePairEncoding from_file(const std::string& path, int64_t max_merges);

  /// A table from merges in rank order (rank = index).
  static BytePairEncoding from_merges(const std::vector<std::pair<std::string, std::string>>& merges);

  /// Splits `word` (byte-mapped UTF-8, one pre-token) into its BPE symbols: one symbol per character,
  /// `end_of_word` appended to the last one, then repeatedly merge every occurrence (left to right,
  /// non-overlapping) of the adjacent pair with the lowest rank until no pair has a rank.
  std::vector<std::string> encode_word(const std::string& word, const std::string& end_of_word) const;

  /// Number of merges in the table.
  size_t size() const { return ranks_.size(); }

 private:
  // "left right" -> rank (line number - 1); a space cannot occur inside a byte-mapped symbol.
  std::unordered_map<std::string, int32_t> ranks_;
};

}  // namespace draft
