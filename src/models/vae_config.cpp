// VAEConfig parsing, validation and presets, following diffusers v0.25 AutoencoderKL.__init__.
#include "models/vae_config.h"

#include "util/error.h"

namespace draft {
namespace {

void require_null(const ConfigJson& c, const std::string& key) {
  if (c.has(key)) {
    fail(c.source, ": unsupported VAE option ", key, " = ", c.json.at(key).dump(), " (draft supports only null)");
  }
}

void require_true(const ConfigJson& c, const std::string& key) {
  if (c.json.contains(key) && c.json.at(key) != nlohmann::json(true)) {
    fail(c.source, ": unsupported VAE option ", key, " = ", c.json.at(key).dump(), " (draft supports only true)");
  }
}

}  // namespace

VAEConfig VAEConfig::from_json(const ConfigJson& c) {
  for (const char* key : {"shift_factor", "latents_mean", "latents_std"}) require_null(c, key);
  for (const char* key : {"use_quant_conv", "use_post_quant_conv", "mid_block_add_attention"}) require_true(c, key);
  VAEConfig v;
  v.in_channels = c.get<int64_t>("in_channels", v.in_channels);
  v.out_channels = c.get<int64_t>("out_channels", v.out_channels);
  v.down_block_types = c.required<std::vector<std::string>>("down_block_types");
  v.up_block_types = c.required<std::vector<std::string>>("up_block_types");
  v.block_out_channels = c.required<std::vector<int64_t>>("block_out_channels");
  v.layers_per_block = c.get<int64_t>("layers_per_block", v.layers_per_block);
  v.act_fn = c.get<std::string>("act_fn", v.act_fn);
  v.latent_channels = c.get<int64_t>("latent_channels", v.latent_channels);
  v.norm_num_groups = c.get<int64_t>("norm_num_groups", v.norm_num_groups);
  v.sample_size = c.get<int64_t>("sample_size", v.sample_size);
  v.scaling_factor = c.get<double>("scaling_factor", v.scaling_factor);
  try {
    v.validate();
  } catch (const Error& e) {
    fail(c.source, ": ", e.what());
  }
  return v;
}

nlohmann::json VAEConfig::to_json() const {
  nlohmann::json j;
  j["_class_name"] = "AutoencoderKL";
  j["_diffusers_version"] = "0.25.1";
  j["in_channels"] = in_channels;
  j["out_channels"] = out_channels;
  j["down_block_types"] = down_block_types;
  j["up_block_types"] = up_block_types;
  j["block_out_channels"] = block_out_channels;
  j["layers_per_block"] = layers_per_block;
  j["act_fn"] = act_fn;
  j["latent_channels"] = latent_channels;
  j["norm_num_groups"] = norm_num_groups;
  j["sample_size"] = sample_size;
  j["scaling_factor"] = scaling_factor;
  j["force_upcast"] = true;
  return j;
}

void VAEConfig::validate() const {
  const size_t n = block_out_channels.size();
  DRAFT_CHECK(n > 0, "block_out_channels must not be empty");
  DRAFT_CHECK(down_block_types.size() == n, "down_block_types has ", down_block_types.size(),
              " entries but block_out_channels has ", n);
  DRAFT_CHECK(up_block_types.size() == n, "up_block_types has ", up_block_types.size(),
              " entries but block_out_channels has ", n);
  for (const auto& t : down_block_types) {
    DRAFT_CHECK(t == "DownEncoderBlock2D", "unsupported VAE option down_block_types entry '", t,
                "' (draft supports only DownEncoderBlock2D)");
  }
  for (const auto& t : up_block_types) {
    DRAFT_CHECK(t == "UpDecoderBlock2D", "unsupported VAE option up_block_types entry '", t,
                "' (draft supports only UpDecoderBlock2D)");
  }
  DRAFT_CHECK(act_fn == "silu", "unsupported VAE option act_fn = '", act_fn, "' (draft supports only silu)");
  DRAFT_CHECK(in_channels > 0 && out_channels > 0 && latent_channels > 0,
              "in_channels, out_channels and latent_channels must be positive");
  DRAFT_CHECK(layers_per_block > 0, "layers_per_block must be positive, got ", layers_per_block);
  DRAFT_CHECK(norm_num_groups > 0, "norm_num_groups must be positive, got ", norm_num_groups);
  DRAFT_CHECK(scaling_factor > 0, "scaling_factor must be positive, got ", scaling_factor);
  for (size_t i = 0; i < n; ++i) {
    DRAFT_CHECK(block_out_channels[i] > 0 && block_out_channels[i] % norm_num_groups == 0, "block_out_channels[", i,
                "] = ", block_out_channels[i], " is not a positive multiple of norm_num_groups = ", norm_num_groups);
  }
}

VAEConfig VAEConfig::sd15() {
  VAEConfig v;
  v.block_out_channels = {128, 256, 512, 512};
  v.down_block_types = std::vector<std::string>(4, "DownEncoderBlock2D");
  v.up_block_types = std::vector<std::string>(4, "UpDecoderBlock2D");
  v.layers_per_block = 2;
  v.norm_num_groups = 32;
  v.sample_size = 512;
  return v;
}

VAEConfig VAEConfig::tiny() {
  VAEConfig v;
  v.block_out_channels = {32, 64};
  v.down_block_types = {"DownEncoderBlock2D", "DownEncoderBlock2D"};
  v.up_block_types = {"UpDecoderBlock2D", "UpDecoderBlock2D"};
  v.layers_per_block = 1;
  v.norm_num_groups = 16;
  v.sample_size = 32;
  return v;
}

}  // namespace draft
