// LoRA files on a whole pipeline: `--lora FILE[:SCALE]` specs applied to a loaded model's UNet (draft
// sample, draft eval) and a merged model folder (draft lora merge).
#pragma once

#include <string>
#include <vector>

#include "diffusion/stable_diffusion.h"
#include "lora/lora_apply.h"

namespace draft {

/// apply_lora for each FILE[:SCALE] spec, logging what was applied.
void apply_loras(StableDiffusion& model, const std::vector<std::string>& specs);

/// Loads the model folder `model_dir` (float32, CPU), applies the LoRAs, folds them into the UNet's
/// weights and writes the result as a diffusers model folder `out_dir` (save_pipeline_folder). Throws
/// draft::Error when out_dir is the input folder.
void merge_lora_folder(const std::string& model_dir, const std::vector<std::string>& specs, const std::string& out_dir);

}  // namespace draft
