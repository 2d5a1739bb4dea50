// Timestep embeddings of the UNet: the sinusoidal projection and the TimestepEmbedding MLP.
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

namespace draft {

/// Sinusoidal timestep embedding (diffusers `get_timestep_embedding`, from "Attention Is All You Need"
/// / DDPM): half = dim/2, freq_j = exp(-ln(max_period) * j / (half - freq_shift)), args = t * freq;
/// returns [sin(args), cos(args)], or [cos, sin] with flip_sin_to_cos; zero-padded when dim is odd.
/// timesteps: (B) of any numeric dtype; the result is (B, dim) float32, always computed in float32.
at::Tensor timestep_embedding(const at::Tensor& timesteps, int64_t dim, bool flip_sin_to_cos, double freq_shift,
                              double scale = 1.0, double max_period = 10000.0);

/// diffusers `TimestepEmbedding` (act_fn="silu"): linear_2(SiLU(linear_1(x))). Keys: linear_1, linear_2.
class TimestepEmbeddingImpl : public torch::nn::Module {
 public:
  TimestepEmbeddingImpl(int64_t in_channels, int64_t time_embed_dim);
  at::Tensor forward(const at::Tensor& x);

  torch::nn::Linear linear_1{nullptr}, linear_2{nullptr};
};
TORCH_MODULE(TimestepEmbedding);

}  // namespace draft
