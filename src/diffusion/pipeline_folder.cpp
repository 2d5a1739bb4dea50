// save_pipeline_folder: model_index.json and one subfolder per component, with diffusers' file names.
#include "diffusion/pipeline_folder.h"

#include <filesystem>

#include "io/json_file.h"
#include "models/weights.h"
#include "util/error.h"

namespace draft {

void save_pipeline_folder(const std::string& folder, const PipelineParts& parts) {
  namespace fs = std::filesystem;
  DRAFT_CHECK(parts.text_encoder && parts.unet && parts.vae, folder, ": a pipeline needs a text encoder, UNet and VAE");
  DRAFT_CHECK(fs::is_regular_file(parts.tokenizer_dir + "/vocab.json"), parts.tokenizer_dir,
              ": not a tokenizer folder (vocab.json missing)");
  std::error_code ec;
  for (const char* sub : {"unet", "vae", "text_encoder", "tokenizer", "scheduler"}) {
    fs::create_directories(fs::path(folder) / sub, ec);
    DRAFT_CHECK(!ec, folder, "/", sub, ": cannot create the folder: ", ec.message());
  }
  write_json_file(folder + "/model_index.json",
                  {{"_class_name", "StableDiffusionPipeline"},
                   {"_diffusers_version", "0.25.1"},
                   {"feature_extractor", {nullptr, nullptr}},
                   {"image_encoder", {nullptr, nullptr}},
                   {"requires_safety_checker", false},
                   {"safety_checker", {nullptr, nullptr}},
                   {"scheduler", {"diffusers", "DDIMScheduler"}},
                   {"text_encoder", {"transformers", "CLIPTextModel"}},
                   {"tokenizer", {"transformers", "CLIPTokenizer"}},
                   {"unet", {"diffusers", "UNet2DConditionModel"}},
                   {"vae", {"diffusers", "AutoencoderKL"}}});
  save_weights(*parts.unet, folder + "/unet/diffusion_pytorch_model.safetensors");
  write_json_file(folder + "/unet/config.json", parts.unet->config().to_json());
  save_weights(*parts.vae, folder + "/vae/diffusion_pytorch_model.safetensors");
  write_json_file(folder + "/vae/config.json", parts.vae->config().to_json());
  save_weights(*parts.text_encoder, folder + "/text_encoder/model.safetensors");
  write_json_file(folder + "/text_encoder/config.json", parts.text_encoder->config().to_json());
  write_json_file(folder + "/scheduler/scheduler_config.json", parts.scheduler.to_json("DDIMScheduler"));
  for (const char* file : {"vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"}) {
    const fs::path from = fs::path(parts.tokenizer_dir) / file;
    if (!fs::exists(from)) continue;
    fs::copy_file(from, fs::path(folder) / "tokenizer" / file, fs::copy_options::overwrite_existing, ec);
    DRAFT_CHECK(!ec, from.string(), ": cannot copy into ", folder, "/tokenizer: ", ec.message());
  }
}

}  // namespace draft
