// The thread policy a model needs, decided from the model folder's own configs (not from its path).
#pragma once

#include <filesystem>
#include <string>

#include "diffusion/stable_diffusion.h"
#include "util/threads.h"

namespace draft::cli {

/// Models whose images are at most this many pixels wide have tensors small enough that OpenBLAS's own
/// thread pool only spins against LibTorch's (the embedded 32x32 model; docs/performance.md).
inline constexpr int64_t kSmallTensorImageSize = 64;

/// Small-tensor threading for a model of `image_size` pixels.
inline void use_threading_for_image_size(int64_t image_size) {
  if (image_size <= kSmallTensorImageSize) use_small_tensor_threading();
}

/// Small-tensor threading for the pipeline folder `model_dir`, from its unet/ and vae/ configs. A folder
/// without them is left to the command that loads it, which says what is missing.
inline void use_model_threading(const std::string& model_dir) {
  if (!std::filesystem::is_regular_file(model_dir + "/unet/config.json")) return;
  use_threading_for_image_size(pipeline_image_size(model_dir));
}

}  // namespace draft::cli
