// CLIPTextModel: transformers' CLIP text tower (the Stable Diffusion text encoder), with state-dict keys
// "text_model.embeddings...", "text_model.encoder.layers.N...", "text_model.final_layer_norm...".
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include "models/clip_config.h"
#include "models/weights.h"
#include "nn/clip_layers.h"

namespace draft {

/// What the text model returns.
struct CLIPTextOutput {
  at::Tensor last_hidden_state;  ///< [B, T, D] after final_layer_norm (SD 1.x encoder_hidden_states)
  at::Tensor pooler_output;      ///< [B, D] last_hidden_state at the first eos position
  /// Embeddings output followed by each layer's output (before final_layer_norm); filled only when
  /// output_hidden_states is asked for.
  std::vector<at::Tensor> hidden_states;
};

/// Token embedding plus learned absolute position embedding.
class CLIPTextEmbeddingsImpl : public torch::nn::Module {
 public:
  CLIPTextEmbeddingsImpl(int64_t vocab_size, int64_t hidden_size, int64_t max_position_embeddings);
  /// ids [B, T] -> [B, T, D]; positions are 0..T-1.
  at::Tensor forward(const at::Tensor& input_ids);

  torch::nn::Embedding token_embedding{nullptr};
  torch::nn::Embedding position_embedding{nullptr};
};
TORCH_MODULE(CLIPTextEmbeddings);

/// transformers' CLIPTextTransformer: embeddings, causal encoder, final LayerNorm and eos pooling.
class CLIPTextTransformerImpl : public torch::nn::Module {
 public:
  explicit CLIPTextTransformerImpl(const CLIPTextConfig& config);
  CLIPTextOutput forward(const at::Tensor& input_ids, const at::Tensor& attention_mask = {},
                         bool output_hidden_states = false);
  /// final_layer_norm of the output of the first `num_layers` encoder layers (no pooling); the layers
  /// after them are not run.
  at::Tensor forward_layers(const at::Tensor& input_ids, int64_t num_layers);

  CLIPTextEmbeddings embeddings{nullptr};
  CLIPEncoder encoder{nullptr};
  torch::nn::LayerNorm final_layer_norm{nullptr};

 private:
  /// Embeddings and the additive causal mask for ids [B, T] (checks the ids).
  std::pair<at::Tensor, at::Tensor> embed(const at::Tensor& input_ids);

  int64_t max_position_embeddings_;
  int64_t eos_token_id_;
};
TORCH_MODULE(CLIPTextTransformer);

/// transformers' CLIPTextModel: a CLIPTextTransformer registered as "text_model".
class CLIPTextModelImpl : public torch::nn::Module {
 public:
  explicit CLIPTextModelImpl(CLIPTextConfig config);

  /// input_ids [B, T] (int64 or int32, T <= max_position_embeddings); attention_mask [B, T] with
  /// 1 = token, 0 = padding, added to the causal mask as (1 - mask) * finfo.min.
  CLIPTextOutput forward(const at::Tensor& input_ids, const at::Tensor& attention_mask = {},
                         bool output_hidden_states = false);

  /// The prompt embedding a diffusion pipeline conditions on. clip_skip 0: last_hidden_state;
  /// k > 0: final_layer_norm(hidden_states[-(k+1)]), as diffusers' encode_prompt(clip_skip=k).
  /// Only the layers needed are run. k must be below num_hidden_layers.
  at::Tensor encode(const at::Tensor& input_ids, int64_t clip_skip = 0);

  const CLIPTextConfig& config() const { return config_; }

  CLIPTextTransformer text_model{nullptr};

 private:
  CLIPTextConfig config_;
};
TORCH_MODULE(CLIPTextModel);

/// Loads a transformers CLIPTextModel folder (config.json + model.safetensors, e.g. a diffusers
/// `text_encoder/`). `options.prefix` is put before "text_model."; "embeddings.position_ids", which
/// older checkpoints contain, is ignored. Throws draft::Error naming the folder on any key or shape
/// mismatch between config and weights. The model is returned in eval mode.
CLIPTextModel load_clip_text_model(const std::string& folder, const WeightsOptions& options = {});

}  // namespace draft
