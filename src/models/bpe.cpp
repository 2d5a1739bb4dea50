// Byte-level BPE: bytes_to_unicode and the merge loop, as in transformers' tokenization_clip.py.
#include "models/bpe.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "util/error.h"

namespace draft {
namespace {

std::string encode_utf8(uint32_t cp) {
  std::string out;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    // The table only reaches U+0143, so three bytes are never needed.
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return out;
}

// bytes_to_unicode(): printable Latin-1 bytes keep their code point, the rest get 256 + n in order.
const std::array<std::string, 256>& byte_table() {
  static const std::array<std::string, 256> table = [] {
    std::array<std::string, 256> t;
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      t[b] = encode_utf8(printable ? b : next++);
    }
    return t;
  }();
  return table;
}

const std::unordered_map<std::string, uint8_t>& inverse_byte_table() {
  static const std::unordered_map<std::string, uint8_t> inverse = [] {
    std::unordered_map<std::string, uint8_t> m;
    for (int b = 0; b < 256; ++b) m.emplace(byte_table()[b], static_cast<uint8_t>(b));
    return m;
  }();
  return inverse;
}

// Length of the UTF-8 sequence that starts with byte `lead` (1 for stray bytes, so loops progress).
size_t utf8_length(unsigned char lead) {
  if (lead < 0xC0) return 1;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  return 4;
}

}  // namespace

const std::string& byte_to_unicode(uint8_t b) { return byte_table()[b]; }

std::string bytes_to_unicode_string(const std::string& bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) out += byte_table()[b];
  return out;
}

std::string unicode_string_to_bytes(const std::string& text) {
  const auto& inverse = inverse_byte_table();
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    size_t n = std::min(utf8_length(static_cast<unsigned char>(text[i])), text.size() - i);
    std::string ch = text.substr(i, n);
    auto it = inverse.find(ch);
    if (it != inverse.end()) {
      out += static_cast<char>(it->second);
    } else {
      out += ch;
    }
    i += n;
  }
  return out;
}

BytePairEncoding BytePairEncoding::from_file(const std::string& path, int64_t max_merges) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open the BPE merges file: ", std::strerror(errno));
  BytePairEncoding bpe;
  // The reference reads merges.read().strip().split("\n")[1 : max_merges + 1]: line 1 is the
  // "#version" header, blank trailing lines are stripped, each merge is merge.split().
  std::string line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line_no == 1) continue;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line_no - 1 > max_merges) break;
    std::istringstream fields(line);
    std::string left, right, extra;
    if (!(fields >> left >> right) || (fields >> extra)) {
      // Only trailing blank lines may be empty (they are removed by strip() in the reference).
      if (line.find_first_not_of(" \t") == std::string::npos) continue;
      fail(path, ":", line_no, ": expected a merge 'left right', got '", line, "'");
    }
    // Later duplicates overwrite earlier ranks, as dict(zip(merges, range(n))) does.
    bpe.ranks_[left + " " + right] = static_cast<int32_t>(line_no - 2);
  }
  DRAFT_CHECK(line_no >= 1, path, ": empty BPE merges file (expected a '#version' header line)");
  return bpe;
}

BytePairEncoding BytePairEncoding::from_merges(const std::vector<std::pair<std::string, std::string>>& merges) {
  BytePairEncoding bpe;
  for (std::size_t i = 0; i < merges.size(); ++i) {
    bpe.ranks_[merges[i].first + " " + merges[i].second] = static_cast<int32_t>(i);
  }
  return bpe;
}

std::vector<std::string> BytePairEncoding::encode_word(const std::string& word,
                                                       const std::string& end_of_word) const {
  // word = tuple(token[:-1]) + (token[-1] + "</w>",)
  std::vector<std::string> symbols;
  for (size_t i = 0; i < word.size();) {
    size_t n = std::min(utf8_length(static_cast<unsigned char>(word[i])), word.size() - i);
    symbols.push_back(word.substr(i, n));
    i += n;
  }
  if (symbols.empty()) return symbols;
  symbols.back() += end_of_word;

  std::string key;
  while (symbols.size() > 1) {
    // bigram = min(pairs, key=rank); stop when no adjacent pair is a known merge.
    int32_t best_rank = std::numeric_limits<int32_t>::max();
    size_t best = symbols.size();
    for (size_t i = 0; i + 1 < symbols.size(); ++i) {
      key.assign(symbols[i]).append(" ").append(symbols[i + 1]);
      auto it = ranks_.find(key);
      if (it != ranks_.end() && it->second < best_rank) {
        best_rank = it->second;
        best = i;
      }
    }
    if (best == symbols.size()) break;
    const std::string first = symbols[best];
    const std::string second = symbols[best + 1];
    // Merge every occurrence of (first, second), scanning left to right without overlap.
    std::vector<std::string> merged;
    merged.reserve(symbols.size());
    for (size_t i = 0; i < symbols.size();) {
      if (i + 1 < symbols.size() && symbols[i] == first && symbols[i + 1] == second) {
        merged.push_back(first + second);
        i += 2;
      } else {
        merged.push_back(std::move(symbols[i]));
        i += 1;
      }
    }
    symbols = std::move(merged);
  }
  return symbols;
}

}  // namespace draft
