// Using LoRA files: FILE[:SCALE] specs and adding several scaled LoRAs to a UNet (mixing). The pipeline-level
// functions (applying specs to a loaded pipeline, writing a merged folder) are in diffusion/pipeline_lora.h.
#pragma once

#include <string>
#include <vector>

#include "lora/lora_file.h"

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

}  // namespace draft
