// Benchmark: sampling speed of the embedded model (models/fashion-sd): 16 images, 50 DDIM steps,
// classifier-free guidance, decode, on this machine's CPU cores, under the thread settings that matter
// for its small tensors (LibTorch's OpenMP pool vs OpenBLAS's own pool); also one UNet training step
// (forward and backward, batch 128, as `draft pretrain unet` takes). Prints a markdown table.
//   build/bin/bench_fashion_sd [--model DIR] [--images 16] [--steps 50] [--guidance 3] [--reps 3]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "diffusion/text_to_image.h"
#include "data/fashion_mnist.h"
#include "util/threads.h"

namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

int main(int argc, char** argv) {
  std::string model = std::string(DRAFT_SOURCE_DIR) + "/models/fashion-sd";
  int64_t images = 16, steps = 50, reps = 3;
  double guidance = 3.0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--model" && i + 1 < argc) model = argv[++i];
    else if (a == "--images" && i + 1 < argc) images = std::stoll(argv[++i]);
    else if (a == "--steps" && i + 1 < argc) steps = std::stoll(argv[++i]);
    else if (a == "--guidance" && i + 1 < argc) guidance = std::stod(argv[++i]);
    else if (a == "--reps" && i + 1 < argc) reps = std::stoll(argv[++i]);
    else {
      std::fprintf(stderr, "usage: bench_fashion_sd [--model DIR] [--images N] [--steps N] [--guidance W] [--reps N]\n");
      return 2;
    }
  }
  const int cores = draft::available_cores();
  draft::configure_threads(cores);
  draft::StableDiffusion sd = draft::load_stable_diffusion(model, {});
  draft::TextToImageOptions o;
  const auto& classes = draft::fashion_mnist_classes();
  for (int64_t i = 0; i < images; ++i) {
    o.prompts.push_back(draft::fill_caption_template("a photo of a {class}", classes[i % classes.size()]));
  }
  o.steps = steps;
  o.guidance_scale = guidance;

  struct Setting {
    int threads, blas;
  };
  std::vector<Setting> settings = {{cores, 1}, {cores, cores}, {1, 1}};
  std::printf("%s: %lld images, %lld DDIM steps, guidance %.1f (batch %lld per UNet call), %d cores, %s\n\n",
              model.c_str(), static_cast<long long>(images), static_cast<long long>(steps), guidance,
              static_cast<long long>(guidance > 1 ? 2 * images : images), cores, draft::blas_description().c_str());
  std::printf("| LibTorch threads | OpenBLAS threads | sample: seconds (median of %lld) | images/s | "
              "UNet training step, batch 128: ms (median of %lld) |\n|---:|---:|---:|---:|---:|\n",
              static_cast<long long>(reps), static_cast<long long>(reps));
  // A training step's inputs: random latents, timesteps and text-encoder-sized context.
  const auto& unet_config = sd.unet->config();
  const at::Tensor x = torch::randn({128, unet_config.in_channels, unet_config.sample_size, unet_config.sample_size});
  const at::Tensor t = torch::randint(0, 1000, {128}, torch::kLong);
  const at::Tensor context = torch::randn({128, sd.tokenizer->max_length(), unet_config.cross_attention_dim.front()});
  auto train_step = [&] {
    torch::AutoGradMode grad(true);
    for (auto& p : sd.unet->parameters()) p.mutable_grad() = at::Tensor();
    sd.unet->forward(x, t, context).square().mean().backward();
  };
  for (auto& p : sd.unet->parameters()) p.set_requires_grad(true);
  for (const auto& s : settings) {
    draft::configure_threads(s.threads, s.blas);
    draft::text_to_image(sd, o);  // warm-up
    std::vector<double> seconds;
    for (int64_t r = 0; r < reps; ++r) {
      const auto start = Clock::now();
      draft::text_to_image(sd, o);
      seconds.push_back(std::chrono::duration<double>(Clock::now() - start).count());
    }
    std::sort(seconds.begin(), seconds.end());
    const double median = seconds[seconds.size() / 2];
    train_step();  // warm-up
    std::vector<double> step_ms;
    for (int64_t r = 0; r < reps; ++r) {
      const auto start = Clock::now();
      train_step();
      step_ms.push_back(std::chrono::duration<double>(Clock::now() - start).count() * 1e3);
    }
    std::sort(step_ms.begin(), step_ms.end());
    std::printf("| %d | %d | %.2f | %.1f | %.0f |\n", s.threads, s.blas, median, static_cast<double>(images) / median,
                step_ms[step_ms.size() / 2]);
    std::fflush(stdout);
  }
  return 0;
}
