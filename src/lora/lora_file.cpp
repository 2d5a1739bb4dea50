// LoRA file layouts. Key names follow what the tools write and read (checked against their sources):
// diffusers save_lora_weights with PEFT ("unet." + module + ".lora_A.weight"), diffusers'
// _convert_non_diffusers_lora_to_diffusers and kohya sd-scripts networks/lora.py ("lora_unet_" +
// module with '.' -> '_', ".lora_down.weight", ".lora_up.weight", ".alpha"), and stable-diffusion.cpp's
// convert_tensor_name, which accepts kohya names in the diffusers and in the LDM spelling.
#include "lora/lora_file.h"

#include <cmath>
#include <filesystem>
#include <map>
#include <regex>
#include <utility>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "io/json_value.h"
#include "io/safetensors.h"
#include "util/error.h"

namespace draft {
namespace {

constexpr const char* kAdapterMetadataKey = "lora_adapter_metadata";  // diffusers' LORA_ADAPTER_METADATA_KEY
constexpr const char* kDraftMetadataKey = "draft_lora_config";

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string underscored(std::string s) {
  for (char& c : s) c = c == '.' ? '_' : c;
  return s;
}

enum class Role { kDown, kUp, kAlpha };

// Suffixes of the layouts, longest first so that ".lora.down.weight" wins over ".down.weight".
const std::vector<std::pair<std::string, Role>>& role_suffixes() {
  static const std::vector<std::pair<std::string, Role>> kSuffixes = {
      {".lora_linear_layer.down.weight", Role::kDown},  // diffusers' non-PEFT intermediate format
      {".lora_linear_layer.up.weight", Role::kUp},
      {".lora_down.weight", Role::kDown},  // kohya
      {".lora.down.weight", Role::kDown},  // diffusers' non-PEFT intermediate format
      {".lora_up.weight", Role::kUp},
      {".lora.up.weight", Role::kUp},
      {".lora_A.weight", Role::kDown},  // PEFT
      {".lora_B.weight", Role::kUp},
      {".down.weight", Role::kDown},  // diffusers attention processors (processor.to_q_lora.down.weight)
      {".up.weight", Role::kUp},
      {".alpha", Role::kAlpha},  // kohya
  };
  return kSuffixes;
}

// Every spelling of a layer's key stem in the layouts we read, mapped to its diffusers module name.
std::map<std::string, std::string> key_stems(const std::vector<LoRASlot>& slots, const UNetConfig& config) {
  std::map<std::string, std::string> stems;
  for (const auto& slot : slots) {
    const std::string& m = slot.name;
    stems["unet." + m] = m;
    stems[m] = m;
    stems[kohya_lora_name(m)] = m;
    const std::string ldm = ldm_module_name(m, config);
    if (!ldm.empty()) stems[kohya_lora_name(ldm)] = m;
    // diffusers < 0.21 attention processors: <attn>.processor.to_q_lora (to_out.0 -> to_out_lora)
    for (const auto& [projection, processor] : std::vector<std::pair<std::string, std::string>>{
             {".to_q", "to_q_lora"}, {".to_k", "to_k_lora"}, {".to_v", "to_v_lora"}, {".to_out.0", "to_out_lora"}}) {
      if (!ends_with(m, projection)) continue;
      const std::string attn = m.substr(0, m.size() - projection.size());
      stems["unet." + attn + ".processor." + processor] = m;
      stems[attn + ".processor." + processor] = m;
    }
  }
  return stems;
}

std::pair<int64_t, int64_t> slot_shape(const LoRASlot& slot) {
  const auto ptr = slot.get().ptr();
  if (auto wrapped = std::dynamic_pointer_cast<LoRALinearImpl>(ptr)) return {wrapped->in_features(), wrapped->out_features()};
  auto linear = std::dynamic_pointer_cast<torch::nn::LinearImpl>(ptr);
  DRAFT_CHECK(linear, "LoRA: layer ", slot.name, " is not a Linear");
  return {linear->options.in_features(), linear->options.out_features()};
}

}  // namespace

LoRAFormat parse_lora_format(const std::string& name) {
  if (name == "diffusers" || name == "peft") return LoRAFormat::kDiffusers;
  if (name == "kohya") return LoRAFormat::kKohya;
  fail("--lora-format: unknown LoRA format '", name, "' (use diffusers or kohya)");
}

const char* lora_format_name(LoRAFormat format) { return format == LoRAFormat::kKohya ? "kohya" : "diffusers"; }

std::string kohya_lora_name(const std::string& module) { return "lora_unet_" + underscored(module); }

std::string ldm_module_name(const std::string& module, const UNetConfig& config) {
  // LDM numbers the UNet's blocks flat: input_blocks.0 is conv_in, then per level `layers` entries
  // (resnet [+ attention at .1]) and one downsampler; middle_block = [resnet, attention, resnet];
  // output_blocks has layers + 1 entries per level, in up order (diffusers' _maybe_map_sgm_blocks_to_diffusers).
  static const std::regex kDown(R"(down_blocks\.(\d+)\.attentions\.(\d+)\.(.+))");
  static const std::regex kMid(R"(mid_block\.attentions\.(\d+)\.(.+))");
  static const std::regex kUp(R"(up_blocks\.(\d+)\.attentions\.(\d+)\.(.+))");
  const auto& layers = config.layers_per_block;
  const int64_t levels = static_cast<int64_t>(layers.size());
  std::smatch m;
  if (std::regex_match(module, m, kDown)) {
    const int64_t level = std::stoll(m[1]), j = std::stoll(m[2]);
    if (level >= levels) return "";
    int64_t index = 1 + j;
    for (int64_t k = 0; k < level; ++k) index += layers[k] + 1;
    return "input_blocks." + std::to_string(index) + ".1." + m[3].str();
  }
  if (std::regex_match(module, m, kMid)) {
    return "middle_block." + std::to_string(2 * std::stoll(m[1]) + 1) + "." + m[2].str();
  }
  if (std::regex_match(module, m, kUp)) {
    const int64_t level = std::stoll(m[1]), j = std::stoll(m[2]);
    if (level >= levels) return "";
    int64_t index = j;
    for (int64_t k = 0; k < level; ++k) index += layers[levels - 1 - k] + 1;
    return "output_blocks." + std::to_string(index) + ".1." + m[3].str();
  }
  return "";
}

void save_lora_file(const std::string& path, const std::vector<LoRAFileLayer>& layers, LoRAFormat format,
                    const LoRAConfig& config) {
  DRAFT_CHECK(!layers.empty(), "LoRA file ", path, ": no layers to save");
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  auto cpu = [](const at::Tensor& t) { return t.detach().to(torch::kCPU, torch::kFloat).contiguous(); };
  std::map<std::string, std::string> metadata = {{"format", "pt"}, {kDraftMetadataKey, config.to_json().dump()}};
  const int64_t rank = layers.front().rank();
  const double alpha = layers.front().alpha;
  for (const auto& layer : layers) {
    if (format == LoRAFormat::kDiffusers) {
      // One r / lora_alpha for the whole adapter in diffusers' metadata (PEFT's LoraConfig).
      DRAFT_CHECK(layer.rank() == rank && layer.alpha == alpha, "LoRA file ", path, ": layer ", layer.module,
                  " has rank ", layer.rank(), " / alpha ", layer.alpha, " but the first layer ", rank, " / ", alpha,
                  "; the diffusers layout stores one rank and alpha, use --lora-format kohya");
      tensors.emplace_back("unet." + layer.module + ".lora_A.weight", cpu(layer.down));
      tensors.emplace_back("unet." + layer.module + ".lora_B.weight", cpu(layer.up));
    } else {
      const std::string name = kohya_lora_name(layer.module);
      tensors.emplace_back(name + ".alpha", torch::tensor(static_cast<float>(layer.alpha)));
      tensors.emplace_back(name + ".lora_down.weight", cpu(layer.down));
      tensors.emplace_back(name + ".lora_up.weight", cpu(layer.up));
    }
  }
  if (format == LoRAFormat::kDiffusers) {
    // What diffusers' save_lora_weights(unet_lora_adapter_metadata=...) writes: the LoraConfig fields
    // prefixed with the component name; load_lora_weights builds LoraConfig(r, lora_alpha, ...) from it.
    nlohmann::json adapter = {{"unet.r", rank}, {"unet.lora_alpha", alpha}, {"unet.target_modules", config.targets}};
    metadata[kAdapterMetadataKey] = adapter.dump();
  } else {
    // kohya sd-scripts' training metadata, read by UIs to show rank and alpha.
    metadata["ss_network_module"] = "networks.lora";
    metadata["ss_network_dim"] = std::to_string(rank);
    metadata["ss_network_alpha"] = nlohmann::json(alpha).dump();
  }
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  save_safetensors(path, tensors, metadata);
}

void save_lora(const LoRANetwork& network, const std::string& path, LoRAFormat format) {
  std::vector<LoRAFileLayer> layers;
  for (const auto& layer : network.layers) {
    layers.push_back({layer.name, layer.down(), layer.up(), layer.module->alpha(layer.adapter)});
  }
  save_lora_file(path, layers, format, network.config);
}

LoRAFile read_lora_file(const std::string& path_in, UNet2DCondition& unet) {
  std::string path = path_in;
  if (std::filesystem::is_directory(path)) path = (std::filesystem::path(path) / kLoRAWeightName).string();
  DRAFT_CHECK(std::filesystem::exists(path), "LoRA file ", path, " does not exist (give a .safetensors file or a folder ",
              "holding ", kLoRAWeightName, ")");
  SafeTensorsFile file(path);
  LoRAFile out;
  out.path = path;

  const std::vector<LoRASlot> slots = lora_slots(unet);
  const auto stems = key_stems(slots, unet->config());
  for (const auto& info : file.tensors()) {
    if (starts_with(info.name, "lora_unet_") || starts_with(info.name, "lora_te")) out.format = LoRAFormat::kKohya;
  }

  // 1. every key -> (module, role)
  struct Parts {
    std::string down_key, up_key;
    at::Tensor down, up;
    std::optional<double> alpha;
  };
  std::map<std::string, Parts> found;
  for (const auto& info : file.tensors()) {
    const std::string& key = info.name;
    DRAFT_CHECK(!starts_with(key, "text_encoder") && !starts_with(key, "lora_te"), "LoRA file ", path, ": key '", key,
                "' is a text-encoder LoRA, which draft does not support yet (only UNet layers)");
    const std::pair<std::string, Role>* role = nullptr;
    for (const auto& suffix : role_suffixes()) {
      if (ends_with(key, suffix.first)) {
        role = &suffix;
        break;
      }
    }
    DRAFT_CHECK(role, "LoRA file ", path, ": unknown key '", key,
                "' (expected <layer>.lora_A.weight / .lora_B.weight (diffusers) or lora_unet_<layer>.lora_down.weight / "
                ".lora_up.weight / .alpha (kohya))");
    const std::string stem = key.substr(0, key.size() - role->first.size());
    const auto it = stems.find(stem);
    DRAFT_CHECK(it != stems.end(), "LoRA file ", path, ": key '", key, "' names layer '", stem,
                "', which this UNet does not have or which cannot carry LoRA here (supported: attention to_q, to_k, "
                "to_v, to_out.0 and ff.net.0.proj, ff.net.2); was the LoRA trained for another model?");
    Parts& parts = found[it->second];
    if (role->second == Role::kAlpha) {
      at::Tensor a = file.load(key);
      DRAFT_CHECK(a.numel() == 1, "LoRA file ", path, ": key '", key, "' must be a scalar, got shape ", a.sizes());
      parts.alpha = a.to(torch::kDouble).item<double>();
    } else {
      std::string& slot_key = role->second == Role::kDown ? parts.down_key : parts.up_key;
      DRAFT_CHECK(slot_key.empty(), "LoRA file ", path, ": keys '", slot_key, "' and '", key, "' both give layer ",
                  it->second);
      slot_key = key;
      (role->second == Role::kDown ? parts.down : parts.up) = file.load(key, {torch::kFloat});
    }
  }
  DRAFT_CHECK(!found.empty(), "LoRA file ", path, ": no LoRA tensors in it");

  // 2. alpha of the diffusers layout: diffusers' adapter metadata; else alpha = rank as diffusers assumes
  std::optional<double> file_alpha;
  const auto& metadata = file.metadata();
  if (auto it = metadata.find(kAdapterMetadataKey); it != metadata.end()) {
    const auto json = nlohmann::json::parse(it->second, nullptr, /*allow_exceptions=*/false);
    DRAFT_CHECK(json.is_object(), "LoRA file ", path, ": metadata '", kAdapterMetadataKey, "' is not a JSON object");
    if (json.contains("unet.lora_alpha")) {
      double alpha = 0;
      DRAFT_CHECK(json_to(json["unet.lora_alpha"], alpha), "LoRA file ", path, ": metadata '", kAdapterMetadataKey,
                  "': unet.lora_alpha must be a number, got ", json["unet.lora_alpha"].dump());
      file_alpha = alpha;
    }
  }
  if (auto it = metadata.find(kDraftMetadataKey); it != metadata.end()) {
    const auto json = nlohmann::json::parse(it->second, nullptr, /*allow_exceptions=*/false);
    DRAFT_CHECK(json.is_object(), "LoRA file ", path, ": metadata '", kDraftMetadataKey, "' is not a JSON object");
    out.config = LoRAConfig::from_json(json, "LoRA file " + path + " (metadata " + kDraftMetadataKey + ")");
  }

  // 3. complete pairs with the layer's shape, in the UNet's module order
  for (const auto& slot : slots) {
    auto it = found.find(slot.name);
    if (it == found.end()) continue;
    Parts& parts = it->second;
    DRAFT_CHECK(parts.down.defined() && parts.up.defined(), "LoRA file ", path, ": layer ", slot.name, " has ",
                parts.down.defined() ? "'" + parts.down_key + "' but no up (lora_B / lora_up) weight"
                                     : (parts.up.defined() ? "'" + parts.up_key + "'" : std::string("an alpha")) +
                                           " but no down (lora_A / lora_down) weight");
    const auto [in, out_features] = slot_shape(slot);
    const int64_t rank = parts.down.dim() == 2 ? parts.down.size(0) : -1;
    DRAFT_CHECK(parts.down.dim() == 2 && parts.down.size(1) == in, "LoRA file ", path, ": key '", parts.down_key,
                "' has shape ", parts.down.sizes(), ", expected [rank, ", in, "] for layer ", slot.name, " (Linear ", in,
                " -> ", out_features, ")");
    DRAFT_CHECK(parts.up.dim() == 2 && parts.up.size(0) == out_features && parts.up.size(1) == rank, "LoRA file ",
                path, ": key '", parts.up_key, "' has shape ", parts.up.sizes(), ", expected [", out_features, ", ",
                rank, "] for layer ", slot.name);
    // A rank-0 pair has no delta and would divide by its rank (fuzz/fuzz_lora.cpp).
    DRAFT_CHECK(rank >= 1, "LoRA file ", path, ": key '", parts.down_key, "' has shape ", parts.down.sizes(),
                ": rank 0, a layer needs rank >= 1");
    // kohya writes alpha 0 (or none) to mean alpha = rank, and so do files without any alpha.
    double alpha = parts.alpha ? *parts.alpha : file_alpha ? *file_alpha : 0.0;
    if (alpha == 0.0) alpha = static_cast<double>(rank);
    DRAFT_CHECK(std::isfinite(alpha) && alpha > 0, "LoRA file ", path, ": layer ", slot.name, " has alpha ", alpha,
                " (must be a finite number > 0)");
    out.layers.push_back({slot.name, parts.down, parts.up, alpha});
  }
  return out;
}

}  // namespace draft
