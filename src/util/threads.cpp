// Thread set-up and BLAS detection. OpenBLAS is looked up at run time (dlsym), because which BLAS
// LibTorch uses is decided by the system (Debian's alternatives) or the LibTorch build, not by us.
#include "util/threads.h"

#include <dlfcn.h>
#include <sched.h>

#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <ATen/Parallel.h>
#include <ATen/Version.h>

namespace draft {
namespace {

template <typename Fn>
Fn find_symbol(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, name));
}

// Shared libraries mapped into this process whose file name mentions a BLAS.
std::set<std::string> mapped_blas_libraries() {
  std::set<std::string> found;
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    auto slash = line.find('/');
    if (slash == std::string::npos) continue;
    std::string path = line.substr(slash);
    std::string file = path.substr(path.rfind('/') + 1);
    if (file.find("blas") != std::string::npos || file.find("mkl") != std::string::npos) {
      found.insert(path);
    }
  }
  return found;
}

// The BLAS_INFO entry of LibTorch's build configuration (what it was compiled against).
std::string build_blas() {
  std::string config = at::show_config();
  auto pos = config.find("BLAS_INFO=");
  if (pos == std::string::npos) return "unknown";
  auto end = config.find_first_of(", \n", pos);
  return config.substr(pos + 10, end == std::string::npos ? std::string::npos : end - pos - 10);
}

}  // namespace

int available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

int configure_threads(int requested) {
  int n = requested > 0 ? requested : available_cores();
  at::set_num_threads(n);
  if (auto set_openblas = find_symbol<void (*)(int)>("openblas_set_num_threads")) set_openblas(n);
  return n;
}

int openblas_threads() {
  auto get = find_symbol<int (*)()>("openblas_get_num_threads");
  return get ? get() : -1;
}

std::string blas_description() {
  std::ostringstream out;
  if (auto config = find_symbol<char* (*)()>("openblas_get_config")) {
    out << "OpenBLAS (" << config() << ")";
    if (auto parallel = find_symbol<int (*)()>("openblas_get_parallel")) {
      static const char* kModes[] = {"sequential", "pthreads", "OpenMP"};
      int mode = parallel();
      out << ", " << (mode >= 0 && mode <= 2 ? kModes[mode] : "unknown threading");
    }
  } else if (find_symbol<void*>("mkl_get_max_threads")) {
    out << "Intel MKL";
  } else {
    auto libs = mapped_blas_libraries();
    bool reference = false;
    for (const auto& lib : libs) reference = reference || lib.find("/blas/") != std::string::npos;
    out << (reference ? "reference BLAS (slow: install libopenblas0-pthread)" : "no shared BLAS loaded");
  }
  out << "; LibTorch built with BLAS_INFO=" << build_blas();
  for (const auto& lib : mapped_blas_libraries()) out << "; " << lib;
  return out.str();
}

}  // namespace draft
