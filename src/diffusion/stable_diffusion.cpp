// Loading a diffusers pipeline folder.
#include "diffusion/stable_diffusion.h"

#include <filesystem>

#include <torch/torch.h>

#include "io/config_json.h"
#include "util/error.h"
#include "util/log.h"
#include "util/torch_compat.h"

namespace draft {
namespace fs = std::filesystem;
namespace {

// Checks that model_index.json names a class we can load for `component` (when it names one at all).
void check_component(const ConfigJson& index, const std::string& component,
                     std::initializer_list<const char*> accepted) {
  DRAFT_CHECK(index.has(component), index.source, ": no '", component, "' component; a Stable Diffusion "
              "pipeline needs unet, vae, text_encoder, tokenizer and scheduler");
  const auto& entry = index.json.at(component);
  DRAFT_CHECK(entry.is_array() && entry.size() == 2 && entry[1].is_string(), index.source, ": component '",
              component, "' should be [library, class], got ", entry.dump());
  std::string cls = entry[1].get<std::string>();
  for (const char* name : accepted) {
    if (cls == name) return;
  }
  std::string names;
  for (const char* name : accepted) names += (names.empty() ? "" : " or ") + std::string(name);
  fail(index.source, ": component '", component, "' is a ", cls, "; draft.cpp loads ", names);
}

std::string subfolder(const std::string& folder, const std::string& name) {
  fs::path path = fs::path(folder) / name;
  DRAFT_CHECK(fs::is_directory(path), folder, ": missing the '", name, "' subfolder of a diffusers pipeline");
  return path.string();
}

void freeze(torch::nn::Module& module) {
  module.eval();
  for (auto& p : module.parameters()) p.set_requires_grad(false);
}

// 2^(VAE resolution levels - 1): how much larger the images are than the latents (8 for SD).
int64_t scale_factor_of(const VAEConfig& vae) {
  return int64_t{1} << (static_cast<int64_t>(vae.block_out_channels.size()) - 1);
}

}  // namespace

int64_t StableDiffusion::vae_scale_factor() const { return scale_factor_of(vae->config()); }

int64_t StableDiffusion::default_image_size() const { return unet->config().sample_size * vae_scale_factor(); }

int64_t pipeline_image_size(const std::string& folder) {
  const UNetConfig unet = UNetConfig::from_json(ConfigJson::load(folder + "/unet/config.json"));
  const VAEConfig vae = VAEConfig::from_json(ConfigJson::load(folder + "/vae/config.json"));
  return unet.sample_size * scale_factor_of(vae);
}

StableDiffusion load_stable_diffusion(const std::string& folder, const WeightsOptions& options) {
  fs::path index_path = fs::path(folder) / "model_index.json";
  DRAFT_CHECK(fs::is_directory(folder), folder, ": no such model folder (expected a diffusers pipeline folder "
              "with model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/)");
  DRAFT_CHECK(fs::exists(index_path), folder, ": no model_index.json: not a diffusers pipeline folder (save one "
              "with diffusers' StableDiffusionPipeline.save_pretrained)");
  // LibTorch 1.x has no float16 CPU kernels for LayerNorm / GroupNorm: refuse up front, not mid-sampling.
  DRAFT_CHECK(supports_compute_dtype(options.dtype, options.device), "dtype f16 needs a CUDA device with this "
              "LibTorch (", torch_version(), " has no float16 CPU kernels for LayerNorm/GroupNorm): use --dtype bf16 "
              "or f32 on the CPU");
  ConfigJson index = ConfigJson::load(index_path.string());
  check_component(index, "unet", {"UNet2DConditionModel"});
  check_component(index, "vae", {"AutoencoderKL"});
  check_component(index, "text_encoder", {"CLIPTextModel"});
  check_component(index, "tokenizer", {"CLIPTokenizer", "CLIPTokenizerFast"});
  DRAFT_CHECK(index.has("scheduler"), index.source, ": no 'scheduler' component");

  StableDiffusion sd;
  sd.folder = folder;
  sd.weights = options;
  sd.tokenizer = std::make_shared<CLIPTokenizer>(CLIPTokenizer::from_folder(subfolder(folder, "tokenizer")));
  sd.scheduler = std::make_shared<DDIMScheduler>(SchedulerConfig::load(subfolder(folder, "scheduler")));
  sd.text_encoder = load_clip_text_model(subfolder(folder, "text_encoder"), options);
  sd.vae = load_vae(subfolder(folder, "vae"), options);
  sd.unet = load_unet(subfolder(folder, "unet"), options);
  freeze(*sd.text_encoder);
  freeze(*sd.vae);
  freeze(*sd.unet);
  for (int64_t dim : sd.unet->config().cross_attention_dim) {
    DRAFT_CHECK(sd.text_encoder->config().hidden_size == dim, folder, ": text_encoder hidden_size ",
                sd.text_encoder->config().hidden_size, " does not match unet cross_attention_dim ", dim);
  }
  DRAFT_CHECK(sd.vae->config().latent_channels == sd.unet->config().in_channels, folder, ": vae latent_channels ",
              sd.vae->config().latent_channels, " does not match unet in_channels ", sd.unet->config().in_channels);
  DRAFT_LOG_DEBUG("loaded {} ({} on {})", folder, c10::toString(options.dtype), options.device.str());
  return sd;
}

}  // namespace draft
