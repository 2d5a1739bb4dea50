// LoRA injection into the UNet by module-name pattern (PEFT's target_modules rule) through the owning
// modules' projection hooks, so the base's state-dict keys never change.
#include "lora/lora.h"

#include <cmath>
#include <memory>
#include <set>

#include <torch/torch.h>

#include "nn/attention.h"
#include "nn/feed_forward.h"
#include "util/error.h"

namespace draft {
namespace {

const char* const kSupported = "to_q, to_k, to_v, to_out.0, ff.net.0.proj, ff.net.2";

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// PEFT: a target matches a module whose full name equals it or ends with "." + target.
bool matches(const std::string& name, const std::string& target) {
  return name == target || ends_with(name, "." + target);
}

std::string last_component(const std::string& name) {
  const auto dot = name.rfind('.');
  return dot == std::string::npos ? name : name.substr(dot + 1);
}

// Targets that name a convolution in SD UNets (proj_in / proj_out are 1x1 convs in SD 1.x).
bool is_conv_target(const std::string& target) {
  static const std::set<std::string> kConv = {"conv1", "conv2", "conv_shortcut", "conv", "conv_in",
                                              "conv_out", "proj_in", "proj_out", "op"};
  return kConv.count(last_component(target)) > 0;
}

}  // namespace

const ConfigTable<LoRAConfig>& lora_config_table() {
  static const ConfigTable<LoRAConfig> table = [] {
    ConfigTable<LoRAConfig> t;
    t.add("rank", "--lora-rank", "LoRA rank r (>= 1)", DRAFT_MEMBER(rank), check_at_least(1));
    t.add("alpha", "--lora-alpha", "alpha of the alpha / r scaling; 0 means alpha = rank (scaling 1, diffusers' default)",
          DRAFT_MEMBER(alpha), check_non_negative());
    t.add("targets", "--lora-targets",
          "UNet module patterns to adapt: a layer is adapted when its diffusers name equals a pattern or ends with "
          "'.' + pattern (PEFT's target_modules rule); supported: to_q, to_k, to_v, to_out.0, ff.net.0.proj, ff.net.2",
          DRAFT_MEMBER(targets), check_not_empty());
    t.add("text_encoder", "", "LoRA on the text encoder (not supported yet: must be false)", DRAFT_MEMBER(text_encoder));
    return t;
  }();
  return table;
}

nlohmann::json LoRAConfig::to_json() const { return lora_config_table().to_json(*this); }

LoRAConfig LoRAConfig::from_json(const nlohmann::json& json, const std::string& source) {
  LoRAConfig c;
  lora_config_table().read(json, source, c, "lora.");
  c.validate();
  return c;
}

void LoRAConfig::validate() const {
  lora_config_table().validate(*this, "lora.");
  DRAFT_CHECK(!targets.empty(), "lora.targets must name at least one layer (supported: ", kSupported, ")");
  for (const auto& target : targets) {
    DRAFT_CHECK(!target.empty(), "lora.targets: empty module name (supported: ", kSupported, ")");
    DRAFT_CHECK(!is_conv_target(target), "lora.targets: conv targets are not supported yet ('", target,
                "'); supported: ", kSupported);
  }
  DRAFT_CHECK(!text_encoder, "lora.text_encoder: text-encoder LoRA is not supported yet (set it to false)");
}

std::vector<LoRASlot> lora_slots(UNet2DCondition& unet) {
  std::vector<LoRASlot> slots;
  for (const auto& item : unet->named_modules("", /*include_self=*/false)) {
    const std::string& prefix = item.key();
    if (auto attention = std::dynamic_pointer_cast<AttentionImpl>(item.value())) {
      for (const char* projection : {"to_q", "to_k", "to_v", "to_out.0"}) {
        const std::string p = projection;
        slots.push_back({prefix + "." + p, [attention, p]() -> const torch::nn::AnyModule& {
                           return attention->projection(p);
                         },
                         [attention, p](torch::nn::AnyModule m) { attention->replace_projection(p, std::move(m)); }});
      }
    } else if (auto ff = std::dynamic_pointer_cast<FeedForwardImpl>(item.value())) {
      for (const char* projection : {"net.0.proj", "net.2"}) {
        const std::string p = projection;
        slots.push_back({prefix + "." + p, [ff, p]() -> const torch::nn::AnyModule& { return ff->projection(p); },
                         [ff, p](torch::nn::AnyModule m) { ff->replace_projection(p, std::move(m)); }});
      }
    }
  }
  return slots;
}

LoRALinear ensure_lora_linear(const LoRASlot& slot) {
  const auto& current = slot.get();
  if (auto wrapped = std::dynamic_pointer_cast<LoRALinearImpl>(current.ptr())) return LoRALinear(wrapped);
  auto linear = std::dynamic_pointer_cast<torch::nn::LinearImpl>(current.ptr());
  DRAFT_CHECK(linear, "LoRA: layer ", slot.name, " is not a Linear");
  auto wrapper = LoRALinear(torch::nn::Linear(linear));
  slot.set(torch::nn::AnyModule(wrapper));
  return wrapper;
}

std::vector<at::Tensor> LoRANetwork::parameters() const {
  std::vector<at::Tensor> out;
  for (const auto& layer : layers) {
    out.push_back(layer.down());
    out.push_back(layer.up());
  }
  return out;
}

std::vector<std::pair<std::string, at::Tensor>> LoRANetwork::named_parameters() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& layer : layers) {
    out.emplace_back(layer.name + ".lora_A.weight", layer.down());
    out.emplace_back(layer.name + ".lora_B.weight", layer.up());
  }
  return out;
}

int64_t LoRANetwork::parameter_count() const {
  int64_t count = 0;
  for (const auto& t : parameters()) count += t.numel();
  return count;
}

void LoRANetwork::set_scale(double scale) {
  for (auto& layer : layers) layer.module->set_scale(layer.adapter, scale);
}

LoRANetwork inject_lora(UNet2DCondition& unet, const LoRAConfig& config) {
  config.validate();
  const std::vector<LoRASlot> slots = lora_slots(unet);
  for (const auto& target : config.targets) {
    bool found = false;
    for (const auto& slot : slots) found = found || matches(slot.name, target);
    DRAFT_CHECK(found, "lora.targets: '", target, "' matches no LoRA-capable layer of the UNet (supported: ",
                kSupported, ", optionally with a module-path prefix such as attn1.to_q)");
  }
  // 1. freeze the base: only the adapters added below train
  for (auto& p : unet->parameters()) p.set_requires_grad(false);
  // 2. a fresh adapter (A Kaiming-uniform, B = 0) per matching layer
  LoRANetwork network;
  network.config = config;
  for (const auto& slot : slots) {
    bool wanted = false;
    for (const auto& target : config.targets) wanted = wanted || matches(slot.name, target);
    if (!wanted) continue;
    LoRALinear module = ensure_lora_linear(slot);
    DRAFT_CHECK(!module->merged(), "LoRA: layer ", slot.name, " has merged adapters; unmerge before injecting");
    const int64_t adapter = module->add_adapter(config.rank, config.effective_alpha());
    network.layers.push_back({slot.name, module, adapter});
  }
  return network;
}

LoRANetwork inject_lora(UNet2DCondition& unet, const LoRAConfig& config, uint64_t seed) {
  at::Generator global = at::detail::getDefaultCPUGenerator();
  const at::Tensor saved = global.get_state();
  global.set_current_seed(seed);
  try {
    LoRANetwork network = inject_lora(unet, config);
    global.set_state(saved);
    return network;
  } catch (...) {
    global.set_state(saved);
    throw;
  }
}

std::vector<std::pair<std::string, LoRALinear>> lora_modules(UNet2DCondition& unet) {
  std::vector<std::pair<std::string, LoRALinear>> out;
  for (const auto& slot : lora_slots(unet)) {
    if (auto wrapped = std::dynamic_pointer_cast<LoRALinearImpl>(slot.get().ptr())) {
      out.emplace_back(slot.name, LoRALinear(wrapped));
    }
  }
  return out;
}

int64_t remove_lora(UNet2DCondition& unet, bool merge) {
  int64_t count = 0;
  for (const auto& slot : lora_slots(unet)) {
    auto wrapped = std::dynamic_pointer_cast<LoRALinearImpl>(slot.get().ptr());
    if (!wrapped) continue;
    if (merge && !wrapped->merged()) wrapped->merge();
    if (!merge && wrapped->merged()) wrapped->unmerge();
    slot.set(torch::nn::AnyModule(wrapped->to_linear()));
    ++count;
  }
  return count;
}

}  // namespace draft
