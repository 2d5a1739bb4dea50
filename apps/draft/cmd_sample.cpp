// draft sample: text-to-image with a diffusers-layout model folder, written as a PNG grid.
#include <iostream>
#include <memory>

#include <torch/torch.h>

#include "command.h"
#include "flag_checks.h"
#include "model_threads.h"
#include "output_paths.h"
#include "data/prompt_file.h"
#include "diffusion/pipeline_lora.h"
#include "diffusion/text_to_image.h"
#include "io/image_grid.h"
#include "io/png.h"
#include "io/safetensors.h"
#include "util/error.h"
#include "util/threads.h"
#include "util/log.h"
#include "util/progress.h"

namespace draft::cli {
namespace {

struct SampleFlags {
  std::string model;
  std::vector<std::string> loras;  ///< FILE[:SCALE], applied in order (their deltas add)
  std::vector<std::string> prompts;
  std::string prompts_file;
  std::string negative_prompt;
  bool negative_given = false;
  TextToImageOptions t2i;
  std::string output = "samples.png";
  std::string save_tensor;
  std::string dtype = "f32";
  std::string device = "cpu";
  int64_t columns = 0;
};

int run_sample(SampleFlags f) {
  check_output_file(f.output, "-o");
  check_output_file(f.save_tensor, "--save-tensor");
  f.t2i.prompts = resolve_prompts(f.prompts, f.prompts_file);
  if (f.negative_given) f.t2i.negative_prompts = {f.negative_prompt};

  WeightsOptions weights;
  weights.dtype = parse_compute_dtype(f.dtype);
  weights.device = parse_device(f.device);
  StableDiffusion sd = load_stable_diffusion(f.model, weights);
  apply_loras(sd, f.loras);
  const int64_t count = static_cast<int64_t>(f.t2i.prompts.size()) * f.t2i.images_per_prompt;
  use_model_threading(sd, count);
  DRAFT_LOG_INFO("sampling {} image(s), {} steps, guidance {}, seed {}", count, f.t2i.steps, f.t2i.guidance_scale,
                 f.t2i.seed);
  ProgressBar bar(f.t2i.steps, "sample");
  TextToImageResult result = text_to_image(sd, f.t2i, [&](int64_t done, int64_t) { bar.update(done); });
  bar.finish();

  // One row per prompt unless asked otherwise.
  GridOptions grid;
  grid.columns = f.columns > 0 ? f.columns : f.t2i.images_per_prompt;
  if (f.t2i.prompts.size() == 1 && f.columns <= 0) grid.columns = std::min<int64_t>(count, 8);
  write_png(f.output, make_grid(result.images, grid));
  std::cout << "wrote " << f.output << " (" << count << " image(s), " << result.images.size(2) << "x"
            << result.images.size(3) << ")\n";
  if (!f.save_tensor.empty()) {
    save_safetensors(f.save_tensor, {{"images", result.images}, {"latents", result.latents.to(torch::kCPU)}},
                     {{"model", f.model}, {"seed", std::to_string(f.t2i.seed)}});
    std::cout << "wrote " << f.save_tensor << '\n';
  }
  return 0;
}

}  // namespace

Command add_sample_command(CLI::App& root) {
  auto f = std::make_shared<SampleFlags>();
  CLI::App* sub = root.add_subcommand("sample", "Generate images from text with a diffusers-layout model folder");
  sub->add_option("--model", f->model, "model folder (diffusers layout: model_index.json, unet/, vae/, ...)")
      ->required();
  sub->add_option("--lora", f->loras,
                  "LoRA file FILE[:SCALE] (diffusers or kohya layout, scale default 1; repeat to mix several)");
  sub->add_option("--prompt", f->prompts, "prompt text (repeat for several prompts)");
  sub->add_option("--prompts", f->prompts_file, "file with one prompt per line (instead of --prompt)");
  sub->add_option("--negative-prompt", f->negative_prompt, "negative prompt for classifier-free guidance")
      ->each([f](const std::string&) { f->negative_given = true; });
  sub->add_option("--n", f->t2i.images_per_prompt, "images per prompt")->check(whole_number(1))
      ->capture_default_str();
  sub->add_option("--steps", f->t2i.steps, "DDIM steps")->check(whole_number(1))->capture_default_str();
  sub->add_option("--guidance", f->t2i.guidance_scale, "classifier-free guidance scale (<= 1 disables it)")
      ->capture_default_str();
  sub->add_option("--eta", f->t2i.eta, "DDIM eta (0 deterministic, 1 ancestral)")->check(real_number(0.0, 1.0))
      ->capture_default_str();
  sub->add_option("--seed", f->t2i.seed, "seed of the CPU generator (diffusers-compatible)")->capture_default_str();
  sub->add_option("--height", f->t2i.height, "image height in pixels (default: the model's size)")
      ->check(whole_number(0, kMaxImageSide));
  sub->add_option("--width", f->t2i.width, "image width in pixels (default: the model's size)")
      ->check(whole_number(0, kMaxImageSide));
  sub->add_option("--clip-skip", f->t2i.clip_skip, "use the text encoder's (k+1)-th last layer")
      ->check(whole_number(0));
  sub->add_option("-o,--output", f->output, "output PNG (a grid of all images)")->capture_default_str();
  sub->add_option("--columns", f->columns, "images per grid row (default: --n)")->check(whole_number(0));
  sub->add_option("--save-tensor", f->save_tensor, "also save the float images and latents as .safetensors");
  sub->add_option("--dtype", f->dtype, "compute dtype: f32, f16, bf16 or f64")->capture_default_str();
  sub->add_option("--device", f->device, "cpu, cuda or cuda:N")->capture_default_str();
  return {sub, [f] { return run_sample(*f); }};
}

}  // namespace draft::cli
