// OpenCLIP / OpenAI CLIP checkpoints in transformers' CLIPModel names (open_clip v2.x model.py / transformer.py:
// VisionTransformer, TextTransformer, ResidualAttentionBlock over nn.MultiheadAttention).
#include "models/open_clip_layout.h"

#include <cmath>

#include <torch/torch.h>

#include "util/error.h"

namespace draft {
namespace {

constexpr const char* kMarker = "visual.conv1.weight";

bool has_suffix(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// OpenCLIP's VisionTransformer head width for the widths of its published configs (the head count is
// not visible in the weights: in_proj_weight is (3 width, width) whatever the heads).
int64_t open_clip_head_width(int64_t width) {
  switch (width) {
    case 1280: return 80;   // ViT-H-14 (HPSv2, PickScore's base, SD 2.x's text encoder's sibling)
    case 1408: return 88;   // ViT-g-14
    case 1664: return 104;  // ViT-bigG-14
    default: return 64;     // OpenCLIP's default head_width, and width / 64 heads for OpenAI's ViTs
  }
}

int64_t count_layers(const std::map<std::string, std::vector<int64_t>>& shapes, const std::string& stem) {
  int64_t n = 0;
  while (shapes.count(stem + std::to_string(n) + ".ln_1.weight")) ++n;
  return n;
}

// Rejects an OpenCLIP option this port does not implement, unless it has its no-op value.
void reject(const ConfigJson& cfg, const std::string& key, const nlohmann::json& neutral) {
  if (!cfg.has(key) || cfg.json.at(key) == neutral) return;
  fail(cfg.source, ": '", key, "' = ", cfg.json.at(key).dump(),
       " is not supported (draft.cpp ports OpenCLIP's plain ViT CLIP: class-token pooling, learned positions, "
       "no layer scale)");
}

ConfigJson sub_config(const ConfigJson& parent, const std::string& key) {
  nlohmann::json sub = parent.has(key) ? parent.json.at(key) : nlohmann::json::object();
  DRAFT_CHECK(sub.is_object(), parent.source, ": '", key, "' must be a JSON object");
  return ConfigJson{sub, parent.source + " [" + key + "]"};
}

}  // namespace

at::Tensor OpenCLIPSource::apply(const at::Tensor& source) const {
  switch (op) {
    case Op::kCopy: return source;
    case Op::kTranspose: return source.t().contiguous();
    case Op::kChunk: return source.chunk(3, 0).at(static_cast<std::size_t>(chunk)).contiguous();
  }
  return source;
}

std::vector<int64_t> OpenCLIPSource::result_shape(const std::vector<int64_t>& shape) const {
  std::vector<int64_t> out = shape;
  if (op == Op::kTranspose && out.size() == 2) std::swap(out[0], out[1]);
  if (op == Op::kChunk && !out.empty()) out[0] /= 3;
  return out;
}

bool is_open_clip_layout(const std::vector<std::string>& keys) {
  for (const auto& key : keys) {
    if (has_suffix(key, kMarker)) return true;
  }
  return false;
}

std::string open_clip_prefix(const std::vector<std::string>& keys) {
  for (const auto& key : keys) {
    if (has_suffix(key, kMarker)) return key.substr(0, key.size() - std::string(kMarker).size());
  }
  fail("not an OpenCLIP state dict: no '", kMarker, "' key");
}

bool is_ignored_open_clip_key(const std::string& key) {
  return key == "attn_mask" || key == "input_resolution" || key == "context_length" || key == "vocab_size";
}

std::map<std::string, OpenCLIPSource> open_clip_sources(const CLIPModelConfig& config, const std::string& prefix) {
  using Op = OpenCLIPSource::Op;
  std::map<std::string, OpenCLIPSource> m;
  auto add = [&](const std::string& target, const std::string& source, Op op = Op::kCopy, int64_t chunk = 0) {
    m[target] = OpenCLIPSource{prefix + source, op, chunk};
  };
  auto norm = [&](const std::string& target, const std::string& source) {
    add(target + ".weight", source + ".weight");
    add(target + ".bias", source + ".bias");
  };
  // A ResidualAttentionBlock: ln_1, attn (nn.MultiheadAttention with q, k, v stacked in in_proj), ln_2,
  // mlp.c_fc / mlp.c_proj.
  auto layers = [&](const std::string& target, const std::string& source, int64_t count) {
    for (int64_t i = 0; i < count; ++i) {
      const std::string t = target + std::to_string(i), s = source + std::to_string(i);
      const char* names[] = {"q_proj", "k_proj", "v_proj"};
      for (int64_t j = 0; j < 3; ++j) {
        add(t + ".self_attn." + names[j] + ".weight", s + ".attn.in_proj_weight", Op::kChunk, j);
        add(t + ".self_attn." + names[j] + ".bias", s + ".attn.in_proj_bias", Op::kChunk, j);
      }
      norm(t + ".self_attn.out_proj", s + ".attn.out_proj");
      norm(t + ".layer_norm1", s + ".ln_1");
      norm(t + ".layer_norm2", s + ".ln_2");
      norm(t + ".mlp.fc1", s + ".mlp.c_fc");
      norm(t + ".mlp.fc2", s + ".mlp.c_proj");
    }
  };
  add("vision_model.embeddings.class_embedding", "visual.class_embedding");
  add("vision_model.embeddings.patch_embedding.weight", "visual.conv1.weight");
  add("vision_model.embeddings.position_embedding.weight", "visual.positional_embedding");
  norm("vision_model.pre_layrnorm", "visual.ln_pre");
  layers("vision_model.encoder.layers.", "visual.transformer.resblocks.", config.vision.num_hidden_layers);
  norm("vision_model.post_layernorm", "visual.ln_post");
  add("visual_projection.weight", "visual.proj", Op::kTranspose);
  add("text_model.embeddings.token_embedding.weight", "token_embedding.weight");
  add("text_model.embeddings.position_embedding.weight", "positional_embedding");
  layers("text_model.encoder.layers.", "transformer.resblocks.", config.text.num_hidden_layers);
  norm("text_model.final_layer_norm", "ln_final");
  add("text_projection.weight", "text_projection", Op::kTranspose);
  add("logit_scale", "logit_scale");
  return m;
}

CLIPModelConfig open_clip_config_from_json(const ConfigJson& file) {
  const ConfigJson cfg = file.has("model_cfg") ? sub_config(file, "model_cfg") : file;
  const ConfigJson v = sub_config(cfg, "vision_cfg");
  const ConfigJson t = sub_config(cfg, "text_cfg");
  for (const char* key : {"timm_model_name", "ls_init_value", "pos_embed_type"}) {
    reject(v, key, key == std::string("pos_embed_type") ? nlohmann::json("learnable") : nlohmann::json());
  }
  reject(v, "attentional_pool", false);
  reject(v, "global_average_pool", false);
  reject(v, "no_ln_pre", false);
  reject(v, "input_patchnorm", false);
  reject(v, "pool_type", "tok");
  for (const char* key : {"hf_model_name", "ls_init_value"}) reject(t, key, nlohmann::json());
  reject(t, "pool_type", "argmax");
  reject(t, "no_causal_mask", false);
  reject(t, "proj_bias", false);
  reject(t, "embed_cls", false);
  DRAFT_CHECK(!v.has("layers") || v.json.at("layers").is_number_integer(), v.source,
              ": 'layers' is a list: ResNet towers are not supported (ViT only)");

  CLIPModelConfig c;
  c.projection_dim = cfg.required<int64_t>("embed_dim");
  const std::string act = cfg.get<bool>("quick_gelu", false) ? "quick_gelu" : "gelu";

  int64_t image_size = 224;
  if (v.has("image_size") && v.json.at("image_size").is_array()) {
    const auto& dims = v.json.at("image_size");
    DRAFT_CHECK(dims.size() == 2 && dims[0] == dims[1], v.source, ": image_size ", dims.dump(),
                " must be square");
    image_size = dims[0].get<int64_t>();
  } else {
    image_size = v.get<int64_t>("image_size", image_size);
  }
  c.vision.image_size = image_size;
  c.vision.patch_size = v.get<int64_t>("patch_size", 16);
  c.vision.hidden_size = v.get<int64_t>("width", 768);
  c.vision.num_hidden_layers = v.get<int64_t>("layers", 12);
  const int64_t head_width = v.get<int64_t>("head_width", 64);
  DRAFT_CHECK(head_width > 0 && c.vision.hidden_size % head_width == 0, v.source, ": width ",
              c.vision.hidden_size, " is not a multiple of head_width ", head_width);
  c.vision.num_attention_heads = c.vision.hidden_size / head_width;
  // OpenCLIP: mlp_width = int(width * mlp_ratio).
  c.vision.intermediate_size = static_cast<int64_t>(static_cast<double>(c.vision.hidden_size) * v.get<double>("mlp_ratio", 4.0));
  c.vision.hidden_act = act;

  c.text.max_position_embeddings = t.get<int64_t>("context_length", 77);
  c.text.vocab_size = t.get<int64_t>("vocab_size", 49408);
  c.text.hidden_size = t.get<int64_t>("width", 512);
  c.text.num_attention_heads = t.get<int64_t>("heads", 8);
  c.text.num_hidden_layers = t.get<int64_t>("layers", 12);
  c.text.intermediate_size = static_cast<int64_t>(static_cast<double>(c.text.hidden_size) * t.get<double>("mlp_ratio", 4.0));
  c.text.hidden_act = act;
  c.text.projection_dim = c.vision.projection_dim = c.projection_dim;
  c.validate();
  return c;
}

CLIPModelConfig infer_open_clip_config(const std::map<std::string, std::vector<int64_t>>& shapes,
                                       const std::string& source) {
  auto shape = [&](const std::string& key, std::size_t rank) {
    auto it = shapes.find(key);
    DRAFT_CHECK(it != shapes.end(), source, ": the OpenCLIP tensor '", key, "' is missing");
    DRAFT_CHECK(it->second.size() == rank, source, ": '", key, "' has ", it->second.size(), " dimensions, expected ",
                rank);
    return it->second;
  };
  CLIPModelConfig c;
  const auto conv = shape("visual.conv1.weight", 4);
  c.vision.hidden_size = conv[0];
  c.vision.num_channels = conv[1];
  c.vision.patch_size = conv[2];
  const int64_t positions = shape("visual.positional_embedding", 2)[0] - 1;
  const auto grid = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(positions))));
  DRAFT_CHECK(grid * grid == positions, source, ": visual.positional_embedding has ", positions + 1,
              " rows, not a square grid of patches plus the class token");
  c.vision.image_size = grid * c.vision.patch_size;
  c.vision.num_hidden_layers = count_layers(shapes, "visual.transformer.resblocks.");
  DRAFT_CHECK(c.vision.num_hidden_layers > 0, source, ": no visual.transformer.resblocks.N tensors");
  c.vision.intermediate_size = shape("visual.transformer.resblocks.0.mlp.c_fc.weight", 2)[0];
  c.vision.num_attention_heads = c.vision.hidden_size / open_clip_head_width(c.vision.hidden_size);
  c.projection_dim = shape("visual.proj", 2)[1];

  const auto tokens = shape("token_embedding.weight", 2);
  c.text.vocab_size = tokens[0];
  c.text.hidden_size = tokens[1];
  c.text.max_position_embeddings = shape("positional_embedding", 2)[0];
  c.text.num_hidden_layers = count_layers(shapes, "transformer.resblocks.");
  DRAFT_CHECK(c.text.num_hidden_layers > 0, source, ": no transformer.resblocks.N tensors (text tower)");
  c.text.intermediate_size = shape("transformer.resblocks.0.mlp.c_fc.weight", 2)[0];
  c.text.num_attention_heads = std::max<int64_t>(1, c.text.hidden_size / 64);
  DRAFT_CHECK(shape("text_projection", 2)[1] == c.projection_dim, source, ": text_projection projects to ",
              shapes.at("text_projection")[1], " but visual.proj to ", c.projection_dim);
  c.text.projection_dim = c.vision.projection_dim = c.projection_dim;

  // OpenAI's checkpoints (QuickGELU) carry these scalars; OpenCLIP's LAION-trained models use exact GELU.
  const bool openai = shapes.count("input_resolution") || shapes.count("context_length") || shapes.count("vocab_size");
  c.text.hidden_act = c.vision.hidden_act = openai ? "quick_gelu" : "gelu";
  c.validate();
  return c;
}

std::map<std::string, at::Tensor> convert_open_clip_state_dict(const std::map<std::string, at::Tensor>& state,
                                                               const CLIPModelConfig& config,
                                                               const std::string& source) {
  std::vector<std::string> keys;
  for (const auto& item : state) keys.push_back(item.first);
  const std::string prefix = open_clip_prefix(keys);
  std::map<std::string, bool> used;
  std::map<std::string, at::Tensor> out;
  for (const auto& [target, from] : open_clip_sources(config, prefix)) {
    auto it = state.find(from.key);
    DRAFT_CHECK(it != state.end(), source, ": the OpenCLIP tensor '", from.key, "' (for ", target, ") is missing");
    out[target] = from.apply(it->second);
    used[from.key] = true;
  }
  for (const auto& key : keys) {
    const bool ignored = key.rfind(prefix, 0) == 0 && is_ignored_open_clip_key(key.substr(prefix.size()));
    DRAFT_CHECK(used.count(key) || ignored, source, ": the key '", key,
                "' has no transformers CLIPModel counterpart (unsupported OpenCLIP variant?)");
  }
  return out;
}

}  // namespace draft
