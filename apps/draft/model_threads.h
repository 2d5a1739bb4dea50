// The thread policy a model needs, decided from the model itself (not from its path): small-tensor models
// get OpenBLAS at one thread, and LibTorch's thread count measured on the model's own UNet call.
#pragma once

#include <cstdint>
#include <string>

#include "diffusion/stable_diffusion.h"

namespace draft::cli {

/// Models whose images are at most this many pixels wide have tensors small enough that OpenBLAS's own
/// thread pool only spins against LibTorch's (the embedded 32x32 model; docs/performance.md).
inline constexpr int64_t kSmallTensorImageSize = 64;

/// For a small-tensor model on the CPU: OpenBLAS at one thread, and LibTorch's intra-op threads chosen by
/// timing one guided UNet call of `batch` samples with 1 thread and with all (choose_threads_by_timing),
/// unless the user fixed the count (--threads, OMP_NUM_THREADS). Other models and devices: nothing.
void use_model_threading(const StableDiffusion& sd, int64_t batch);

/// The same for the pipeline folder `model_dir` on `device`, loading it when it is small (the embedded model
/// loads in a fraction of a second). A folder without unet/ and vae/ configs is left to the command that
/// loads it, which says what is missing.
void use_model_threading(const std::string& model_dir, int64_t batch, const std::string& device = "cpu");

}  // namespace draft::cli
