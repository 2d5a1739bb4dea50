// Timestep embeddings following diffusers v0.25 models/embeddings.py (get_timestep_embedding,
// TimestepEmbedding).
#include "nn/embeddings.h"

#include <cmath>

#include <torch/torch.h>

#include "util/error.h"

namespace draft {

at::Tensor timestep_embedding(const at::Tensor& timesteps, int64_t dim, bool flip_sin_to_cos, double freq_shift,
                              double scale, double max_period) {
  DRAFT_CHECK(timesteps.dim() == 1, "timestep_embedding: timesteps must be 1-D, got ", timesteps.sizes());
  const int64_t half = dim / 2;
  auto f32 = torch::TensorOptions().dtype(torch::kFloat).device(timesteps.device());
  // 1. exponent_j = -ln(max_period) * j / (half - freq_shift), in float32 as upstream
  at::Tensor exponent = torch::arange(0, half, f32) * (-std::log(max_period));
  exponent = exponent / (static_cast<double>(half) - freq_shift);
  // 2. args = t * exp(exponent), scaled
  at::Tensor args = timesteps.unsqueeze(1).to(torch::kFloat) * torch::exp(exponent).unsqueeze(0);
  if (scale != 1.0) args = args * scale;
  // 3. [sin, cos] or [cos, sin]
  at::Tensor emb = flip_sin_to_cos ? torch::cat({torch::cos(args), torch::sin(args)}, -1)
                                   : torch::cat({torch::sin(args), torch::cos(args)}, -1);
  if (dim % 2 == 1) emb = torch::nn::functional::pad(emb, torch::nn::functional::PadFuncOptions({0, 1, 0, 0}));
  return emb;
}

TimestepEmbeddingImpl::TimestepEmbeddingImpl(int64_t in_channels, int64_t time_embed_dim) {
  linear_1 = register_module("linear_1", torch::nn::Linear(in_channels, time_embed_dim));
  linear_2 = register_module("linear_2", torch::nn::Linear(time_embed_dim, time_embed_dim));
}

at::Tensor TimestepEmbeddingImpl::forward(const at::Tensor& x) { return linear_2(torch::silu(linear_1(x))); }

}  // namespace draft
