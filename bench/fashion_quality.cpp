// The embedded model's quality report: samples `--per-class` images per class with 50 DDIM steps and
// guidance, lets the shipped classifier judge them (per-class and overall agreement with the prompt),
// and computes the Fréchet distance of classifier features between the samples and the 10,000 test
// images, with the training images' distance to the test images as the floor. Prints markdown tables;
// --grid writes one row per class.
//   build/bin/fashion_quality [--model DIR] [--classifier DIR] [--per-class 1000] [--steps 50]
//                             [--guidance 3] [--seed 0] [--grid FILE.png] [--json FILE]
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "io/image_grid.h"
#include "io/png.h"
#include "data/fashion_mnist.h"
#include "pretrain/sample_quality.h"
#include "util/progress.h"
#include "util/threads.h"

int main(int argc, char** argv) {
  const std::string root = DRAFT_SOURCE_DIR;
  std::string model = root + "/models/fashion-sd", classifier_dir = root + "/models/fashion-classifier";
  std::string grid_path, json_path, data = draft::kFashionMNISTDir;
  draft::ClassSampleOptions o;
  o.per_class = 1000;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return std::string(argv[++i]); };
    if (i + 1 >= argc) {
      std::fprintf(stderr, "fashion_quality: %s needs a value\n", a.c_str());
      return 2;
    }
    if (a == "--model") model = next();
    else if (a == "--classifier") classifier_dir = next();
    else if (a == "--per-class") o.per_class = std::stoll(next());
    else if (a == "--steps") o.steps = std::stoll(next());
    else if (a == "--guidance") o.guidance = std::stod(next());
    else if (a == "--seed") o.seed = std::stoull(next());
    else if (a == "--grid") grid_path = next();
    else if (a == "--json") json_path = next();
    else if (a == "--data") data = next();
    else {
      std::fprintf(stderr,
                   "usage: fashion_quality [--model DIR] [--classifier DIR] [--per-class N] [--steps N] "
                   "[--guidance W] [--seed S] [--grid FILE.png] [--json FILE] [--data DIR]\n");
      return 2;
    }
  }
  draft::configure_threads(0);
  draft::use_small_tensor_threading();
  const auto start = std::chrono::steady_clock::now();
  const draft::StableDiffusion sd = draft::load_stable_diffusion(model, {});
  draft::FashionClassifier classifier = draft::load_fashion_classifier(classifier_dir);
  const auto& classes = draft::fashion_mnist_classes();

  draft::ProgressBar bar(o.per_class * static_cast<int64_t>(classes.size()), "sample");
  const draft::ClassSamples s =
      draft::sample_and_judge(sd, classifier, classes, o, [&](int64_t done, int64_t) { bar.update(done); });
  bar.finish();
  const double sample_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  const draft::ImageDataset test = draft::load_fashion_mnist(data, "test");
  const draft::ImageDataset train = draft::load_fashion_mnist(data, "train", test.size());
  const at::Tensor test_features = draft::classifier_features(classifier, test.images);
  const double fd_samples = draft::frechet_distance(s.features, test_features);
  const double fd_train = draft::frechet_distance(draft::classifier_features(classifier, train.images), test_features);

  std::printf("%s, %lld samples per class, %lld DDIM steps, guidance %.1f, seed %llu, prompt \"%s\"\n\n",
              model.c_str(), static_cast<long long>(o.per_class), static_cast<long long>(o.steps), o.guidance,
              static_cast<unsigned long long>(o.seed), o.prompt_template.c_str());
  std::printf("| class | samples | classifier agrees |\n|---|---:|---:|\n");
  nlohmann::json out = {{"model", model}, {"per_class", o.per_class}, {"steps", o.steps}, {"guidance", o.guidance},
                        {"seed", o.seed}, {"per_class_agreement", nlohmann::json::object()}};
  for (std::size_t c = 0; c < classes.size(); ++c) {
    std::printf("| %s | %lld | %.1f%% |\n", classes[c].c_str(), static_cast<long long>(o.per_class),
                100.0 * s.per_class_agreement[c]);
    out["per_class_agreement"][classes[c]] = s.per_class_agreement[c];
  }
  std::printf("| all | %lld | **%.1f%%** |\n\n", static_cast<long long>(s.labels.size(0)), 100.0 * s.agreement);
  std::printf("| Fréchet distance (classifier features) | value |\n|---|---:|\n");
  std::printf("| %lld samples vs %lld test images | %.3f |\n", static_cast<long long>(s.labels.size(0)),
              static_cast<long long>(test.size()), fd_samples);
  std::printf("| %lld training images vs the test images (floor) | %.3f |\n\n", static_cast<long long>(train.size()),
              fd_train);
  std::printf("sampling took %.0f s\n", sample_seconds);
  out["agreement"] = s.agreement;
  out["fd_samples_vs_test"] = fd_samples;
  out["fd_train_vs_test"] = fd_train;
  out["sample_seconds"] = sample_seconds;
  if (!json_path.empty()) std::ofstream(json_path) << out.dump(2) << '\n';
  if (!grid_path.empty()) {
    // One row per class: the first 10 samples of each.
    std::vector<at::Tensor> rows;
    const int64_t columns = std::min<int64_t>(10, o.per_class);
    for (std::size_t c = 0; c < classes.size(); ++c) {
      rows.push_back(s.images.narrow(0, static_cast<int64_t>(c) * o.per_class, columns));
    }
    draft::write_png(grid_path, draft::make_grid(torch::cat(rows), {columns, 2, 1.0}));
    std::printf("wrote %s\n", grid_path.c_str());
  }
  return 0;
}
