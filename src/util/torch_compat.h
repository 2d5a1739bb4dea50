// Everything that differs between the LibTorch versions draft.cpp builds against: Debian's 1.13 (CPU,
// CI) and the 2.x inside a pip PyTorch (CUDA). The version checks live in torch_compat.cpp and nowhere
// else; the rest of the code asks the functions below.
#pragma once

#include <string>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

namespace draft {

/// True when this LibTorch has at::scaled_dot_product_attention (2.0 and later), whose flash and
/// memory-efficient kernels on CUDA never form the (N, M) score matrix.
bool has_fused_attention();

/// softmax(q kᵀ / √d + mask) v with at::scaled_dot_product_attention, gradients included. q (B, H, N, d),
/// k and v (B, H, M, d); `additive_mask` undefined or broadcastable to (B, H, N, M). Throws draft::Error
/// where has_fused_attention() is false.
at::Tensor fused_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           const at::Tensor& additive_mask);

/// False where LibTorch has no kernels for `dtype` on `device` that a Stable Diffusion forward needs:
/// LibTorch 1.x has no float16 LayerNorm/GroupNorm on the CPU.
bool supports_compute_dtype(c10::ScalarType dtype, c10::Device device);

/// Whether this LibTorch was built with CUDA (CMake defines DRAFT_TORCH_CUDA for such a build).
bool torch_has_cuda();

/// The most bytes the CUDA caching allocator has held for tensors on `device` since the last
/// reset_cuda_peak_memory (PyTorch's torch.cuda.max_memory_allocated); -1 on the CPU or without CUDA.
int64_t cuda_max_memory_allocated(c10::Device device);

/// Starts a new peak for cuda_max_memory_allocated (torch.cuda.reset_peak_memory_stats); no-op on the CPU.
void reset_cuda_peak_memory(c10::Device device);

/// The device's name as its driver reports it ("NVIDIA H200"), or "CPU".
std::string device_name(c10::Device device);

/// Waits for `device`'s queued kernels (for timing); no-op on the CPU.
void synchronize_device(c10::Device device);

/// The LibTorch version, e.g. "1.13.0".
const char* torch_version();

}  // namespace draft
