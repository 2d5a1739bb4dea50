// How well jpeg-proxy ranks images like the true JPEG size (libjpeg), on three sets of 1,000 images:
// Fashion-MNIST test images (gray 32x32), samples of the embedded model (gray 32x32, 20 DDIM steps,
// guidance 3, 100 per class), and colour images (test images at 64x64, tinted with a random colour and
// a random amount of noise, RGB 4:2:0). Prints a markdown table of Spearman and Pearson correlations
// and the proxy's mean absolute error in kB; writes JSON with --json.
//   build/bin/jpeg_proxy_correlation [--quality 95] [--count 1000] [--json FILE]
#include <chrono>
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "diffusion/text_to_image.h"
#include "io/json_file.h"
#include "data/fashion_mnist.h"
#include "rewards/reward_registry.h"
#include "util/statistics.h"
#include "util/threads.h"

namespace {

std::vector<double> to_vector(const at::Tensor& t) {
  const at::Tensor c = t.to(torch::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

at::Tensor embedded_samples(const std::string& root, int64_t count) {
  const draft::StableDiffusion sd = draft::load_stable_diffusion(root + "/models/fashion-sd", {});
  const auto& classes = draft::fashion_mnist_classes();
  std::vector<at::Tensor> images;
  const int64_t per_class = count / static_cast<int64_t>(classes.size());
  for (std::size_t c = 0; c < classes.size(); ++c) {
    draft::TextToImageOptions o;
    o.prompts = {draft::fill_caption_template("a photo of a {class}", classes[c])};
    o.images_per_prompt = per_class;
    o.steps = 20;
    o.guidance_scale = 3.0;
    o.seed = c;
    images.push_back(draft::text_to_image(sd, o).images);
  }
  return torch::cat(images);
}

at::Tensor colour_images(const at::Tensor& gray) {
  torch::manual_seed(0);
  const int64_t n = gray.size(0);
  const at::Tensor big = torch::upsample_bilinear2d(gray, {64, 64}, false);
  const at::Tensor tint = torch::rand({n, 3, 1, 1});
  const at::Tensor noise_level = torch::rand({n, 1, 1, 1}) * 0.2;
  return (big * tint + (1 - big) * tint.flip(1) * 0.5 + torch::randn({n, 3, 64, 64}) * noise_level).clamp(0, 1);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string root = DRAFT_SOURCE_DIR;
  int64_t quality = 95, count = 1000;
  std::string json_path;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--quality") quality = std::stoll(v);
    else if (a == "--count") count = std::stoll(v);
    else if (a == "--json") json_path = v;
    else {
      std::fprintf(stderr, "usage: jpeg_proxy_correlation [--quality Q] [--count N] [--json FILE]\n");
      return 2;
    }
  }
  draft::configure_threads(0);
  draft::use_small_tensor_threading();
  torch::NoGradGuard no_grad;
  const std::string q = ":quality=" + std::to_string(quality);
  auto proxy = draft::make_reward("jpeg-proxy" + q);
  auto truth = draft::make_reward("jpeg" + q);

  const at::Tensor test = draft::load_fashion_mnist(draft::kFashionMNISTDir, "test", count).images;
  std::vector<std::pair<std::string, at::Tensor>> sets = {
      {"Fashion-MNIST test images (gray 32x32)", test},
      {"embedded model samples (gray 32x32)", embedded_samples(root, count)},
      {"tinted noisy test images (RGB 64x64)", colour_images(test)}};

  std::printf("jpeg-proxy vs libjpeg size, quality %lld, %lld images per set\n\n", static_cast<long long>(quality),
              static_cast<long long>(count));
  std::printf("| images | Spearman | Pearson | true size kB (mean) | proxy kB (mean) | mean abs error kB |\n");
  std::printf("|---|---|---|---|---|---|\n");
  nlohmann::json out = {{"quality", quality}, {"count", count}, {"sets", nlohmann::json::array()}};
  for (const auto& [name, images] : sets) {
    const auto p = to_vector(proxy->score(images, {}));
    const auto t = to_vector(truth->score(images, {}));
    double mae = 0, mean_t = 0, mean_p = 0;
    for (std::size_t i = 0; i < p.size(); ++i) {
      mae += std::abs(p[i] - t[i]);
      mean_t += t[i];
      mean_p += p[i];
    }
    const double n = static_cast<double>(p.size());
    const double rho = draft::spearman_correlation(p, t);
    const double r = draft::pearson_correlation(p, t);
    std::printf("| %s | %.4f | %.4f | %.3f | %.3f | %.3f |\n", name.c_str(), rho, r, mean_t / n, mean_p / n, mae / n);
    std::fflush(stdout);
    out["sets"].push_back({{"images", name}, {"spearman", rho}, {"pearson", r}, {"true_kb_mean", mean_t / n},
                           {"proxy_kb_mean", mean_p / n}, {"mae_kb", mae / n}});
  }
  if (!json_path.empty()) draft::write_json_file(json_path, out);
  return 0;
}
