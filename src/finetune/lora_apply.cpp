// Applying, mixing and merging LoRA files: each file becomes one more adapter per layer, so with
// scales s_k the UNet computes W x + sum_k s_k (alpha_k / r_k) B_k A_k x.
#include "finetune/lora_apply.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>

#include <torch/torch.h>

#include "diffusion/pipeline_folder.h"
#include "util/error.h"
#include "util/log.h"

namespace draft {

LoRASpec parse_lora_spec(const std::string& spec) {
  LoRASpec out;
  out.path = spec;
  const auto colon = spec.rfind(':');
  if (colon != std::string::npos) {
    const std::string tail = spec.substr(colon + 1);
    char* end = nullptr;
    const double scale = tail.empty() ? 0.0 : std::strtod(tail.c_str(), &end);
    if (!tail.empty() && end == tail.c_str() + tail.size()) {
      DRAFT_CHECK(std::isfinite(scale), "--lora ", spec, ": the scale must be a finite number");
      out.path = spec.substr(0, colon);
      out.scale = scale;
    }
  }
  DRAFT_CHECK(!out.path.empty(), "--lora '", spec, "': no file name (use FILE or FILE:SCALE)");
  return out;
}

LoRAFile apply_lora(UNet2DCondition& unet, const std::string& path, double scale) {
  LoRAFile file = read_lora_file(path, unet);
  std::map<std::string, LoRASlot> slots;
  for (auto& slot : lora_slots(unet)) slots.emplace(slot.name, slot);
  for (const auto& layer : file.layers) {
    LoRALinear module = ensure_lora_linear(slots.at(layer.module));
    DRAFT_CHECK(!module->merged(), "LoRA file ", file.path, ": layer ", layer.module,
                " already has merged adapters; cannot add another");
    module->add_adapter(layer.down, layer.up, layer.alpha, scale);
  }
  return file;
}

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
