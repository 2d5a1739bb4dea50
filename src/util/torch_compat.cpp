// The one place that checks LibTorch's version (see torch_compat.h).
#include "util/torch_compat.h"

#include <torch/torch.h>
#include <torch/version.h>

#include "util/error.h"

#ifndef DRAFT_TORCH_CUDA
#define DRAFT_TORCH_CUDA 0
#endif

#if DRAFT_TORCH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#define DRAFT_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace draft {

bool has_fused_attention() { return DRAFT_TORCH_AT_LEAST(2, 0); }

at::Tensor fused_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           const at::Tensor& additive_mask) {
#if DRAFT_TORCH_AT_LEAST(2, 0)
  // The default scale is 1/√d, the one every attention in SD, its VAE and CLIP uses. A float mask is added
  // to the scores, as the math path does.
  const c10::optional<at::Tensor> mask =
      additive_mask.defined() ? c10::optional<at::Tensor>(additive_mask) : c10::nullopt;
  return at::scaled_dot_product_attention(q, k, v, mask);
#else
  (void)q, (void)k, (void)v, (void)additive_mask;
  fail("fused attention needs LibTorch 2.0 or later (this is ", TORCH_VERSION, "); use the math path");
#endif
}

bool supports_compute_dtype(c10::ScalarType dtype, c10::Device device) {
#if DRAFT_TORCH_AT_LEAST(2, 0)
  (void)dtype, (void)device;
  return true;
#else
  return !(device.is_cpu() && dtype == c10::kHalf);
#endif
}

bool torch_has_cuda() { return DRAFT_TORCH_CUDA != 0; }

int64_t cuda_max_memory_allocated(c10::Device device) {
  if (!device.is_cuda()) return -1;
#if DRAFT_TORCH_CUDA
  // allocated_bytes[0]: the aggregate over small and large pools (StatType::AGGREGATE).
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index() < 0 ? 0 : device.index());
  return stats.allocated_bytes[0].peak;
#else
  return -1;
#endif
}

void reset_cuda_peak_memory(c10::Device device) {
  if (!device.is_cuda()) return;
#if DRAFT_TORCH_CUDA
  c10::cuda::CUDACachingAllocator::resetPeakStats(device.index() < 0 ? 0 : device.index());
#endif
}

std::string device_name(c10::Device device) {
  if (!device.is_cuda()) return "CPU";
#if DRAFT_TORCH_CUDA
  return at::cuda::getDeviceProperties(device.index() < 0 ? 0 : device.index())->name;
#else
  return "CUDA";
#endif
}

void synchronize_device(c10::Device device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

const char* torch_version() { return TORCH_VERSION; }

}  // namespace draft
