// Reading and checking CLIP tower configs (transformers v4.36 configuration_clip.py semantics).
#include "models/clip_config.h"

#include "util/error.h"

namespace draft {
namespace {

/// The object that holds a tower's keys: the file itself for a tower config, or the `name` object
/// ("text_config" / "vision_config") of a CLIPModel config. `*full` tells which.
ConfigJson tower_config(const ConfigJson& config, const std::string& name, const std::string& tower_type,
                        bool* full) {
  const std::string type = config.get<std::string>("model_type", "");
  *full = type == "clip" || config.has(name) || config.has(name + "_dict");
  if (!*full) {
    DRAFT_CHECK(type.empty() || type == tower_type, config.source, ": model_type '", type,
                "' is not a CLIP config of this kind (expected '", tower_type, "', or 'clip' with '", name, "')");
    return config;
  }
  // CLIPConfig.__init__: a legacy "<name>_dict" is completed with defaults and then overrides every key
  // of "<name>", so reading it alone gives the same values.
  const std::string key = config.has(name + "_dict") ? name + "_dict" : name;
  nlohmann::json sub = config.has(key) ? config.json.at(key) : nlohmann::json::object();
  DRAFT_CHECK(sub.is_object(), config.source, ": key '", key, "' must be a JSON object, got ", sub.dump());
  return ConfigJson{sub, config.source + " [" + key + "]"};
}

void check_positive(const char* what, int64_t value) {
  DRAFT_CHECK(value > 0, what, " must be positive, got ", value);
}

void check_heads(const char* what, int64_t hidden_size, int64_t heads) {
  DRAFT_CHECK(hidden_size % heads == 0, what, ".hidden_size (", hidden_size,
              ") must be divisible by num_attention_heads (", heads, ")");
}

}  // namespace

CLIPTextConfig CLIPTextConfig::from_json(const ConfigJson& config) {
  bool full = false;
  const ConfigJson t = tower_config(config, "text_config", "clip_text_model", &full);
  CLIPTextConfig c;
  c.vocab_size = t.get<int64_t>("vocab_size", c.vocab_size);
  c.hidden_size = t.get<int64_t>("hidden_size", c.hidden_size);
  c.intermediate_size = t.get<int64_t>("intermediate_size", c.intermediate_size);
  c.num_hidden_layers = t.get<int64_t>("num_hidden_layers", c.num_hidden_layers);
  c.num_attention_heads = t.get<int64_t>("num_attention_heads", c.num_attention_heads);
  c.max_position_embeddings = t.get<int64_t>("max_position_embeddings", c.max_position_embeddings);
  c.projection_dim = t.get<int64_t>("projection_dim", c.projection_dim);
  c.hidden_act = t.get<std::string>("hidden_act", c.hidden_act);
  c.layer_norm_eps = t.get<double>("layer_norm_eps", c.layer_norm_eps);
  c.eos_token_id = t.get<int64_t>("eos_token_id", c.eos_token_id);
  c.bos_token_id = t.get<int64_t>("bos_token_id", c.bos_token_id);
  c.pad_token_id = t.get<int64_t>("pad_token_id", c.pad_token_id);
  // CLIPModel sizes text_projection with its own top-level projection_dim (default 512).
  if (full) c.projection_dim = config.get<int64_t>("projection_dim", 512);
  return c;
}

nlohmann::json CLIPTextConfig::to_json() const {
  return {{"architectures", {"CLIPTextModel"}},
          {"attention_dropout", 0.0},
          {"bos_token_id", bos_token_id},
          {"dropout", 0.0},
          {"eos_token_id", eos_token_id},
          {"hidden_act", hidden_act},
          {"hidden_size", hidden_size},
          {"initializer_factor", 1.0},
          {"initializer_range", 0.02},
          {"intermediate_size", intermediate_size},
          {"layer_norm_eps", layer_norm_eps},
          {"max_position_embeddings", max_position_embeddings},
          {"model_type", "clip_text_model"},
          {"num_attention_heads", num_attention_heads},
          {"num_hidden_layers", num_hidden_layers},
          {"pad_token_id", pad_token_id},
          {"projection_dim", projection_dim},
          {"torch_dtype", "float32"},
          {"transformers_version", "4.36.2"},
          {"vocab_size", vocab_size}};
}

void CLIPTextConfig::validate() const {
  check_positive("CLIPTextConfig.vocab_size", vocab_size);
  check_positive("CLIPTextConfig.hidden_size", hidden_size);
  check_positive("CLIPTextConfig.intermediate_size", intermediate_size);
  check_positive("CLIPTextConfig.num_hidden_layers", num_hidden_layers);
  check_positive("CLIPTextConfig.num_attention_heads", num_attention_heads);
  check_positive("CLIPTextConfig.max_position_embeddings", max_position_embeddings);
  check_positive("CLIPTextConfig.projection_dim", projection_dim);
  check_heads("CLIPTextConfig", hidden_size, num_attention_heads);
  DRAFT_CHECK(layer_norm_eps > 0, "CLIPTextConfig.layer_norm_eps must be positive, got ", layer_norm_eps);
  parse_clip_activation(hidden_act, "CLIPTextConfig.hidden_act");
}

CLIPEncoderOptions CLIPTextConfig::encoder_options() const {
  validate();
  return CLIPEncoderOptions{hidden_size, intermediate_size, num_attention_heads, num_hidden_layers,
                            parse_clip_activation(hidden_act), layer_norm_eps};
}

CLIPVisionConfig CLIPVisionConfig::from_json(const ConfigJson& config) {
  bool full = false;
  const ConfigJson v = tower_config(config, "vision_config", "clip_vision_model", &full);
  CLIPVisionConfig c;
  c.hidden_size = v.get<int64_t>("hidden_size", c.hidden_size);
  c.intermediate_size = v.get<int64_t>("intermediate_size", c.intermediate_size);
  c.projection_dim = v.get<int64_t>("projection_dim", c.projection_dim);
  c.num_hidden_layers = v.get<int64_t>("num_hidden_layers", c.num_hidden_layers);
  c.num_attention_heads = v.get<int64_t>("num_attention_heads", c.num_attention_heads);
  c.num_channels = v.get<int64_t>("num_channels", c.num_channels);
  c.image_size = v.get<int64_t>("image_size", c.image_size);
  c.patch_size = v.get<int64_t>("patch_size", c.patch_size);
  c.hidden_act = v.get<std::string>("hidden_act", c.hidden_act);
  c.layer_norm_eps = v.get<double>("layer_norm_eps", c.layer_norm_eps);
  // CLIPModel sizes visual_projection with its own top-level projection_dim (default 512).
  if (full) c.projection_dim = config.get<int64_t>("projection_dim", 512);
  return c;
}

void CLIPVisionConfig::validate() const {
  check_positive("CLIPVisionConfig.hidden_size", hidden_size);
  check_positive("CLIPVisionConfig.intermediate_size", intermediate_size);
  check_positive("CLIPVisionConfig.projection_dim", projection_dim);
  check_positive("CLIPVisionConfig.num_hidden_layers", num_hidden_layers);
  check_positive("CLIPVisionConfig.num_attention_heads", num_attention_heads);
  check_positive("CLIPVisionConfig.num_channels", num_channels);
  check_positive("CLIPVisionConfig.patch_size", patch_size);
  DRAFT_CHECK(image_size >= patch_size, "CLIPVisionConfig.image_size (", image_size,
              ") must be at least patch_size (", patch_size, ")");
  check_heads("CLIPVisionConfig", hidden_size, num_attention_heads);
  DRAFT_CHECK(layer_norm_eps > 0, "CLIPVisionConfig.layer_norm_eps must be positive, got ", layer_norm_eps);
  parse_clip_activation(hidden_act, "CLIPVisionConfig.hidden_act");
}

CLIPEncoderOptions CLIPVisionConfig::encoder_options() const {
  validate();
  return CLIPEncoderOptions{hidden_size, intermediate_size, num_attention_heads, num_hidden_layers,
                            parse_clip_activation(hidden_act), layer_norm_eps};
}

}  // namespace draft
