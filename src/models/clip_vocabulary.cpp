// Word-level merges for a byte-level CLIP BPE vocabulary.
#include "models/clip_vocabulary.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

#include "io/atomic_file.h"
#include "io/json_file.h"
#include "models/bpe.h"
#include "models/clip_pre_tokenizer.h"
#include "util/error.h"

namespace draft {
namespace {

using Merge = std::pair<std::string, std::string>;

// The byte-mapped pre-tokens of every text, in first-seen order, without duplicates.
std::vector<std::string> caption_words(const std::vector<std::string>& texts) {
  std::vector<std::string> words;
  std::set<std::string> seen;
  for (const auto& text : texts) {
    for (const auto& piece : clip_pre_tokenize(clip_normalize_text(text))) {
      const std::string word = bytes_to_unicode_string(piece);
      if (seen.insert(word).second) words.push_back(word);
    }
  }
  return words;
}

// Merges under which every word becomes one symbol. Each round encodes every word with the merges so
// far and, for a word still in pieces, appends the merge of its first two symbols; appended merges rank
// last, so the loop only ever joins symbols and ends when every word is whole.
std::vector<Merge> word_merges(const std::vector<std::string>& words) {
  static const std::string kEndOfWord = "</w>";
  std::vector<Merge> merges;
  std::set<Merge> known;
  for (bool changed = true; changed;) {
    changed = false;
    const BytePairEncoding bpe = BytePairEncoding::from_merges(merges);
    for (const auto& word : words) {
      const std::vector<std::string> symbols = bpe.encode_word(word, kEndOfWord);
      if (symbols.size() < 2) continue;
      const Merge merge{symbols[0], symbols[1]};
      if (known.insert(merge).second) {
        merges.push_back(merge);
        changed = true;
      }
    }
  }
  return merges;
}

}  // namespace

int64_t write_clip_tokenizer(const std::string& folder, const std::vector<std::string>& texts, int64_t max_length) {
  DRAFT_CHECK(max_length >= 3, "tokenizer max_length must be at least 3 (bos, one token, eos); got ", max_length);
  std::error_code ec;
  std::filesystem::create_directories(folder, ec);
  DRAFT_CHECK(!ec, folder, ": cannot create the tokenizer folder: ", ec.message());

  const std::vector<Merge> merges = word_merges(caption_words(texts));
  nlohmann::json vocab = nlohmann::json::object();
  auto add = [&](const std::string& token) {
    if (!vocab.contains(token)) vocab[token] = static_cast<int64_t>(vocab.size());
  };
  for (int b = 0; b < 256; ++b) add(byte_to_unicode(static_cast<uint8_t>(b)));
  for (int b = 0; b < 256; ++b) add(byte_to_unicode(static_cast<uint8_t>(b)) + "</w>");
  for (const auto& [left, right] : merges) add(left + right);
  const std::string bos = "<|startoftext|>", eos = "<|endoftext|>";
  add(bos);
  add(eos);

  std::string merges_text = "#version: 0.2\n";
  for (const auto& [left, right] : merges) merges_text += left + ' ' + right + '\n';
  write_file_atomically(folder + "/merges.txt", merges_text);
  write_json_file(folder + "/vocab.json", vocab);

  auto special = [](const std::string& content) {
    return nlohmann::json{{"content", content}, {"lstrip", false}, {"normalized", true},
                          {"rstrip", false},    {"single_word", false}};
  };
  nlohmann::json decoder = nlohmann::json::object();
  for (const auto& token : {bos, eos}) {
    nlohmann::json entry = special(token);
    entry["special"] = true;
    decoder[std::to_string(vocab[token].get<int64_t>())] = entry;
  }
  write_json_file(folder + "/tokenizer_config.json",
                  {{"added_tokens_decoder", decoder}, {"bos_token", bos}, {"clean_up_tokenization_spaces", true},
                   {"do_lower_case", true}, {"eos_token", eos}, {"errors", "replace"},
                   {"model_max_length", max_length}, {"pad_token", eos}, {"tokenizer_class", "CLIPTokenizer"},
                   {"unk_token", eos}});
  write_json_file(folder + "/special_tokens_map.json", {{"bos_token", special(bos)}, {"eos_token", special(eos)},
                                                        {"pad_token", special(eos)}, {"unk_token", special(eos)}});
  return static_cast<int64_t>(vocab.size());
}

}  // namespace draft
