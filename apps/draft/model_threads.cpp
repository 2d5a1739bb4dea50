// Thread policy from the model (model_threads.h).
#include "model_threads.h"

#include <filesystem>

#include <torch/torch.h>

#include "util/threads.h"

namespace draft::cli {

void use_model_threading(const StableDiffusion& sd, int64_t batch) {
  if (sd.default_image_size() > kSmallTensorImageSize || !sd.weights.device.is_cpu()) return;
  use_small_tensor_threading();
  if (threads_chosen_by_user()) return;
  // One guided UNet call as sampling and training make it: 2 x batch latents, a full-length context.
  torch::NoGradGuard no_grad;
  const auto options = torch::TensorOptions().dtype(sd.weights.dtype);
  const int64_t latent = sd.unet->config().sample_size, rows = 2 * std::max<int64_t>(1, batch);
  const at::Tensor x = torch::randn({rows, sd.unet->config().in_channels, latent, latent}, options);
  const at::Tensor context = torch::randn(
      {rows, sd.text_encoder->config().max_position_embeddings, sd.text_encoder->config().hidden_size}, options);
  const at::Tensor t = torch::full({rows}, 500, torch::kLong);
  UNet2DCondition unet = sd.unet;  // a handle on the same module (forward is not const)
  choose_threads_by_timing([&] { unet->forward(x, t, context); }, available_cores());
}

void use_model_threading(const std::string& model_dir, int64_t batch, const std::string& device) {
  if (!std::filesystem::is_regular_file(model_dir + "/unet/config.json") ||
      !std::filesystem::is_regular_file(model_dir + "/vae/config.json")) {
    return;
  }
  if (pipeline_image_size(model_dir) > kSmallTensorImageSize || device != "cpu") return;
  use_model_threading(load_stable_diffusion(model_dir, {}), batch);
}

}  // namespace draft::cli
