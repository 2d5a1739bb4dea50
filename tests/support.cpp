// Test helpers.
#include "support.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <torch/torch.h>

namespace draft::test {

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "draft-test-XXXXXX").string();
  char* made = mkdtemp(pattern.data());
  if (!made) throw std::runtime_error("mkdtemp failed for " + pattern);
  path_ = made;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

::testing::AssertionResult tensors_close(const at::Tensor& a, const at::Tensor& b, double atol) {
  if (a.sizes() != b.sizes()) {
    return ::testing::AssertionFailure() << "shapes differ: " << a.sizes() << " vs " << b.sizes();
  }
  double diff = a.numel() == 0 ? 0.0
                               : (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
  std::printf("    max abs diff %.3g (atol %.3g)\n", diff, atol);
  if (diff <= atol) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "max abs diff " << diff << " > atol " << atol;
}

}  // namespace draft::test
