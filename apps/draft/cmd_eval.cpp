// draft eval: a model's reward over fixed seeds and prompts (mean, std, 95% interval) with the
// reward-hacking monitors diversity and drift, as a table or JSON.
#include <cmath>
#include <iostream>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "command.h"
#include "flag_checks.h"
#include "model_threads.h"
#include "output_paths.h"
#include "diffusion/pipeline_lora.h"
#include "io/image_grid.h"
#include "io/json_file.h"
#include "io/png.h"
#include "data/prompt_file.h"
#include "reward_flags.h"
#include "rewards/reward_evaluation.h"
#include "util/error.h"
#include "util/log.h"
#include "util/threads.h"

namespace draft::cli {
namespace {

struct EvalFlags {
  std::string model;
  std::string base;
  std::vector<std::string> loras;  ///< FILE[:SCALE] applied to --model (not to --base)
  RewardFlags reward;
  std::vector<std::string> prompts;
  std::string prompts_file;
  RewardEvalOptions eval;
  bool json = false;
  std::string json_file;
  std::string grid;
  std::string dtype = "f32";
  std::string device = "cpu";
};

nlohmann::json stats_json(const RewardStats& s) {
  return {{"n", s.count}, {"mean", s.mean}, {"std", s.std}, {"ci95", {s.ci_low, s.ci_high}}};
}

nlohmann::json result_json(const EvalFlags& f, const RewardEvalResult& r) {
  nlohmann::json prompts = nlohmann::json::array();
  for (const auto& p : r.per_prompt) prompts.push_back({{"prompt", p.prompt}, {"reward", stats_json(p.stats)}});
  nlohmann::json out = {{"model", f.model},
                        {"reward", r.reward},
                        {"steps", f.eval.steps},
                        {"guidance", f.eval.guidance_scale},
                        {"eta", f.eval.eta},
                        {"seed", f.eval.seed},
                        {"images_per_prompt", f.eval.images_per_prompt},
                        {"overall", stats_json(r.overall)},
                        {"per_prompt", prompts},
                        {"feature_space", r.feature_space},
                        {"diversity", r.diversity ? nlohmann::json(*r.diversity) : nlohmann::json()},
                        {"drift", r.drift ? nlohmann::json(*r.drift) : nlohmann::json()}};
  if (!f.base.empty()) out["base"] = {{"model", f.base}, {"reward", stats_json(*r.base)}};
  if (!f.loras.empty()) out["lora"] = f.loras;
  return out;
}

std::string stats_row(const std::string& label, const RewardStats& s) {
  return fmt::format("| {} | {} | {:.4f} | {:.4f} | [{:.4f}, {:.4f}] |", label, s.count, s.mean, s.std, s.ci_low,
                     s.ci_high);
}

void print_table(const EvalFlags& f, const RewardEvalResult& r) {
  std::cout << fmt::format("reward {} of {}: {} prompt(s) x {} image(s), {} steps, guidance {}, eta {}, seed {}\n\n",
                           r.reward, f.model, r.per_prompt.size(), f.eval.images_per_prompt, f.eval.steps,
                           f.eval.guidance_scale, f.eval.eta, f.eval.seed);
  std::cout << "| prompt | n | mean | std | 95% interval of the mean |\n|---|---|---|---|---|\n";
  for (const auto& p : r.per_prompt) std::cout << stats_row(p.prompt, p.stats) << '\n';
  std::cout << stats_row("**all**", r.overall) << '\n';
  if (r.base) std::cout << stats_row("**base model** " + f.base, *r.base) << '\n';
  std::cout << "\nmonitors in " << r.feature_space << " feature space:\n";
  std::cout << "  diversity (mean pairwise L2 distance within a prompt): "
            << (r.diversity ? fmt::format("{:.4f}", *r.diversity) : "n/a (needs --n >= 2)") << '\n';
  std::cout << "  drift (mean L2 distance to the base model's image, same seed): "
            << (r.drift ? fmt::format("{:.4f}", *r.drift) : "n/a (give --base DIR)") << '\n';
}

int run_eval(EvalFlags f) {
  check_output_file(f.grid, "--grid");
  check_output_file(f.json_file, "--json-file");
  f.eval.prompts = resolve_prompts(f.prompts, f.prompts_file);
  f.eval.models_dir = f.reward.models_dir;
  WeightsOptions weights;
  weights.dtype = parse_compute_dtype(f.dtype);
  weights.device = parse_device(f.device);
  RewardPtr reward = make_reward(f.reward.spec, f.reward.context(weights.device, weights.dtype));
  StableDiffusion model = load_stable_diffusion(f.model, weights);
  apply_loras(model, f.loras);
  use_model_threading(model, f.eval.batch_size);
  // With LoRAs and no --base, drift is measured against the same folder without them.
  if (!f.loras.empty() && f.base.empty()) f.base = f.model;
  std::unique_ptr<StableDiffusion> base;
  if (!f.base.empty()) base = std::make_unique<StableDiffusion>(load_stable_diffusion(f.base, weights));

  DRAFT_LOG_INFO("evaluating {} on {} prompt(s) x {} image(s)", reward->name(), f.eval.prompts.size(),
                 f.eval.images_per_prompt);
  const RewardEvalResult result = evaluate_reward(model, *reward, f.eval, base.get());
  if (!f.grid.empty()) {
    GridOptions grid;
    grid.columns = f.eval.images_per_prompt;
    write_png(f.grid, make_grid(result.images, grid));
    DRAFT_LOG_INFO("wrote {}", f.grid);
  }
  const nlohmann::json json = result_json(f, result);
  if (!f.json_file.empty()) write_json_file(f.json_file, json);
  if (f.json) {
    std::cout << json.dump(2) << '\n';
  } else {
    print_table(f, result);
  }
  return 0;
}

}  // namespace

Command add_eval_command(CLI::App& root) {
  auto f = std::make_shared<EvalFlags>();
  CLI::App* sub = root.add_subcommand(
      "eval", "Reward of a model over fixed seeds and prompts, with diversity and drift monitors");
  sub->add_option("--model", f->model, "model folder (diffusers layout)")->required();
  add_reward_flags(sub, f->reward);
  sub->add_option("--prompt", f->prompts, "prompt text (repeat for several prompts)");
  sub->add_option("--prompts", f->prompts_file, "file with one prompt per line (instead of --prompt)");
  sub->add_option("--base", f->base, "base model folder: sampled from the same seeds to measure drift");
  sub->add_option("--lora", f->loras,
                  "LoRA file FILE[:SCALE] applied to --model (repeat to mix; the base for drift is then --model "
                  "without LoRA unless --base is given)");
  sub->add_option("--n", f->eval.images_per_prompt, "images per prompt")->check(whole_number(1))
      ->capture_default_str();
  sub->add_option("--seed", f->eval.seed, "prompt i samples from seed + i")->capture_default_str();
  sub->add_option("--steps", f->eval.steps, "DDIM steps")->check(whole_number(1))->capture_default_str();
  sub->add_option("--guidance", f->eval.guidance_scale, "classifier-free guidance scale")->capture_default_str();
  sub->add_option("--eta", f->eval.eta, "DDIM eta")->check(real_number(0.0, 1.0))->capture_default_str();
  sub->add_option("--batch-size", f->eval.batch_size, "images per pipeline call")->check(whole_number(1))
      ->capture_default_str();
  sub->add_option("--features", f->eval.features, "monitor feature space: auto, reward, classifier or pixels")
      ->check(CLI::IsMember({"auto", "reward", "classifier", "pixels"}))
      ->capture_default_str();
  sub->add_flag("--json", f->json, "print JSON instead of the table");
  sub->add_option("--json-file", f->json_file, "also write the JSON to this file");
  sub->add_option("--grid", f->grid, "write the evaluated images as a PNG grid (one row per prompt)");
  sub->add_option("--dtype", f->dtype, "compute dtype: f32, f16, bf16 or f64")->capture_default_str();
  sub->add_option("--device", f->device, "cpu, cuda or cuda:N")->capture_default_str();
  return {sub, [f] { return run_eval(*f); }};
}

}  // namespace draft::cli
