// How good a text-to-image model of Fashion-MNIST is: the classifier's verdict on samples drawn for every
// class ("does the image show what the prompt asks for?") and the Fréchet distance between classifier
// features of samples and of real images (Heusel et al. 2017, with the classifier in Inception's place).
#pragma once

#include <cstdint>
#include <string>
#include <functional>
#include <vector>

#include <ATen/core/Tensor.h>

#include "diffusion/stable_diffusion.h"
#include "models/fashion_classifier.h"

namespace draft {

/// Which samples to draw: `per_class` images for each class, prompted with `prompt_template`.
struct ClassSampleOptions {
  int64_t per_class = 10;
  int64_t steps = 50;     ///< DDIM steps
  double guidance = 3.0;  ///< classifier-free guidance scale
  uint64_t seed = 0;      ///< batch b draws its x_T from seed + b
  std::string prompt_template = "a photo of a {class}";
  int64_t batch_size = 100;  ///< images per sampling call (memory, not results)
};

/// The samples and the classifier's reading of them.
struct ClassSamples {
  at::Tensor images;     ///< (N, C, H, W) in [0, 1], class-major: class 0's per_class images first
  at::Tensor labels;     ///< (N) the class each image was prompted with
  at::Tensor predicted;  ///< (N) the classifier's argmax
  at::Tensor features;   ///< (N, F) the classifier's penultimate features
  double agreement = 0.0;                  ///< share of predicted == labels
  std::vector<double> per_class_agreement;  ///< by class
};

/// Draws the samples (no gradients) and judges them. `classes` are the class names in label order.
ClassSamples sample_and_judge(const StableDiffusion& sd, FashionClassifier& classifier,
                              const std::vector<std::string>& classes, const ClassSampleOptions& options,
                              const std::function<void(int64_t done, int64_t total)>& on_batch = {});

/// Penultimate classifier features of images (N, C, H, W) in [0, 1], in batches, without gradients.
at::Tensor classifier_features(FashionClassifier& classifier, const at::Tensor& images, int64_t batch_size = 500);

/// Fréchet distance between Gaussians fitted to two feature sets (N, F):
/// |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2), computed in float64 with symmetric
/// eigendecompositions (the square root of a PSD matrix; tiny negative eigenvalues clamp to 0).
double frechet_distance(const at::Tensor& a, const at::Tensor& b);

}  // namespace draft
