// Test helper: a tiny transformers CLIPModel folder assembled from the clip_text_tiny and clip_vision_tiny
// fixture towers (plus a seeded text_projection and logit_scale), and the same weights in OpenCLIP's layout
// through an inverse mapping written independently of src/models/open_clip_layout.cpp.
#pragma once

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "io/config_json.h"
#include "io/safetensors.h"
#include "support.h"

namespace draft::test {

/// Layers of each fixture tower.
constexpr int64_t kTinyLayers = 2;

/// transformers CLIPModel tensors: both fixture towers, text_projection ~ N(0, 0.2) and logit_scale
/// log(1/0.07) + 0.1, seeded.
inline std::map<std::string, at::Tensor> tiny_clip_state() {
  std::map<std::string, at::Tensor> state;
  for (const char* tower : {"clip_text_tiny", "clip_vision_tiny"}) {
    for (auto& [key, value] : SafeTensorsFile(test_data(std::string(tower) + "/model.safetensors")).load_all()) {
      state[key] = value;
    }
  }
  torch::manual_seed(1234);
  state["text_projection.weight"] = torch::randn({16, 32}) * 0.2;
  state["logit_scale"] = torch::full({}, 2.6592 + 0.1);
  return state;
}

/// A CLIPModel config.json made of the two fixture tower configs.
inline nlohmann::json tiny_clip_config() {
  nlohmann::json config = {{"model_type", "clip"}, {"projection_dim", 16}, {"logit_scale_init_value", 2.6592}};
  config["text_config"] = ConfigJson::load(test_data("clip_text_tiny/config.json")).json;
  config["vision_config"] = ConfigJson::load(test_data("clip_vision_tiny/config.json")).json;
  return config;
}

inline void save_state(const std::string& path, const std::map<std::string, at::Tensor>& state) {
  std::vector<std::pair<std::string, at::Tensor>> tensors(state.begin(), state.end());
  save_safetensors(path, tensors);
}

inline void copy_tokenizer(const std::string& dir) {
  std::filesystem::create_directories(dir);
  for (const char* name : {"vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"}) {
    std::filesystem::copy_file(test_data(std::string("tokenizer_clip/") + name), dir + "/" + name,
                               std::filesystem::copy_options::overwrite_existing);
  }
}

/// Writes config.json, model.safetensors and (when asked) the tokenizer files into `dir`.
inline void write_tiny_clip_folder(const std::string& dir, bool with_tokenizer = true) {
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/config.json") << tiny_clip_config().dump(2);
  save_state(dir + "/model.safetensors", tiny_clip_state());
  if (with_tokenizer) copy_tokenizer(dir);
}

/// The OpenCLIP names of a transformers CLIPModel state dict (the inverse of the loader's mapping).
inline std::map<std::string, at::Tensor> to_open_clip(const std::map<std::string, at::Tensor>& hf,
                                                      const std::string& prefix = "") {
  std::map<std::string, at::Tensor> out;
  auto put = [&](const std::string& key, const at::Tensor& value) { out[prefix + key] = value.contiguous(); };
  auto blocks = [&](const std::string& hf_stem, const std::string& oc_stem) {
    for (int64_t i = 0; i < kTinyLayers; ++i) {
      const std::string h = hf_stem + std::to_string(i) + ".", o = oc_stem + std::to_string(i) + ".";
      for (const char* p : {"weight", "bias"}) {
        const std::string s = p;
        put(o + "attn.in_proj_" + s, torch::cat({hf.at(h + "self_attn.q_proj." + s), hf.at(h + "self_attn.k_proj." + s),
                                                 hf.at(h + "self_attn.v_proj." + s)}, 0));
        put(o + "attn.out_proj." + s, hf.at(h + "self_attn.out_proj." + s));
        put(o + "ln_1." + s, hf.at(h + "layer_norm1." + s));
        put(o + "ln_2." + s, hf.at(h + "layer_norm2." + s));
        put(o + "mlp.c_fc." + s, hf.at(h + "mlp.fc1." + s));
        put(o + "mlp.c_proj." + s, hf.at(h + "mlp.fc2." + s));
      }
    }
  };
  put("visual.class_embedding", hf.at("vision_model.embeddings.class_embedding"));
  put("visual.conv1.weight", hf.at("vision_model.embeddings.patch_embedding.weight"));
  put("visual.positional_embedding", hf.at("vision_model.embeddings.position_embedding.weight"));
  for (const char* p : {"weight", "bias"}) {
    put(std::string("visual.ln_pre.") + p, hf.at(std::string("vision_model.pre_layrnorm.") + p));
    put(std::string("visual.ln_post.") + p, hf.at(std::string("vision_model.post_layernorm.") + p));
    put(std::string("ln_final.") + p, hf.at(std::string("text_model.final_layer_norm.") + p));
  }
  blocks("vision_model.encoder.layers.", "visual.transformer.resblocks.");
  put("visual.proj", hf.at("visual_projection.weight").t());
  put("token_embedding.weight", hf.at("text_model.embeddings.token_embedding.weight"));
  put("positional_embedding", hf.at("text_model.embeddings.position_embedding.weight"));
  blocks("text_model.encoder.layers.", "transformer.resblocks.");
  put("text_projection", hf.at("text_projection.weight").t());
  put("logit_scale", hf.at("logit_scale"));
  // OpenCLIP's causal mask buffer, present in older checkpoints; it has no transformers counterpart.
  put("attn_mask", torch::full({77, 77}, -INFINITY).triu(1));
  return out;
}

/// OpenCLIP's model config of the tiny towers (head width 8, quick_gelu, mlp width 37).
inline nlohmann::json tiny_open_clip_config() {
  return {{"embed_dim", 16},
          {"quick_gelu", true},
          {"vision_cfg", {{"image_size", 32}, {"layers", 2}, {"width", 32}, {"head_width", 8}, {"patch_size", 8},
                          {"mlp_ratio", 37.0 / 32.0}}},
          {"text_cfg", {{"context_length", 77}, {"vocab_size", 49408}, {"width", 32}, {"heads", 4}, {"layers", 2},
                        {"mlp_ratio", 37.0 / 32.0}}}};
}

}  // namespace draft::test
