// CLIP text tower, following transformers v4.36 CLIPTextEmbeddings / CLIPTextTransformer / CLIPTextModel.
#include "models/clip_text_model.h"

#include <torch/torch.h>

#include "util/error.h"

namespace draft {

CLIPTextEmbeddingsImpl::CLIPTextEmbeddingsImpl(int64_t vocab_size, int64_t hidden_size,
                                               int64_t max_position_embeddings) {
  token_embedding = register_module("token_embedding", torch::nn::Embedding(vocab_size, hidden_size));
  position_embedding =
      register_module("position_embedding", torch::nn::Embedding(max_position_embeddings, hidden_size));
  // transformers' position_ids is a non-persistent buffer; positions are made on the fly instead, so the
  // module has no buffer that is absent from the state dict.
}

at::Tensor CLIPTextEmbeddingsImpl::forward(const at::Tensor& input_ids) {
  auto positions = torch::arange(input_ids.size(1), input_ids.options().dtype(torch::kLong));
  return token_embedding(input_ids) + position_embedding(positions);
}

CLIPTextTransformerImpl::CLIPTextTransformerImpl(const CLIPTextConfig& config)
    : max_position_embeddings_(config.max_position_embeddings), eos_token_id_(config.eos_token_id) {
  const CLIPEncoderOptions options = config.encoder_options();  // validates
  embeddings = register_module(
      "embeddings", CLIPTextEmbeddings(config.vocab_size, config.hidden_size, config.max_position_embeddings));
  encoder = register_module("encoder", CLIPEncoder(options));
  final_layer_norm = register_module(
      "final_layer_norm",
      torch::nn::LayerNorm(torch::nn::LayerNormOptions({config.hidden_size}).eps(config.layer_norm_eps)));
}

std::pair<at::Tensor, at::Tensor> CLIPTextTransformerImpl::embed(const at::Tensor& input_ids) {
  DRAFT_CHECK(input_ids.dim() == 2, "CLIP text model: input_ids must be [batch, length], got ",
              input_ids.sizes());
  DRAFT_CHECK(input_ids.scalar_type() == torch::kLong || input_ids.scalar_type() == torch::kInt,
              "CLIP text model: input_ids must be int64 or int32, got ", input_ids.scalar_type());
  const int64_t length = input_ids.size(1);
  DRAFT_CHECK(length >= 1 && length <= max_position_embeddings_, "CLIP text model: ", length,
              " tokens given, the model has max_position_embeddings = ", max_position_embeddings_);
  const int64_t vocab = embeddings->token_embedding->weight.size(0);
  if (input_ids.numel() > 0) {
    // Checked here because an out-of-range id is a device-side assert on CUDA.
    auto lo = input_ids.min().item<int64_t>(), hi = input_ids.max().item<int64_t>();
    DRAFT_CHECK(lo >= 0 && hi < vocab, "CLIP text model: token ids must be in [0, ", vocab, "), got [", lo,
                ", ", hi, "]; the tokenizer does not match this text encoder");
  }
  auto hidden = embeddings(input_ids);
  return {hidden, clip_causal_mask(length, hidden.scalar_type(), hidden.device())};
}

CLIPTextOutput CLIPTextTransformerImpl::forward(const at::Tensor& input_ids_in, const at::Tensor& attention_mask,
                                                bool output_hidden_states) {
  const auto device = embeddings->token_embedding->weight.device();
  const auto input_ids = input_ids_in.to(device);
  auto [hidden, causal] = embed(input_ids);
  at::Tensor padding;
  if (attention_mask.defined()) {
    DRAFT_CHECK(attention_mask.sizes() == input_ids.sizes(), "CLIP text model: attention_mask ",
                attention_mask.sizes(), " must have the shape of input_ids ", input_ids.sizes());
    padding = clip_padding_mask(attention_mask.to(device), hidden.scalar_type());
  }
  CLIPTextOutput out;
  auto last = encoder(hidden, causal, padding, output_hidden_states ? &out.hidden_states : nullptr);
  out.last_hidden_state = final_layer_norm(last);
  // Pooling (CLIPTextTransformer.forward): the first position holding the eos id; configs with the old
  // eos_token_id 2 use argmax(ids), which is the same position for CLIP vocabularies (eos is the largest).
  auto index = eos_token_id_ == 2 ? input_ids.to(torch::kInt).argmax(-1)
                                  : input_ids.eq(eos_token_id_).to(torch::kInt).argmax(-1);
  auto rows = torch::arange(input_ids.size(0), input_ids.options().dtype(torch::kLong));
  out.pooler_output = out.last_hidden_state.index({rows, index.to(torch::kLong)});
  return out;
}

at::Tensor CLIPTextTransformerImpl::forward_layers(const at::Tensor& input_ids, int64_t num_layers) {
  auto [hidden, causal] = embed(input_ids.to(embeddings->token_embedding->weight.device()));
  return final_layer_norm(encoder->forward(hidden, causal, {}, nullptr, num_layers));
}

CLIPTextModelImpl::CLIPTextModelImpl(CLIPTextConfig config) : config_(std::move(config)) {
  text_model = register_module("text_model", CLIPTextTransformer(config_));
}

CLIPTextOutput CLIPTextModelImpl::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                          bool output_hidden_states) {
  return text_model(input_ids, attention_mask, output_hidden_states);
}

at::Tensor CLIPTextModelImpl::encode(const at::Tensor& input_ids, int64_t clip_skip) {
  DRAFT_CHECK(clip_skip >= 0 && clip_skip < config_.num_hidden_layers, "clip_skip must be in [0, ",
              config_.num_hidden_layers - 1, "] for this text encoder (", config_.num_hidden_layers,
              " layers), got ", clip_skip);
  // hidden_states[-(k+1)] is the output of layer L-k; with k = 0 this is last_hidden_state.
  return text_model->forward_layers(input_ids, config_.num_hidden_layers - clip_skip);
}

CLIPTextModel load_clip_text_model(const std::string& folder, const WeightsOptions& options) {
  const auto config = CLIPTextConfig::from_json(ConfigJson::load(folder + "/config.json"));
  CLIPTextModel model(config);
  WeightsOptions weights = options;
  weights.ignore_suffixes.push_back("embeddings.position_ids");
  load_weights(*model, find_weight_files(folder), weights, folder);
  model->eval();
  return model;
}

}  // namespace draft
