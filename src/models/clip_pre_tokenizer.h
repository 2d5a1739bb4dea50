// Text handling of transformers' CLIPTokenizer before BPE: the no-ftfy cleanup / lower-casing and
// CLIP's pre-tokenisation regex, on Unicode code points (utf8proc).
#pragma once

#include <string>
#include <vector>

namespace draft {

/// The text normalisation of transformers' (v4.36) CLIPTokenizer when ftfy is NOT installed (the
/// usual diffusers install): `" ".join(BasicTokenizer(strip_accents=False, do_split_on_punc=False)
/// .tokenize(text)).lower()`, i.e.
///   1. drop U+0000, U+FFFD and every category-C character except \t \n \r (ZWJ, soft hyphen, ...);
///      map \t \n \r and category Zs to ' ';
///   2. put spaces around CJK ideographs (BERT's _is_chinese_char ranges);
///   3. NFC;
///   4. split on Python whitespace, lower-case each piece with Python's str.lower (full mapping:
///      U+0130 -> "i\u0307", final sigma), join with single spaces.
/// Input and output are UTF-8; throws draft::Error when `text` is not valid UTF-8.
std::string clip_normalize_text(const std::string& text);

/// `regex.findall(pattern, text)` with CLIP's pattern (IGNORECASE)
/// `<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`:
/// runs of letters, single digits, runs of other non-space characters, contractions and the two
/// special-token strings. Input and output are UTF-8 (valid; see clip_normalize_text).
std::vector<std::string> clip_pre_tokenize(const std::string& text);

/// Python's str.lstrip() / str.rstrip() (Unicode whitespace as str.isspace) on UTF-8 text.
std::string python_lstrip(const std::string& text);
std::string python_rstrip(const std::string& text);

}  // namespace draft
