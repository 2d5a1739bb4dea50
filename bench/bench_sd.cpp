// Benchmark: Stable Diffusion 1.5 shapes on this machine (random weights: speed does not depend on them).
// UNet forward (batch 1, 64x64 latents, 77x768 context), VAE decode (64x64 latents -> 512x512 image) and
// a full text-to-image sample (CFG, DDIM). Prints a markdown table (ms, GFLOP/s) and writes JSON.
//   build/bin/bench_sd [--steps 50] [--skip-sample] [--threads N] [--json bench_sd.json]
// FLOPs are counted once per module with LibTorch's profiler (matmul/conv/elementwise ops it knows).
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "diffusion/text_to_image.h"
#include "measure.h"
#include "sd15_random.h"
#include "util/threads.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  int64_t steps = 50;
  int threads = 0;
  bool sample = true;
  std::string json_path = "bench_sd.json";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--steps" && i + 1 < argc) steps = std::stoll(argv[++i]);
    else if (a == "--threads" && i + 1 < argc) threads = std::stoi(argv[++i]);
    else if (a == "--json" && i + 1 < argc) json_path = argv[++i];
    else if (a == "--skip-sample") sample = false;
    else {
      std::fprintf(stderr, "usage: bench_sd [--steps N] [--skip-sample] [--threads N] [--json FILE]\n");
      return 2;
    }
  }
  threads = draft::configure_threads(threads);
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);

  auto build_start = Clock::now();
  draft::StableDiffusion sd = draft::bench::random_sd15();
  std::fprintf(stderr, "built SD 1.5-shaped modules in %.1f s\n", seconds_since(build_start));

  at::Tensor latents = torch::randn({1, 4, 64, 64});
  at::Tensor context = torch::randn({1, 77, 768});
  at::Tensor t = torch::full({1}, 981, torch::kLong);
  auto unet_call = [&] { sd.unet->forward(latents, t, context); };
  auto vae_call = [&] { sd.vae->decode(latents); };

  struct Row {
    std::string what;
    double ms, flops;
  };
  std::vector<Row> rows;
  using draft::bench::count_flops;
  using draft::bench::median_ms;
  rows.push_back({"UNet forward (1x4x64x64)", median_ms(unet_call, 3), count_flops(unet_call)});
  rows.push_back({"VAE decode (1x4x64x64 -> 512x512)", median_ms(vae_call, 2), count_flops(vae_call)});
  if (sample) {
    draft::TextToImageOptions o;
    o.prompts = {"a photograph of an astronaut riding a horse on mars"};
    o.steps = steps;
    auto start = Clock::now();
    draft::text_to_image(sd, o);
    double ms = seconds_since(start) * 1e3;
    double flops = rows[0].flops * 2 * static_cast<double>(steps) + rows[1].flops;  // CFG doubles the batch
    rows.push_back({"sample: " + std::to_string(steps) + " DDIM steps, CFG, decode", ms, flops});
  }

  std::printf("SD 1.5 shapes, float32, CPU, %d threads, %s\n\n", threads, draft::blas_description().c_str());
  std::printf("| what | ms | GFLOP | GFLOP/s |\n|---|---|---|---|\n");
  nlohmann::json out = {{"threads", threads}, {"blas", draft::blas_description()}, {"rows", nlohmann::json::array()}};
  for (const auto& r : rows) {
    std::printf("| %s | %.0f | %.1f | %.1f |\n", r.what.c_str(), r.ms, r.flops / 1e9, r.flops / 1e6 / r.ms);
    out["rows"].push_back({{"what", r.what}, {"ms", r.ms}, {"gflop", r.flops / 1e9}});
  }
  std::ofstream(json_path) << out.dump(2) << '\n';
  return 0;
}
