// Class-conditional samples judged by the classifier, and the Fréchet distance of feature sets.
#include "pretrain/sample_quality.h"

#include <torch/torch.h>

#include "diffusion/text_to_image.h"
#include "data/fashion_mnist.h"
#include "util/error.h"

namespace draft {
namespace {

// The symmetric square root of a PSD matrix through its eigendecomposition.
at::Tensor psd_sqrt(const at::Tensor& m) {
  auto [values, vectors] = torch::linalg::eigh((m + m.transpose(0, 1)) / 2.0, "L");
  return vectors.matmul(torch::diag(values.clamp_min(0.0).sqrt())).matmul(vectors.transpose(0, 1));
}

}  // namespace

at::Tensor classifier_features(FashionClassifier& classifier, const at::Tensor& images, int64_t batch_size) {
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> parts;
  const c10::Device device = classifier->fc2->weight.device();
  for (int64_t begin = 0; begin < images.size(0); begin += batch_size) {
    const at::Tensor x = images.narrow(0, begin, std::min(batch_size, images.size(0) - begin)).to(device);
    parts.push_back(classifier->features(x).cpu());
  }
  return torch::cat(parts);
}

ClassSamples sample_and_judge(const StableDiffusion& sd, FashionClassifier& classifier,
                              const std::vector<std::string>& classes, const ClassSampleOptions& o,
                              const std::function<void(int64_t, int64_t)>& on_batch) {
  DRAFT_CHECK(o.per_class > 0 && o.batch_size > 0, "per_class and batch_size must be positive");
  DRAFT_CHECK(!classes.empty(), "no classes to sample");
  torch::NoGradGuard no_grad;
  const bool was_training = classifier->is_training();
  classifier->eval();
  std::vector<std::string> prompts;
  std::vector<int64_t> labels;
  for (std::size_t c = 0; c < classes.size(); ++c) {
    for (int64_t i = 0; i < o.per_class; ++i) {
      prompts.push_back(fill_caption_template(o.prompt_template, classes[c]));
      labels.push_back(static_cast<int64_t>(c));
    }
  }
  const auto total = static_cast<int64_t>(prompts.size());
  std::vector<at::Tensor> images;
  for (int64_t begin = 0, batch = 0; begin < total; begin += o.batch_size, ++batch) {
    TextToImageOptions t;
    t.prompts.assign(prompts.begin() + begin, prompts.begin() + std::min(total, begin + o.batch_size));
    t.steps = o.steps;
    t.guidance_scale = o.guidance;
    t.seed = o.seed + static_cast<uint64_t>(batch);
    images.push_back(text_to_image(sd, t).images);
    if (on_batch) on_batch(std::min(total, begin + o.batch_size), total);
  }
  ClassSamples s;
  s.images = torch::cat(images);
  s.labels = torch::tensor(labels, torch::kLong);
  s.features = classifier_features(classifier, s.images);
  {
    const c10::Device device = classifier->fc2->weight.device();
    std::vector<at::Tensor> predicted;
    for (int64_t begin = 0; begin < total; begin += 500) {
      predicted.push_back(
          classifier->forward(s.images.narrow(0, begin, std::min<int64_t>(500, total - begin)).to(device)).argmax(1).cpu());
    }
    s.predicted = torch::cat(predicted);
  }
  const at::Tensor hit = (s.predicted == s.labels).to(torch::kDouble);
  s.agreement = hit.mean().item<double>();
  for (std::size_t c = 0; c < classes.size(); ++c) {
    s.per_class_agreement.push_back(hit.narrow(0, static_cast<int64_t>(c) * o.per_class, o.per_class).mean().item<double>());
  }
  classifier->train(was_training);
  return s;
}

double frechet_distance(const at::Tensor& a_in, const at::Tensor& b_in) {
  DRAFT_CHECK(a_in.dim() == 2 && b_in.dim() == 2 && a_in.size(1) == b_in.size(1),
              "Fréchet distance needs two (N, F) feature sets of the same width");
  DRAFT_CHECK(a_in.size(0) > 1 && b_in.size(0) > 1, "Fréchet distance needs at least 2 samples per set");
  const at::Tensor a = a_in.to(torch::kDouble), b = b_in.to(torch::kDouble);
  const at::Tensor mu_a = a.mean(0), mu_b = b.mean(0);
  const at::Tensor ca = a - mu_a, cb = b - mu_b;
  const at::Tensor cov_a = ca.transpose(0, 1).matmul(ca) / static_cast<double>(a.size(0) - 1);
  const at::Tensor cov_b = cb.transpose(0, 1).matmul(cb) / static_cast<double>(b.size(0) - 1);
  const at::Tensor root_a = psd_sqrt(cov_a);
  const at::Tensor cross = psd_sqrt(root_a.matmul(cov_b).matmul(root_a));
  const at::Tensor d = (mu_a - mu_b).square().sum() + cov_a.trace() + cov_b.trace() - 2.0 * cross.trace();
  return d.item<double>();
}

}  // namespace draft
