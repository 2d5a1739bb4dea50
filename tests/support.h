// Helpers shared by the tests: temporary directories and tensor comparison with a printed max diff.
#pragma once

#include <functional>
#include <string>

#include <ATen/core/Tensor.h>
#include <gtest/gtest.h>

namespace draft::test {

/// A fresh directory under the system temp dir, removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

/// Writes raw bytes to a file.
void write_bytes(const std::string& path, const std::string& bytes);

/// A path inside the reference fixtures (tests/data): test_data("vae_tiny/cases.safetensors").
std::string test_data(const std::string& relative);

/// The whole content of a file, bytes as they are ("" when it cannot be read).
std::string slurp(const std::string& path);

/// The project's parity bound for a reference tensor: 1e-4 * max(1, max|ref|).
double tolerance(const at::Tensor& ref);

/// Runs `fn` and returns the message of the draft::Error it throws; records a test failure when it
/// throws nothing.
std::string expect_error(const std::function<void()>& fn);

/// Passes when a and b have the same shape and max |a - b| <= atol; the message gives the max diff.
::testing::AssertionResult tensors_close(const at::Tensor& a, const at::Tensor& b, double atol);

/// True when Debian's dataset-fashion-mnist files are installed (tests that need them skip otherwise).
bool have_fashion_mnist();

/// Sets LibTorch to one thread for a scope: exact-equality tests need reductions added in one order.
struct OneThread {
  OneThread();
  ~OneThread();
  int saved;
};

/// The repository's shipped model folder `name` (models/<name>).
std::string shipped_model(const std::string& name);

}  // namespace draft::test
