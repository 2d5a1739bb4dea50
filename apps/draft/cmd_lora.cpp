// draft lora: LoRA file tools. `merge` folds LoRAs into a model and writes a merged model folder;
// `convert` rewrites a LoRA file in the diffusers or kohya layout.
#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "command.h"
#include "output_paths.h"
#include "diffusion/pipeline_lora.h"
#include "lora/lora_file.h"
#include "util/error.h"

namespace draft::cli {
namespace {

struct LoRAFlags {
  std::string model;
  std::vector<std::string> loras;
  std::string out;
  std::string format = "diffusers";
};

int run_merge(const LoRAFlags& f) {
  check_output_folder(f.out, "--out");
  merge_lora_folder(f.model, f.loras, f.out);
  std::cout << "wrote " << f.out << " (" << f.model << " with " << f.loras.size() << " LoRA(s) merged)\n";
  return 0;
}

int run_convert(const LoRAFlags& f) {
  DRAFT_CHECK(f.loras.size() == 1, "draft lora convert: give exactly one --lora FILE (got ", f.loras.size(), ")");
  check_output_file(f.out, "--out");
  const LoRASpec spec = parse_lora_spec(f.loras.front());
  // The UNet resolves kohya's underscore names back to module names and checks every shape.
  UNet2DCondition unet = load_unet(f.model + "/unet");
  LoRAFile file = read_lora_file(spec.path, unet);
  LoRAConfig config;
  if (file.config) {
    config = *file.config;
  } else {
    // A file from another tool: describe it by what it holds.
    config.rank = file.layers.front().rank();
    config.alpha = file.layers.front().alpha;
    std::set<std::string> targets;
    for (const auto& layer : file.layers) {
      for (const char* t : {"to_q", "to_k", "to_v", "to_out.0", "ff.net.0.proj", "ff.net.2"}) {
        const std::string suffix = std::string(".") + t;
        if (layer.module.size() > suffix.size() &&
            layer.module.compare(layer.module.size() - suffix.size(), suffix.size(), suffix) == 0) {
          targets.insert(t);
        }
      }
    }
    config.targets.assign(targets.begin(), targets.end());
  }
  // A scale given as FILE:SCALE is folded into B, so the converted file needs no scale.
  if (spec.scale != 1.0) {
    for (auto& layer : file.layers) layer.up = layer.up * spec.scale;
  }
  const LoRAFormat format = parse_lora_format(f.format);
  save_lora_file(f.out, file.layers, format, config);
  std::cout << "wrote " << f.out << " (" << file.layers.size() << " layers, " << lora_format_name(format)
            << " layout, from the " << lora_format_name(file.format) << " layout)\n";
  return 0;
}

}  // namespace

Command add_lora_command(CLI::App& root) {
  auto f = std::make_shared<LoRAFlags>();
  CLI::App* sub = root.add_subcommand("lora", "LoRA files: merge into a model folder, convert between layouts");
  sub->require_subcommand(1);
  CLI::App* merge = sub->add_subcommand("merge", "Fold LoRAs (FILE[:SCALE], several mix) into a model; write a new folder");
  merge->add_option("--model", f->model, "model folder (diffusers layout)")->required();
  merge->add_option("--lora", f->loras, "LoRA file FILE[:SCALE] (repeat to mix several)")->required();
  merge->add_option("--out", f->out, "output model folder (diffusers layout, float32)")->required();
  CLI::App* convert = sub->add_subcommand("convert", "Rewrite a LoRA file in the diffusers or kohya layout");
  convert->add_option("--model", f->model, "model folder whose UNet the LoRA belongs to")->required();
  convert->add_option("--lora", f->loras, "input LoRA file (FILE[:SCALE]: the scale is folded in)")->required();
  convert->add_option("--out", f->out, "output .safetensors file")->required();
  convert->add_option("--lora-format", f->format, "output layout: diffusers (PEFT lora_A/lora_B) or kohya")
      ->check(CLI::IsMember({"diffusers", "peft", "kohya"}))
      ->capture_default_str();
  return {sub, [f, merge] { return merge->parsed() ? run_merge(*f) : run_convert(*f); }};
}

}  // namespace draft::cli
