// CLIPModel (transformers v4.36 modeling_clip.py CLIPModel) and its loader for transformers and
// OpenCLIP checkpoints.
#include "models/clip_model.h"

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <sstream>

#include <torch/torch.h>

#include "io/safetensors.h"
#include "models/open_clip_layout.h"
#include "util/error.h"

namespace draft {
namespace fs = std::filesystem;

CLIPModelConfig CLIPModelConfig::from_json(const ConfigJson& config) {
  const std::string type = config.get<std::string>("model_type", "");
  DRAFT_CHECK(type == "clip" || config.has("text_config") || config.has("vision_config") ||
                  config.has("text_config_dict") || config.has("vision_config_dict"),
              config.source, ": model_type '", type, "' is not a full CLIP model config (expected model_type 'clip' "
              "with text_config and vision_config, as in the config.json of openai/clip-vit-large-patch14)");
  CLIPModelConfig c;
  c.text = CLIPTextConfig::from_json(config);
  c.vision = CLIPVisionConfig::from_json(config);
  c.projection_dim = config.get<int64_t>("projection_dim", c.projection_dim);
  c.logit_scale_init_value = config.get<double>("logit_scale_init_value", c.logit_scale_init_value);
  return c;
}

void CLIPModelConfig::validate() const {
  text.validate();
  vision.validate();
  DRAFT_CHECK(projection_dim > 0, "CLIPModelConfig.projection_dim must be positive, got ", projection_dim);
  DRAFT_CHECK(text.projection_dim == projection_dim && vision.projection_dim == projection_dim,
              "CLIPModelConfig: projection_dim ", projection_dim, " differs from the towers' (text ",
              text.projection_dim, ", vision ", vision.projection_dim, ")");
}

CLIPModelImpl::CLIPModelImpl(CLIPModelConfig config, bool with_text) : config_(std::move(config)) {
  config_.validate();
  auto projection = [&](int64_t in) {
    return torch::nn::Linear(torch::nn::LinearOptions(in, config_.projection_dim).bias(false));
  };
  if (with_text) text_model = register_module("text_model", CLIPTextTransformer(config_.text));
  vision_model = register_module("vision_model", CLIPVisionTransformer(config_.vision));
  visual_projection = register_module("visual_projection", projection(config_.vision.hidden_size));
  if (with_text) text_projection = register_module("text_projection", projection(config_.text.hidden_size));
  logit_scale = register_parameter("logit_scale", torch::full({}, config_.logit_scale_init_value));
}

at::Tensor CLIPModelImpl::get_image_features(const at::Tensor& pixel_values) {
  const auto& c = config_.vision;
  DRAFT_CHECK(pixel_values.dim() == 4 && pixel_values.size(1) == c.num_channels &&
                  pixel_values.size(2) == c.image_size && pixel_values.size(3) == c.image_size,
              "CLIP model: pixel_values must be [batch, ", c.num_channels, ", ", c.image_size, ", ", c.image_size,
              "] (preprocess to the model's image_size first), got ", pixel_values.sizes());
  DRAFT_CHECK(at::isFloatingType(pixel_values.scalar_type()), "CLIP model: pixel_values must be floating point, got ",
              pixel_values.scalar_type());
  const auto& w = vision_model->embeddings->patch_embedding->weight;
  return visual_projection(vision_model(pixel_values.to(w.device(), w.scalar_type())).pooler_output);
}

at::Tensor CLIPModelImpl::get_text_features(const at::Tensor& input_ids, const at::Tensor& attention_mask) {
  DRAFT_CHECK(has_text(), "CLIP model: loaded without its text tower, so it has no text features");
  return text_projection(text_model(input_ids, attention_mask).pooler_output);
}

namespace {

constexpr const char* kPickleHint =
    "pickle checkpoints are never read (they can run code); convert it once with Python: "
    "`python -c \"import torch, safetensors.torch as st; sd = torch.load('IN.pt', map_location='cpu'); "
    "sd = sd.get('state_dict', sd); st.save_file({k: v.contiguous() for k, v in sd.items()}, "
    "'OUT.safetensors')\"`";

bool has_suffix(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

std::string folder_of(const std::string& path) {
  if (fs::is_directory(path)) return path;
  const std::string parent = fs::path(path).parent_path().string();
  return parent.empty() ? "." : parent;
}

// A target key of the text side (absent from a vision-only model).
bool is_text_target(const std::string& key) {
  return starts_with(key, "text_model.") || starts_with(key, "text_projection.");
}

std::string shape_text(c10::IntArrayRef shape) {
  std::ostringstream out;
  out << shape;
  return out.str();
}

}  // namespace

std::vector<std::string> clip_weight_files(const std::string& path) {
  if (fs::is_regular_file(path)) {
    for (const char* ext : {".ckpt", ".bin", ".pt", ".pth"}) {
      DRAFT_CHECK(!has_suffix(path, ext), path, ": ", kPickleHint);
    }
    DRAFT_CHECK(has_suffix(path, ".safetensors"), path, ": not a .safetensors file");
    return {path};
  }
  DRAFT_CHECK(fs::is_directory(path), path, ": no such folder or file (expected a CLIP model folder with "
              "config.json and model.safetensors, or an OpenCLIP .safetensors file)");
  std::vector<std::string> found;
  bool standard = false;
  for (const auto& entry : fs::directory_iterator(path)) {
    const std::string name = entry.path().filename().string();
    if (!has_suffix(name, ".safetensors")) continue;
    found.push_back(entry.path().string());
    standard = standard || name == "model.safetensors" || name.find("-of-") != std::string::npos ||
               has_suffix(name, ".fp16.safetensors");
  }
  std::sort(found.begin(), found.end());
  if (found.size() == 1) return found;
  if (found.empty() || standard) return find_weight_files(path);  // standard names; pickle-only hint
  std::string names;
  for (const auto& f : found) names += (names.empty() ? "" : ", ") + fs::path(f).filename().string();
  fail(path, ": several .safetensors files (", names, ") and no model.safetensors; pass the one to load");
}

CLIPModel load_clip_model(const std::string& path, const WeightsOptions& options, bool with_text) {
  const std::string folder = folder_of(path);
  const std::vector<std::string> files = clip_weight_files(path);
  std::vector<std::unique_ptr<SafeTensorsFile>> opened;
  std::map<std::string, const SafeTensorsFile*> owner;
  std::vector<std::string> keys;  // in file order, for the report
  for (const auto& file : files) {
    opened.push_back(std::make_unique<SafeTensorsFile>(file));
    for (const auto& t : opened.back()->tensors()) {
      DRAFT_CHECK(owner.emplace(t.name, opened.back().get()).second, folder, ": the key '", t.name,
                  "' appears in two weight files");
      keys.push_back(t.name);
    }
  }
  const std::string what = files.size() == 1 ? files.front() : folder;

  // 1. Layout and config; `source_of` maps a module key to the file tensor it is made from.
  CLIPModelConfig config;
  std::map<std::string, OpenCLIPSource> renamed;
  std::function<bool(const std::string&)> ignorable;
  std::string hint;
  const bool open_clip = is_open_clip_layout(keys);
  if (open_clip) {
    const std::string prefix = open_clip_prefix(keys);
    const std::string json = folder + "/open_clip_config.json";
    if (fs::exists(json)) {
      config = open_clip_config_from_json(ConfigJson::load(json));
      hint = "check that " + json + " describes these weights";
    } else {
      std::map<std::string, std::vector<int64_t>> shapes;
      for (const auto& [key, file] : owner) {
        if (starts_with(key, prefix)) shapes[key.substr(prefix.size())] = file->find(key)->shape;
      }
      config = infer_open_clip_config(shapes, what);
      hint = "the sizes were inferred from the tensor shapes; write OpenCLIP's model config as " + json +
             " if this model differs";
    }
    renamed = open_clip_sources(config, prefix);
    std::map<std::string, bool> text_source;
    for (const auto& [target, source] : renamed) text_source[source.key] = text_source[source.key] || is_text_target(target);
    ignorable = [prefix, text_source, with_text](const std::string& key) {
      if (starts_with(key, prefix) && is_ignored_open_clip_key(key.substr(prefix.size()))) return true;
      auto it = text_source.find(key);
      return !with_text && it != text_source.end() && it->second;
    };
  } else {
    const std::string json = folder + "/config.json";
    DRAFT_CHECK(fs::exists(json), folder, ": no config.json next to the transformers-layout weights ", what,
                " (download it from the same Hugging Face repository as the weights)");
    config = CLIPModelConfig::from_json(ConfigJson::load(json));
    hint = "check that " + json + " belongs to these weights";
    ignorable = [with_text, prefix = options.prefix](const std::string& key) {
      return has_suffix(key, "embeddings.position_ids") ||
             (!with_text && starts_with(key, prefix) && is_text_target(key.substr(prefix.size())));
    };
  }
  auto source_of = [&](const std::string& target) {
    auto it = renamed.find(target);
    return it != renamed.end() ? it->second : OpenCLIPSource{options.prefix + target, OpenCLIPSource::Op::kCopy, 0};
  };

  // 2. Strict check of every module tensor against the file before anything is loaded.
  CLIPModel model(config, with_text);
  std::map<std::string, at::Tensor> targets;
  for (const auto& item : model->named_parameters(true)) targets[item.key()] = item.value();
  for (const auto& item : model->named_buffers(true)) targets[item.key()] = item.value();
  WeightsReport report;
  std::map<std::string, bool> used;
  for (const auto& [key, target] : targets) {
    const OpenCLIPSource source = source_of(key);
    const std::string named = source.key == key ? key : key + " (from " + source.key + ")";
    auto it = owner.find(source.key);
    if (it == owner.end()) {
      report.missing.push_back(named);
      continue;
    }
    used[source.key] = true;
    const auto shape = source.result_shape(it->second->find(source.key)->shape);
    if (c10::IntArrayRef(shape) != target.sizes()) {
      report.mismatched.push_back(named + ": file " + shape_text(shape) + " vs model " + shape_text(target.sizes()));
    }
  }
  for (const auto& key : keys) {
    if (!used.count(key) && !ignorable(key)) report.unexpected.push_back(key);
  }
  if (!report.ok()) {
    fail(what, ": weights do not match the CLIP model", open_clip ? " (OpenCLIP layout)" : "", ": ", report.summary(),
         "; ", hint);
  }

  // 3. Tensor by tensor, so that no second full copy of the weights is held.
  torch::NoGradGuard no_grad;
  for (auto& [key, target] : targets) {
    const OpenCLIPSource source = source_of(key);
    auto dtype = at::isFloatingType(target.scalar_type()) ? options.dtype : target.scalar_type();
    target.set_data(source.apply(owner[source.key]->load(source.key, LoadOptions{dtype, options.device})));
  }
  model->to(options.device);
  model->eval();
  return model;
}

}  // namespace draft
