// safetensors files: memory-mapped reading into LibTorch tensors, and streaming writing.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include "io/safetensors_header.h"

namespace draft {

/// The LibTorch scalar type of a safetensors dtype, and back (throws for types safetensors lacks).
c10::ScalarType to_scalar_type(DType dtype);
DType from_scalar_type(c10::ScalarType type);

/// How to materialise a tensor read from a file.
struct LoadOptions {
  std::optional<c10::ScalarType> dtype;  ///< convert floating-point tensors to this type; others keep theirs
  c10::Device device = c10::Device(c10::kCPU);
};

/// A safetensors file opened for reading. The file is memory-mapped and validated on construction
/// (see parse_safetensors_header); tensors are copied out one at a time, so loading a model never holds
/// more than the mapping plus the tensors already converted.
///
/// Example:
/// ```
///   draft::SafeTensorsFile file("unet/diffusion_pytorch_model.safetensors");
///   torch::Tensor w = file.load("conv_in.weight", {torch::kFloat16, torch::kCUDA});
/// ```
class SafeTensorsFile {
 public:
  explicit SafeTensorsFile(const std::string& path);
  ~SafeTensorsFile();
  SafeTensorsFile(const SafeTensorsFile&) = delete;
  SafeTensorsFile& operator=(const SafeTensorsFile&) = delete;

  const std::string& path() const { return path_; }
  /// The tensors' records in data order.
  const std::vector<TensorInfo>& tensors() const { return header_.tensors; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  /// The record for `name`, or nullptr.
  const TensorInfo* find(const std::string& name) const;
  bool contains(const std::string& name) const { return find(name) != nullptr; }
  /// Total element count over all tensors.
  int64_t parameter_count() const;

  /// A copy of the tensor `name` (throws draft::Error naming the file when it is absent), converted to
  /// the requested dtype (floating-point tensors only) and device.
  at::Tensor load(const std::string& name, const LoadOptions& options = {}) const;
  /// All tensors, by name.
  std::map<std::string, at::Tensor> load_all(const LoadOptions& options = {}) const;

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
  SafeTensorsHeader header_;
  std::map<std::string, std::size_t> index_;
};

/// Writes a safetensors file tensor by tensor, so that a large model can be saved (or converted) without
/// assembling it in memory. Declare every tensor up front, then write them in that order; close() (or the
/// destructor, which swallows errors) finishes the file. Data goes to `path + ".tmp"` and is renamed
/// over `path` only when complete, so a crash never leaves a half-written file under the real name.
class SafeTensorsWriter {
 public:
  struct Entry {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
  };
  SafeTensorsWriter(const std::string& path, const std::vector<Entry>& entries,
                    const std::map<std::string, std::string>& metadata = {});
  ~SafeTensorsWriter();
  SafeTensorsWriter(const SafeTensorsWriter&) = delete;
  SafeTensorsWriter& operator=(const SafeTensorsWriter&) = delete;

  /// Writes the next declared tensor; its name, dtype and shape must match the declaration.
  void write(const std::string& name, const at::Tensor& tensor);
  /// Checks that every tensor was written, flushes and moves the file into place.
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Saves named tensors (any device, any layout) in the order given, each in its own dtype.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace draft
