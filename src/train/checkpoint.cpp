// Training checkpoints (modules + AdamW state + progress + config in one safetensors file).
#include "train/checkpoint.h"

#include <map>
#include <set>
#include <sstream>
#include <type_traits>
#include <utility>

#include <torch/torch.h>

#include "io/safetensors.h"
#include "util/error.h"
#include "util/threads.h"

namespace draft {
namespace {

constexpr const char* kFormat = "draft.checkpoint.v1";
const std::string kOptimizerPrefix = "optimizer.";

// torch::optim keys its per-parameter state by the parameter's TensorImpl: as the pointer printed to a
// string in LibTorch 1.x (c10::guts::to_string), as the pointer itself in 2.x. Both forms are handled,
// and save_checkpoint checks that every state entry was found, so a third form cannot go unnoticed.
using StateMap = std::remove_reference_t<decltype(std::declval<torch::optim::Optimizer&>().state())>;
using StateKey = typename StateMap::key_type;

template <typename Key>
Key state_key_for(const at::Tensor& param) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream s;
    s << static_cast<const void*>(param.unsafeGetTensorImpl());
    return s.str();
  } else {
    return param.unsafeGetTensorImpl();
  }
}

// Every parameter and buffer of the modules under its checkpoint key, in registration order.
std::vector<std::pair<std::string, at::Tensor>> module_tensors(const std::vector<CheckpointModule>& modules) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& m : modules) {
    DRAFT_CHECK(m.module != nullptr, "checkpoint module '", m.prefix, "' is null");
    for (const auto& item : m.module->named_parameters()) out.emplace_back(m.prefix + item.key(), item.value());
    for (const auto& item : m.module->named_buffers()) out.emplace_back(m.prefix + item.key(), item.value());
  }
  return out;
}

// The checkpoint name of each parameter, by TensorImpl, to match optimizer parameters with module names.
std::map<const void*, std::string> parameter_names(const std::vector<CheckpointModule>& modules) {
  std::map<const void*, std::string> names;
  for (const auto& m : modules) {
    for (const auto& item : m.module->named_parameters()) {
      names[item.value().unsafeGetTensorImpl()] = m.prefix + item.key();
    }
  }
  return names;
}

int64_t metadata_int(const SafeTensorsFile& file, const std::string& key) {
  auto it = file.metadata().find(key);
  DRAFT_CHECK(it != file.metadata().end(), file.path(), ": checkpoint metadata lacks '", key, "'");
  try {
    // Seeds are uint64: parse unsigned and keep the bits (the seed's round trip is exact).
    return static_cast<int64_t>(std::stoull(it->second));
  } catch (const std::exception&) {
    fail(file.path(), ": checkpoint metadata '", key, "' is not an integer: ", it->second);
  }
}

CheckpointInfo info_of(const SafeTensorsFile& file) {
  auto format = file.metadata().find("format");
  DRAFT_CHECK(format != file.metadata().end() && format->second == kFormat, file.path(),
              ": not a draft training checkpoint (metadata format is not ", kFormat, ")");
  CheckpointInfo info;
  info.progress.step = metadata_int(file, "step");
  info.progress.epoch = metadata_int(file, "epoch");
  info.progress.seed = static_cast<uint64_t>(metadata_int(file, "seed"));
  if (file.metadata().count("threads") > 0) info.threads = static_cast<int>(metadata_int(file, "threads"));
  if (file.metadata().count("blas_threads") > 0) {
    info.blas_threads = static_cast<int>(metadata_int(file, "blas_threads"));
  }
  auto config = file.metadata().find("config");
  if (config != file.metadata().end()) {
    try {
      info.config = nlohmann::json::parse(config->second);
    } catch (const nlohmann::json::exception& e) {
      fail(file.path(), ": checkpoint metadata 'config' is not valid JSON: ", e.what());
    }
  }
  return info;
}

}  // namespace

StateTensors::StateTensors(const std::vector<std::pair<std::string, at::Tensor>>& tensors) {
  for (const auto& [name, tensor] : tensors) register_buffer(name, tensor);
}

std::map<std::string, at::Tensor> StateTensors::tensors() const {
  std::map<std::string, at::Tensor> out;
  for (const auto& item : named_buffers()) out[item.key()] = item.value();
  return out;
}

std::vector<std::pair<std::string, at::Tensor>> checkpoint_tensors_with_prefix(const std::string& path,
                                                                               const std::string& prefix,
                                                                               c10::Device device) {
  SafeTensorsFile file(path);
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& info : file.tensors()) {
    if (info.name.rfind(prefix, 0) != 0) continue;
    out.emplace_back(info.name.substr(prefix.size()), file.load(info.name, {std::nullopt, device}));
  }
  return out;
}

void save_checkpoint(const std::string& path, const std::vector<CheckpointModule>& modules,
                     const torch::optim::AdamW* optimizer, const TrainingProgress& progress,
                     const nlohmann::json& config) {
  std::vector<std::pair<std::string, at::Tensor>> tensors = module_tensors(modules);
  if (optimizer != nullptr) {
    const auto names = parameter_names(modules);
    const auto& state = optimizer->state();
    std::size_t found = 0;
    for (const auto& group : optimizer->param_groups()) {
      for (const auto& p : group.params()) {
        auto name = names.find(p.unsafeGetTensorImpl());
        DRAFT_CHECK(name != names.end(), path, ": the optimizer holds a parameter of shape ", p.sizes(),
                    " that none of the checkpointed modules has");
        auto it = state.find(state_key_for<StateKey>(p));
        if (it == state.end()) continue;  // no step taken yet for this parameter
        ++found;
        const auto& s = static_cast<const torch::optim::AdamWParamState&>(*it->second);
        const std::string key = kOptimizerPrefix + name->second;
        tensors.emplace_back(key + ".step", torch::tensor(s.step(), torch::kLong));
        tensors.emplace_back(key + ".exp_avg", s.exp_avg());
        tensors.emplace_back(key + ".exp_avg_sq", s.exp_avg_sq());
        if (s.max_exp_avg_sq().defined()) tensors.emplace_back(key + ".max_exp_avg_sq", s.max_exp_avg_sq());
      }
    }
    DRAFT_CHECK(found == state.size(), path, ": matched ", found, " of ", state.size(),
                " optimizer states to parameters (unsupported LibTorch optimizer state layout)");
  }
  const std::map<std::string, std::string> metadata = {
      {"format", kFormat},
      {"step", std::to_string(progress.step)},
      {"epoch", std::to_string(progress.epoch)},
      {"seed", std::to_string(progress.seed)},
      {"config", config.dump()},
      {"threads", std::to_string(at::get_num_threads())},
      {"blas_threads", std::to_string(openblas_threads())},
  };
  save_safetensors(path, tensors, metadata);
}

CheckpointInfo read_checkpoint_info(const std::string& path) {
  SafeTensorsFile file(path);
  return info_of(file);
}

CheckpointInfo load_checkpoint(const std::string& path, const std::vector<CheckpointModule>& modules,
                               torch::optim::AdamW* optimizer) {
  SafeTensorsFile file(path);
  CheckpointInfo info = info_of(file);
  torch::NoGradGuard no_grad;

  std::set<std::string> expected;
  for (auto& [name, tensor] : module_tensors(modules)) {
    expected.insert(name);
    DRAFT_CHECK(file.contains(name), path, ": checkpoint lacks '", name,
                "' (was it written for another model config?)");
    at::Tensor saved = file.load(name, {tensor.scalar_type(), tensor.device()});
    DRAFT_CHECK(saved.sizes() == tensor.sizes(), path, ": '", name, "' has shape ", saved.sizes(),
                " in the checkpoint but ", tensor.sizes(), " in the model");
    tensor.copy_(saved);
  }
  for (const auto& t : file.tensors()) {
    const bool optimizer_key = t.name.rfind(kOptimizerPrefix, 0) == 0;
    DRAFT_CHECK(optimizer_key || expected.count(t.name) > 0, path, ": checkpoint has '", t.name,
                "', which the model lacks (was it written for another model config?)");
  }

  if (optimizer != nullptr) {
    const auto names = parameter_names(modules);
    auto& state = optimizer->state();
    state.clear();
    for (const auto& group : optimizer->param_groups()) {
      for (const auto& p : group.params()) {
        auto name = names.find(p.unsafeGetTensorImpl());
        DRAFT_CHECK(name != names.end(), path, ": the optimizer holds a parameter of shape ", p.sizes(),
                    " that none of the checkpointed modules has");
        const std::string key = kOptimizerPrefix + name->second;
        if (!file.contains(key + ".step")) continue;
        const LoadOptions like_param{p.scalar_type(), p.device()};
        auto s = std::make_unique<torch::optim::AdamWParamState>();
        s->step(file.load(key + ".step").item<int64_t>());
        s->exp_avg(file.load(key + ".exp_avg", like_param));
        s->exp_avg_sq(file.load(key + ".exp_avg_sq", like_param));
        if (file.contains(key + ".max_exp_avg_sq")) s->max_exp_avg_sq(file.load(key + ".max_exp_avg_sq", like_param));
        DRAFT_CHECK(s->exp_avg().sizes() == p.sizes() && s->exp_avg_sq().sizes() == p.sizes(), path, ": '", key,
                    "' state has shape ", s->exp_avg().sizes(), " but the parameter has ", p.sizes());
        state[state_key_for<StateKey>(p)] = std::move(s);
      }
    }
  }
  return info;
}

}  // namespace draft
