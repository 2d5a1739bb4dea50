// libFuzzer target over the safetensors reader: any byte string must either parse into records that lie
// inside the input, or raise draft::Error. Anything else (crash, sanitizer report, other exception,
// hang) is a bug. Run with scripts/fuzz.sh.
#include <cstdint>
#include <cstdlib>

#include "io/safetensors_header.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  draft::SafeTensorsHeader header;
  try {
    header = draft::parse_safetensors_header(data, size, "fuzz-input");
  } catch (const draft::Error&) {
    return 0;
  }
  // Touch every byte of every tensor, so that a record pointing outside the input trips ASan.
  volatile uint8_t sum = 0;
  for (const auto& t : header.tensors) {
    if (t.end > header.data_size || t.begin > t.end) std::abort();
    if (t.nbytes() != static_cast<uint64_t>(t.numel()) * draft::dtype_size(t.dtype)) std::abort();
    for (uint64_t i = t.begin; i < t.end; ++i) sum = sum + data[header.data_start + i];
  }
  // What we accept we must be able to write back.
  auto copy = header.tensors;
  (void)draft::build_safetensors_header(copy, header.metadata);
  return 0;
}
