// Exponential moving average of weights (Polyak averaging), the weights a diffusion model ships with.
#pragma once

#include <cstdint>

#include <torch/nn/module.h>

namespace draft {

/// The decay at optimizer step `step` (0-based): min(decay, (1 + step) / (10 + step)), so early averages
/// are not dominated by the random initialisation (diffusers' EMAModel without use_ema_warmup).
double ema_decay_at(double decay, int64_t step);

/// ema <- decay * ema + (1 - decay) * model for every parameter; buffers are copied. Both modules must
/// have the same parameter names and shapes (throws draft::Error naming the first mismatch).
void ema_update(torch::nn::Module& ema, const torch::nn::Module& model, double decay);

/// Copies every parameter and buffer of `from` into `to` (same names and shapes).
void copy_weights(torch::nn::Module& to, const torch::nn::Module& from);

}  // namespace draft
