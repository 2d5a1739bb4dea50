// The fine-tuning loop (see trainer.h): set up the run, restore it when resuming, evaluate the base model,
// then step, save and evaluate on their schedules. The pieces live in FinetuneRun (finetune_run.cpp: setup,
// restore, save; finetune_step.cpp: the optimizer step; finetune_evaluation.cpp: the held-out evaluation).
#include "finetune/trainer.h"

#include <cmath>
#include <memory>

#include "finetune/finetune_run.h"
#include "util/progress.h"

namespace draft {

FinetuneSummary run_finetune(const FinetuneConfig& config_in, bool resume, const FinetuneHooks& hooks) {
  FinetuneRun run(config_in, resume);
  const FinetuneConfig& config = run.config();
  if (run.resuming()) run.restore();
  run.synchronize_start();
  if (run.steps_done() == 0 && config.eval.due(0, config.train.steps)) run.evaluate(0);  // the base model: B = 0
  std::unique_ptr<ProgressBar> bar;
  if (!hooks.quiet && run.is_main()) bar = std::make_unique<ProgressBar>(config.train.steps, "finetune " + run.method_name());
  while (run.steps_done() < config.train.steps) {
    const nlohmann::json record = run.step();
    if (hooks.on_step) hooks.on_step(record);
    if (bar) {
      const nlohmann::json& grad = record["grad_norm"];
      bar->update(run.steps_done(), {{"reward", record["reward_mean"].get<double>()},
                                     {"loss", record["loss"].get<double>()},
                                     {"grad", grad.is_number() ? grad.get<double>() : NAN}});
    }
    const int64_t step = run.steps_done();
    const bool last = step == config.train.steps;
    if (step % config.train.save_every == 0 || last) run.save(step, last);
    if (config.eval.due(step, config.train.steps)) run.evaluate(step);
  }
  if (bar) bar->finish();
  FinetuneSummary summary = run.summary();
  if (summary.lora_path.empty()) summary.lora_path = run.config().out_dir + "/lora_final.safetensors";
  summary.steps_done = run.steps_done();
  return summary;
}

}  // namespace draft
