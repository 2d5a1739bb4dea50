// LoRA files on a whole pipeline: applying FILE[:SCALE] specs to its UNet, and writing a merged folder.
#include "diffusion/pipeline_lora.h"

#include <filesystem>

#include "diffusion/pipeline_folder.h"
#include "lora/lora.h"
#include "util/error.h"
#include "util/log.h"

namespace draft {

void apply_loras(StableDiffusion& model, const std::vector<std::string>& specs) {
  for (const auto& text : specs) {
    const LoRASpec spec = parse_lora_spec(text);
    const LoRAFile file = apply_lora(model.unet, spec.path, spec.scale);
    DRAFT_LOG_INFO("LoRA {} ({} layout): {} layers, rank {}, scale {}", file.path, lora_format_name(file.format),
                   file.layers.size(), file.layers.front().rank(), spec.scale);
  }
}

void merge_lora_folder(const std::string& model_dir, const std::vector<std::string>& specs, const std::string& out_dir) {
  namespace fs = std::filesystem;
  DRAFT_CHECK(!specs.empty(), "draft lora merge: give at least one --lora FILE[:SCALE]");
  std::error_code ec;
  DRAFT_CHECK(!fs::exists(out_dir) || !fs::equivalent(model_dir, out_dir, ec), "draft lora merge: --out ", out_dir,
              " is the input model folder; write the merged model to a new folder");
  WeightsOptions weights;  // float32 on the CPU: the merged weights are written as float32 anyway
  StableDiffusion model = load_stable_diffusion(model_dir, weights);
  apply_loras(model, specs);
  const int64_t merged = remove_lora(model.unet, /*merge=*/true);
  DRAFT_LOG_INFO("merged LoRA into {} UNet layers", merged);
  save_pipeline_folder(out_dir, {model.text_encoder, model.unet, model.vae, model.scheduler->config(),
                                 (fs::path(model_dir) / "tokenizer").string()});
}

}  // namespace draft
