// SD 1.5-shaped modules with random weights (sd15_random.h).
#include "sd15_random.h"

#include <memory>
#include <string>

#include <torch/torch.h>

namespace draft::bench {

StableDiffusion random_sd15(const WeightsOptions& options) {
  StableDiffusion sd;
  sd.weights = options;
  sd.unet = UNet2DCondition(UNetConfig::sd15());
  sd.vae = AutoencoderKL(VAEConfig::sd15());
  CLIPTextConfig text;  // SD 1.x text encoder: openai CLIP ViT-L/14's text tower
  text.hidden_size = 768;
  text.intermediate_size = 3072;
  text.num_attention_heads = 12;
  text.projection_dim = 768;
  sd.text_encoder = CLIPTextModel(text);
  sd.tokenizer = std::make_shared<CLIPTokenizer>(
      CLIPTokenizer::from_folder(std::string(DRAFT_SOURCE_DIR) + "/tests/data/tokenizer_clip"));
  SchedulerConfig sched;
  sched.beta_schedule = "scaled_linear";
  sched.beta_start = 0.00085;
  sched.beta_end = 0.012;
  sched.clip_sample = false;
  sched.set_alpha_to_one = false;
  sched.steps_offset = 1;
  sd.scheduler = std::make_shared<DDIMScheduler>(sched);
  for (torch::nn::Module* m : {static_cast<torch::nn::Module*>(sd.unet.ptr().get()),
                               static_cast<torch::nn::Module*>(sd.vae.ptr().get()),
                               static_cast<torch::nn::Module*>(sd.text_encoder.ptr().get())}) {
    m->to(options.device, options.dtype);
    m->eval();
    for (auto& p : m->parameters()) p.set_requires_grad(false);
  }
  return sd;
}

}  // namespace draft::bench
