// Text-to-image sampling with a loaded StableDiffusion, matching diffusers' StableDiffusionPipeline
// (same seeds give the same images on CPU).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "diffusion/guidance.h"
#include "diffusion/rollout.h"
#include "diffusion/stable_diffusion.h"

namespace draft {

struct TextToImageOptions {
  std::vector<std::string> prompts;           ///< one entry per prompt
  std::vector<std::string> negative_prompts;  ///< empty: "" for every prompt; else one per prompt (or one for all)
  int64_t images_per_prompt = 1;
  int64_t steps = 50;
  double guidance_scale = 7.5;  ///< classifier-free guidance w; <= 1 disables it
  double eta = 0.0;
  int64_t height = 0;  ///< 0: the model's default size
  int64_t width = 0;
  uint64_t seed = 0;
  int64_t clip_skip = 0;  ///< 0: last layer; k: final_layer_norm of the (k+1)-th last hidden state
  at::Tensor latents;     ///< optional x_T (B,C,h,w); drawn from the seed when undefined
};

struct TextToImageResult {
  at::Tensor images;   ///< (B,3,H,W) in [0,1], float32 on CPU; B = prompts x images_per_prompt, prompt-major
  at::Tensor latents;  ///< final x_0 latents
};

/// Tokenises and encodes prompts, repeated images_per_prompt times; `uncond` is filled when
/// `with_uncond` (negative prompts, "" by default).
Conditioning encode_prompts(const StableDiffusion& sd, const std::vector<std::string>& prompts,
                            const std::vector<std::string>& negative_prompts, int64_t images_per_prompt,
                            int64_t clip_skip, bool with_uncond);

/// x_T for `count` images: one normal draw of shape (count, C, height/f, width/f) from `generator` on the
/// CPU in float32 (as diffusers' randn_tensor with a CPU torch.Generator), then moved to the model's device
/// and dtype.
at::Tensor initial_latents(const StableDiffusion& sd, int64_t count, int64_t height, int64_t width,
                           at::Generator& generator);

/// The whole pipeline under no-grad. `on_step` reports progress.
TextToImageResult text_to_image(const StableDiffusion& sd, const TextToImageOptions& options,
                                const StepCallback& on_step = {});

}  // namespace draft
