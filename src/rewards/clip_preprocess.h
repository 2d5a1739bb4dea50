// Differentiable CLIP image preprocessing: the resize / centre crop / normalisation that CLIP's image
// processors apply, on float tensors so that the reward's gradient reaches the pixels.
#pragma once

#include <array>
#include <cstdint>

#include <ATen/core/Tensor.h>

namespace draft {

/// OpenAI CLIP's normalisation constants (also used by OpenCLIP's LAION models, PickScore and HPSv2).
constexpr std::array<double, 3> kClipMean = {0.48145466, 0.4578275, 0.40821073};
constexpr std::array<double, 3> kClipStd = {0.26862954, 0.26130258, 0.27577711};

/// How the centre crop's offset is rounded when the excess is odd.
enum class CropRounding {
  kFloor,  ///< (excess) // 2: transformers' CLIPImageProcessor (PickScore, torchmetrics' CLIP score)
  kRound,  ///< round(excess / 2), half to even: torchvision's CenterCrop (OpenAI clip, OpenCLIP, HPSv2)
};

struct ClipPreprocessOptions {
  /// Output side; the shortest side is resized to it, then the centre is cropped to size x size. Rewards
  /// set it to the vision tower's image_size.
  int64_t size = 224;
  std::array<double, 3> mean = kClipMean;
  std::array<double, 3> std = kClipStd;
  /// Bicubic with antialiasing (PIL's filter, a = -0.5, widened when downsampling), as PIL's
  /// Image.resize(BICUBIC) used by CLIPImageProcessor and torchvision's PIL path. false: PyTorch's plain
  /// bicubic (a = -0.75, no antialiasing), as torchvision < 0.17 resizing a tensor.
  bool antialias = true;
  CropRounding crop = CropRounding::kFloor;
};

/// images (B, 1 or 3, H, W) floating point in [0, 1] -> (B, 3, size, size) normalised pixel values, in
/// the images' dtype and device, differentiable with respect to the images:
///  1. gray (1 channel) is repeated to RGB;
///  2. the shortest side is resized to `size` and the other to int(size * long / short) (skipped when
///     the image already has that size);
///  3. the centre size x size is cropped;
///  4. (x - mean) / std per channel.
/// Unlike the reference processors there is no 8-bit round trip (no rounding or clipping to [0, 255]
/// after decoding or resizing), which would stop the gradient.
at::Tensor clip_preprocess(const at::Tensor& images, const ClipPreprocessOptions& options = {});

/// The resized (height, width) for an input of (height, width): shortest side to `size`.
std::array<int64_t, 2> clip_resized_size(int64_t height, int64_t width, int64_t size);

/// The top (or left) offset of a centre crop of `crop` out of `length`.
int64_t clip_crop_offset(int64_t length, int64_t crop, CropRounding rounding);

}  // namespace draft
