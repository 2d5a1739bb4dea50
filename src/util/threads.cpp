// Thread set-up and BLAS detection. OpenBLAS is looked up at run time (dlsym), because which BLAS
// LibTorch uses is decided by the system (Debian's alternatives) or the LibTorch build, not by us.
#include "util/threads.h"

#include <dlfcn.h>
#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <sstream>
#include <thread>
#include <vector>

#include <ATen/Parallel.h>
#include <ATen/Version.h>

#include "util/log.h"

namespace draft {
namespace {

template <typename Fn>
Fn find_symbol(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, name));
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

namespace {
bool blas_threads_fixed = false;
bool threads_by_user = false;

void set_openblas_threads(int n) {
  if (auto set_openblas = find_symbol<void (*)(int)>("openblas_set_num_threads")) set_openblas(n);
}

// OMP_NUM_THREADS as a thread count, or 0 when it is unset or not a positive whole number (warned about:
// a typo there would otherwise silently give every rank all cores).
int omp_num_threads() {
  const char* text = std::getenv("OMP_NUM_THREADS");
  if (!text) return 0;
  errno = 0;
  char* end = nullptr;
  const long n = std::strtol(text, &end, 10);
  if (end != text && *end == '\0' && errno == 0 && n >= 1 && n <= std::numeric_limits<int>::max()) {
    return static_cast<int>(n);
  }
  DRAFT_LOG_WARN("OMP_NUM_THREADS='{}' is not a positive whole number; ignoring it (using {} threads): set it to "
                 "a count like 4, or unset it",
                 text, available_cores());
  return 0;
}
}  // namespace

int configure_threads(int requested, int blas_requested) {
  int n = requested > 0 ? requested : omp_num_threads();
  threads_by_user = n > 0;
  if (n <= 0) n = available_cores();
  at::set_num_threads(n);
  blas_threads_fixed = blas_requested > 0;
  set_openblas_threads(blas_requested > 0 ? blas_requested : n);
  return n;
}

bool threads_chosen_by_user() { return threads_by_user; }

int choose_threads_by_timing(const std::function<void()>& work, int max_threads, int reps) {
  if (max_threads <= 1) {
    at::set_num_threads(1);
    return 1;
  }
  auto time_once = [&](int threads) {
    at::set_num_threads(threads);
    const auto start = std::chrono::steady_clock::now();
    work();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  };
  time_once(1);  // warm-ups: first-call allocations, the pool's threads started
  time_once(max_threads);
  std::vector<double> one, many;
  for (int i = 0; i < std::max(1, reps); ++i) {  // interleaved, so a passing load hits both alike
    one.push_back(time_once(1));
    many.push_back(time_once(max_threads));
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  const double t1 = median(one), tn = median(many);
  const int chosen = t1 < 0.95 * tn ? 1 : max_threads;
  at::set_num_threads(chosen);
  DRAFT_LOG_INFO("threads: {:.1f} ms with 1, {:.1f} ms with {}: using {} (--threads N fixes it)", t1, tn, max_threads,
                 chosen);
  return chosen;
}

void use_small_tensor_threading() {
  if (!blas_threads_fixed) set_openblas_threads(1);
}

int openblas_threads() {
  auto get = find_symbol<int (*)()>("openblas_get_num_threads");
  return get ? get() : -1;
}

std::string blas_description() {
  // The library that provides sgemm_ is the one matrix products run on: OpenBLAS's own symbols may be
  // present (e.g. through LAPACK) while the reference BLAS answers sgemm_.
  std::string provider;
  Dl_info info{};
  if (void* sgemm = dlsym(RTLD_DEFAULT, "sgemm_"); sgemm && dladdr(sgemm, &info) && info.dli_fname) {
    // Resolve Debian's alternatives symlink (libblas.so.3 -> openblas-pthread/... or blas/...).
    std::error_code ec;
    auto real = std::filesystem::canonical(info.dli_fname, ec);
    provider = ec ? std::string(info.dli_fname) : real.string();
  }
  std::ostringstream out;
  auto openblas_config = find_symbol<char* (*)()>("openblas_get_config");
  if (provider.find("/blas/") != std::string::npos) {
    out << "reference BLAS (slow: install libopenblas0-pthread)";
  } else if (openblas_config && (provider.empty() || provider.find("openblas") != std::string::npos)) {
    out << "OpenBLAS (" << openblas_config() << ")";
    if (auto parallel = find_symbol<int (*)()>("openblas_get_parallel")) {
      static const char* kModes[] = {"sequential", "pthreads", "OpenMP"};
      int mode = parallel();
      out << ", " << (mode >= 0 && mode <= 2 ? kModes[mode] : "unknown threading");
    }
  } else if (find_symbol<void*>("mkl_get_max_threads")) {
    out << "Intel MKL";
  } else {
    out << (provider.empty() ? "no shared BLAS found (LibTorch's built-in kernels)" : "BLAS from " + provider);
  }
  out << "; LibTorch built with BLAS_INFO=" << build_blas();
  if (!provider.empty()) out << "; sgemm_ from " << provider;
  return out.str();
}

}  // namespace draft
