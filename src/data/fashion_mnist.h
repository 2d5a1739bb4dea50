// Fashion-MNIST, the embedded default model's data: images from the IDX files, class names, captions for
// text-to-image training and the class a prompt names.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace draft {

/// Where Debian's `dataset-fashion-mnist` package (installed by scripts/install-deps.sh) puts the files.
inline constexpr const char* kFashionMNISTDir = "/usr/share/datasets/fashion-mnist";

/// The 10 class names in label order (0 t-shirt ... 9 ankle boot), lower case as they appear in captions.
const std::vector<std::string>& fashion_mnist_classes();

/// A labelled image set held in memory.
struct ImageDataset {
  at::Tensor images;  ///< (N, 1, 32, 32) float32 in [0, 1]: the 28x28 images padded by 2 zeros on each side
  at::Tensor labels;  ///< (N) int64 class indices
  std::vector<std::string> classes;  ///< class names by label, as captions use them

  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
};

/// Reads the "train" (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz) or "test" (t10k-*) split
/// from `dir` (files with or without the .gz suffix). `limit` > 0 keeps only the first `limit` examples.
/// Throws draft::Error naming the missing file (and scripts/install-deps.sh), an image/label count
/// mismatch, images that are not 28x28, or labels outside 0..9.
ImageDataset load_fashion_mnist(const std::string& dir, const std::string& split, int64_t limit = 0);

/// How captions are drawn for text-to-image training.
struct CaptionOptions {
  /// Each has one "{class}" placeholder; "a {class}" becomes "an {class}" before a vowel.
  std::vector<std::string> templates = {"a photo of a {class}", "a {class}", "{class}"};
  /// Probability of the empty caption, which trains the unconditional branch for classifier-free guidance.
  double empty_probability = 0.1;

  /// Throws draft::Error naming the option when a template lacks "{class}" or the probability is outside [0, 1].
  void validate() const;
};

/// `caption_template` with its "{class}" replaced by `name`; "a {class}" becomes "an {class}" before a
/// vowel. Throws draft::Error when the template has no placeholder.
std::string fill_caption_template(const std::string& caption_template, const std::string& name);

/// One caption for a class named `class_name`: empty with options.empty_probability, otherwise a template chosen
/// uniformly. Uses only raw draws of `rng` (no std:: distributions), so the captions for a seed are the
/// same with every standard library.
std::string class_caption(const std::string& class_name, std::mt19937_64& rng, const CaptionOptions& options = {});

/// class_caption for Fashion-MNIST label `label` (0..9).
std::string fashion_caption(int64_t label, std::mt19937_64& rng, const CaptionOptions& options = {});

/// One caption per label of `labels` (int64, any shape, read in order) from an rng seeded with `seed`.
std::vector<std::string> fashion_captions(const at::Tensor& labels, uint64_t seed,
                                          const CaptionOptions& options = {});

/// The class a prompt names (case-insensitive, whole words, plurals and "t shirt"/"tshirt"/"top"
/// accepted), or -1 when it names none. At each position the longest name wins, so "t-shirt" is class 0,
/// not "shirt", and "ankle boot" is class 9; the first class named in the text is returned.
int64_t parse_class_name(const std::string& text);

}  // namespace draft
