// The embedded rewards on the shipped Fashion-MNIST classifier:
//   classifier              r(x, c) = log p(class named by c | x)   (prompt fidelity)
//   classifier:target=NAME  r(x, c) = p(NAME | x), whatever c says  (the paper's adversarial-style reward)
#include <algorithm>
#include <cctype>
#include <filesystem>

#include <torch/torch.h>

#include "models/fashion_classifier.h"
#include "data/fashion_mnist.h"
#include "rewards/builtin_rewards.h"
#include "util/error.h"

namespace draft {
namespace {

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

bool is_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-'; }

// The class a prompt names among `labels`: whole words, case-insensitive, an optional plural 's', the
// longest name at the earliest position winning. Fashion-MNIST labels also take parse_class_name's aliases.
int64_t class_in_prompt(const std::string& prompt, const std::vector<std::string>& labels) {
  if (labels == fashion_mnist_classes()) return parse_class_name(prompt);
  const std::string text = lower(prompt);
  int64_t best = -1;
  std::size_t best_at = std::string::npos;
  std::size_t best_length = 0;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const std::string name = lower(labels[i]);
    if (name.empty()) continue;
    for (std::size_t at = text.find(name); at != std::string::npos; at = text.find(name, at + 1)) {
      std::size_t end = at + name.size();
      if (end < text.size() && text[end] == 's') ++end;
      const bool starts_word = at == 0 || !is_word_char(text[at - 1]);
      const bool ends_word = end == text.size() || !is_word_char(text[end]);
      if (!starts_word || !ends_word) continue;
      if (at < best_at || (at == best_at && name.size() > best_length)) {
        best = static_cast<int64_t>(i);
        best_at = at;
        best_length = name.size();
      }
      break;
    }
  }
  return best;
}

std::string label_list(const std::vector<std::string>& labels) {
  std::string out;
  for (const auto& l : labels) out += (out.empty() ? "" : ", ") + l;
  return out;
}

class ClassifierReward : public Reward {
 public:
  ClassifierReward(const RewardOptions& options, const RewardContext& context) {
    const std::string folder = options.get("model", context.models_dir + "/fashion-classifier");
    DRAFT_CHECK(std::filesystem::exists(folder + "/config.json"), "reward 'classifier': no classifier at ", folder,
                " (expected config.json and model.safetensors there); run draft from the repository root, "
                "pass classifier:model=DIR, or train one with 'draft pretrain classifier'");
    model_ = load_fashion_classifier(folder);
    for (auto& p : model_->parameters()) p.set_requires_grad(false);
    model_->to(context.device, context.dtype == torch::kDouble ? torch::kDouble : torch::kFloat);
    labels_ = model_->config().labels;
    if (labels_.empty()) {
      for (int64_t i = 0; i < model_->config().num_classes; ++i) labels_.push_back(std::to_string(i));
    }
    const std::string target = options.get("target", "");
    name_ = "classifier";
    if (!target.empty()) {
      target_ = class_in_prompt(target, labels_);
      // An index; more digits than an int64_t holds is no class either (std::stoll would throw out_of_range).
      const bool digits = std::all_of(target.begin(), target.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
      if (target_ < 0 && digits && target.size() <= 18) target_ = std::stoll(target);
      DRAFT_CHECK(target_ >= 0 && target_ < static_cast<int64_t>(labels_.size()), "reward 'classifier': target=",
                  target, " is not a class of ", folder, "; classes: ", label_list(labels_), " (or an index)");
      name_ += ":target=" + labels_[static_cast<std::size_t>(target_)];
    }
    if (options.has("model")) name_ += ":model=" + folder;
  }

  at::Tensor score(const at::Tensor& images, const std::vector<std::string>& prompts) override {
    return score_on_model_device(images, prompts).to(images.device());
  }

  std::string name() const override { return name_; }

  at::Tensor image_features(const at::Tensor& images) override {
    return model_->features(prepare(images)).to(torch::kFloat).to(images.device());
  }

  void to(c10::Device device) override { model_->to(device); }

 private:
  at::Tensor score_on_model_device(const at::Tensor& images, const std::vector<std::string>& prompts) {
    const at::Tensor logits = logits_of(images);
    // float32 at least (a half-precision log-softmax loses the small probabilities), float64 when given.
    const at::Tensor log_probs =
        torch::log_softmax(logits.to(torch::promote_types(logits.scalar_type(), torch::kFloat)), 1);
    if (target_ >= 0) return log_probs.select(1, target_).exp();
    const auto batch_prompts = prompts_for_batch(prompts, images.size(0), "classifier");
    std::vector<int64_t> classes;
    for (const auto& prompt : batch_prompts) {
      const int64_t c = class_in_prompt(prompt, labels_);
      DRAFT_CHECK(c >= 0, "reward 'classifier': the prompt '", prompt, "' names none of the classes (",
                  label_list(labels_), "); use classifier:target=CLASS to score one class whatever the prompt");
      classes.push_back(c);
    }
    const at::Tensor index = torch::tensor(classes, torch::kLong).to(log_probs.device()).unsqueeze(1);
    return log_probs.gather(1, index).squeeze(1);
  }

  // Three-channel images are seen as their luma, as the classifier was trained on gray images.
  at::Tensor prepare(const at::Tensor& images) {
    check_reward_images(images, "classifier", {1, 3});
    const int64_t side = model_->config().image_size;
    DRAFT_CHECK(images.size(2) == side && images.size(3) == side, "reward 'classifier': the classifier takes ", side,
                "x", side, " images, got ", images.size(2), "x", images.size(3),
                " (it scores the embedded model's samples; for Stable Diffusion use a CLIP-based reward)");
    const auto parameter = model_->parameters().front();
    return rgb_to_gray(images).to(parameter.device(), parameter.scalar_type());
  }

  at::Tensor logits_of(const at::Tensor& images) { return model_->forward(prepare(images)); }

  FashionClassifier model_{nullptr};
  std::vector<std::string> labels_;
  int64_t target_ = -1;
  std::string name_;
};

}  // namespace

RewardFactory classifier_reward_factory() {
  return {"classifier",
          "log-probability of the prompt's class under the shipped Fashion-MNIST classifier (target=CLASS: "
          "probability of a fixed class)",
          "target=CLASS, model=DIR (default models/fashion-classifier)", true,
          [](const RewardOptions& options, const RewardContext& context) -> RewardPtr {
            return std::make_shared<ClassifierReward>(options, context);
          }};
}

}  // namespace draft
