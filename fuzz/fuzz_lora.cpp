// libFuzzer target over LoRA files as `draft sample --lora FILE` reads them: apply_lora (read_lora_file: the
// safetensors file, the diffusers/PEFT, old-diffusers and kohya key layouts, the adapter metadata, shape and
// alpha checks; then one adapter per layer) against the tiny SD-1.x UNet of the tests (UNetConfig::tiny(),
// randomly initialised: only the layer names and shapes matter). The input is the .safetensors file. A pass:
// draft::Error, or adapters of rank >= 1 and finite alpha > 0 that fit their layers and run; never a crash, a
// sanitizer report or another exception. The adapters are removed after each input.
#include <cmath>
#include <cstdint>
#include <cstdlib>

#include "fuzz_support.h"
#include "lora/lora.h"
#include "lora/lora_apply.h"
#include "util/error.h"

namespace {

draft::UNet2DCondition& unet() {
  static draft::UNet2DCondition model = [] {
    torch::manual_seed(0);
    draft::UNet2DCondition u(draft::UNetConfig::tiny());
    u->eval();
    return u;
  }();
  return model;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  draft::fuzz::quiet_single_threaded_torch();
  (void)unet();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static const std::string path = draft::fuzz::scratch_file("lora.safetensors");
  draft::fuzz::write_file(path, data, size);
  torch::NoGradGuard no_grad;
  try {
    const draft::LoRAFile file = draft::apply_lora(unet(), path, 0.5);
    if (file.layers.empty()) std::abort();
    for (const auto& layer : file.layers) {
      if (layer.rank() < 1 || !(layer.alpha > 0) || !std::isfinite(layer.alpha)) std::abort();
    }
    // Every adapted layer runs.
    for (auto& entry : draft::lora_modules(unet())) {
      draft::LoRALinear& module = entry.second;
      const at::Tensor y = module->forward(torch::ones({1, module->in_features()}));
      if (y.dim() != 2 || y.size(1) != module->out_features()) std::abort();
    }
  } catch (const draft::Error&) {
  }
  draft::remove_lora(unet(), /*merge=*/false);
  return 0;
}
