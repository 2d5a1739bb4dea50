// draft probe: which truncation K a reward needs. (a) Decision time: the share of the reward's variance
// already fixed after k of N stochastic sampling steps; (b) gradient agreement: DRaFT-K's LoRA gradient
// against full DRaFT's for several K. As a Markdown table, JSON and an SVG of the share curves.
#include <chrono>
#include <cmath>
#include <iostream>
#include <memory>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "command.h"
#include "flag_checks.h"
#include "data/fashion_mnist.h"
#include "data/prompt_file.h"
#include "diffusion/pipeline_lora.h"
#include "finetune/decision_time.h"
#include "finetune/gradient_agreement.h"
#include "io/json_file.h"
#include "io/svg_plot.h"
#include "lora/lora.h"
#include "model_threads.h"
#include "output_paths.h"
#include "reward_flags.h"
#include "util/error.h"
#include "util/log.h"
#include "util/seeds.h"

namespace draft::cli {
namespace {

struct ProbeFlags {
  std::string model;
  std::vector<std::string> loras;    ///< FILE[:SCALE] applied to --model: probe a fine-tuned model
  std::vector<std::string> rewards;  ///< one spec per --reward; every reward scores the same images
  RewardFlags reward;                ///< --reward-weights, --models-dir
  std::vector<std::string> prompts;
  std::string prompts_file;
  DecisionTimeOptions decision;
  GradientAgreementOptions gradients;
  int64_t lora_rank = 4;
  bool no_gradients = false;
  bool json = false;
  std::string json_file;
  std::string plot;
  std::string dtype = "f32";
  std::string device = "cpu";
};

/// One reward's gradient part: measured, or skipped with the reason.
struct GradientEntry {
  std::string reward;
  std::optional<GradientAgreementResult> result;
  std::string skipped;
};

struct ProbeReport {
  DecisionTimeResult decision;
  std::vector<GradientEntry> gradients;
  std::string gradients_skipped;  ///< why part (b) did not run at all (--no-gradients)
  int64_t lora_parameters = 0;
  double seconds = 0;
};

// --prompt / --prompts, or, without either, one prompt per Fashion-MNIST class: what the embedded model
// and its classifier reward understand.
std::vector<std::string> probe_prompts(const ProbeFlags& f) {
  if (!f.prompts.empty() || !f.prompts_file.empty()) return resolve_prompts(f.prompts, f.prompts_file);
  std::vector<std::string> prompts;
  for (const auto& name : fashion_mnist_classes()) prompts.push_back(fill_caption_template("a {class}", name));
  DRAFT_LOG_INFO("no --prompt or --prompts: using the {} Fashion-MNIST class prompts (\"{}\" ...), the embedded "
                 "model's vocabulary", prompts.size(), prompts.front());
  return prompts;
}

nlohmann::json number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); }

nlohmann::json numbers(const std::vector<double>& values) {
  nlohmann::json out = nlohmann::json::array();
  for (double v : values) out.push_back(number(v));
  return out;
}

nlohmann::json range_json(const AgreementRange& r) {
  return {{"mean", number(r.mean)}, {"min", number(r.min)}, {"max", number(r.max)}};
}

nlohmann::json optional_k(const std::optional<int64_t>& k) { return k ? nlohmann::json(*k) : nlohmann::json(); }

nlohmann::json report_json(const ProbeFlags& f, const ProbeReport& r) {
  const int64_t n = f.decision.steps;
  nlohmann::json curves = nlohmann::json::array();
  for (const auto& c : r.decision.curves) {
    curves.push_back({{"reward", c.reward},
                      {"constant", c.stats.constant},
                      {"share", numbers(c.stats.share)},
                      {"within_variance", numbers(c.stats.within_variance)},
                      {"total_variance", number(c.stats.total_variance)},
                      {"mean", number(c.stats.mean)},
                      {"k50", optional_k(c.stats.k50)},
                      {"k90", optional_k(c.stats.k90)},
                      {"monotone", c.stats.monotone},
                      {"monotone_share", numbers(c.stats.monotone_share)},
                      {"monotone_k50", optional_k(c.stats.monotone_k50)},
                      {"monotone_k90", optional_k(c.stats.monotone_k90)},
                      {"summary", decision_summary(c.stats, n)}});
  }
  nlohmann::json out = {{"model", f.model},
                        {"rewards", f.rewards},
                        {"prompts", f.decision.prompts},
                        {"steps", n},
                        {"guidance", f.decision.guidance_scale},
                        {"seed", f.decision.seed},
                        {"seconds", r.seconds},
                        {"decision_time",
                         {{"eta", 1.0},
                          {"trajectories", f.decision.trajectories},
                          {"completions", f.decision.completions},
                          {"stride", f.decision.stride},
                          {"steps_done", r.decision.steps_done},
                          {"curves", curves},
                          {"sample_steps", r.decision.sample_steps},
                          {"seconds", r.decision.seconds}}}};
  if (!f.loras.empty()) out["lora"] = f.loras;
  if (!r.gradients_skipped.empty()) {
    out["gradient_agreement"] = {{"skipped", r.gradients_skipped}};
    return out;
  }
  nlohmann::json results = nlohmann::json::array();
  for (const auto& entry : r.gradients) {
    if (!entry.result) {
      results.push_back({{"reward", entry.reward}, {"skipped", entry.skipped}});
      continue;
    }
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& row : entry.result->rows) {
      rows.push_back({{"k", row.k},
                      {"cosine_to_full", range_json(row.cosine_to_full)},
                      {"norm_ratio", range_json(row.norm_ratio)},
                      {"cosine_to_previous", row.cosine_to_previous ? range_json(*row.cosine_to_previous)
                                                                    : nlohmann::json()},
                      {"cosines", numbers(row.cosines)},
                      {"norm_ratios", numbers(row.ratios)}});
    }
    results.push_back({{"reward", entry.reward},
                       {"full_norms", numbers(entry.result->full_norms)},
                       {"rows", rows},
                       {"seconds", entry.result->seconds}});
  }
  out["gradient_agreement"] = {{"eta", 0.0},
                               {"batches", f.gradients.batches},
                               {"batch_size", f.gradients.batch_size},
                               {"ks", agreement_ks(f.gradients.ks, n)},
                               {"lora_rank", f.lora_rank},
                               {"parameters", r.lora_parameters},
                               {"results", results}};
  return out;
}

std::string range_cell(const AgreementRange& r) {
  return fmt::format("{:.4f} [{:.4f}, {:.4f}]", r.mean, r.min, r.max);
}

void print_tables(const ProbeFlags& f, const ProbeReport& r) {
  const int64_t n = f.decision.steps;
  const DecisionTimeResult& d = r.decision;
  std::cout << fmt::format("decision time on {}: {} trajectories x {} completions, {} DDIM steps (eta 1), guidance "
                           "{}, seed {} ({:.1f} s)\n\n",
                           f.model, f.decision.trajectories, f.decision.completions, n, f.decision.guidance_scale,
                           f.decision.seed, d.seconds);
  std::cout << "share of the reward's variance fixed after k of " << n << " steps (1 - W_k / V), and the same from "
               "the non-increasing fit of W_k:\n\n| k |";
  for (const auto& c : d.curves) std::cout << ' ' << c.reward << " | " << c.reward << " (monotone fit) |";
  std::cout << "\n|---|";
  for (std::size_t i = 0; i < d.curves.size(); ++i) std::cout << "---|---|";
  std::cout << '\n';
  for (std::size_t i = 0; i < d.steps_done.size(); ++i) {
    std::cout << "| " << d.steps_done[i] << " |";
    for (const auto& c : d.curves) {
      std::cout << (c.stats.constant ? std::string(" n/a | n/a |")
                                     : fmt::format(" {:.3f} | {:.3f} |", c.stats.share[i], c.stats.monotone_share[i]));
    }
    std::cout << '\n';
  }
  std::cout << '\n';
  for (const auto& c : d.curves) {
    std::cout << fmt::format("- {}: {}. V = {:.4g}, mean reward {:.4g}\n", c.reward, decision_summary(c.stats, n),
                             c.stats.total_variance, c.stats.mean);
  }
  std::cout << '\n';
  if (!r.gradients_skipped.empty()) {
    std::cout << "gradient agreement: skipped (" << r.gradients_skipped << ")\n";
    return;
  }
  std::cout << fmt::format("gradient agreement of DRaFT-K with full DRaFT (K = {}): {} batch(es) x {} samples, fresh "
                           "LoRA rank {} ({} parameters), eta 0, guidance {}\n\n",
                           n, f.gradients.batches, f.gradients.batch_size, f.lora_rank, r.lora_parameters,
                           f.gradients.guidance_scale);
  std::cout << "| reward | K | cos(g_K, g_N) mean [min, max] | ‖g_K‖ / ‖g_N‖ mean [min, max] | "
               "cos(g_K, g_previous K) mean [min, max] |\n|---|---|---|---|---|\n";
  for (const auto& entry : r.gradients) {
    if (!entry.result) continue;
    const auto& rows = entry.result->rows;
    for (std::size_t i = 0; i < rows.size(); ++i) {
      std::cout << fmt::format("| {} | {} | {} | {} | {} |\n", entry.reward, rows[i].k, range_cell(rows[i].cosine_to_full),
                               range_cell(rows[i].norm_ratio),
                               rows[i].cosine_to_previous
                                   ? fmt::format("vs K = {}: {}", rows[i - 1].k, range_cell(*rows[i].cosine_to_previous))
                                   : std::string("-"));
    }
  }
  for (const auto& entry : r.gradients) {
    if (!entry.result) std::cout << "\n- " << entry.reward << ": skipped (" << entry.skipped << ")";
  }
  std::cout << '\n';
}

void write_plot(const ProbeFlags& f, const DecisionTimeResult& d) {
  LinePlot plot;
  plot.title = fmt::format("Decision time: share of the reward's variance fixed after k of {} steps", f.decision.steps);
  plot.x_label = "k (DDIM steps done, eta 1)";
  plot.y_label = "share of Var r fixed (1 - W_k / V)";
  plot.reference_lines = {{0.5, "half"}, {0.9, "90%"}};
  for (const auto& c : d.curves) {
    if (c.stats.constant) continue;  // no curve: the summary says why
    PlotSeries series, fit;
    series.name = c.reward;
    fit.name = c.reward + " (monotone fit)";
    fit.dashed = true;
    for (std::size_t i = 0; i < d.steps_done.size(); ++i) {
      series.x.push_back(static_cast<double>(d.steps_done[i]));
      series.y.push_back(c.stats.share[i]);
      fit.x.push_back(series.x.back());
      fit.y.push_back(c.stats.monotone_share[i]);
    }
    plot.series.push_back(series);
    if (!c.stats.monotone) plot.series.push_back(fit);
  }
  if (plot.series.empty()) {
    DRAFT_LOG_WARN("--plot {}: nothing to draw, every reward is constant given the prompt", f.plot);
    return;
  }
  write_svg(f.plot, plot);
  DRAFT_LOG_INFO("wrote {}", f.plot);
}

int run_probe(ProbeFlags f) {
  const auto start = std::chrono::steady_clock::now();
  // 1. Settings and output paths, checked before anything is loaded.
  check_output_file(f.plot, "--plot");
  check_output_file(f.json_file, "--json-file");
  const std::vector<std::string> prompts = probe_prompts(f);
  f.decision.prompts = prompts;
  f.gradients.prompts = prompts;
  f.gradients.steps = f.decision.steps;
  f.gradients.guidance_scale = f.decision.guidance_scale;
  f.gradients.seed = f.decision.seed;
  f.decision.validate();
  if (!f.no_gradients) f.gradients.validate();
  LoRAConfig lora;
  lora.rank = f.lora_rank;
  lora.validate();
  // 2. Model (with --lora applied, so a fine-tuned model can be probed) and rewards.
  WeightsOptions weights;
  weights.dtype = parse_compute_dtype(f.dtype);
  weights.device = parse_device(f.device);
  RewardContext reward_context = f.reward.context(weights.device, weights.dtype);
  std::vector<RewardPtr> rewards;
  std::vector<Reward*> reward_ptrs;
  for (const auto& spec : f.rewards) {
    rewards.push_back(make_reward(spec, reward_context));
    reward_ptrs.push_back(rewards.back().get());
  }
  StableDiffusion model = load_stable_diffusion(f.model, weights);
  apply_loras(model, f.loras);
  use_model_threading(model, f.decision.trajectories);

  // 3. (a) Decision time.
  ProbeReport report;
  DRAFT_LOG_INFO("decision time: {} trajectories x {} completions, {} steps, {} reward(s)", f.decision.trajectories,
                 f.decision.completions, f.decision.steps, rewards.size());
  report.decision = measure_decision_time(model, reward_ptrs, f.decision);

  // 4. (b) Gradient agreement, on a fresh LoRA seeded as a fine-tuning run with the same seed starts.
  if (f.no_gradients) {
    report.gradients_skipped = "--no-gradients";
  } else {
    const LoRANetwork network = inject_lora(model.unet, lora, derive_seed(f.decision.seed, 0, -1));
    const std::vector<at::Tensor> params = network.parameters();
    report.lora_parameters = network.parameter_count();
    for (const auto& reward : rewards) {
      GradientEntry entry{reward->name(), std::nullopt, ""};
      if (!reward->differentiable()) {
        entry.skipped = "reward '" + reward->name() + "' is not differentiable: DRaFT has no gradient to compare "
                        "(DDPO trains on its values; a differentiable proxy such as jpeg-proxy can be probed)";
        DRAFT_LOG_WARN("gradient agreement: {}", entry.skipped);
      } else {
        entry.result = measure_gradient_agreement(model, *reward, params, f.gradients);
      }
      report.gradients.push_back(entry);
    }
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  // 5. Output.
  if (!f.plot.empty()) write_plot(f, report.decision);
  const nlohmann::json json = report_json(f, report);
  if (!f.json_file.empty()) write_json_file(f.json_file, json);
  if (f.json) {
    std::cout << json.dump(2) << '\n';
  } else {
    print_tables(f, report);
  }
  DRAFT_LOG_INFO("probe done in {:.0f} s", report.seconds);
  return 0;
}

}  // namespace

Command add_probe_command(CLI::App& root) {
  auto f = std::make_shared<ProbeFlags>();
  CLI::App* sub = root.add_subcommand(
      "probe", "Which truncation K a reward needs: its decision time along the sampling chain and how DRaFT-K's "
               "gradient agrees with full DRaFT's");
  sub->add_option("--model", f->model, "model folder (diffusers layout)")->required();
  sub->add_option("--reward", f->rewards, reward_spec_help() + "\nRepeat for several rewards (scored on the same images)")
      ->required();
  add_reward_location_flags(sub, f->reward);
  sub->add_option("--prompt", f->prompts, "prompt text (repeat for several; trajectory i uses prompt i mod count)");
  sub->add_option("--prompts", f->prompts_file,
                  "file with one prompt per line (default without --prompt: one prompt per Fashion-MNIST class)");
  sub->add_option("--lora", f->loras, "LoRA file FILE[:SCALE] applied to --model first (repeat to mix)");
  sub->add_option("--steps", f->decision.steps, "N DDIM steps")->check(whole_number(1))->capture_default_str();
  sub->add_option("--guidance", f->decision.guidance_scale, "classifier-free guidance scale (<= 1 disables it)")
      ->capture_default_str();
  sub->add_option("--trajectories", f->decision.trajectories, "P reference trajectories (decision time)")
      ->check(whole_number(1))->capture_default_str();
  sub->add_option("--completions", f->decision.completions, "M completions per trajectory and k (at least 2)")
      ->capture_default_str();  // validate() says why at least 2
  sub->add_option("--stride", f->decision.stride, "measure every S-th k (k = N-1 always)")
      ->check(whole_number(1))->capture_default_str();
  sub->add_option("--batch-size", f->decision.batch_size, "samples per model call (decision time)")
      ->check(whole_number(1))->capture_default_str();
  sub->add_option("--grad-batches", f->gradients.batches, "G batches for the gradient agreement")
      ->check(whole_number(1))->capture_default_str();
  sub->add_option("--grad-batch-size", f->gradients.batch_size, "B samples per gradient batch")
      ->check(whole_number(1))->capture_default_str();
  sub->add_option("--k", f->gradients.ks, "truncations K to compare, comma-separated (N, full DRaFT, is always added)")
      ->delimiter(',')->capture_default_str();
  sub->add_option("--lora-rank", f->lora_rank, "rank of the fresh LoRA whose gradient is measured")
      ->check(whole_number(1))->capture_default_str();
  sub->add_flag("--no-gradients", f->no_gradients, "skip the gradient agreement (part b)");
  sub->add_option("--seed", f->decision.seed, "seed of the prompts' x_T and every draw")->capture_default_str();
  sub->add_flag("--json", f->json, "print JSON instead of the tables");
  sub->add_option("--json-file", f->json_file, "also write the JSON to this file");
  sub->add_option("--plot", f->plot, "write the decision-time curves (share against k, one per reward) as SVG");
  sub->add_option("--dtype", f->dtype, "compute dtype: f32, f16, bf16 or f64")->capture_default_str();
  sub->add_option("--device", f->device, "cpu, cuda or cuda:N")->capture_default_str();
  return {sub, [f] { return run_probe(*f); }};
}

}  // namespace draft::cli
