// Text-to-image sampling (diffusers' StableDiffusionPipeline.__call__ with DDIM).
#include "diffusion/text_to_image.h"

#include <torch/torch.h>

#include "util/error.h"

namespace draft {
namespace {

at::Tensor encode_texts(const StableDiffusion& sd, const std::vector<std::string>& texts, int64_t clip_skip) {
  at::Tensor ids = (*sd.tokenizer)(texts).input_ids.to(sd.weights.device);
  // diffusers calls the SD text encoder without an attention mask (no use_attention_mask in its config).
  CLIPTextModel text_encoder = sd.text_encoder;  // holders share the module; a copy drops the const
  return text_encoder->encode(ids, clip_skip);
}

}  // namespace

Conditioning encode_prompts(const StableDiffusion& sd, const std::vector<std::string>& prompts,
                            const std::vector<std::string>& negative_prompts, int64_t images_per_prompt,
                            int64_t clip_skip, bool with_uncond) {
  DRAFT_CHECK(!prompts.empty(), "no prompt given: pass --prompt TEXT or --prompts FILE");
  DRAFT_CHECK(images_per_prompt >= 1, "images per prompt must be at least 1, got ", images_per_prompt);
  DRAFT_CHECK(negative_prompts.empty() || negative_prompts.size() == 1 || negative_prompts.size() == prompts.size(),
              "got ", negative_prompts.size(), " negative prompts for ", prompts.size(),
              " prompts: give one for all or one per prompt");
  Conditioning c;
  c.cond = encode_texts(sd, prompts, clip_skip).repeat_interleave(images_per_prompt, 0);
  if (with_uncond) {
    std::vector<std::string> negatives(prompts.size(), negative_prompts.size() == 1 ? negative_prompts[0] : "");
    if (negative_prompts.size() == prompts.size()) negatives = negative_prompts;
    c.uncond = encode_texts(sd, negatives, clip_skip).repeat_interleave(images_per_prompt, 0);
  }
  return c;
}

at::Tensor initial_latents(const StableDiffusion& sd, int64_t count, int64_t height, int64_t width,
                           at::Generator& generator) {
  const int64_t f = sd.vae_scale_factor();
  DRAFT_CHECK(height > 0 && width > 0 && height % f == 0 && width % f == 0, "image size ", height, "x", width,
              " must be positive multiples of ", f, " (the VAE's downscaling factor)");
  const int64_t channels = sd.unet->config().in_channels;
  at::Tensor x = torch::randn({count, channels, height / f, width / f}, generator, torch::kFloat32);
  // DDIM's init_noise_sigma is 1.
  return x.to(sd.weights.device, sd.weights.dtype);
}

TextToImageResult text_to_image(const StableDiffusion& sd, const TextToImageOptions& o, const StepCallback& on_step) {
  torch::NoGradGuard no_grad;
  const int64_t size = sd.default_image_size();
  const int64_t height = o.height > 0 ? o.height : size;
  const int64_t width = o.width > 0 ? o.width : size;
  const int64_t count = static_cast<int64_t>(o.prompts.size()) * o.images_per_prompt;
  const bool cfg = o.guidance_scale > 1.0;

  Conditioning cond = encode_prompts(sd, o.prompts, o.negative_prompts, o.images_per_prompt, o.clip_skip, cfg);
  at::Generator generator = at::detail::createCPUGenerator(o.seed);
  at::Tensor x_T;
  if (o.latents.defined()) {
    DRAFT_CHECK(o.latents.dim() == 4 && o.latents.size(0) == count, "initial latents must be (", count,
                ", C, h, w), got ", o.latents.sizes());
    x_T = o.latents.to(sd.weights.device, sd.weights.dtype);
  } else {
    x_T = initial_latents(sd, count, height, width, generator);
  }

  RolloutOptions rollout;
  rollout.steps = o.steps;
  rollout.eta = o.eta;
  auto result = ddim_rollout(*sd.scheduler, guided_eps(sd.unet, cond, o.guidance_scale), x_T, rollout, generator,
                             on_step);
  TextToImageResult out;
  out.latents = result.x0;
  AutoencoderKL vae = sd.vae;
  out.images = vae->decode_latents_to_images(result.x0).to(torch::kCPU, torch::kFloat32);
  return out;
}

}  // namespace draft
