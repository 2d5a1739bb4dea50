// CLIPTokenizer: file loading, added-token splitting, cached BPE, batching and decoding, following
// transformers v4.36 (tokenization_clip.py and tokenization_utils.py, slow tokenizer).
#include "models/clip_tokenizer.h"

#include <filesystem>
#include <mutex>

#include <torch/torch.h>

#include "io/json_file.h"
#include "models/clip_pre_tokenizer.h"
#include "util/error.h"

namespace draft {
namespace {

constexpr const char* kEndOfWord = "</w>";
// tokenization_clip.py keeps merges.txt lines [1 : 49152 - 256 - 2 + 1].
constexpr int64_t kMaxMerges = 49152 - 256 - 2;
// Words kept in the BPE cache before it is reset (the reference's dict grows without bound).
constexpr size_t kMaxCachedWords = 1 << 16;

nlohmann::json read_optional_json(const std::string& path) {
  if (!std::filesystem::exists(path)) return nlohmann::json::object();
  nlohmann::json j = read_json_file(path);
  DRAFT_CHECK(j.is_object(), path, ": expected a JSON object");
  return j;
}

// object[key] when it is a bool, `fallback` when absent or null. nlohmann's value() would throw its own
// type_error for "special": 1 (fuzz/fuzz_tokenizer.cpp found it).
bool bool_field(const nlohmann::json& object, const char* key, bool fallback, const std::string& where) {
  if (!object.is_object() || !object.contains(key) || object[key].is_null()) return fallback;
  DRAFT_CHECK(object[key].is_boolean(), where, ": ", key, " must be true or false, got ", object[key].dump());
  return object[key].get<bool>();
}

// bytes.decode("utf-8", errors="replace"): each maximal invalid subpart becomes one U+FFFD.
std::string decode_utf8_replace(const std::string& bytes) {
  static const std::string kReplacement = "\xEF\xBF\xBD";
  std::string out;
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t n = bytes.size();
  for (size_t i = 0; i < n;) {
    unsigned char b = s[i];
    size_t need = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // valid range of the first continuation byte
    if (b < 0x80) {
      out += static_cast<char>(b);
      ++i;
      continue;
    } else if (b >= 0xC2 && b <= 0xDF) {
      need = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
      need = 2;
      if (b == 0xE0) lo = 0xA0;
      if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      need = 3;
      if (b == 0xF0) lo = 0x90;
      if (b == 0xF4) hi = 0x8F;
    } else {
      out += kReplacement;
      ++i;
      continue;
    }
    size_t j = 1;
    for (; j <= need && i + j < n; ++j) {
      unsigned char c = s[i + j];
      bool ok = j == 1 ? (c >= lo && c <= hi) : (c >= 0x80 && c <= 0xBF);
      if (!ok) break;
    }
    if (j == need + 1) {
      out.append(bytes, i, need + 1);
    } else {
      out += kReplacement;
    }
    i += j;
  }
  return out;
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
}

// PreTrainedTokenizerBase.clean_up_tokenization.
std::string clean_up_tokenization(std::string s) {
  static const std::pair<const char*, const char*> kRules[] = {
      {" .", "."},   {" ?", "?"},     {" !", "!"},   {" ,", ","},     {" ' ", "'"},
      {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& [from, to] : kRules) replace_all(s, from, to);
  return s;
}

}  // namespace

struct CLIPTokenizer::WordCache {
  std::mutex mutex;
  std::unordered_map<std::string, std::vector<std::string>> words;
};

CLIPTokenizer CLIPTokenizer::from_folder(const std::string& folder) {
  namespace fs = std::filesystem;
  DRAFT_CHECK(fs::is_directory(folder), "CLIPTokenizer: tokenizer folder '", folder, "' does not exist");
  const std::string vocab_path = folder + "/vocab.json";
  const std::string merges_path = folder + "/merges.txt";
  for (const std::string& path : {vocab_path, merges_path}) {
    DRAFT_CHECK(fs::exists(path), path, ": missing; a CLIP tokenizer folder needs vocab.json and merges.txt");
  }

  CLIPTokenizer tok;
  nlohmann::json vocab = read_json_file(vocab_path);
  DRAFT_CHECK(vocab.is_object() && !vocab.empty(), vocab_path, ": expected a JSON object token -> id");
  tok.encoder_.reserve(vocab.size());
  for (const auto& [token, id] : vocab.items()) {
    DRAFT_CHECK(id.is_number_integer(), vocab_path, ": id of '", token, "' is not an integer");
    tok.encoder_[token] = id.get<int64_t>();
    tok.decoder_[id.get<int64_t>()] = token;
  }
  tok.bpe_ = BytePairEncoding::from_file(merges_path, kMaxMerges);

  const std::string config_path = folder + "/tokenizer_config.json";
  const std::string map_path = folder + "/special_tokens_map.json";
  nlohmann::json config = read_optional_json(config_path);
  nlohmann::json special_map = read_optional_json(map_path);

  // Reads an AddedToken given as a string or as {"content", "lstrip", "rstrip", "single_word", ...}.
  auto parse_token = [](const nlohmann::json& v, const std::string& where) {
    AddedToken t;
    if (v.is_string()) {
      t.content = v.get<std::string>();
      return t;
    }
    DRAFT_CHECK(v.is_object() && v.contains("content") && v["content"].is_string(), where,
                ": expected a token string or an object with \"content\", got ", v.dump());
    t.content = v["content"].get<std::string>();
    t.lstrip = bool_field(v, "lstrip", false, where);
    t.rstrip = bool_field(v, "rstrip", false, where);
    DRAFT_CHECK(!bool_field(v, "single_word", false, where), where, ": single_word=true is not supported (token '",
                t.content, "')");
    return t;
  };
  auto add_token = [&tok](AddedToken t) {
    if (tok.added_ids_.count(t.content)) return;
    tok.added_ids_[t.content] = t.id;
    tok.added_by_id_[t.id] = tok.added_.size();
    tok.added_.push_back(std::move(t));
  };

  // 1. added_tokens_decoder of tokenizer_config.json (transformers >= 4.34 writes it).
  if (config.contains("added_tokens_decoder")) {
    DRAFT_CHECK(config["added_tokens_decoder"].is_object(), config_path,
                ": added_tokens_decoder must be an object id -> token, got ", config["added_tokens_decoder"].dump());
    for (const auto& [id_text, value] : config["added_tokens_decoder"].items()) {
      std::string where = config_path + ": added_tokens_decoder." + id_text;
      AddedToken t = parse_token(value, where);
      std::size_t end = 0;
      try {
        t.id = std::stoll(id_text, &end);
      } catch (const std::exception&) {
        end = 0;
      }
      DRAFT_CHECK(end > 0 && end == id_text.size(), where, ": the key is not an integer id");
      t.special = bool_field(value, "special", false, where);
      add_token(std::move(t));
    }
  }

  // 2. The special tokens; special_tokens_map.json overrides tokenizer_config.json, as in
  // from_pretrained. Each one that is not an added token yet becomes one (PreTrainedTokenizer.__init__
  // adds all_special_tokens_extended), so its string is split out of prompts: SD 2.x's pad "!".
  auto special = [&](const char* key, const std::string& fallback) {
    const nlohmann::json* v = nullptr;
    std::string where;
    if (special_map.contains(key) && !special_map[key].is_null()) {
      v = &special_map[key];
      where = map_path + ": " + key;
    } else if (config.contains(key) && !config[key].is_null()) {
      v = &config[key];
      where = config_path + ": " + key;
    }
    AddedToken t = v ? parse_token(*v, where) : AddedToken{fallback};
    t.special = true;
    auto added = tok.added_ids_.find(t.content);
    if (added != tok.added_ids_.end()) {
      tok.added_[tok.added_by_id_.at(added->second)].special = true;
      return added->second;
    }
    auto it = tok.encoder_.find(t.content);
    DRAFT_CHECK(it != tok.encoder_.end(), where.empty() ? std::string("CLIPTokenizer") : where, ": token '",
                t.content, "' is not in ", vocab_path);
    t.id = it->second;
    add_token(t);
    return t.id;
  };
  // transformers adds them in the order bos, eos, unk, pad, then the additional special tokens.
  tok.bos_id_ = special("bos_token", "<|startoftext|>");
  tok.eos_id_ = special("eos_token", "<|endoftext|>");
  tok.unk_id_ = special("unk_token", "<|endoftext|>");
  tok.pad_id_ = special("pad_token", "<|endoftext|>");
  const nlohmann::json& extra = special_map.contains("additional_special_tokens")
                                    ? special_map["additional_special_tokens"]
                                    : config.value("additional_special_tokens", nlohmann::json::array());
  DRAFT_CHECK(extra.is_array(), "additional_special_tokens must be a list, got ", extra.dump());
  for (const auto& v : extra) {
    AddedToken t = parse_token(v, "additional_special_tokens");
    auto added = tok.added_ids_.find(t.content);
    if (added != tok.added_ids_.end()) {
      tok.added_[tok.added_by_id_.at(added->second)].special = true;
      continue;
    }
    auto it = tok.encoder_.find(t.content);
    DRAFT_CHECK(it != tok.encoder_.end(), "additional special token '", t.content, "' is not in ", vocab_path);
    t.id = it->second;
    t.special = true;
    add_token(t);
  }

  if (config.contains("model_max_length")) {
    const auto& v = config["model_max_length"];
    // Configs saved without a length carry transformers' VERY_LARGE_INTEGER (1e30): not usable here.
    DRAFT_CHECK(v.is_number() && v.get<double>() >= 2 && v.get<double>() <= 1e6, config_path,
                ": model_max_length must be an integer in [2, 1e6], got ", v.dump());
    tok.max_length_ = static_cast<int64_t>(v.get<double>());
  }
  if (config.contains("clean_up_tokenization_spaces")) {
    DRAFT_CHECK(config["clean_up_tokenization_spaces"].is_boolean(), config_path,
                ": clean_up_tokenization_spaces must be true or false");
    tok.clean_up_tokenization_spaces_ = config["clean_up_tokenization_spaces"].get<bool>();
  }
  DRAFT_CHECK(!config.contains("errors") || config["errors"].is_string(), config_path,
              ": errors must be a string ('replace'), got ", config["errors"].dump());
  std::string errors = config.value("errors", std::string("replace"));
  DRAFT_CHECK(errors == "replace", config_path, ": errors='", errors, "' is not supported (only 'replace')");
  tok.cache_ = std::make_shared<WordCache>();
  return tok;
}

std::vector<std::pair<std::string, int>> CLIPTokenizer::split_added_tokens(const std::string& text) const {
  // tokens_trie.split: cut at every added-token string, the leftmost (then longest) match first.
  std::vector<std::pair<std::string, int>> pieces;
  size_t start = 0;
  for (size_t pos = 0; pos < text.size();) {
    int best = -1;
    size_t best_len = 0;
    for (size_t k = 0; k < added_.size(); ++k) {
      const std::string& c = added_[k].content;
      if (c.size() > best_len && text.compare(pos, c.size(), c) == 0) {
        best = static_cast<int>(k);
        best_len = c.size();
      }
    }
    if (best < 0) {
      ++pos;
      continue;
    }
    if (pos > start) pieces.emplace_back(text.substr(start, pos - start), -1);
    pieces.emplace_back(added_[best].content, best);
    pos += best_len;
    start = pos;
  }
  if (start < text.size()) pieces.emplace_back(text.substr(start), -1);
  // lstrip / rstrip of an added token eat the whitespace of the neighbouring text.
  for (size_t i = 0; i < pieces.size(); ++i) {
    if (pieces[i].second < 0) continue;
    const AddedToken& t = added_[pieces[i].second];
    if (t.rstrip && i + 1 < pieces.size()) pieces[i + 1].first = python_lstrip(pieces[i + 1].first);
    if (t.lstrip && i > 0) pieces[i - 1].first = python_rstrip(pieces[i - 1].first);
  }
  return pieces;
}

std::vector<std::string> CLIPTokenizer::bpe_tokens(const std::string& word) const {
  // The reference seeds its cache with the two special strings, so the regex's special-token
  // alternatives (e.g. "<|ENDOFTEXT|>" after lower-casing) come back whole, without "</w>".
  if (word == "<|startoftext|>" || word == "<|endoftext|>") return {word};
  {
    std::lock_guard<std::mutex> lock(cache_->mutex);
    auto it = cache_->words.find(word);
    if (it != cache_->words.end()) return it->second;
  }
  std::vector<std::string> tokens = bpe_.encode_word(word, kEndOfWord);
  std::lock_guard<std::mutex> lock(cache_->mutex);
  if (cache_->words.size() >= kMaxCachedWords) cache_->words.clear();
  cache_->words.emplace(word, tokens);
  return tokens;
}

int64_t CLIPTokenizer::token_to_id(const std::string& token) const {
  // _convert_token_to_id_with_added_voc: added tokens, then vocab.json, else the unk id.
  auto added = added_ids_.find(token);
  if (added != added_ids_.end()) return added->second;
  auto it = encoder_.find(token);
  return it != encoder_.end() ? it->second : unk_id_;
}

std::vector<std::string> CLIPTokenizer::tokenize(const std::string& text) const {
  std::vector<std::string> tokens;
  for (const auto& [piece, added] : split_added_tokens(text)) {
    if (added >= 0) {
      tokens.push_back(piece);
      continue;
    }
    if (piece.empty()) continue;
    // _tokenize: normalise, pre-tokenise, map UTF-8 bytes to unicode, BPE.
    for (const std::string& word : clip_pre_tokenize(clip_normalize_text(piece))) {
      for (std::string& t : bpe_tokens(bytes_to_unicode_string(word))) tokens.push_back(std::move(t));
    }
  }
  return tokens;
}

std::vector<int64_t> CLIPTokenizer::encode(const std::string& text) const {
  std::vector<std::string> tokens = tokenize(text);
  std::vector<int64_t> ids;
  ids.reserve(tokens.size());
  for (const std::string& t : tokens) ids.push_back(token_to_id(t));
  return ids;
}

TokenizerOutput CLIPTokenizer::operator()(const std::vector<std::string>& prompts) const {
  const int64_t batch = static_cast<int64_t>(prompts.size());
  TokenizerOutput out;
  out.input_ids = torch::full({batch, max_length_}, pad_id_, torch::kLong);
  out.attention_mask = torch::zeros({batch, max_length_}, torch::kLong);
  auto ids_acc = out.input_ids.accessor<int64_t, 2>();
  auto mask_acc = out.attention_mask.accessor<int64_t, 2>();
  for (int64_t b = 0; b < batch; ++b) {
    std::vector<int64_t> ids = encode(prompts[b]);
    // truncation=True, max_length: keep room for bos and eos (num_special_tokens_to_add = 2).
    int64_t n = std::min<int64_t>(static_cast<int64_t>(ids.size()), max_length_ - 2);
    ids_acc[b][0] = bos_id_;
    for (int64_t i = 0; i < n; ++i) ids_acc[b][i + 1] = ids[i];
    ids_acc[b][n + 1] = eos_id_;
    for (int64_t i = 0; i < n + 2; ++i) mask_acc[b][i] = 1;
  }
  return out;
}

std::string CLIPTokenizer::decode(const std::vector<int64_t>& ids, bool skip_special_tokens) const {
  // PreTrainedTokenizer._decode: runs of vocab tokens (special ones included) go through
  // convert_tokens_to_string; non-special added tokens stand alone; the parts are joined by spaces.
  auto tokens_to_string = [](const std::string& joined) {
    std::string text = decode_utf8_replace(unicode_string_to_bytes(joined));
    replace_all(text, kEndOfWord, " ");
    return python_lstrip(python_rstrip(text));
  };
  std::vector<std::string> parts;
  std::string current;
  bool have_current = false;
  for (int64_t id : ids) {
    auto added = added_by_id_.find(id);
    if (skip_special_tokens && added != added_by_id_.end() && added_[added->second].special) continue;
    if (added != added_by_id_.end() && !added_[added->second].special) {
      if (have_current) {
        std::string s = tokens_to_string(current);
        if (!s.empty()) parts.push_back(s);
      }
      current.clear();
      have_current = false;
      parts.push_back(added_[added->second].content);
      continue;
    }
    if (added != added_by_id_.end()) {
      current += added_[added->second].content;
    } else {
      auto it = decoder_.find(id);
      DRAFT_CHECK(it != decoder_.end(), "CLIPTokenizer::decode: id ", id, " is not in the vocabulary (size ",
                  decoder_.size(), ")");
      current += it->second;
    }
    have_current = true;
  }
  if (have_current) parts.push_back(tokens_to_string(current));
  std::string text;
  for (size_t i = 0; i < parts.size(); ++i) text += (i ? " " : "") + parts[i];
  return clean_up_tokenization_spaces_ ? clean_up_tokenization(text) : text;
}

}  // namespace draft
