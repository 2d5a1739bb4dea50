// CLIP image preprocessing on tensors (transformers CLIPImageProcessor / torchvision Resize + CenterCrop +
// Normalize, without the uint8 conversion).
#include "rewards/clip_preprocess.h"

#include <torch/torch.h>

#include "rewards/reward.h"
#include "util/error.h"

namespace draft {

std::array<int64_t, 2> clip_resized_size(int64_t height, int64_t width, int64_t size) {
  // get_resize_output_image_size(default_to_square=False) and torchvision's Resize(int): the long side
  // is int(size * long / short), which integer division gives exactly.
  if (height <= width) return {size, size * width / height};
  return {size * height / width, size};
}

int64_t clip_crop_offset(int64_t length, int64_t crop, CropRounding rounding) {
  const int64_t excess = length - crop;
  const int64_t half = excess / 2;
  if (rounding == CropRounding::kFloor || excess % 2 == 0) return half;
  // Python's round(excess / 2.0) of an odd excess is k + 0.5, which rounds to the even neighbour.
  return half % 2 == 0 ? half : half + 1;
}

at::Tensor clip_preprocess(const at::Tensor& images, const ClipPreprocessOptions& options) {
  DRAFT_CHECK(images.defined() && images.dim() == 4 && (images.size(1) == 1 || images.size(1) == 3),
              "CLIP preprocessing: images must be (B, 1 or 3, H, W), got ",
              images.defined() ? images.sizes() : at::IntArrayRef{});
  DRAFT_CHECK(at::isFloatingType(images.scalar_type()), "CLIP preprocessing: images must be floating point, got ",
              images.scalar_type());
  DRAFT_CHECK(options.size > 0, "CLIP preprocessing: size must be positive, got ", options.size);
  DRAFT_CHECK(images.size(2) > 0 && images.size(3) > 0, "CLIP preprocessing: empty image ", images.sizes());
  // 1. Gray to RGB (the reference converts PIL "L" images with convert("RGB")).
  at::Tensor x = gray_to_rgb(images).contiguous();

  // 2. Shortest side to `size`; PIL returns an unchanged copy when the size is already right.
  const auto [height, width] = clip_resized_size(x.size(2), x.size(3), options.size);
  if (height != x.size(2) || width != x.size(3)) {
    x = options.antialias
            ? at::_upsample_bicubic2d_aa(x, {height, width}, /*align_corners=*/false, c10::nullopt, c10::nullopt)
            : at::upsample_bicubic2d(x, {height, width}, /*align_corners=*/false, c10::nullopt, c10::nullopt);
  }

  // 3. Centre crop.
  const int64_t top = clip_crop_offset(height, options.size, options.crop);
  const int64_t left = clip_crop_offset(width, options.size, options.crop);
  x = x.narrow(2, top, options.size).narrow(3, left, options.size);

  // 4. Normalise.
  auto channel = [&](const std::array<double, 3>& v) {
    return torch::tensor({v[0], v[1], v[2]}, x.options()).view({1, 3, 1, 1});
  };
  return (x - channel(options.mean)) / channel(options.std);
}

}  // namespace draft
