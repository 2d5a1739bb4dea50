// libFuzzer target over the IDX reader (read_idx: Fashion-MNIST's images and labels, plain or gzip). The input
// is the file's bytes. A pass: the reader raises draft::Error, or returns a uint8 tensor of 1 to 8 dimensions
// whose every byte can be read, no larger than the file could hold; never a crash, a sanitizer report, another
// exception, or an allocation the file cannot back (libFuzzer's -malloc_limit_mb).
#include <cstdint>
#include <cstdlib>

#include "fuzz_support.h"
#include "io/idx.h"
#include "util/error.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  draft::fuzz::quiet_single_threaded_torch();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static const std::string path = draft::fuzz::scratch_file("input.idx");
  draft::fuzz::write_file(path, data, size);
  at::Tensor t;
  try {
    t = draft::read_idx(path);
  } catch (const draft::Error&) {
    return 0;
  }
  if (t.scalar_type() != torch::kUInt8 || t.dim() < 1 || t.dim() > 8 || !t.is_contiguous()) std::abort();
  if (static_cast<uint64_t>(t.numel()) > 1032 * static_cast<uint64_t>(size)) std::abort();
  volatile uint8_t sum = 0;
  const uint8_t* p = t.data_ptr<uint8_t>();
  for (int64_t i = 0; i < t.numel(); ++i) sum = sum + p[i];
  return 0;
}
