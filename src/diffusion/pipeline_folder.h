// Writing a text-to-image pipeline as a diffusers folder: the interchange format that draft, diffusers'
// StableDiffusionPipeline.from_pretrained and stable-diffusion.cpp's converters read.
#pragma once

#include <string>

#include "diffusion/scheduler_config.h"
#include "models/autoencoder_kl.h"
#include "models/clip_text_model.h"
#include "models/unet_2d_condition.h"

namespace draft {

/// The parts of a pipeline to write. The tokenizer is copied from an existing tokenizer folder.
struct PipelineParts {
  CLIPTextModel text_encoder = nullptr;
  UNet2DCondition unet = nullptr;
  AutoencoderKL vae = nullptr;
  SchedulerConfig scheduler;
  std::string tokenizer_dir;
};

/// Writes `folder`/model_index.json (StableDiffusionPipeline, no safety checker or feature extractor),
/// unet/ and vae/ (config.json + diffusion_pytorch_model.safetensors), text_encoder/ (config.json +
/// model.safetensors), tokenizer/ (the files of tokenizer_dir) and scheduler/ (DDIMScheduler
/// scheduler_config.json). Weights are written as float32. Throws draft::Error naming what failed.
void save_pipeline_folder(const std::string& folder, const PipelineParts& parts);

}  // namespace draft
