// UNet2DCondition: diffusers' UNet2DConditionModel (the SD 1.x / 2.x noise predictor) in LibTorch, with
// state-dict keys exactly as diffusers writes them.
#pragma once

#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include "models/unet_config.h"
#include "models/weights.h"
#include "nn/embeddings.h"
#include "nn/tensor_trace.h"
#include "nn/unet_blocks.h"

namespace draft {

/// eps = UNet(x_t, t, text): conv_in, down blocks (keeping skip tensors), mid block, up blocks
/// (consuming them), GroupNorm, SiLU, conv_out. Keys: conv_in, time_embedding.linear_{1,2},
/// down_blocks.N, mid_block, up_blocks.N, conv_norm_out, conv_out.
/// Differentiable end to end: forward uses no in-place ops and never reads tensor values on the host.
class UNet2DConditionImpl : public torch::nn::Module {
 public:
  explicit UNet2DConditionImpl(const UNetConfig& config);

  /// sample: (B, in_channels, H, W) in the module's dtype; timesteps: int64 or floating, a scalar,
  /// (1) (broadcast to the batch) or (B); encoder_hidden_states: (B, M, cross_attention_dim).
  /// Returns (B, out_channels, H, W).
  at::Tensor forward(const at::Tensor& sample, const at::Tensor& timesteps, const at::Tensor& encoder_hidden_states);

  /// As forward, also recording intermediates under the fixture names: time_proj, time_embedding,
  /// conv_in, down_blocks.N, mid_block, up_blocks.N, conv_norm_out, conv_out.
  at::Tensor forward_traced(const at::Tensor& sample, const at::Tensor& timesteps,
                            const at::Tensor& encoder_hidden_states, TensorTrace& trace);

  const UNetConfig& config() const { return config_; }

  torch::nn::Conv2d conv_in{nullptr};
  TimestepEmbedding time_embedding{nullptr};
  torch::nn::ModuleList down_blocks{nullptr};
  UNetMidBlock2DCrossAttn mid_block{nullptr};
  torch::nn::ModuleList up_blocks{nullptr};
  torch::nn::GroupNorm conv_norm_out{nullptr};
  torch::nn::Conv2d conv_out{nullptr};

 private:
  at::Tensor run(const at::Tensor& sample, const at::Tensor& timesteps, const at::Tensor& encoder_hidden_states,
                 TensorTrace* trace);

  UNetConfig config_;
  std::vector<bool> down_has_attention_, up_has_attention_;
};
TORCH_MODULE(UNet2DCondition);

/// Builds the UNet from `folder`/config.json and loads its .safetensors weights strictly (every key
/// present with the right shape, no extras), converted to options.dtype on options.device. Throws
/// draft::Error naming the folder and the offending keys.
UNet2DCondition load_unet(const std::string& folder, const WeightsOptions& options = {});

}  // namespace draft
