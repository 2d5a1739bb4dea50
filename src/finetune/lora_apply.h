// Using LoRA files: FILE[:SCALE] specs, adding several scaled LoRAs to a pipeline's UNet (mixing), and
// writing a merged model folder (draft lora merge).
#pragma once

#include <string>
#include <vector>

#include "diffusion/stable_diffusion.h"
#include "finetune/lora_file.h"

namespace draft {

/// A LoRA file with the scale of its delta (scale 0: no effect, 2: twice the delta).
struct LoRASpec {
  std::string path;
  double scale = 1.0;
};

/// Parses "FILE" or "FILE:SCALE" (the part after the last ':' counts as the scale only when it is a
/// number, so paths with colons still work). Throws draft::Error naming --lora.
LoRASpec parse_lora_spec(const std::string& spec);

/// Reads `path` (read_lora_file) and adds each of its layers to the UNet as one more frozen adapter with
/// `scale`; adapters of several files stack, so their deltas add. Returns the file as read.
LoRAFile apply_lora(UNet2DCondition& unet, const std::string& path, double scale = 1.0);

/// apply_lora for each FILE[:SCALE] spec, logging what was applied.
void apply_loras(StableDiffusion& model, const std::vector<std::string>& specs);

/// Loads the model folder `model_dir` (float32, CPU), applies the LoRAs, folds them into the UNet's
/// weights and writes the result as a diffusers model folder `out_dir` (save_pipeline_folder). Throws
/// draft::Error when out_dir is the input folder.
void merge_lora_folder(const std::string& model_dir, const std::vector<std::string>& specs, const std::string& out_dir);

}  // namespace draft
