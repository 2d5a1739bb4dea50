// CLIP text cleanup (transformers BasicTokenizer path) and pre-tokenisation, with utf8proc for the
// Unicode character database.
#include "models/clip_pre_tokenizer.h"

#include <cstdlib>
#include <memory>

#include <utf8proc.h>

#include "util/error.h"

namespace draft {
namespace {

std::u32string decode_utf8(const std::string& text) {
  std::u32string out;
  out.reserve(text.size());
  const auto* data = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  utf8proc_ssize_t size = static_cast<utf8proc_ssize_t>(text.size());
  for (utf8proc_ssize_t pos = 0; pos < size;) {
    utf8proc_int32_t cp = 0;
    utf8proc_ssize_t n = utf8proc_iterate(data + pos, size - pos, &cp);
    // A Python str is always valid Unicode; a malformed prompt has no reference behaviour to copy.
    DRAFT_CHECK(n > 0 && cp >= 0, "CLIPTokenizer: prompt is not valid UTF-8 (byte offset ", pos, ")");
    out += static_cast<char32_t>(cp);
    pos += n;
  }
  return out;
}

std::string encode_utf8(const std::u32string& text) {
  std::string out;
  out.reserve(text.size());
  utf8proc_uint8_t buf[4];
  for (char32_t cp : text) {
    utf8proc_ssize_t n = utf8proc_encode_char(static_cast<utf8proc_int32_t>(cp), buf);
    out.append(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
  }
  return out;
}

utf8proc_category_t category(char32_t cp) { return utf8proc_category(static_cast<utf8proc_int32_t>(cp)); }

// Python's str.isspace: bidirectional class WS, B or S, or category Zs.
bool is_python_space(char32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

// The `regex` module's \s for str patterns: the Unicode White_Space property.
bool is_regex_space(char32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

// BERT's _is_control: category C*, except \t \n \r (those are whitespace).
bool is_control(char32_t cp) {
  if (cp == '\t' || cp == '\n' || cp == '\r') return false;
  auto c = category(cp);
  return c == UTF8PROC_CATEGORY_CC || c == UTF8PROC_CATEGORY_CF || c == UTF8PROC_CATEGORY_CS ||
         c == UTF8PROC_CATEGORY_CO || c == UTF8PROC_CATEGORY_CN;
}

// BERT's _is_whitespace.
bool is_whitespace(char32_t cp) {
  return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || category(cp) == UTF8PROC_CATEGORY_ZS;
}

// BERT's _is_chinese_char: the CJK Unified Ideographs blocks (not Hiragana/Katakana/Hangul).
bool is_cjk(char32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
         (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) ||
         (cp >= 0x2B820 && cp <= 0x2CEAF) || (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

// Unicode "Cased" (Lu, Ll, Lt, or Other_Lowercase/Other_Uppercase, approximated by having a case
// mapping), for the Final_Sigma context of str.lower().
bool is_cased(char32_t cp) {
  auto c = category(cp);
  if (c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LL || c == UTF8PROC_CATEGORY_LT) return true;
  auto i = static_cast<utf8proc_int32_t>(cp);
  return utf8proc_tolower(i) != i || utf8proc_toupper(i) != i;
}

// Unicode "Case_Ignorable": Mn, Me, Cf, Lm, Sk, and Word_Break MidLetter / MidNumLet / Single_Quote.
bool is_case_ignorable(char32_t cp) {
  switch (category(cp)) {
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_SK:
      return true;
    default:
      break;
  }
  switch (cp) {
    case 0x27: case 0x2E: case 0x3A: case 0xB7: case 0x387: case 0x55F: case 0x5F4: case 0x2018:
    case 0x2019: case 0x2024: case 0x2027: case 0xFE13: case 0xFE52: case 0xFE55: case 0xFF07:
    case 0xFF0E: case 0xFF1A:
      return true;
    default:
      return false;
  }
}

// Python's str.lower() (CPython lower_ucs4): the full lower-case mapping. Of SpecialCasing.txt only
// U+0130 (unconditional) and capital sigma (Final_Sigma: preceded by a cased letter and not followed
// by one, skipping case-ignorable characters) differ from the simple mapping.
std::u32string python_lower(const std::u32string& s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char32_t cp = s[i];
    if (cp == 0x130) {
      out += U'i';
      out += static_cast<char32_t>(0x307);
    } else if (cp == 0x3A3) {
      size_t j = i;
      while (j > 0 && is_case_ignorable(s[j - 1])) --j;
      bool final_sigma = j > 0 && is_cased(s[j - 1]);
      if (final_sigma) {
        size_t k = i + 1;
        while (k < s.size() && is_case_ignorable(s[k])) ++k;
        final_sigma = k == s.size() || !is_cased(s[k]);
      }
      out += static_cast<char32_t>(final_sigma ? 0x3C2 : 0x3C3);
    } else {
      out += static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp)));
    }
  }
  return out;
}

std::u32string nfc(const std::u32string& text) {
  std::string utf8 = encode_utf8(text);
  utf8proc_uint8_t* mapped = nullptr;
  utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(utf8.data()),
                                    static_cast<utf8proc_ssize_t>(utf8.size()), &mapped,
                                    static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owner(mapped, &std::free);
  DRAFT_CHECK(n >= 0, "CLIPTokenizer: NFC normalisation failed: ", utf8proc_errmsg(n));
  return decode_utf8(std::string(reinterpret_cast<const char*>(mapped), static_cast<size_t>(n)));
}

// Letters of [\p{L}]. Under IGNORECASE the `regex` module also accepts a character when one of its
// case variants has the property: U+0345 (Mn) is the one such non-letter (it folds to iota).
bool is_letter(char32_t cp) {
  auto c = category(cp);
  return c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LL || c == UTF8PROC_CATEGORY_LT ||
         c == UTF8PROC_CATEGORY_LM || c == UTF8PROC_CATEGORY_LO || cp == 0x345;
}

bool is_number(char32_t cp) {
  auto c = category(cp);
  return c == UTF8PROC_CATEGORY_ND || c == UTF8PROC_CATEGORY_NL || c == UTF8PROC_CATEGORY_NO;
}

// Case-insensitive equality with an ASCII pattern character under simple case folding (the text is
// already lower-case; U+017F LONG S and U+212A KELVIN SIGN are the non-ASCII folds to ASCII letters).
bool folds_to(char32_t cp, char ascii) {
  return cp == static_cast<char32_t>(ascii) || (ascii == 's' && cp == 0x17F) || (ascii == 'k' && cp == 0x212A);
}

// Length of the match of `pattern` (ASCII) at `pos`, or 0.
size_t match_literal(const std::u32string& s, size_t pos, const char* pattern) {
  size_t n = 0;
  for (; pattern[n] != '\0'; ++n) {
    if (pos + n >= s.size() || !folds_to(s[pos + n], pattern[n])) return 0;
  }
  return n;
}

}  // namespace

std::string clip_normalize_text(const std::string& text) {
  std::u32string cps = decode_utf8(text);
  // 1. _clean_text, 2. _tokenize_chinese_chars.
  std::u32string cleaned;
  cleaned.reserve(cps.size());
  for (char32_t cp : cps) {
    if (cp == 0 || cp == 0xFFFD || is_control(cp)) continue;
    if (is_whitespace(cp)) {
      cleaned += U' ';
    } else if (is_cjk(cp)) {
      cleaned += U' ';
      cleaned += cp;
      cleaned += U' ';
    } else {
      cleaned += cp;
    }
  }
  // 3. NFC, 4. whitespace_tokenize, lower each piece, " ".join(...). The reference then lower-cases
  // the joined string once more, which changes nothing after the per-piece pass.
  std::u32string normalized = nfc(cleaned);
  std::u32string out;
  for (size_t i = 0; i < normalized.size();) {
    while (i < normalized.size() && is_python_space(normalized[i])) ++i;
    size_t start = i;
    while (i < normalized.size() && !is_python_space(normalized[i])) ++i;
    if (i > start) {
      if (!out.empty()) out += U' ';
      out += python_lower(normalized.substr(start, i - start));
    }
  }
  return encode_utf8(out);
}

std::vector<std::string> clip_pre_tokenize(const std::string& text) {
  static const char* const kLiterals[] = {"<|startoftext|>", "<|endoftext|>", "'s", "'t", "'re",
                                          "'ve",             "'m",            "'ll", "'d"};
  std::u32string s = decode_utf8(text);
  std::vector<std::string> pieces;
  for (size_t i = 0; i < s.size();) {
    // Alternatives are tried in pattern order at each position, as a backtracking regex does.
    size_t n = 0;
    for (const char* literal : kLiterals) {
      n = match_literal(s, i, literal);
      if (n > 0) break;
    }
    if (n == 0 && is_letter(s[i])) {
      while (i + n < s.size() && is_letter(s[i + n])) ++n;
    } else if (n == 0 && is_number(s[i])) {
      n = 1;
    } else if (n == 0 && !is_regex_space(s[i])) {
      auto other = [](char32_t cp) { return !is_regex_space(cp) && !is_letter(cp) && !is_number(cp); };
      while (i + n < s.size() && other(s[i + n])) ++n;
    }
    if (n == 0) {  // whitespace: findall skips characters no alternative matches
      ++i;
      continue;
    }
    pieces.push_back(encode_utf8(s.substr(i, n)));
    i += n;
  }
  return pieces;
}

std::string python_lstrip(const std::string& text) {
  std::u32string s = decode_utf8(text);
  size_t i = 0;
  while (i < s.size() && is_python_space(s[i])) ++i;
  return encode_utf8(s.substr(i));
}

std::string python_rstrip(const std::string& text) {
  std::u32string s = decode_utf8(text);
  size_t n = s.size();
  while (n > 0 && is_python_space(s[n - 1])) --n;
  return encode_utf8(s.substr(0, n));
}

}  // namespace draft
