// Test helpers.
#include "support.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <torch/torch.h>

#include "data/fashion_mnist.h"
#include "util/error.h"

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

std::string test_data(const std::string& relative) { return std::string(DRAFT_TEST_DATA) + "/" + relative; }

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

double tolerance(const at::Tensor& ref) { return 1e-4 * std::max(1.0, ref.abs().max().item<double>()); }

std::string expect_error(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const draft::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no draft::Error thrown";
  return "";
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

bool have_fashion_mnist() {
  return std::filesystem::exists(std::string(kFashionMNISTDir) + "/train-images-idx3-ubyte.gz");
}

OneThread::OneThread() : saved(torch::get_num_threads()) { torch::set_num_threads(1); }
OneThread::~OneThread() { torch::set_num_threads(saved); }

std::string shipped_model(const std::string& name) {
  return std::string(DRAFT_TEST_DATA) + "/../../models/" + name;
}

}  // namespace draft::test
