// The CLIP model + tokenizer + preprocessing shared by the preference-model rewards.
#include "rewards/clip_scorer.h"

#include <filesystem>

#include <torch/torch.h>

#include "util/error.h"

namespace draft {
namespace fs = std::filesystem;
namespace {

// The text cache keeps at most this many prompts (training cycles through a prompt list; a free-form
// prompt stream must not grow memory without bound).
constexpr std::size_t kTextCacheSize = 4096;

bool has_safetensors(const std::string& folder) {
  for (const auto& entry : fs::directory_iterator(folder)) {
    if (entry.path().extension() == ".safetensors") return true;
  }
  return false;
}

std::string find_tokenizer(const ClipScorerOptions& o) {
  auto complete = [](const std::string& dir) {
    return fs::exists(dir + "/vocab.json") && fs::exists(dir + "/merges.txt");
  };
  if (!o.tokenizer_dir.empty()) {
    DRAFT_CHECK(complete(o.tokenizer_dir), "reward '", o.reward, "': no CLIP tokenizer at ", o.tokenizer_dir,
                " (expected ", o.tokenizer_dir, "/vocab.json and merges.txt)");
    return o.tokenizer_dir;
  }
  const std::string folder =
      fs::is_directory(o.model_path) ? o.model_path : fs::path(o.model_path).parent_path().string();
  for (const std::string& dir : {folder, folder + "/tokenizer"}) {
    if (complete(dir)) return dir;
  }
  fail("reward '", o.reward, "': no CLIP tokenizer: expected ", folder, "/tokenizer/vocab.json and merges.txt (or "
       "both in ", folder, "); every CLIP model uses the same files, e.g. `huggingface-cli download "
       "laion/CLIP-ViT-H-14-laion2B-s32B-b79K vocab.json merges.txt tokenizer_config.json "
       "special_tokens_map.json --local-dir ", folder, "/tokenizer` or a Stable Diffusion tokenizer/ folder; or "
       "pass ", o.reward, ":tokenizer=DIR");
}

}  // namespace

ClipScorer::ClipScorer(const ClipScorerOptions& o) : preprocess_(o.preprocess), reward_(o.reward) {
  const bool present = fs::is_regular_file(o.model_path) || (fs::is_directory(o.model_path) && has_safetensors(o.model_path));
  if (!present) {
    fail("reward '", o.reward, "': ", o.expected_file.empty() ? o.model_path : o.expected_file, " not found. ",
         o.how_to_get, " Or pass ", o.reward, ":", o.model_option, "=PATH (a folder or .safetensors file), or "
         "set the reward weights folder (--reward-weights DIR or DRAFT_REWARD_WEIGHTS)");
  }
  if (o.with_text) tokenizer_ = CLIPTokenizer::from_folder(find_tokenizer(o));
  WeightsOptions weights;
  weights.dtype = o.dtype;
  weights.device = o.device;
  model_ = load_clip_model(o.model_path, weights, o.with_text);
  freeze();
}

ClipScorer::ClipScorer(CLIPModel model, std::optional<CLIPTokenizer> tokenizer, ClipPreprocessOptions preprocess,
                       std::string reward)
    : model_(std::move(model)), tokenizer_(std::move(tokenizer)), preprocess_(preprocess), reward_(std::move(reward)) {
  freeze();
}

void ClipScorer::freeze() {
  // The preprocessing produces what the vision tower takes, whatever size it was trained at.
  preprocess_.size = model_->config().vision.image_size;
  for (auto& p : model_->parameters()) p.set_requires_grad(false);
  model_->eval();
}

c10::Device ClipScorer::device() const { return model_->logit_scale.device(); }
c10::ScalarType ClipScorer::dtype() const { return model_->logit_scale.scalar_type(); }

void ClipScorer::to(c10::Device device) {
  model_->to(device);
  text_cache_.clear();
}

at::Tensor ClipScorer::image_embeddings(const at::Tensor& images) {
  check_reward_images(images, reward_, {1, 3});
  const at::Tensor pixels = clip_preprocess(images.to(device()), preprocess_);
  const at::Tensor features = model_->get_image_features(pixels.to(dtype()));
  return torch::nn::functional::normalize(features, torch::nn::functional::NormalizeFuncOptions().dim(-1));
}

at::Tensor ClipScorer::text_embeddings(const std::vector<std::string>& prompts) {
  DRAFT_CHECK(tokenizer_.has_value() && model_->has_text(), "reward '", reward_, "' has no text tower");
  std::vector<std::string> missing;
  for (const auto& p : prompts) {
    if (!text_cache_.count(p)) missing.push_back(p);
  }
  if (!missing.empty()) {
    if (text_cache_.size() + missing.size() > kTextCacheSize) text_cache_.clear();
    torch::NoGradGuard no_grad;
    // Padding after eos cannot change the eos position's output under the causal mask, so the
    // attention mask the reference passes is not needed.
    const at::Tensor ids = (*tokenizer_)(missing).input_ids.to(device());
    const at::Tensor features = model_->get_text_features(ids);
    const at::Tensor normed =
        torch::nn::functional::normalize(features, torch::nn::functional::NormalizeFuncOptions().dim(-1));
    for (std::size_t i = 0; i < missing.size(); ++i) text_cache_[missing[i]] = normed[static_cast<int64_t>(i)];
  }
  std::vector<at::Tensor> rows;
  rows.reserve(prompts.size());
  for (const auto& p : prompts) rows.push_back(text_cache_.at(p));
  return torch::stack(rows);
}

at::Tensor ClipReward::image_features(const at::Tensor& images) {
  return clip_reward_output(scorer_->image_embeddings(images), images.device());
}

c10::ScalarType clip_reward_dtype(const RewardOptions& options, const RewardContext& context) {
  if (!options.has("dtype")) return context.dtype;
  const std::string name = options.get("dtype", "f32");
  if (name == "f64" || name == "float64") return c10::kDouble;
  try {
    return parse_compute_dtype(name);
  } catch (const Error&) {
    fail("reward '", options.reward_name(), "': dtype=", name, " is not one of f32, f16, bf16, f64");
  }
}

at::Tensor clip_reward_output(const at::Tensor& scores, c10::Device device) {
  return scores.to(device, scores.scalar_type() == c10::kDouble ? c10::kDouble : c10::kFloat);
}

std::string clip_reward_name(const RewardOptions& options) {
  std::string name = options.reward_name();
  for (const auto& [key, value] : options.values()) name += ":" + key + "=" + value;
  return name;
}

}  // namespace draft
