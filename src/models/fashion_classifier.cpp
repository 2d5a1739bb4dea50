// FashionClassifier: config, module and its folder (config.json + model.safetensors).
#include "models/fashion_classifier.h"

#include <filesystem>
#include <utility>

#include <torch/torch.h>

#include "io/json_file.h"
#include "io/safetensors.h"
#include "util/error.h"

namespace draft {

FashionClassifierConfig FashionClassifierConfig::from_json(const ConfigJson& c) {
  const std::string cls = c.get<std::string>("_class_name", "FashionClassifier");
  DRAFT_CHECK(cls == "FashionClassifier", c.source, ": _class_name is '", cls, "', expected FashionClassifier");
  FashionClassifierConfig v;
  v.in_channels = c.get<int64_t>("in_channels", v.in_channels);
  v.image_size = c.get<int64_t>("image_size", v.image_size);
  v.channels = c.get<std::vector<int64_t>>("channels", v.channels);
  v.layers_per_block = c.get<int64_t>("layers_per_block", v.layers_per_block);
  v.norm_num_groups = c.get<int64_t>("norm_num_groups", v.norm_num_groups);
  v.hidden = c.get<int64_t>("hidden", v.hidden);
  v.num_classes = c.get<int64_t>("num_classes", v.num_classes);
  v.labels = c.get<std::vector<std::string>>("labels", v.labels);
  try {
    v.validate();
  } catch (const Error& e) {
    fail(c.source, ": ", e.what());
  }
  return v;
}

nlohmann::json FashionClassifierConfig::to_json() const {
  nlohmann::json j;
  j["_class_name"] = "FashionClassifier";
  j["in_channels"] = in_channels;
  j["image_size"] = image_size;
  j["channels"] = channels;
  j["layers_per_block"] = layers_per_block;
  j["norm_num_groups"] = norm_num_groups;
  j["hidden"] = hidden;
  j["num_classes"] = num_classes;
  j["labels"] = labels;
  return j;
}

void FashionClassifierConfig::validate() const {
  DRAFT_CHECK(in_channels > 0, "in_channels must be positive (got ", in_channels, ")");
  DRAFT_CHECK(!channels.empty(), "channels must not be empty");
  DRAFT_CHECK(layers_per_block > 0, "layers_per_block must be positive (got ", layers_per_block, ")");
  DRAFT_CHECK(norm_num_groups >= 0, "norm_num_groups must be >= 0 (got ", norm_num_groups, ")");
  for (int64_t ch : channels) {
    DRAFT_CHECK(ch > 0 && (norm_num_groups == 0 || ch % norm_num_groups == 0), "channels entry ", ch,
                " must be a positive multiple of norm_num_groups (", norm_num_groups, ")");
  }
  const int64_t reduction = int64_t{1} << channels.size();
  DRAFT_CHECK(image_size > 0 && image_size % reduction == 0, "image_size ", image_size,
              " must be a positive multiple of ", reduction, " (one halving per level, and one before the head)");
  DRAFT_CHECK(hidden > 0, "hidden must be positive (got ", hidden, ")");
  DRAFT_CHECK(num_classes > 1, "num_classes must be at least 2 (got ", num_classes, ")");
  DRAFT_CHECK(labels.empty() || static_cast<int64_t>(labels.size()) == num_classes, "labels has ", labels.size(),
              " entries but num_classes is ", num_classes);
}

FashionConvBlockImpl::FashionConvBlockImpl(int64_t in_channels, int64_t out_channels, int64_t layers,
                                           int64_t groups) {
  convs = register_module("convs", torch::nn::ModuleList());
  norms = register_module("norms", torch::nn::ModuleList());
  for (int64_t i = 0; i < layers; ++i) {
    const int64_t in = i == 0 ? in_channels : out_channels;
    if (groups > 0) norms->push_back(torch::nn::GroupNorm(torch::nn::GroupNormOptions(groups, in).eps(1e-5)));
    convs->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out_channels, 3).padding(1)));
  }
}

at::Tensor FashionConvBlockImpl::forward(at::Tensor x) {
  for (std::size_t i = 0; i < convs->size(); ++i) {
    if (!norms->is_empty()) x = norms[i]->as<torch::nn::GroupNorm>()->forward(x);
    x = convs[i]->as<torch::nn::Conv2d>()->forward(torch::silu(x));
  }
  return x;
}

FashionClassifierImpl::FashionClassifierImpl(const FashionClassifierConfig& config) : config_(config) {
  config_.validate();
  conv_in = register_module(
      "conv_in", torch::nn::Conv2d(torch::nn::Conv2dOptions(config_.in_channels, config_.channels[0], 3).padding(1)));
  blocks = register_module("blocks", torch::nn::ModuleList());
  int64_t in = config_.channels[0];
  for (int64_t out : config_.channels) {
    blocks->push_back(FashionConvBlock(in, out, config_.layers_per_block, config_.norm_num_groups));
    in = out;
  }
  // The head sees the last level's map pooled once more (4x4 for 32x32 images with three levels) and
  // flattened: where a feature is matters for clothes (sleeves, collars, heels).
  const int64_t side = config_.image_size >> config_.channels.size();
  fc1 = register_module("fc1", torch::nn::Linear(in * side * side, config_.hidden));
  fc2 = register_module("fc2", torch::nn::Linear(config_.hidden, config_.num_classes));
}

at::Tensor FashionClassifierImpl::features(const at::Tensor& images) {
  DRAFT_CHECK(images.dim() == 4 && images.size(1) == config_.in_channels && images.size(2) == config_.image_size &&
                  images.size(3) == config_.image_size,
              "FashionClassifier expects images of shape (B, ", config_.in_channels, ", ", config_.image_size, ", ",
              config_.image_size, "), got ", images.sizes());
  // [0, 1] -> [-1, 1], the range the diffusion pipeline works in.
  at::Tensor x = conv_in->forward(images * 2.0 - 1.0);
  for (std::size_t i = 0; i < blocks->size(); ++i) {
    if (i > 0) x = torch::avg_pool2d(x, 2);
    x = blocks[i]->as<FashionConvBlock>()->forward(x);
  }
  x = torch::avg_pool2d(torch::silu(x), 2).flatten(1);  // (B, C * side * side)
  return torch::silu(fc1->forward(x));
}

at::Tensor FashionClassifierImpl::forward(const at::Tensor& images) { return fc2->forward(features(images)); }

FashionClassifier load_fashion_classifier(const std::string& folder, const WeightsOptions& options) {
  FashionClassifierConfig config = FashionClassifierConfig::from_json(ConfigJson::load(folder + "/config.json"));
  FashionClassifier model(config);
  load_weights(*model, find_weight_files(folder), options, folder);
  model->eval();
  return model;
}

void save_fashion_classifier(const std::string& folder, FashionClassifier& model) {
  std::error_code ec;
  std::filesystem::create_directories(folder, ec);
  DRAFT_CHECK(!ec, folder, ": cannot create the model folder: ", ec.message());
  save_weights(*model, folder + "/model.safetensors");
  write_json_file(folder + "/config.json", model->config().to_json());
}

}  // namespace draft
