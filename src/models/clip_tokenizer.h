// The CLIP tokenizer of Stable Diffusion: transformers' slow CLIPTokenizer (v4.36, no ftfy) in C++.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <ATen/core/Tensor.h>

#include "models/bpe.h"

namespace draft {

/// A batch of tokenised prompts, as `tokenizer(prompts, padding="max_length", truncation=True)`.
struct TokenizerOutput {
  at::Tensor input_ids;       ///< int64 (B, max_length): bos, ids, eos, then pad
  at::Tensor attention_mask;  ///< int64 (B, max_length): 1 for bos..eos, 0 for padding
};

/// CLIP's byte-level BPE tokenizer, loaded from a diffusers `tokenizer/` folder (vocab.json,
/// merges.txt, tokenizer_config.json, special_tokens_map.json). Gives the ids of transformers'
/// CLIPTokenizer (v4.36) on the path diffusers' StableDiffusionPipeline takes without ftfy installed:
/// the text is cleaned and lower-cased as by BasicTokenizer (see clip_normalize_text), split by CLIP's
/// regex, byte-mapped and BPE-merged. Exact special-token strings (bos, eos, unk, pad, added tokens)
/// inside a prompt are split out first and map to their ids; SD 2.x's pad token "!" is one of them.
///
/// Thread-safe: the per-word BPE cache is guarded by a mutex and shared between copies.
///
/// Example:
/// ```
///   auto tok = draft::CLIPTokenizer::from_folder("sd15/tokenizer");
///   draft::TokenizerOutput out = tok({"a photo of a cat", ""});  // input_ids (2, 77)
/// ```
class CLIPTokenizer {
 public:
  /// Loads the tokenizer files of `folder`. vocab.json and merges.txt are required (the error names
  /// the missing file); tokenizer_config.json and special_tokens_map.json are optional (defaults:
  /// CLIP's special tokens, model_max_length 77); special_tokens_map.json wins over
  /// tokenizer_config.json as in transformers' from_pretrained.
  static CLIPTokenizer from_folder(const std::string& folder);

  /// The token ids of `text` without bos/eos, truncation or padding (`tokenizer(text,
  /// add_special_tokens=False).input_ids`).
  std::vector<int64_t> encode(const std::string& text) const;

  /// The BPE token strings of `text` (`tokenizer.tokenize(text)`), e.g. "photo</w>".
  std::vector<std::string> tokenize(const std::string& text) const;

  /// bos + encode(prompt) + eos per prompt, keeping at most max_length() - 2 tokens, right-padded with
  /// pad_id() to max_length() (diffusers' encode_prompt: padding="max_length", truncation=True).
  TokenizerOutput operator()(const std::vector<std::string>& prompts) const;

  /// `tokenizer.decode(ids, skip_special_tokens=...)`: byte-level detokenisation with "</w>" read as a
  /// space, invalid UTF-8 replaced by U+FFFD, then transformers' clean_up_tokenization when the
  /// config's clean_up_tokenization_spaces is true (the default). Throws for ids outside the vocab.
  std::string decode(const std::vector<int64_t>& ids, bool skip_special_tokens = false) const;

  int64_t bos_id() const { return bos_id_; }
  int64_t eos_id() const { return eos_id_; }
  /// The pad token's id: 49407 for SD 1.x tokenizers, 0 ("!") for SD 2.x ones.
  int64_t pad_id() const { return pad_id_; }
  int64_t unk_id() const { return unk_id_; }
  /// model_max_length of tokenizer_config.json (77 for CLIP).
  int64_t max_length() const { return max_length_; }
  /// Number of entries in vocab.json.
  int64_t vocab_size() const { return static_cast<int64_t>(encoder_.size()); }

 private:
  struct AddedToken {
    std::string content;
    int64_t id = 0;
    bool special = false;
    bool lstrip = false;
    bool rstrip = false;
  };
  struct WordCache;

  CLIPTokenizer() = default;
  // tokens_trie.split + stripping: the prompt as (text, added-token index or -1) pieces.
  std::vector<std::pair<std::string, int>> split_added_tokens(const std::string& text) const;
  // _tokenize's BPE of one pre-token (already byte-mapped), cached per word.
  std::vector<std::string> bpe_tokens(const std::string& word) const;
  int64_t token_to_id(const std::string& token) const;

  std::unordered_map<std::string, int64_t> encoder_;
  std::unordered_map<int64_t, std::string> decoder_;
  BytePairEncoding bpe_;
  std::vector<AddedToken> added_;  // added/special tokens, split out of the text before BPE
  std::unordered_map<std::string, int64_t> added_ids_;
  std::unordered_map<int64_t, size_t> added_by_id_;
  int64_t bos_id_ = 49406;
  int64_t eos_id_ = 49407;
  int64_t pad_id_ = 49407;
  int64_t unk_id_ = 49407;
  int64_t max_length_ = 77;
  bool clean_up_tokenization_spaces_ = true;
  std::shared_ptr<WordCache> cache_;
};

}  // namespace draft
