// AutoencoderKL: diffusers' KL-regularised VAE of Stable Diffusion (image <-> latent), with state-dict
// keys exactly as diffusers writes them.
#pragma once

#include <string>

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>

#include "models/vae_config.h"
#include "models/vae_decoder.h"
#include "models/vae_encoder.h"
#include "models/weights.h"
#include "nn/tensor_trace.h"

namespace draft {

/// The encoder's posterior N(mean, exp(logvar)) per latent element (diffusers
/// DiagonalGaussianDistribution); logvar is already clamped to [-30, 20].
struct DiagonalGaussian {
  at::Tensor mean;
  at::Tensor logvar;
  /// exp(0.5 * logvar) (diffusers `std`).
  at::Tensor stddev() const;
  /// mean + std * noise, with noise ~ N(0, I) of the latent's shape supplied by the caller.
  at::Tensor sample(const at::Tensor& noise) const;
};

/// encode: quant_conv(encoder(x)) split into mean / logvar; decode: decoder(post_quant_conv(z)).
/// Keys: encoder.*, decoder.*, quant_conv, post_quant_conv.
class AutoencoderKLImpl : public torch::nn::Module {
 public:
  explicit AutoencoderKLImpl(const VAEConfig& config);

  /// x: (B, in_channels, H, W) in [-1, 1]. Records encoder.conv_in, encoder.down_blocks.N,
  /// encoder.mid_block, encoder, quant_conv when trace is non-null.
  DiagonalGaussian encode(const at::Tensor& x, TensorTrace* trace = nullptr);
  /// z: (B, latent_channels, h, w), already divided by scaling_factor. Returns the raw decoder output
  /// (about [-1, 1], not clamped). Records post_quant_conv, decoder.conv_in, decoder.mid_block,
  /// decoder.up_blocks.N when trace is non-null.
  at::Tensor decode(const at::Tensor& z, TensorTrace* trace = nullptr);
  /// Pipeline decode: images = clamp(decode(latents / scaling_factor) / 2 + 0.5, 0, 1), (B, C, H, W).
  /// Differentiable (clamp passes gradients inside [0, 1]).
  at::Tensor decode_latents_to_images(const at::Tensor& latents);

  const VAEConfig& config() const { return config_; }

  VAEEncoder encoder{nullptr};
  VAEDecoder decoder{nullptr};
  torch::nn::Conv2d quant_conv{nullptr};
  torch::nn::Conv2d post_quant_conv{nullptr};

 private:
  VAEConfig config_;
};
TORCH_MODULE(AutoencoderKL);

/// Builds the VAE from `folder`/config.json and loads its .safetensors weights strictly, converted to
/// options.dtype on options.device. Throws draft::Error naming the folder and the offending keys.
AutoencoderKL load_vae(const std::string& folder, const WeightsOptions& options = {});

}  // namespace draft
