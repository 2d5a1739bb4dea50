// Building a small CLIP tokenizer for a model trained from scratch: byte-level BPE whose merges make every
// word of the training captions one token, so short captions stay short (the embedded model's prompts
// are 2-6 tokens) while any other text still tokenizes, byte by byte.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace draft {

/// Writes a diffusers `tokenizer/` folder (vocab.json, merges.txt, tokenizer_config.json,
/// special_tokens_map.json) that transformers' CLIPTokenizer and draft's CLIPTokenizer load. The
/// vocabulary: the 256 byte symbols, the same with "</w>", one token per merge, then <|startoftext|>
/// and <|endoftext|> (pad = eos, as SD 1.x). The merges are chosen so that every word CLIP's
/// pre-tokenizer finds in `texts` encodes as a single token. `max_length` becomes model_max_length.
/// Returns the vocabulary size. Throws draft::Error naming the folder when it cannot be written.
int64_t write_clip_tokenizer(const std::string& folder, const std::vector<std::string>& texts, int64_t max_length);

}  // namespace draft
