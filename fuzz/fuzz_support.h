// What the fuzz targets share: one scratch folder per process (for readers that take a path), writing an
// input there, and quiet single-threaded LibTorch. Header-only, so each target stays one file.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <torch/torch.h>

#include "util/log.h"

namespace draft::fuzz {

/// A folder of this process, under /dev/shm when it exists (the inputs never touch the disk), else under
/// TMPDIR; removed at exit.
inline const std::string& scratch_dir() {
  static const std::string dir = [] {
    std::string base = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path().string();
    std::string pattern = base + "/draft-fuzz-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      std::perror("draft fuzz: mkdtemp");
      std::abort();
    }
    static std::string created = pattern;
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(created, ec);
    });
    return pattern;
  }();
  return dir;
}

/// A path in the scratch folder.
inline std::string scratch_file(const std::string& name) { return scratch_dir() + "/" + name; }

/// Writes `size` bytes to `path` (replacing it); aborts if that fails, which is no finding of the reader.
inline void write_file(const std::string& path, const void* data, std::size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) {
    std::perror(("draft fuzz: cannot write " + path).c_str());
    std::abort();
  }
}

/// One intra-op thread (libFuzzer runs one input at a time; threads only add noise) and errors-only logs.
inline void quiet_single_threaded_torch() {
  torch::set_num_threads(1);
  set_log_level("error");
}

}  // namespace draft::fuzz
