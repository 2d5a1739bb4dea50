// The fine-tuning loop (see trainer.h). Each optimizer step:
//   1. lr from the warm-up + constant/cosine schedule;
//   2. for each of train.grad_accumulation micro-batches: prompts and x_T drawn from the step's generator,
//      the method's forward pass (loss, rewards), backward of loss / accumulation;
//   3. a non-finite loss, reward or gradient norm skips the step (gradients dropped), else the global
//      gradient norm is clipped and AdamW steps;
//   4. metrics, then checkpoints and evaluation on their schedules.
#include "finetune/trainer.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cmath>
#include <filesystem>
#include <map>
#include <optional>

#include <torch/torch.h>

#include "diffusion/text_to_image.h"
#include "finetune/lora_file.h"
#include "io/image_grid.h"
#include "io/safetensors.h"
#include "io/png.h"
#include "pretrain/run_folder.h"
#include "pretrain/training_schedule.h"
#include "rewards/reward_evaluation.h"
#include "rewards/reward_registry.h"
#include "util/error.h"
#include "util/log.h"
#include "util/progress.h"

namespace draft {
namespace {

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ULL;

// A seed for (run seed, step, stream): streams keep the prompts/noise and the method's draws independent.
uint64_t derived_seed(uint64_t seed, int64_t step, uint64_t stream) {
  uint64_t x = seed ^ (static_cast<uint64_t>(step) * kGolden) ^ (stream * 0xBF58476D1CE4E5B9ULL);
  x ^= x >> 31;
  x *= 0x94D049BB133111EBULL;
  x ^= x >> 29;
  return x;
}

// A method's state() as buffers of one module, so the run checkpoint stores it ("method.<name>") next to
// the LoRA and restores it strictly.
class MethodStateHolder : public torch::nn::Module {
 public:
  explicit MethodStateHolder(const std::vector<std::pair<std::string, at::Tensor>>& tensors) {
    for (const auto& [name, tensor] : tensors) register_buffer(name, tensor);
  }
  std::map<std::string, at::Tensor> tensors() const {
    std::map<std::string, at::Tensor> out;
    for (const auto& item : named_buffers()) out[item.key()] = item.value();
    return out;
  }
};

// The "method." entries of a checkpoint (prefix stripped) on `device`: the holder load_checkpoint then
// matches strictly against the file.
std::vector<std::pair<std::string, at::Tensor>> method_state_in_checkpoint(const std::string& path,
                                                                           c10::Device device) {
  const std::string prefix = "method.";
  SafeTensorsFile file(path);
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& info : file.tensors()) {
    if (info.name.rfind(prefix, 0) != 0) continue;
    out.emplace_back(info.name.substr(prefix.size()), file.load(info.name, {std::nullopt, device}));
  }
  return out;
}

// The LoRA tensors as parameters of one module, so the run checkpoint stores them under stable names.
class LoRAHolder : public torch::nn::Module {
 public:
  explicit LoRAHolder(const LoRANetwork& network) {
    for (const auto& [name, tensor] : network.named_parameters()) {
      std::string key = name;
      std::replace(key.begin(), key.end(), '.', '_');
      register_parameter(key, tensor);
    }
  }
};

std::string step_name(int64_t step) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%06lld", static_cast<long long>(step));
  return buffer;
}

bool finite(double v) { return std::isfinite(v); }

}  // namespace

FinetuneSummary run_finetune(const FinetuneConfig& config, bool resume, const FinetuneHooks& hooks) {
  config.validate();
  const std::vector<std::string> prompts = config.training_prompts();
  RunFolder run(config.out_dir);
  const bool continuing = resume && run.has_checkpoint();
  if (!continuing && std::filesystem::exists(run.metrics_path())) {
    // A run stopped before its first checkpoint starts over; otherwise never overwrite a run.
    DRAFT_CHECK(resume, run.dir(), " already holds a run (metrics.jsonl); continue it with --resume ", run.dir(),
                " or choose another --run-dir");
    std::filesystem::remove(run.metrics_path());
  }
  run.write_config(config.to_json());

  WeightsOptions weights;
  weights.dtype = parse_compute_dtype(config.dtype);
  weights.device = parse_device(config.device);
  StableDiffusion sd = load_stable_diffusion(config.model, weights);
  RewardContext reward_context;
  reward_context.device = weights.device;
  RewardPtr reward = make_reward(config.reward, reward_context);
  const std::unique_ptr<Method> method = make_method(config.method);
  DRAFT_CHECK(!method->needs_differentiable_reward() || reward->differentiable(), "reward '", reward->name(),
              "' is not differentiable: method ", method->name(), " backpropagates through it; use a differentiable "
              "reward (e.g. jpeg-proxy instead of jpeg) or --method ddpo, which needs only reward values");
  // The held-out evaluation may measure another reward than the one trained on (e.g. train on jpeg-proxy,
  // report the true jpeg size).
  RewardPtr eval_reward = config.eval.reward.empty() ? nullptr : make_reward(config.eval.reward, reward_context);
  // LoRA's A is drawn from the global generator: seed it from the run's seed (and restore it after), so
  // that a run and its resumed twin start from the same adapter.
  LoRANetwork network;
  {
    at::Generator global = at::detail::getDefaultCPUGenerator();
    const at::Tensor saved = global.get_state();
    global.set_current_seed(derived_seed(config.train.seed, -1, 0));
    network = inject_lora(sd.unet, config.lora);
    global.set_state(saved);
  }
  std::vector<at::Tensor> params = network.parameters();
  auto holder = std::make_shared<LoRAHolder>(network);
  torch::optim::AdamW optimizer(params, torch::optim::AdamWOptions(config.optimizer.lr)
                                            .betas({config.optimizer.beta1, config.optimizer.beta2})
                                            .weight_decay(config.optimizer.weight_decay)
                                            .eps(config.optimizer.eps));
  const LoRAFormat lora_format = parse_lora_format(config.train.lora_format);
  const bool guided = config.sampler.guidance_scale > 1.0;
  const int64_t size = sd.default_image_size();

  FinetuneSummary summary;
  TrainingProgress progress;
  progress.seed = config.train.seed;
  double wall_offset = 0;
  if (continuing) {
    auto state = std::make_shared<MethodStateHolder>(method_state_in_checkpoint(run.checkpoint_path(), weights.device));
    progress = load_checkpoint(run.checkpoint_path(), {{"lora.", holder.get()}, {"method.", state.get()}}, &optimizer)
                   .progress;
    method->load_state(state->tensors());
    run.truncate_metrics_after(progress.step);
    for (const auto& record : read_metrics(run.metrics_path())) {
      if (record.value("kind", "") == "eval") {
        if (summary.first_eval.is_null()) summary.first_eval = record;
        summary.last_eval = record;
        continue;
      }
      summary.reward_queries = record.value("reward_queries", int64_t{0});
      summary.unet_evals = record.value("unet_evals", int64_t{0});
      summary.skipped_steps = record.value("skipped_total", int64_t{0});
      wall_offset = record.value("wall_time", 0.0);
    }
    DRAFT_LOG_INFO("resuming {} at step {} of {}", run.dir(), progress.step, config.train.steps);
  }

  double train_seconds = 0;  // optimizer steps only: evaluation and checkpoint writing are not counted
  auto evaluate = [&](int64_t step) {
    RewardEvalOptions eval;
    eval.prompts = config.eval.prompts.empty() ? prompts : config.eval.prompts;
    eval.images_per_prompt = config.eval.images_per_prompt;
    eval.steps = config.sampler.steps;
    eval.guidance_scale = config.sampler.guidance_scale;
    eval.eta = config.eval.eta >= 0 ? config.eval.eta : config.sampler.eta;
    eval.seed = config.eval.seed;
    const RewardEvalResult result = evaluate_reward(sd, eval_reward ? *eval_reward : *reward, eval);
    std::filesystem::create_directories(run.file("samples"));
    GridOptions grid;
    grid.columns = eval.images_per_prompt;
    write_png(run.file("samples/step_" + step_name(step) + ".png"), make_grid(result.images, grid));
    nlohmann::json record = {{"kind", "eval"},
                             {"step", step},
                             {"eval_reward_mean", result.overall.mean},
                             {"eval_reward_std", result.overall.std},
                             {"eval_reward_ci95", {result.overall.ci_low, result.overall.ci_high}},
                             {"feature_space", result.feature_space},
                             {"reward_queries", summary.reward_queries},
                             {"unet_evals", summary.unet_evals},
                             {"wall_time", wall_offset + train_seconds}};
    if (result.diversity) record["diversity"] = *result.diversity;
    run.append_metrics(record);
    if (summary.first_eval.is_null()) summary.first_eval = record;
    summary.last_eval = record;
  };
  auto save = [&](int64_t step, bool final) {
    MethodStateHolder state(method->state());
    save_checkpoint(run.checkpoint_path(), {{"lora.", holder.get()}, {"method.", &state}}, &optimizer, progress,
                    config.to_json());
    const std::string lora_file =
        run.file(final ? "lora_final.safetensors" : "lora_step_" + step_name(step) + ".safetensors");
    save_lora(network, lora_file, lora_format);
    summary.lora_path = lora_file;
  };

  if (progress.step == 0 && config.eval.due(0, config.train.steps)) evaluate(0);  // the base model: B = 0
  std::unique_ptr<ProgressBar> bar;
  if (!hooks.quiet) bar = std::make_unique<ProgressBar>(config.train.steps, "finetune " + method->name());
  int64_t bad_in_row = 0;
  while (progress.step < config.train.steps) {
    const int64_t step = progress.step;
    const auto step_start = std::chrono::steady_clock::now();
    const double lr = scheduled_learning_rate(config.optimizer.lr, config.optimizer.schedule, step,
                                              config.train.steps, config.optimizer.warmup_steps);
    set_learning_rate(optimizer, lr);
    optimizer.zero_grad();
    double loss_sum = 0;
    std::vector<at::Tensor> rewards;
    int64_t queries = 0, evals = 0;
    std::map<std::string, double> stats;  // the method's numbers, averaged over the micro-batches
    bool bad = false;
    for (int64_t micro = 0; micro < config.train.grad_accumulation; ++micro) {
      at::Generator data_gen = at::detail::createCPUGenerator(derived_seed(config.train.seed, step, 2 * micro));
      const at::Tensor picks = torch::randint(static_cast<int64_t>(prompts.size()), {config.train.batch_size},
                                              data_gen, torch::kLong);
      MethodContext context;
      context.sd = &sd;
      context.reward = reward.get();
      for (int64_t i = 0; i < picks.size(0); ++i) context.prompts.push_back(prompts[picks[i].item<int64_t>()]);
      {
        torch::NoGradGuard no_grad;
        context.conditioning = encode_prompts(sd, context.prompts, {}, 1, 0, guided);
      }
      context.x_T = initial_latents(sd, config.train.batch_size, size, size, data_gen);
      context.generator = at::detail::createCPUGenerator(derived_seed(config.train.seed, step, 2 * micro + 1));
      context.params = params;
      context.sampler = config.sampler;
      context.step = step;
      context.micro_batch = micro;
      context.micro_batches = config.train.grad_accumulation;
      MethodStep out = method->run(context);
      const double loss = out.loss.item<double>();
      queries += out.reward_queries;
      evals += out.unet_evals;
      rewards.push_back(out.rewards.to(torch::kCPU, torch::kDouble));
      if (!finite(loss) || !torch::isfinite(out.rewards).all().item<bool>()) {
        bad = true;
        break;
      }
      loss_sum += loss;
      for (const auto& [key, value] : out.stats) stats[key] += value / static_cast<double>(config.train.grad_accumulation);
      if (!out.gradients_accumulated) (out.loss / static_cast<double>(config.train.grad_accumulation)).backward();
    }
    double grad_norm = NAN;
    if (!bad) {
      // clip_grad_norm_ with an infinite max only measures; a non-finite norm skips the step.
      const double max_norm = config.optimizer.max_grad_norm > 0 ? config.optimizer.max_grad_norm : INFINITY;
      grad_norm = torch::nn::utils::clip_grad_norm_(params, max_norm);
      bad = !finite(grad_norm);
    }
    if (bad) {
      optimizer.zero_grad();
      ++bad_in_row;
      ++summary.skipped_steps;
      DRAFT_LOG_WARN("step {}: non-finite loss, reward or gradient; step skipped ({} in a row)", step + 1, bad_in_row);
      DRAFT_CHECK(bad_in_row < config.train.max_bad_steps, "stopped after ", bad_in_row,
                  " non-finite steps in a row (train.max_bad_steps) at step ", step + 1, "; the last good checkpoint is ",
                  run.checkpoint_path(), ": lower optimizer.lr or use fewer steps with gradients (method.k)");
    } else {
      bad_in_row = 0;
      optimizer.step();
    }
    ++progress.step;
    summary.reward_queries += queries;
    summary.unet_evals += evals;
    const at::Tensor all = torch::cat(rewards);
    train_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start).count();
    const double wall = wall_offset + train_seconds;
    nlohmann::json record = {{"step", progress.step},
                             {"reward_mean", all.mean().item<double>()},
                             {"reward_std", all.numel() > 1 ? all.std().item<double>() : 0.0},
                             {"loss", loss_sum / static_cast<double>(config.train.grad_accumulation)},
                             {"grad_norm", finite(grad_norm) ? nlohmann::json(grad_norm) : nlohmann::json()},
                             {"lr", lr},
                             {"reward_queries", summary.reward_queries},
                             {"unet_evals", summary.unet_evals},
                             {"wall_time", wall},
                             {"skipped", bad},
                             {"skipped_total", summary.skipped_steps}};
    for (const auto& [key, value] : stats) {
      if (!record.contains(key)) record[key] = finite(value) ? nlohmann::json(value) : nlohmann::json();
    }
    run.append_metrics(record);
    if (hooks.on_step) hooks.on_step(record);
    if (bar) {
      bar->update(progress.step, {{"reward", record["reward_mean"].get<double>()},
                                  {"loss", record["loss"].get<double>()},
                                  {"grad", finite(grad_norm) ? grad_norm : NAN}});
    }
    const bool last = progress.step == config.train.steps;
    if (progress.step % config.train.save_every == 0 || last) save(progress.step, last);
    if (config.eval.due(progress.step, config.train.steps)) evaluate(progress.step);
    summary.wall_time_s = wall;
  }
  if (bar) bar->finish();
  if (summary.lora_path.empty()) summary.lora_path = run.file("lora_final.safetensors");
  summary.steps_done = progress.step;
  return summary;
}

}  // namespace draft
