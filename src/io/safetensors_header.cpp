// Validating safetensors header parser. It uses nlohmann's SAX interface rather than a JSON DOM so that
// a hostile header (deep nesting, huge arrays) costs memory proportional to what it declares, and every
// structural error is reported with the entry that caused it.
#include "io/safetensors_header.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

#include "util/error.h"

namespace draft {
namespace {

struct DTypeEntry {
  DType dtype;
  const char* name;
  std::size_t size;
};
constexpr DTypeEntry kDTypes[] = {
    {DType::F64, "F64", 8},  {DType::F32, "F32", 4},   {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2}, {DType::I64, "I64", 8},  {DType::I32, "I32", 4},
    {DType::I16, "I16", 2},  {DType::I8, "I8", 1},     {DType::U8, "U8", 1},
    {DType::BOOL, "BOOL", 1},
};

const DTypeEntry& entry_for(DType dtype) {
  for (const auto& e : kDTypes) {
    if (e.dtype == dtype) return e;
  }
  fail("internal: unknown DType value ", static_cast<int>(dtype));
}

constexpr const char* kMetadataKey = "__metadata__";

// A tensor entry while it is being read: which fields were seen, and their raw values.
struct PendingTensor {
  std::string name;
  std::optional<std::string> dtype;
  std::optional<std::vector<int64_t>> shape;
  std::optional<std::vector<uint64_t>> offsets;
};

// SAX handler for the header object. Each callback returns false to stop the parse; error_ says why.
class HeaderHandler : public nlohmann::json_sax<nlohmann::json> {
 public:
  std::string error_;
  std::vector<PendingTensor> tensors_;
  std::map<std::string, std::string> metadata_;

  bool null() override { return scalar("null"); }
  bool boolean(bool) override { return scalar("a boolean"); }
  bool number_integer(number_integer_t v) override {
    if (state_ == State::kShape) return stop(where() + " has a negative dimension " + std::to_string(v));
    if (state_ == State::kOffsets) return stop(where() + " has a negative data offset " + std::to_string(v));
    return scalar("a number");
  }
  bool number_unsigned(number_unsigned_t v) override {
    if (state_ == State::kShape) {
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return stop(where() + " has a dimension too large: " + std::to_string(v));
      }
      tensors_.back().shape->push_back(static_cast<int64_t>(v));
      return true;
    }
    if (state_ == State::kOffsets) {
      tensors_.back().offsets->push_back(v);
      return true;
    }
    return scalar("a number");
  }
  bool number_float(number_float_t, const string_t& text) override {
    if (state_ == State::kShape || state_ == State::kOffsets) {
      return stop(where() + " holds " + text + ", which is not a non-negative integer that fits 64 bits");
    }
    return scalar("a number");
  }
  bool string(string_t& value) override {
    if (state_ == State::kSkip) return scalar("a string");
    if (state_ == State::kMetadata) {
      if (!metadata_.emplace(key_, value).second) return stop("__metadata__ has the key '" + key_ + "' twice");
      return true;
    }
    if (state_ == State::kTensor && field_ == "dtype") {
      tensors_.back().dtype = value;
      return true;
    }
    return scalar("a string");
  }
  bool binary(binary_t&) override { return scalar("binary data"); }

  bool start_object(std::size_t) override {
    switch (state_) {
      case State::kStart: state_ = State::kTop; return true;
      case State::kTop:
        if (key_ == kMetadataKey) {
          if (seen_metadata_) return stop("'__metadata__' appears twice");
          seen_metadata_ = true;
          state_ = State::kMetadata;
        } else {
          tensors_.push_back(PendingTensor{key_, {}, {}, {}});
          state_ = State::kTensor;
        }
        return true;
      case State::kSkip: ++skip_depth_; return true;
      default: return scalar("an object");
    }
  }
  bool end_object() override {
    switch (state_) {
      case State::kTop: state_ = State::kDone; return true;
      case State::kMetadata: state_ = State::kTop; return true;
      case State::kTensor: state_ = State::kTop; return true;
      case State::kSkip: return leave_skip();
      default: return stop("unexpected end of object");
    }
  }
  bool start_array(std::size_t) override {
    if (state_ == State::kSkip) {
      ++skip_depth_;
      return true;
    }
    if (state_ == State::kTensor && field_ == "shape") {
      tensors_.back().shape.emplace();
      state_ = State::kShape;
      return true;
    }
    if (state_ == State::kTensor && field_ == "data_offsets") {
      tensors_.back().offsets.emplace();
      state_ = State::kOffsets;
      return true;
    }
    return scalar("an array");
  }
  bool end_array() override {
    if (state_ == State::kSkip) return leave_skip();
    if (state_ == State::kShape || state_ == State::kOffsets) {
      state_ = State::kTensor;
      return true;
    }
    return stop("unexpected end of array");
  }
  bool key(string_t& k) override {
    switch (state_) {
      case State::kTop:
        if (!top_keys_.insert(k).second) return stop("the name '" + k + "' appears twice");
        key_ = k;
        return true;
      case State::kMetadata: key_ = k; return true;
      case State::kTensor: {
        field_ = k;
        auto& t = tensors_.back();
        bool seen = (k == "dtype" && t.dtype) || (k == "shape" && t.shape) ||
                    (k == "data_offsets" && t.offsets);
        if (seen) return stop(where() + " has the field '" + k + "' twice");
        if (k != "dtype" && k != "shape" && k != "data_offsets") {
          // Unknown fields are ignored (as the reference does), including nested values.
          state_ = State::kSkip;
          skip_depth_ = 0;
          skip_return_ = State::kTensor;
        }
        return true;
      }
      case State::kSkip: return true;
      default: return stop("unexpected key '" + k + "'");
    }
  }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) override {
    // nlohmann's message ends with a description of the token; keep it, it says what was wrong.
    std::string what = e.what();
    auto colon = what.find("] ");
    return stop("invalid JSON at byte " + std::to_string(position) + ": " +
                (colon == std::string::npos ? what : what.substr(colon + 2)));
  }

 private:
  enum class State { kStart, kTop, kMetadata, kTensor, kShape, kOffsets, kSkip, kDone };

  // A scalar or container where the layout does not allow one.
  bool scalar(const char* what) {
    switch (state_) {
      case State::kSkip:
        // A scalar inside a skipped field ends it when it is the whole value.
        if (skip_depth_ == 0) state_ = skip_return_;
        return true;
      case State::kStart: return stop(std::string("the header is ") + what + ", not a JSON object");
      case State::kTop:
        if (key_ == kMetadataKey) return stop(std::string("'__metadata__' is ") + what + ", not an object");
        return stop("the entry '" + key_ + "' is " + what + ", not an object with dtype, shape, data_offsets");
      case State::kMetadata:
        return stop("__metadata__ value for '" + key_ + "' is " + what + ", not a string");
      case State::kTensor:
        if (field_ == "dtype") return stop(where() + " has a dtype that is " + what + ", not a string");
        return stop(where() + " has a field '" + field_ + "' that is " + what + ", not an array");
      case State::kShape:
      case State::kOffsets: return stop(where() + " holds " + what + " where an integer belongs");
      default: return stop(std::string("unexpected ") + what);
    }
  }
  bool leave_skip() {
    if (skip_depth_ == 0) return stop("unbalanced JSON");
    if (--skip_depth_ == 0) state_ = skip_return_;
    return true;
  }
  bool stop(const std::string& message) {
    if (error_.empty()) error_ = message;
    return false;
  }
  std::string where() const {
    std::string w = "tensor '" + tensors_.back().name + "'";
    if (state_ == State::kShape) w += " shape";
    if (state_ == State::kOffsets) w += " data_offsets";
    return w;
  }

  State state_ = State::kStart;
  State skip_return_ = State::kTensor;
  std::size_t skip_depth_ = 0;
  std::string key_;
  std::string field_;
  bool seen_metadata_ = false;
  std::set<std::string> top_keys_;
};

// Checks one entry's fields and turns it into a TensorInfo.
TensorInfo finish_entry(const PendingTensor& p, uint64_t data_size) {
  auto bad = [&](const std::string& what) { fail("tensor '", p.name, "' ", what); };
  if (!p.dtype) bad("has no dtype");
  if (!p.shape) bad("has no shape");
  if (!p.offsets) bad("has no data_offsets");
  auto dtype = parse_dtype(*p.dtype);
  if (!dtype) {
    bad("has the unknown dtype '" + *p.dtype + "' (supported: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL)");
  }
  if (p.offsets->size() != 2) {
    bad("has " + std::to_string(p.offsets->size()) + " data_offsets; it needs exactly 2 [begin, end]");
  }
  TensorInfo t{p.name, *dtype, *p.shape, (*p.offsets)[0], (*p.offsets)[1]};
  if (t.begin > t.end) {
    bad("has data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) + "] with begin > end");
  }
  if (t.end > data_size) {
    bad("has data_offsets ending at " + std::to_string(t.end) + ", past the " + std::to_string(data_size) +
        " data bytes in the file (truncated file?)");
  }
  uint64_t count = 1;
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  for (int64_t d : t.shape) {
    auto dim = static_cast<uint64_t>(d);
    if (dim != 0 && count > kMax / dim) bad("has a shape whose element count overflows 64 bits");
    count *= dim;
  }
  uint64_t esize = dtype_size(t.dtype);
  if (count > kMax / esize || count * esize > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    bad("has a shape whose byte size overflows 64 bits");
  }
  if (count * esize != t.nbytes()) {
    bad("has shape and dtype needing " + std::to_string(count * esize) + " bytes but data_offsets span " +
        std::to_string(t.nbytes()));
  }
  return t;
}

// What to do when the bytes are PyTorch's own format (torch.save: a zip archive since PyTorch 1.6, a bare
// pickle before), the usual mistake: a .ckpt, .bin or .pt where a .safetensors file belongs. Asked only
// once the file failed as safetensors, since a valid header's size can start with the same bytes.
std::string pickle_hint(const uint8_t* bytes, std::size_t size) {
  const bool zip = size >= 4 && std::memcmp(bytes, "PK\x03\x04", 4) == 0;
  const bool pickle = size >= 2 && bytes[0] == 0x80 && bytes[1] >= 2 && bytes[1] <= 5;
  if (!zip && !pickle) return "";
  return std::string(" (it looks like a PyTorch ") + (zip ? "torch.save zip" : "pickle") +
         " checkpoint, which draft never reads since loading one can run code; convert it once to .safetensors "
         "with Python's safetensors.torch.save_file)";
}

}  // namespace

const char* dtype_name(DType dtype) { return entry_for(dtype).name; }
std::size_t dtype_size(DType dtype) { return entry_for(dtype).size; }

std::optional<DType> parse_dtype(const std::string& name) {
  for (const auto& e : kDTypes) {
    if (name == e.name) return e.dtype;
  }
  return std::nullopt;
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

SafeTensorsHeader parse_safetensors_header(const uint8_t* bytes, std::size_t size,
                                           const std::string& source) {
  auto bad = [&](const std::string& what) {
    fail(source, ": not a valid safetensors file: ", what, pickle_hint(bytes, size));
  };
  if (size < 8) bad("it is " + std::to_string(size) + " bytes, shorter than the 8-byte header size");
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | bytes[i];
  if (header_size > kMaxHeaderBytes) {
    bad("header size " + std::to_string(header_size) + " is above the 100 MB limit (corrupt or not safetensors)");
  }
  if (header_size > size - 8) {
    bad("header size " + std::to_string(header_size) + " is larger than the rest of the file (" +
        std::to_string(size - 8) + " bytes): truncated or not safetensors");
  }
  if (header_size == 0) bad("the header is empty");

  HeaderHandler handler;
  const char* json_begin = reinterpret_cast<const char*>(bytes + 8);
  bool ok = nlohmann::json::sax_parse(json_begin, json_begin + header_size, &handler,
                                      nlohmann::json::input_format_t::json, /*strict=*/true);
  if (!ok) bad(handler.error_.empty() ? "invalid JSON header" : handler.error_);

  SafeTensorsHeader header;
  header.data_start = 8 + header_size;
  header.data_size = size - header.data_start;
  header.metadata = std::move(handler.metadata_);
  header.tensors.reserve(handler.tensors_.size());
  try {
    for (const auto& p : handler.tensors_) header.tensors.push_back(finish_entry(p, header.data_size));
  } catch (const Error& e) {
    bad(e.what());
  }

  // Overlap check in data order. Empty tensors occupy no bytes and cannot overlap.
  std::sort(header.tensors.begin(), header.tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  const TensorInfo* previous = nullptr;
  for (const auto& t : header.tensors) {
    if (t.nbytes() == 0) continue;
    if (previous && t.begin < previous->end) {
      bad("the data of tensors '" + previous->name + "' and '" + t.name + "' overlap");
    }
    previous = &t;
  }
  return header;
}

std::string build_safetensors_header(std::vector<TensorInfo>& tensors,
                                     const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header[kMetadataKey] = metadata;
  uint64_t offset = 0;
  std::set<std::string> names;
  for (auto& t : tensors) {
    DRAFT_CHECK(t.name != kMetadataKey, "cannot save a tensor named '__metadata__': the name is reserved");
    DRAFT_CHECK(names.insert(t.name).second, "cannot save two tensors named '", t.name, "'");
    for (int64_t d : t.shape) DRAFT_CHECK(d >= 0, "tensor '", t.name, "' has a negative dimension");
    t.begin = offset;
    t.end = offset + static_cast<uint64_t>(t.numel()) * dtype_size(t.dtype);
    offset = t.end;
    header[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {t.begin, t.end}}};
  }
  return header.dump();
}

}  // namespace draft
