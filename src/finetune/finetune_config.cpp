// FinetuneConfig: JSON round trip and validation with key names in every message.
#include "finetune/finetune_config.h"

#include <algorithm>

#include <fstream>
#include <set>

#include "util/error.h"

namespace draft {
namespace {

// Checks that `object` (the value at `path`) is an object whose keys are all in `known`.
void check_keys(const nlohmann::json& object, const std::string& path, const std::set<std::string>& known,
                const std::string& source) {
  DRAFT_CHECK(object.is_object(), source, ": '", path, "' must be a JSON object");
  for (const auto& item : object.items()) {
    if (known.count(item.key())) continue;
    std::string list;
    for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
    fail(source, ": unknown key '", path.empty() ? "" : path + ".", item.key(), "' (known: ", list, ")");
  }
}

template <typename T>
void read(const nlohmann::json& object, const std::string& key, T& value, const std::string& path,
          const std::string& source) {
  if (!object.contains(key) || object.at(key).is_null()) return;
  try {
    value = object.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    fail(source, ": key '", path.empty() ? "" : path + ".", key, "' has the wrong type: ", object.at(key).dump());
  }
}

}  // namespace

nlohmann::json FinetuneConfig::to_json() const {
  return {{"model", model},
          {"reward", reward},
          {"prompts", prompts},
          {"prompts_file", prompts_file},
          {"out_dir", out_dir},
          {"device", device},
          {"dtype", dtype},
          {"method", method.to_json()},
          {"lora", lora.to_json()},
          {"sampler",
           {{"steps", sampler.steps}, {"guidance", sampler.guidance_scale}, {"eta", sampler.eta},
            {"checkpoint", sampler.checkpoint}}},
          {"optimizer",
           {{"lr", optimizer.lr},
            {"beta1", optimizer.beta1},
            {"beta2", optimizer.beta2},
            {"weight_decay", optimizer.weight_decay},
            {"eps", optimizer.eps},
            {"max_grad_norm", optimizer.max_grad_norm},
            {"schedule", optimizer.schedule},
            {"warmup_steps", optimizer.warmup_steps}}},
          {"train",
           {{"steps", train.steps},
            {"batch_size", train.batch_size},
            {"grad_accumulation", train.grad_accumulation},
            {"seed", train.seed},
            {"save_every", train.save_every},
            {"max_bad_steps", train.max_bad_steps},
            {"lora_format", train.lora_format}}},
          {"eval",
           {{"every", eval.every},
            {"at", eval.at},
            {"prompts", eval.prompts},
            {"images_per_prompt", eval.images_per_prompt},
            {"seed", eval.seed},
            {"reward", eval.reward},
            {"eta", eval.eta}}}};
}

FinetuneConfig FinetuneConfig::from_json(const nlohmann::json& json, const std::string& source) {
  FinetuneConfig c;
  check_keys(json, "", {"model", "reward", "prompts", "prompts_file", "out_dir", "device", "dtype", "method", "lora",
                        "sampler", "optimizer", "train", "eval"},
             source);
  read(json, "model", c.model, "", source);
  read(json, "reward", c.reward, "", source);
  read(json, "prompts", c.prompts, "", source);
  read(json, "prompts_file", c.prompts_file, "", source);
  read(json, "out_dir", c.out_dir, "", source);
  read(json, "device", c.device, "", source);
  read(json, "dtype", c.dtype, "", source);
  if (json.contains("method")) c.method = MethodConfig::from_json(ConfigJson{json.at("method"), source});
  if (json.contains("lora")) c.lora = LoRAConfig::from_json(json.at("lora"));
  if (json.contains("sampler")) {
    const auto& s = json.at("sampler");
    check_keys(s, "sampler", {"steps", "guidance", "eta", "checkpoint"}, source);
    read(s, "steps", c.sampler.steps, "sampler", source);
    read(s, "guidance", c.sampler.guidance_scale, "sampler", source);
    read(s, "eta", c.sampler.eta, "sampler", source);
    read(s, "checkpoint", c.sampler.checkpoint, "sampler", source);
  }
  if (json.contains("optimizer")) {
    const auto& o = json.at("optimizer");
    check_keys(o, "optimizer",
               {"lr", "beta1", "beta2", "weight_decay", "eps", "max_grad_norm", "schedule", "warmup_steps"}, source);
    read(o, "lr", c.optimizer.lr, "optimizer", source);
    read(o, "beta1", c.optimizer.beta1, "optimizer", source);
    read(o, "beta2", c.optimizer.beta2, "optimizer", source);
    read(o, "weight_decay", c.optimizer.weight_decay, "optimizer", source);
    read(o, "eps", c.optimizer.eps, "optimizer", source);
    read(o, "max_grad_norm", c.optimizer.max_grad_norm, "optimizer", source);
    read(o, "schedule", c.optimizer.schedule, "optimizer", source);
    read(o, "warmup_steps", c.optimizer.warmup_steps, "optimizer", source);
  }
  if (json.contains("train")) {
    const auto& t = json.at("train");
    check_keys(t, "train",
               {"steps", "batch_size", "grad_accumulation", "seed", "save_every", "max_bad_steps", "lora_format"},
               source);
    read(t, "steps", c.train.steps, "train", source);
    read(t, "batch_size", c.train.batch_size, "train", source);
    read(t, "grad_accumulation", c.train.grad_accumulation, "train", source);
    read(t, "seed", c.train.seed, "train", source);
    read(t, "save_every", c.train.save_every, "train", source);
    read(t, "max_bad_steps", c.train.max_bad_steps, "train", source);
    read(t, "lora_format", c.train.lora_format, "train", source);
  }
  if (json.contains("eval")) {
    const auto& e = json.at("eval");
    check_keys(e, "eval", {"every", "at", "prompts", "images_per_prompt", "seed", "reward", "eta"}, source);
    read(e, "every", c.eval.every, "eval", source);
    read(e, "at", c.eval.at, "eval", source);
    read(e, "reward", c.eval.reward, "eval", source);
    read(e, "eta", c.eval.eta, "eval", source);
    read(e, "prompts", c.eval.prompts, "eval", source);
    read(e, "images_per_prompt", c.eval.images_per_prompt, "eval", source);
    read(e, "seed", c.eval.seed, "eval", source);
  }
  return c;
}

bool EvalConfig::due(int64_t step, int64_t total) const {
  if (every <= 0 && at.empty()) return false;
  if (step == 0 || step == total) return true;
  if (every > 0 && step % every == 0) return true;
  return std::find(at.begin(), at.end(), step) != at.end();
}

void FinetuneConfig::validate() const {
  DRAFT_CHECK(!model.empty(), "model is required: a diffusers-layout folder (--model DIR)");
  DRAFT_CHECK(!reward.empty(), "reward is required (--reward SPEC, see docs/rewards.md)");
  DRAFT_CHECK(!prompts.empty() || !prompts_file.empty(), "prompts are required: --prompt TEXT or --prompts FILE");
  DRAFT_CHECK(prompts.empty() || prompts_file.empty(), "give prompts or prompts_file, not both");
  DRAFT_CHECK(!out_dir.empty(), "out_dir is required (--run-dir DIR)");
  DRAFT_CHECK(sampler.steps >= 1, "sampler.steps must be >= 1, got ", sampler.steps);
  DRAFT_CHECK(sampler.eta >= 0.0, "sampler.eta must be >= 0, got ", sampler.eta);
  method.validate(sampler.steps);
  DRAFT_CHECK(method.name != "ddpo" || sampler.eta > 0.0, "method ddpo needs a stochastic sampler for its "
              "log-probabilities: set sampler.eta > 0 (--eta 1, as DDPO), got ", sampler.eta);
  lora.validate();
  DRAFT_CHECK(optimizer.lr > 0, "optimizer.lr must be > 0, got ", optimizer.lr);
  DRAFT_CHECK(optimizer.beta1 >= 0 && optimizer.beta1 < 1, "optimizer.beta1 must be in [0, 1), got ",
              optimizer.beta1);
  DRAFT_CHECK(optimizer.beta2 >= 0 && optimizer.beta2 < 1, "optimizer.beta2 must be in [0, 1), got ",
              optimizer.beta2);
  DRAFT_CHECK(optimizer.weight_decay >= 0, "optimizer.weight_decay must be >= 0, got ", optimizer.weight_decay);
  DRAFT_CHECK(optimizer.eps > 0, "optimizer.eps must be > 0, got ", optimizer.eps);
  DRAFT_CHECK(optimizer.max_grad_norm >= 0, "optimizer.max_grad_norm must be >= 0 (0 disables clipping), got ",
              optimizer.max_grad_norm);
  DRAFT_CHECK(optimizer.schedule == "constant" || optimizer.schedule == "cosine",
              "optimizer.schedule must be constant or cosine, got '", optimizer.schedule, "'");
  DRAFT_CHECK(optimizer.warmup_steps >= 0, "optimizer.warmup_steps must be >= 0, got ", optimizer.warmup_steps);
  DRAFT_CHECK(train.steps >= 1, "train.steps must be >= 1, got ", train.steps);
  DRAFT_CHECK(train.batch_size >= 1, "train.batch_size must be >= 1, got ", train.batch_size);
  DRAFT_CHECK(train.grad_accumulation >= 1, "train.grad_accumulation must be >= 1, got ", train.grad_accumulation);
  DRAFT_CHECK(train.save_every >= 1, "train.save_every must be >= 1, got ", train.save_every);
  DRAFT_CHECK(train.max_bad_steps >= 1, "train.max_bad_steps must be >= 1, got ", train.max_bad_steps);
  DRAFT_CHECK(train.lora_format == "diffusers" || train.lora_format == "kohya",
              "train.lora_format must be diffusers or kohya, got '", train.lora_format, "'");
  DRAFT_CHECK(eval.every >= 0, "eval.every must be >= 0 (0: not periodically), got ", eval.every);
  for (int64_t s : eval.at) DRAFT_CHECK(s >= 1, "eval.at holds step ", s, "; steps are >= 1 (step 0 is always evaluated)");
  DRAFT_CHECK(eval.images_per_prompt >= 1, "eval.images_per_prompt must be >= 1, got ", eval.images_per_prompt);
}

std::vector<std::string> FinetuneConfig::training_prompts() const {
  if (!prompts.empty()) return prompts;
  std::ifstream in(prompts_file);
  DRAFT_CHECK(in.good(), prompts_file, ": cannot open the prompts file (prompts_file)");
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) lines.push_back(line);
  }
  DRAFT_CHECK(!lines.empty(), prompts_file, ": the prompts file has no non-empty line");
  return lines;
}

}  // namespace draft
