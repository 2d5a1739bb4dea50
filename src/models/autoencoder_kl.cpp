// AutoencoderKL following diffusers v0.25 models/autoencoders/autoencoder_kl.py (no slicing or tiling)
// and DiagonalGaussianDistribution in models/autoencoders/vae.py.
#include "models/autoencoder_kl.h"

#include <torch/torch.h>

#include "io/config_json.h"
#include "util/error.h"

namespace draft {

at::Tensor DiagonalGaussian::stddev() const { return torch::exp(0.5 * logvar); }

at::Tensor DiagonalGaussian::sample(const at::Tensor& noise) const {
  DRAFT_CHECK(noise.sizes() == mean.sizes(), "DiagonalGaussian::sample: noise shape ", noise.sizes(),
              " differs from the latent shape ", mean.sizes());
  return mean + stddev() * noise;
}

AutoencoderKLImpl::AutoencoderKLImpl(const VAEConfig& config) : config_(config) {
  namespace nn = torch::nn;
  config_.validate();
  const int64_t latent = config_.latent_channels;
  encoder = register_module("encoder", VAEEncoder(config_));
  decoder = register_module("decoder", VAEDecoder(config_));
  quant_conv = register_module("quant_conv", nn::Conv2d(nn::Conv2dOptions(2 * latent, 2 * latent, 1)));
  post_quant_conv = register_module("post_quant_conv", nn::Conv2d(nn::Conv2dOptions(latent, latent, 1)));
}

DiagonalGaussian AutoencoderKLImpl::encode(const at::Tensor& x, TensorTrace* trace) {
  DRAFT_CHECK(x.dim() == 4 && x.size(1) == config_.in_channels, "AutoencoderKL::encode: x must be (B, ",
              config_.in_channels, ", H, W), got ", x.sizes());
  at::Tensor h = encoder->forward(x, trace, "encoder.");
  record(trace, "encoder", h);
  at::Tensor moments = quant_conv(h);
  record(trace, "quant_conv", moments);
  // moments = [mean, logvar] on channels; logvar clamped to [-30, 20] as upstream.
  auto parts = moments.chunk(2, 1);
  return DiagonalGaussian{parts[0], torch::clamp(parts[1], -30.0, 20.0)};
}

at::Tensor AutoencoderKLImpl::decode(const at::Tensor& z, TensorTrace* trace) {
  DRAFT_CHECK(z.dim() == 4 && z.size(1) == config_.latent_channels, "AutoencoderKL::decode: z must be (B, ",
              config_.latent_channels, ", h, w), got ", z.sizes());
  at::Tensor h = post_quant_conv(z);
  record(trace, "post_quant_conv", h);
  return decoder->forward(h, trace, "decoder.");
}

at::Tensor AutoencoderKLImpl::decode_latents_to_images(const at::Tensor& latents) {
  at::Tensor x = decode(latents / config_.scaling_factor);
  return torch::clamp(x / 2.0 + 0.5, 0.0, 1.0);
}

AutoencoderKL load_vae(const std::string& folder, const WeightsOptions& options) {
  VAEConfig config = VAEConfig::from_json(ConfigJson::load(folder + "/config.json"));
  AutoencoderKL vae(config);
  load_weights(*vae, find_weight_files(folder), options, folder);
  return vae;
}

}  // namespace draft
