// Strict weight loading.
#include "models/weights.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <sstream>

#include <torch/torch.h>

#include "io/safetensors.h"
#include "util/error.h"

namespace draft {
namespace fs = std::filesystem;
namespace {

constexpr const char* kConvertHint =
    "pickle checkpoints are never read (they can run code); convert it once with Python: "
    "`import torch, safetensors.torch as st; st.save_file({k: v.contiguous() for k, v in "
    "torch.load(PATH, map_location='cpu').items()}, OUT)` (for a whole pipeline, "
    "diffusers' save_pretrained(..., safe_serialization=True) writes .safetensors)";

bool has_suffix(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_pickle(const std::string& path) {
  for (const char* ext : {".ckpt", ".bin", ".pt", ".pth"}) {
    if (has_suffix(path, ext)) return true;
  }
  return false;
}

std::string list_some(const std::vector<std::string>& keys) {
  std::ostringstream out;
  constexpr std::size_t kShown = 5;
  for (std::size_t i = 0; i < std::min(keys.size(), kShown); ++i) out << (i ? ", " : "") << keys[i];
  if (keys.size() > kShown) out << ", ... (" << keys.size() - kShown << " more)";
  return out.str();
}

std::string shape_text(c10::IntArrayRef shape) {
  std::ostringstream out;
  out << shape;
  return out.str();
}

}  // namespace

std::string WeightsReport::summary() const {
  std::ostringstream out;
  if (!missing.empty()) out << missing.size() << " missing key(s): " << list_some(missing) << "; ";
  if (!mismatched.empty()) out << mismatched.size() << " shape mismatch(es): " << list_some(mismatched) << "; ";
  if (!unexpected.empty()) out << unexpected.size() << " unexpected key(s): " << list_some(unexpected) << "; ";
  out << loaded << " tensors loaded";
  return out.str();
}

WeightsReport load_weights(torch::nn::Module& module, const std::vector<std::string>& files,
                           const WeightsOptions& options, const std::string& what) {
  DRAFT_CHECK(!files.empty(), what, ": no weight files given");
  std::vector<std::unique_ptr<SafeTensorsFile>> opened;
  std::map<std::string, const SafeTensorsFile*> owner;
  for (const auto& path : files) {
    DRAFT_CHECK(!is_pickle(path), path, ": ", kConvertHint);
    opened.push_back(std::make_unique<SafeTensorsFile>(path));
    for (const auto& t : opened.back()->tensors()) {
      DRAFT_CHECK(owner.emplace(t.name, opened.back().get()).second, what, ": the key '", t.name,
                  "' appears in two weight files");
    }
  }

  std::map<std::string, torch::Tensor> targets;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) targets[options.prefix + item.key()] = item.value();
  for (const auto& item : module.named_buffers(/*recurse=*/true)) targets[options.prefix + item.key()] = item.value();

  WeightsReport report;
  for (const auto& [key, target] : targets) {
    auto it = owner.find(key);
    if (it == owner.end()) {
      report.missing.push_back(key);
      continue;
    }
    const TensorInfo* info = it->second->find(key);
    if (c10::IntArrayRef(info->shape) != target.sizes()) {
      report.mismatched.push_back(key + ": file " + shape_text(info->shape) + " vs model " +
                                  shape_text(target.sizes()));
    }
  }
  for (const auto& entry : owner) {
    const std::string& key = entry.first;  // a named variable: clang < 16 cannot capture a structured binding
    if (targets.count(key)) continue;
    bool ignored = std::any_of(options.ignore_suffixes.begin(), options.ignore_suffixes.end(),
                               [&](const std::string& s) { return has_suffix(key, s); });
    if (!ignored) report.unexpected.push_back(key);
  }
  if (!report.ok()) {
    fail(what, ": weights do not match the model config: ", report.summary(),
         ". Check that config.json belongs to these weights");
  }

  torch::NoGradGuard no_grad;
  for (auto& [key, target] : targets) {
    auto dtype = at::isFloatingType(target.scalar_type()) ? options.dtype : target.scalar_type();
    // set_data swaps the storage: the module's initial tensor is freed as soon as its replacement is in.
    target.set_data(owner[key]->load(key, LoadOptions{dtype, options.device}));
    ++report.loaded;
  }
  return report;
}

void save_weights(const torch::nn::Module& module, const std::string& path, const std::string& prefix) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    DRAFT_CHECK(!ec, parent.string(), ": cannot create the folder: ", ec.message());
  }
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  auto add = [&](const std::string& name, const at::Tensor& t) {
    at::Tensor value = t.detach().to(torch::kCPU);
    if (value.is_floating_point()) value = value.to(torch::kFloat);
    tensors.emplace_back(prefix + name, value);
  };
  for (const auto& item : module.named_parameters()) add(item.key(), item.value());
  for (const auto& item : module.named_buffers()) add(item.key(), item.value());
  save_safetensors(path, tensors, {{"format", "pt"}});
}

std::vector<std::string> find_weight_files(const std::string& folder) {
  DRAFT_CHECK(fs::is_directory(folder), folder, ": not a folder (expected a model folder with config.json "
              "and .safetensors weights)");
  std::vector<std::string> single, sharded, fp16, pickles;
  for (const auto& entry : fs::directory_iterator(folder)) {
    std::string name = entry.path().filename().string();
    if (is_pickle(name)) pickles.push_back(entry.path().string());
    if (!has_suffix(name, ".safetensors")) continue;
    if (name == "model.safetensors" || name == "diffusion_pytorch_model.safetensors") {
      single.push_back(entry.path().string());
    } else if (name.find("-of-") != std::string::npos) {
      sharded.push_back(entry.path().string());
    } else if (has_suffix(name, ".fp16.safetensors")) {
      fp16.push_back(entry.path().string());
    }
  }
  std::sort(sharded.begin(), sharded.end());
  if (!single.empty()) return single;
  if (!sharded.empty()) return sharded;
  if (!fp16.empty()) return fp16;
  if (!pickles.empty()) fail(pickles.front(), ": ", kConvertHint);
  fail(folder, ": no .safetensors weights found (expected model.safetensors or "
       "diffusion_pytorch_model.safetensors)");
}

c10::ScalarType parse_compute_dtype(const std::string& name) {
  if (name == "f32" || name == "float32" || name == "fp32") return c10::kFloat;
  if (name == "f16" || name == "float16" || name == "fp16") return c10::kHalf;
  if (name == "bf16" || name == "bfloat16") return c10::kBFloat16;
  // float64: for exactness checks (e.g. that data-parallel and one-process runs compute the same), not speed.
  if (name == "f64" || name == "float64" || name == "fp64") return c10::kDouble;
  fail("unknown dtype '", name, "': use f32, f16, bf16 or f64");
}

c10::Device parse_device(const std::string& name) {
  c10::Device device(c10::kCPU);
  try {
    device = c10::Device(name);
  } catch (const c10::Error&) {
    fail("unknown device '", name, "': use cpu, cuda or cuda:N");
  }
  DRAFT_CHECK(device.is_cpu() || device.is_cuda(), "unknown device '", name, "': use cpu, cuda or cuda:N");
  if (device.is_cuda()) {
    DRAFT_CHECK(torch::cuda::is_available(), "device '", name, "' asked for, but this LibTorch build or machine "
                "has no CUDA device (see `draft doctor`); use --device cpu or a CUDA LibTorch");
    DRAFT_CHECK(!device.has_index() || device.index() < static_cast<int>(torch::cuda::device_count()),
                "device '", name, "' does not exist: ", torch::cuda::device_count(), " CUDA device(s)");
  }
  return device;
}

}  // namespace draft
