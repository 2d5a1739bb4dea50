// The LAION aesthetic predictor v2 head (improved-aesthetic-predictor's MLP): five linear layers, no
// activations, on L2-normalised CLIP ViT-L/14 image embeddings; predicts a 1-10 aesthetic rating.
#pragma once

#include <cstdint>
#include <string>

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/pimpl.h>

#include "models/weights.h"

namespace draft {

/// The head's sizes: input_size -> 1024 -> 128 -> 64 -> 16 -> 1.
struct AestheticMLPConfig {
  int64_t input_size = 768;  ///< CLIP ViT-L/14's projection_dim
};

/// improved-aesthetic-predictor's `MLP.layers`, an nn.Sequential of Linear(in, 1024), Dropout(0.2),
/// Linear(1024, 128), Dropout(0.2), Linear(128, 64), Dropout(0.1), Linear(64, 16), Linear(16, 1). The
/// ReLUs are commented out in the released model, so it is affine in its input. The dropouts are
/// identity at inference and hold no tensors, so the linear layers are registered at their Sequential
/// indices: state-dict keys layers.0, layers.2, layers.4, layers.6, layers.7 (.weight / .bias).
class AestheticMLPImpl : public torch::nn::Module {
 public:
  explicit AestheticMLPImpl(AestheticMLPConfig config = {});
  /// embeddings (B, input_size), already L2-normalised as the reference does -> (B) ratings.
  at::Tensor forward(const at::Tensor& embeddings);

  const AestheticMLPConfig& config() const { return config_; }

 private:
  AestheticMLPConfig config_;
  torch::nn::Sequential layers_{nullptr};
};
TORCH_MODULE(AestheticMLP);

/// Loads the head from a .safetensors file holding layers.{0,2,4,6,7}.{weight,bias} (the released
/// sac+logos+ava1-l14-linearMSE.pth converted; input_size is read from layers.0.weight). Strict; errors
/// name the file. A .pth is refused with the conversion one-liner. Returned in eval mode.
AestheticMLP load_aesthetic_mlp(const std::string& file, const WeightsOptions& options = {});

}  // namespace draft
