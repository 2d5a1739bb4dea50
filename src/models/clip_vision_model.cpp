// CLIP vision tower, following transformers v4.36 CLIPVisionEmbeddings / CLIPVisionTransformer /
// CLIPVisionModelWithProjection.
#include "models/clip_vision_model.h"

#include <torch/torch.h>

#include "util/error.h"

namespace draft {

CLIPVisionEmbeddingsImpl::CLIPVisionEmbeddingsImpl(const CLIPVisionConfig& config) {
  class_embedding = register_parameter("class_embedding", torch::randn({config.hidden_size}));
  patch_embedding = register_module(
      "patch_embedding",
      torch::nn::Conv2d(torch::nn::Conv2dOptions(config.num_channels, config.hidden_size, config.patch_size)
                            .stride(config.patch_size)
                            .bias(false)));
  position_embedding =
      register_module("position_embedding", torch::nn::Embedding(config.num_positions(), config.hidden_size));
}

at::Tensor CLIPVisionEmbeddingsImpl::forward(const at::Tensor& pixel_values) {
  const int64_t batch = pixel_values.size(0);
  // 1. Non-overlapping patches -> [B, patches, D].
  auto patches = patch_embedding(pixel_values).flatten(2).transpose(1, 2);
  // 2. Class token first, then add one position row per token (position_embedding(arange(N+1))).
  auto cls = class_embedding.expand({batch, 1, -1});
  return torch::cat({cls, patches}, 1) + position_embedding->weight;
}

CLIPVisionTransformerImpl::CLIPVisionTransformerImpl(const CLIPVisionConfig& config) {
  const CLIPEncoderOptions options = config.encoder_options();  // validates
  auto ln = [&] {
    return torch::nn::LayerNorm(torch::nn::LayerNormOptions({config.hidden_size}).eps(config.layer_norm_eps));
  };
  embeddings = register_module("embeddings", CLIPVisionEmbeddings(config));
  pre_layrnorm = register_module("pre_layrnorm", ln());
  encoder = register_module("encoder", CLIPEncoder(options));
  post_layernorm = register_module("post_layernorm", ln());
}

CLIPVisionOutput CLIPVisionTransformerImpl::forward(const at::Tensor& pixel_values, bool output_hidden_states) {
  CLIPVisionOutput out;
  auto hidden = pre_layrnorm(embeddings(pixel_values));
  out.last_hidden_state = encoder->forward(hidden, {}, {}, output_hidden_states ? &out.hidden_states : nullptr);
  out.pooler_output = post_layernorm(out.last_hidden_state.select(1, 0));
  return out;
}

CLIPVisionModelWithProjectionImpl::CLIPVisionModelWithProjectionImpl(CLIPVisionConfig config)
    : config_(std::move(config)) {
  vision_model = register_module("vision_model", CLIPVisionTransformer(config_));
  visual_projection = register_module(
      "visual_projection",
      torch::nn::Linear(torch::nn::LinearOptions(config_.hidden_size, config_.projection_dim).bias(false)));
}

CLIPVisionOutput CLIPVisionModelWithProjectionImpl::forward(const at::Tensor& pixel_values,
                                                            bool output_hidden_states) {
  const auto& c = config_;
  DRAFT_CHECK(pixel_values.dim() == 4 && pixel_values.size(1) == c.num_channels &&
                  pixel_values.size(2) == c.image_size && pixel_values.size(3) == c.image_size,
              "CLIP vision model: pixel_values must be [batch, ", c.num_channels, ", ", c.image_size, ", ",
              c.image_size, "] (resize to the model's image_size first), got ", pixel_values.sizes());
  DRAFT_CHECK(at::isFloatingType(pixel_values.scalar_type()),
              "CLIP vision model: pixel_values must be floating point, got ", pixel_values.scalar_type());
  // The reference casts pixels to the patch conv's dtype; the device is matched for convenience.
  const auto& w = vision_model->embeddings->patch_embedding->weight;
  auto out = vision_model(pixel_values.to(w.device(), w.scalar_type()), output_hidden_states);
  out.image_embeds = visual_projection(out.pooler_output);
  return out;
}

CLIPVisionModelWithProjection load_clip_vision_model(const std::string& folder, const WeightsOptions& options) {
  const auto config = CLIPVisionConfig::from_json(ConfigJson::load(folder + "/config.json"));
  CLIPVisionModelWithProjection model(config);
  WeightsOptions weights = options;
  weights.ignore_suffixes.push_back("embeddings.position_ids");
  load_weights(*model, find_weight_files(folder), weights, folder);
  model->eval();
  return model;
}

}  // namespace draft
