// Applying, mixing and merging LoRA files: each file becomes one more adapter per layer, so with
// scales s_k the UNet computes W x + sum_k s_k (alpha_k / r_k) B_k A_k x.
#include "lora/lora_apply.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>

#include <torch/torch.h>

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

}  // namespace draft
