// FashionClassifier: the small CNN that judges Fashion-MNIST images; a differentiable reward and the
// feature extractor of the Fréchet distance of the embedded model's samples.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include "io/config_json.h"
#include "models/weights.h"

namespace draft {

/// The classifier's architecture, stored as config.json next to model.safetensors.
struct FashionClassifierConfig {
  int64_t in_channels = 1;
  int64_t image_size = 32;  ///< inputs must be image_size x image_size
  /// Output channels of each level; every level but the first starts with a 2x2 average pool, and the
  /// head pools once more.
  std::vector<int64_t> channels = {16, 32, 64};
  int64_t layers_per_block = 2;  ///< (GroupNorm ->) SiLU -> 3x3 conv layers per level
  int64_t norm_num_groups = 8;   ///< GroupNorm groups; 0: no normalization
  int64_t hidden = 256;  ///< width of the penultimate features
  int64_t num_classes = 10;
  /// Class names by index (empty or num_classes entries).
  std::vector<std::string> labels;

  /// Reads config.json; unknown architecture values throw draft::Error naming the file and key.
  static FashionClassifierConfig from_json(const ConfigJson& config);
  nlohmann::json to_json() const;
  /// Throws draft::Error naming the key when the options are inconsistent.
  void validate() const;
};

/// One level: layers_per_block x (GroupNorm -> SiLU -> 3x3 conv), normalization first as in diffusers'
/// ResnetBlock2D. Keys: norms.N (absent when groups is 0), convs.N.
class FashionConvBlockImpl : public torch::nn::Module {
 public:
  FashionConvBlockImpl(int64_t in_channels, int64_t out_channels, int64_t layers, int64_t groups);
  at::Tensor forward(at::Tensor x);

  torch::nn::ModuleList convs;
  torch::nn::ModuleList norms;
};
TORCH_MODULE(FashionConvBlock);

/// images in [0, 1] -> conv_in -> blocks (average pool between levels) -> SiLU -> average pool ->
/// flatten -> fc1 -> SiLU (the features) -> fc2 (the logits). No BatchNorm and no dropout: train and eval
/// modes compute the same function, which a reward model needs. Keys: conv_in, blocks.N.norms.M,
/// blocks.N.convs.M, fc1, fc2.
class FashionClassifierImpl : public torch::nn::Module {
 public:
  explicit FashionClassifierImpl(const FashionClassifierConfig& config);

  /// images: (B, in_channels, image_size, image_size) in [0, 1]. Returns logits (B, num_classes).
  /// Differentiable with respect to the images.
  at::Tensor forward(const at::Tensor& images);
  /// The penultimate features (B, hidden), after the activation: what Fréchet distances compare.
  at::Tensor features(const at::Tensor& images);

  const FashionClassifierConfig& config() const { return config_; }

  torch::nn::Conv2d conv_in{nullptr};
  torch::nn::ModuleList blocks;
  torch::nn::Linear fc1{nullptr};
  torch::nn::Linear fc2{nullptr};

 private:
  FashionClassifierConfig config_;
};
TORCH_MODULE(FashionClassifier);

/// Builds the classifier from `folder`/config.json and loads `folder`/model.safetensors strictly.
FashionClassifier load_fashion_classifier(const std::string& folder, const WeightsOptions& options = {});

/// Writes `folder`/config.json and `folder`/model.safetensors (float32, on the CPU), creating the folder.
void save_fashion_classifier(const std::string& folder, FashionClassifier& model);

}  // namespace draft
