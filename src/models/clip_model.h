// CLIPModel: transformers' dual-tower CLIP (text tower, vision tower, both projections, logit_scale), the
// base of the preference-model rewards. Loads transformers folders and OpenCLIP / OpenAI checkpoints.
#pragma once

#include <cstdint>
#include <string>

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include "io/config_json.h"
#include "models/clip_config.h"
#include "models/clip_text_model.h"
#include "models/clip_vision_model.h"
#include "models/weights.h"

namespace draft {

/// transformers' CLIPConfig: the two tower configs plus the shared embedding size.
struct CLIPModelConfig {
  CLIPTextConfig text;
  CLIPVisionConfig vision;
  int64_t projection_dim = 512;
  /// Initial value of logit_scale (log of the inverse temperature); the loaded weights replace it.
  double logit_scale_init_value = 2.6592;

  /// Reads a CLIPModel config.json (model_type "clip", with "text_config" / "vision_config"). Missing keys
  /// get transformers' defaults; the towers' projection_dim is the top-level one, as in transformers.
  static CLIPModelConfig from_json(const ConfigJson& config);
  /// Throws draft::Error naming the key when a value is out of range or the towers disagree with
  /// projection_dim.
  void validate() const;
};

/// transformers' CLIPModel. Submodules "text_model" (CLIPTextTransformer), "vision_model"
/// (CLIPVisionTransformer), "visual_projection" and "text_projection" (Linear, no bias) and the scalar
/// parameter "logit_scale", so the module's names are the state-dict keys of a transformers checkpoint.
///
/// Built with `with_text = false` it holds only the vision tower, visual_projection and logit_scale (the
/// aesthetic reward needs no text tower, and CLIP ViT-L/14's costs 0.5 GB).
class CLIPModelImpl : public torch::nn::Module {
 public:
  explicit CLIPModelImpl(CLIPModelConfig config, bool with_text = true);

  /// visual_projection(pooler_output) for pixel_values [B, C, image_size, image_size] already
  /// normalised (cast to the model's dtype and device here). Not L2-normalised.
  at::Tensor get_image_features(const at::Tensor& pixel_values);
  /// text_projection(pooler_output) for input_ids [B, T]; attention_mask optional (1 = token). Not
  /// L2-normalised. Throws when the model was built without its text tower.
  at::Tensor get_text_features(const at::Tensor& input_ids, const at::Tensor& attention_mask = {});

  const CLIPModelConfig& config() const { return config_; }
  bool has_text() const { return !text_model.is_empty(); }

  CLIPTextTransformer text_model{nullptr};
  CLIPVisionTransformer vision_model{nullptr};
  torch::nn::Linear visual_projection{nullptr};
  torch::nn::Linear text_projection{nullptr};
  at::Tensor logit_scale;

 private:
  CLIPModelConfig config_;
};
TORCH_MODULE(CLIPModel);

/// Loads a CLIPModel from `path`: a folder, or one .safetensors file (its folder then holds the config).
/// The key layout is detected from the file:
///  - transformers (`vision_model.embeddings.patch_embedding.weight`, ...): config.json is required; the
///    weights are model.safetensors (or its shards), else the one *.safetensors file of the folder.
///  - OpenCLIP / OpenAI (`visual.conv1.weight`, `transformer.resblocks.N...`, optionally under `module.`):
///    the sizes come from open_clip_config.json when the folder has one, else from the tensor shapes
///    (see open_clip_layout.h); the tensors are renamed, split and transposed while loading.
/// Loading is strict: a missing, unexpected or wrong-shaped tensor is an error naming the file
/// ("position_ids" buffers and OpenCLIP's attn_mask are ignored). `with_text = false` loads only the
/// vision side and ignores the text tensors. options.prefix applies to transformers-layout keys only
/// (OpenCLIP's prefix is detected). The model is returned in eval mode.
CLIPModel load_clip_model(const std::string& path, const WeightsOptions& options = {}, bool with_text = true);

/// The weight file(s) load_clip_model reads for `path` (a folder or a file); throws naming the folder,
/// with the conversion hint when only pickle files are there.
std::vector<std::string> clip_weight_files(const std::string& path);

}  // namespace draft
