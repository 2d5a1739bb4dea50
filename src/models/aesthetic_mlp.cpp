// LAION aesthetic predictor v2 head (christophschuhmann/improved-aesthetic-predictor, simple_inference.py).
#include "models/aesthetic_mlp.h"

#include <torch/torch.h>

#include "io/safetensors.h"
#include "util/error.h"

namespace draft {

AestheticMLPImpl::AestheticMLPImpl(AestheticMLPConfig config) : config_(config) {
  DRAFT_CHECK(config_.input_size > 0, "AestheticMLPConfig.input_size must be positive, got ", config_.input_size);
  // Sequential indices 1, 3, 5 are the Dropout layers: identity at inference, no tensors. Identity
  // modules take their places so that the linear layers keep the reference's indices (and keys).
  layers_ = register_module("layers", torch::nn::Sequential(
      torch::nn::Linear(config_.input_size, 1024), torch::nn::Identity(),
      torch::nn::Linear(1024, 128), torch::nn::Identity(),
      torch::nn::Linear(128, 64), torch::nn::Identity(),
      torch::nn::Linear(64, 16),
      torch::nn::Linear(16, 1)));
}

at::Tensor AestheticMLPImpl::forward(const at::Tensor& embeddings) {
  DRAFT_CHECK(embeddings.dim() == 2 && embeddings.size(1) == config_.input_size,
              "aesthetic head: embeddings must be (B, ", config_.input_size, "), got ", embeddings.sizes());
  return layers_->forward(embeddings).squeeze(1);
}

AestheticMLP load_aesthetic_mlp(const std::string& file, const WeightsOptions& options) {
  AestheticMLPConfig config;
  {
    for (const char* ext : {".pth", ".pt", ".ckpt", ".bin"}) {
      const std::string e = ext;
      DRAFT_CHECK(file.size() < e.size() || file.compare(file.size() - e.size(), e.size(), e) != 0, file,
                  ": pickle checkpoints are never read; convert it once with Python: `python -c \"import torch, "
                  "safetensors.torch as st; st.save_file(torch.load('", file, "', map_location='cpu'), '",
                  file.substr(0, file.size() - e.size()), ".safetensors')\"`");
    }
    SafeTensorsFile weights(file);
    const TensorInfo* first = weights.find("layers.0.weight");
    DRAFT_CHECK(first != nullptr && first->shape.size() == 2, file,
                ": no 2-D 'layers.0.weight' tensor; not an improved-aesthetic-predictor head");
    config.input_size = first->shape[1];
  }
  AestheticMLP model(config);
  load_weights(*model, {file}, options, file);
  model->eval();
  return model;
}

}  // namespace draft
