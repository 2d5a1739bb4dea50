// Benchmark: a training step and sampling on Stable Diffusion 1.5 shapes (random weights, 512x512, 50 DDIM
// steps, guidance 7.5) on one device, for docs/performance.md's GPU section (scripts/device-check.sh runs
// it). Prints a markdown table and writes JSON:
//   - the device's own matmul throughput in the compute dtype (the yardstick for the UNet's),
//   - UNet forward + backward (LoRA rank 4 trains, the base is frozen) as achieved TFLOP/s and as a share
//     of that matmul throughput,
//   - a DRaFT-LV step at batch 1 and 4, DRaFT-K with K = 1 and K = 50 (full DRaFT) at batch 1, all with
//     gradient checkpointing: seconds and peak allocated memory (torch.cuda.max_memory_allocated),
//   - sampling 4 images (one prompt each, guided).
//   build/bin/bench_gpu [--device cuda] [--dtype bf16|f32] [--shape sd15|tiny] [--steps 50]
//                       [--guidance 7.5] [--json bench_gpu.json]
// --shape tiny runs the same code on the tiny test pipeline (tests/data/sd_pipeline_tiny), so that the
// program can be tried on a CPU; its figures mean nothing. The reward is jpeg-proxy:-1 (no weights to
// download; a CLIP reward adds its own forward and backward on top).
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "diffusion/text_to_image.h"
#include "finetune/method.h"
#include "lora/lora.h"
#include "measure.h"
#include "method_step.h"
#include "models/weights.h"
#include "nn/attention_kernel.h"
#include "rewards/reward_registry.h"
#include "sd15_random.h"
#include "util/threads.h"
#include "util/torch_compat.h"

namespace {

using draft::bench::count_flops;
using draft::bench::median_ms;

struct Args {
  std::string device = torch::cuda::is_available() ? "cuda" : "cpu";
  std::string dtype;  // default: bf16 on CUDA, f32 on the CPU
  std::string shape = "sd15";
  int64_t steps = 50;
  double guidance = 7.5;
  std::string json = "bench_gpu.json";
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    const bool has_value = i + 1 < argc;
    if (flag == "--device" && has_value) a.device = argv[++i];
    else if (flag == "--dtype" && has_value) a.dtype = argv[++i];
    else if (flag == "--shape" && has_value) a.shape = argv[++i];
    else if (flag == "--steps" && has_value) a.steps = std::stoll(argv[++i]);
    else if (flag == "--guidance" && has_value) a.guidance = std::stod(argv[++i]);
    else if (flag == "--json" && has_value) a.json = argv[++i];
    else {
      std::fprintf(stderr, "usage: bench_gpu [--device cuda] [--dtype bf16|f32] [--shape sd15|tiny] [--steps N] "
                           "[--guidance W] [--json FILE]\n");
      std::exit(2);
    }
  }
  if (a.dtype.empty()) a.dtype = a.device == "cpu" ? "f32" : "bf16";
  return a;
}

// A square matmul in the compute dtype, repeated: the device's attainable TFLOP/s for dense products.
double matmul_tflops(c10::Device device, c10::ScalarType dtype, int64_t n) {
  torch::NoGradGuard no_grad;
  const auto options = torch::TensorOptions().device(device).dtype(dtype);
  const at::Tensor a = torch::randn({n, n}, options), b = torch::randn({n, n}, options);
  const double ms = median_ms([&] { torch::matmul(a, b); }, 10, device, 3);
  return 2.0 * static_cast<double>(n) * n * n / (ms * 1e-3) / 1e12;
}

struct StepFigures {
  double seconds = 0;
  double peak_gib = -1;  // -1: not measured (CPU)
};

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  draft::configure_threads(0);
  draft::WeightsOptions weights;
  weights.device = draft::parse_device(a.device);
  weights.dtype = draft::parse_compute_dtype(a.dtype);
  const c10::Device device = weights.device;
  torch::manual_seed(0);
  draft::StableDiffusion sd =
      a.shape == "tiny"
          ? draft::load_stable_diffusion(std::string(DRAFT_SOURCE_DIR) + "/tests/data/sd_pipeline_tiny", weights)
          : draft::bench::random_sd15(weights);
  const int64_t size = sd.default_image_size();
  const int64_t latent = size / 8;
  const int64_t text_dim = sd.text_encoder->config().hidden_size;
  auto network = draft::inject_lora(sd.unet, {}, /*seed=*/0);
  const std::vector<at::Tensor> params = network.parameters();
  draft::RewardContext reward_context;
  reward_context.device = device;
  auto reward = draft::make_reward("jpeg-proxy:-1", reward_context);

  nlohmann::json out = {{"device", device.str()},
                        {"device_name", draft::device_name(device)},
                        {"dtype", a.dtype},
                        {"shape", a.shape},
                        {"image_size", size},
                        {"steps", a.steps},
                        {"guidance", a.guidance},
                        {"torch_version", draft::torch_version()},
                        {"attention", draft::attention_kernel_name(draft::attention_kernel())}};

  // 1. The yardstick: dense matmul throughput in the compute dtype.
  const double matmul = matmul_tflops(device, weights.dtype, device.is_cuda() ? 8192 : 1024);
  out["matmul_tflops"] = matmul;

  // 2. UNet forward + backward at batch 1: the base is frozen, so backward computes input gradients (about
  //    one forward's FLOPs) and LoRA's small weight gradients; FLOPs = 2 x the profiler's forward count.
  {
    const auto options = torch::TensorOptions().device(device).dtype(weights.dtype);
    const at::Tensor x = torch::randn({1, 4, latent, latent}, options);
    const at::Tensor context = torch::randn({1, 77, text_dim}, options);
    const at::Tensor t = torch::full({1}, 981, torch::TensorOptions().device(device).dtype(torch::kLong));
    const double forward_flops = [&] {
      torch::NoGradGuard no_grad;
      return count_flops([&] { sd.unet->forward(x, t, context); });
    }();
    auto step = [&] {
      sd.unet->forward(x, t, context).to(torch::kFloat).square().mean().backward();
      for (auto& p : params) p.mutable_grad() = at::Tensor();
    };
    const double ms = median_ms(step, 5, device, 2);
    const double tflops = 2.0 * forward_flops / (ms * 1e-3) / 1e12;
    out["unet_fwd_bwd"] = {{"ms", ms}, {"forward_gflop", forward_flops / 1e9}, {"tflops", tflops},
                           {"share_of_matmul", tflops / matmul}};
  }

  // 3. Method steps with gradient checkpointing: seconds and peak allocated memory.
  auto method_step = [&](const std::string& name, int64_t k, int64_t batch) {
    draft::MethodConfig config;
    config.name = name;
    config.k = k;
    config.validate(a.steps);
    auto method = draft::make_method(config);
    std::vector<std::string> prompts(static_cast<std::size_t>(batch), "a photograph of an astronaut riding a horse");
    draft::Conditioning conditioning;
    {
      torch::NoGradGuard no_grad;
      conditioning = draft::encode_prompts(sd, prompts, {}, 1, 0, a.guidance > 1.0);
    }
    draft::SamplerSettings sampler;
    sampler.steps = a.steps;
    sampler.guidance_scale = a.guidance;
    sampler.checkpoint = true;
    auto run = [&](uint64_t seed) {
      draft::bench::run_method_step(*method, sd, *reward, prompts, conditioning, params, sampler, seed);
    };
    run(0);  // warm-up: kernels chosen, the caching allocator filled
    draft::synchronize_device(device);
    draft::reset_cuda_peak_memory(device);
    StepFigures f;
    f.seconds = median_ms([&] { run(1); }, 1, device, 0) / 1e3;
    const int64_t peak = draft::cuda_max_memory_allocated(device);
    f.peak_gib = peak < 0 ? -1.0 : static_cast<double>(peak) / (1024.0 * 1024.0 * 1024.0);
    return nlohmann::json{{"method", name}, {"k", k}, {"batch", batch}, {"seconds", f.seconds},
                          {"peak_gib", f.peak_gib}};
  };
  out["steps_table"] = nlohmann::json::array();
  for (const int64_t batch : {1, 4}) out["steps_table"].push_back(method_step("draft-lv", 1, batch));
  out["steps_table"].push_back(method_step("draft-k", 1, 1));
  out["steps_table"].push_back(method_step("draft-k", a.steps, 1));

  // 4. Sampling 4 images, guided, decode included.
  {
    draft::TextToImageOptions o;
    o.prompts = std::vector<std::string>(4, "a photograph of an astronaut riding a horse");
    o.steps = a.steps;
    o.guidance_scale = a.guidance;
    o.height = o.width = size;
    out["sample_4_seconds"] = median_ms([&] { draft::text_to_image(sd, o); }, 1, device, 1) / 1e3;
  }

  std::printf("SD %s shapes, %s, %s (%s), LibTorch %s, %s attention, %lld steps, guidance %.1f, %lldx%lld\n\n",
              a.shape.c_str(), a.dtype.c_str(), out["device_name"].get<std::string>().c_str(), device.str().c_str(),
              draft::torch_version(), out["attention"].get<std::string>().c_str(), static_cast<long long>(a.steps),
              a.guidance, static_cast<long long>(size), static_cast<long long>(size));
  std::printf("| what | figure |\n|---|---|\n");
  std::printf("| matmul %s | %.1f TFLOP/s |\n", a.dtype.c_str(), matmul);
  std::printf("| UNet forward + backward, batch 1 | %.1f ms, %.1f TFLOP/s, %.0f%% of matmul |\n",
              out["unet_fwd_bwd"]["ms"].get<double>(), out["unet_fwd_bwd"]["tflops"].get<double>(),
              100.0 * out["unet_fwd_bwd"]["share_of_matmul"].get<double>());
  for (const auto& row : out["steps_table"]) {
    std::printf("| %s K=%lld batch %lld (checkpointed) | %.2f s, peak %.2f GiB |\n",
                row["method"].get<std::string>().c_str(), static_cast<long long>(row["k"].get<int64_t>()),
                static_cast<long long>(row["batch"].get<int64_t>()), row["seconds"].get<double>(),
                row["peak_gib"].get<double>());
  }
  std::printf("| sample 4 images | %.2f s |\n", out["sample_4_seconds"].get<double>());
  std::ofstream(a.json) << out.dump(2) << '\n';
  return 0;
}
