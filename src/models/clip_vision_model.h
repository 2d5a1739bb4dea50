// CLIPVisionModelWithProjection: transformers' CLIP vision tower plus its projection, with state-dict keys
// "vision_model.embeddings...", "vision_model.pre_layrnorm..." (sic), "vision_model.encoder.layers.N...",
// "vision_model.post_layernorm...", "visual_projection.weight".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include "models/clip_config.h"
#include "models/weights.h"
#include "nn/clip_layers.h"

namespace draft {

/// What the vision model returns.
struct CLIPVisionOutput {
  at::Tensor last_hidden_state;  ///< [B, 1 + patches, D] encoder output (no post_layernorm)
  at::Tensor pooler_output;      ///< [B, D] post_layernorm(last_hidden_state[:, 0])
  at::Tensor image_embeds;       ///< [B, projection_dim] visual_projection(pooler_output), not normalised
  /// pre_layrnorm(embeddings) followed by each layer's output; filled only when asked for.
  std::vector<at::Tensor> hidden_states;
};

/// Patch convolution (no bias), a learned class token and learned position embeddings.
class CLIPVisionEmbeddingsImpl : public torch::nn::Module {
 public:
  explicit CLIPVisionEmbeddingsImpl(const CLIPVisionConfig& config);
  /// pixel_values [B, C, image_size, image_size] -> [B, 1 + patches, D].
  at::Tensor forward(const at::Tensor& pixel_values);

  at::Tensor class_embedding;
  torch::nn::Conv2d patch_embedding{nullptr};
  torch::nn::Embedding position_embedding{nullptr};
};
TORCH_MODULE(CLIPVisionEmbeddings);

/// transformers' CLIPVisionTransformer: embeddings, pre_layrnorm, encoder (no mask), post_layernorm on
/// the class token.
class CLIPVisionTransformerImpl : public torch::nn::Module {
 public:
  explicit CLIPVisionTransformerImpl(const CLIPVisionConfig& config);
  /// Fills last_hidden_state, pooler_output and (when asked) hidden_states.
  CLIPVisionOutput forward(const at::Tensor& pixel_values, bool output_hidden_states = false);

  CLIPVisionEmbeddings embeddings{nullptr};
  torch::nn::LayerNorm pre_layrnorm{nullptr};  // sic: the upstream key
  CLIPEncoder encoder{nullptr};
  torch::nn::LayerNorm post_layernorm{nullptr};
};
TORCH_MODULE(CLIPVisionTransformer);

/// transformers' CLIPVisionModelWithProjection: "vision_model" plus a bias-free "visual_projection".
class CLIPVisionModelWithProjectionImpl : public torch::nn::Module {
 public:
  explicit CLIPVisionModelWithProjectionImpl(CLIPVisionConfig config);
  /// pixel_values [B, num_channels, image_size, image_size], already normalised by the image processor
  /// (converted to the model's dtype and device here).
  CLIPVisionOutput forward(const at::Tensor& pixel_values, bool output_hidden_states = false);

  const CLIPVisionConfig& config() const { return config_; }

  CLIPVisionTransformer vision_model{nullptr};
  torch::nn::Linear visual_projection{nullptr};

 private:
  CLIPVisionConfig config_;
};
TORCH_MODULE(CLIPVisionModelWithProjection);

/// Loads a transformers CLIPVisionModelWithProjection folder (config.json + model.safetensors; e.g. a
/// diffusers `image_encoder/`). "embeddings.position_ids" in older checkpoints is ignored. Throws
/// draft::Error naming the folder on any key or shape mismatch. The model is returned in eval mode.
CLIPVisionModelWithProjection load_clip_vision_model(const std::string& folder, const WeightsOptions& options = {});

}  // namespace draft
