// TensorTrace: named intermediate activations a forward pass can record, so parity tests can localise
// a mismatch to one block instead of only seeing a wrong final output.
#pragma once

#include <map>
#include <string>

#include <ATen/core/Tensor.h>

namespace draft {

/// Intermediate activations by name (e.g. "down_blocks.1", "mid_block"); names follow the reference
/// fixtures' `inter.*` keys.
using TensorTrace = std::map<std::string, at::Tensor>;

/// Stores `value` under `name` when `trace` is non-null; forward passes call this unconditionally.
inline void record(TensorTrace* trace, const std::string& name, const at::Tensor& value) {
  if (trace != nullptr) (*trace)[name] = value;
}

}  // namespace draft
