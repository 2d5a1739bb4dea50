// Fashion-MNIST loading (Xiao et al. 2017, IDX files as zalandoresearch publishes them), captions and
// prompt parsing.
#include "data/fashion_mnist.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <utility>

#include <torch/torch.h>

#include "io/idx.h"
#include "util/error.h"

namespace draft {
namespace {

constexpr int64_t kSide = 28;
constexpr int64_t kPad = 2;  // 28 + 2 + 2 = 32: a size that halves cleanly through the UNet and the VAE

// The file for `base` in `dir`, gzip-compressed or not; the error names the file the package provides.
std::string find_idx_file(const std::string& dir, const std::string& base) {
  for (const std::string& candidate : {dir + "/" + base + ".gz", dir + "/" + base}) {
    if (std::filesystem::is_regular_file(candidate)) return candidate;
  }
  fail(dir, "/", base, ".gz: Fashion-MNIST file not found: run scripts/install-deps.sh (it installs the Debian ",
       "package dataset-fashion-mnist into ", kFashionMNISTDir, "), or pass the folder that holds the IDX files");
}

bool is_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-'; }

// Names a prompt may use for each class, beyond the canonical one.
const std::vector<std::pair<std::string, int64_t>>& class_aliases() {
  static const std::vector<std::pair<std::string, int64_t>> aliases = [] {
    std::vector<std::pair<std::string, int64_t>> a;
    const auto& names = fashion_mnist_classes();
    for (std::size_t i = 0; i < names.size(); ++i) a.emplace_back(names[i], static_cast<int64_t>(i));
    a.emplace_back("t shirt", 0);
    a.emplace_back("tshirt", 0);
    a.emplace_back("ankle-boot", 9);
    // Longest first, so that at one position "t-shirt" is tried before "shirt".
    std::stable_sort(a.begin(), a.end(), [](const auto& x, const auto& y) { return x.first.size() > y.first.size(); });
    return a;
  }();
  return aliases;
}

}  // namespace

const std::vector<std::string>& fashion_mnist_classes() {
  static const std::vector<std::string> names = {"t-shirt", "trouser", "pullover", "dress", "coat",
                                                 "sandal",  "shirt",   "sneaker",  "bag",   "ankle boot"};
  return names;
}

ImageDataset load_fashion_mnist(const std::string& dir, const std::string& split, int64_t limit) {
  DRAFT_CHECK(split == "train" || split == "test", "Fashion-MNIST split '", split, "' is not train or test");
  DRAFT_CHECK(limit >= 0, "Fashion-MNIST limit must be >= 0 (got ", limit, ")");
  const std::string prefix = split == "train" ? "train" : "t10k";
  const std::string image_path = find_idx_file(dir, prefix + "-images-idx3-ubyte");
  const std::string label_path = find_idx_file(dir, prefix + "-labels-idx1-ubyte");
  at::Tensor images = read_idx(image_path);
  at::Tensor labels = read_idx(label_path);
  DRAFT_CHECK(images.dim() == 3 && images.size(1) == kSide && images.size(2) == kSide, image_path,
              ": expected images of shape (N, 28, 28), got ", images.sizes());
  DRAFT_CHECK(labels.dim() == 1, label_path, ": expected labels of shape (N), got ", labels.sizes());
  DRAFT_CHECK(images.size(0) == labels.size(0), image_path, " holds ", images.size(0), " images but ", label_path,
              " holds ", labels.size(0), " labels");
  const auto num_classes = static_cast<int64_t>(fashion_mnist_classes().size());
  if (labels.numel() > 0) {
    const int64_t top = labels.max().item<int64_t>();
    DRAFT_CHECK(top < num_classes, label_path, ": label ", top, " is outside 0..", num_classes - 1);
  }
  const int64_t n = limit > 0 ? std::min(limit, labels.size(0)) : labels.size(0);

  ImageDataset data;
  data.images = torch::constant_pad_nd(images.narrow(0, 0, n).to(torch::kFloat).div_(255.0).unsqueeze(1),
                                       {kPad, kPad, kPad, kPad}, 0.0)
                    .contiguous();
  data.labels = labels.narrow(0, 0, n).to(torch::kLong).contiguous();
  data.classes = fashion_mnist_classes();
  return data;
}

void CaptionOptions::validate() const {
  DRAFT_CHECK(!templates.empty(), "captions.templates must not be empty");
  for (const auto& t : templates) {
    DRAFT_CHECK(t.find("{class}") != std::string::npos, "captions.templates entry '", t,
                "' has no {class} placeholder");
  }
  DRAFT_CHECK(empty_probability >= 0.0 && empty_probability <= 1.0,
              "captions.empty_probability must be in [0, 1] (got ", empty_probability, ")");
}

std::string fill_caption_template(const std::string& caption_template, const std::string& name) {
  std::string caption = caption_template;
  const std::size_t at = caption.find("{class}");
  DRAFT_CHECK(at != std::string::npos, "caption template '", caption, "' has no {class} placeholder");
  caption.replace(at, 7, name);
  // "a ankle boot" -> "an ankle boot": the article only, when "a" is a word of its own.
  const bool article = at >= 2 && caption.compare(at - 2, 2, "a ") == 0 && (at == 2 || caption[at - 3] == ' ');
  if (article && !name.empty() && std::string("aeiou").find(name[0]) != std::string::npos) caption.insert(at - 1, "n");
  return caption;
}

std::string class_caption(const std::string& class_name, std::mt19937_64& rng, const CaptionOptions& options) {
  DRAFT_CHECK(!options.templates.empty(), "captions.templates must not be empty");
  // Both draws happen for every caption, so caption i depends only on the seed and i.
  const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;  // uniform in [0, 1) from the top 53 bits
  const uint64_t pick = rng() % options.templates.size();
  if (u < options.empty_probability) return "";
  return fill_caption_template(options.templates[pick], class_name);
}

std::string fashion_caption(int64_t label, std::mt19937_64& rng, const CaptionOptions& options) {
  const auto& names = fashion_mnist_classes();
  DRAFT_CHECK(label >= 0 && label < static_cast<int64_t>(names.size()), "caption for label ", label,
              ": outside 0..", names.size() - 1);
  return class_caption(names[static_cast<std::size_t>(label)], rng, options);
}

std::vector<std::string> fashion_captions(const at::Tensor& labels, uint64_t seed, const CaptionOptions& options) {
  options.validate();
  std::mt19937_64 rng(seed);
  at::Tensor flat = labels.to(torch::kLong).contiguous().view(-1);
  const int64_t* p = flat.data_ptr<int64_t>();
  std::vector<std::string> captions;
  captions.reserve(static_cast<std::size_t>(flat.numel()));
  for (int64_t i = 0; i < flat.numel(); ++i) captions.push_back(fashion_caption(p[i], rng, options));
  return captions;
}

int64_t parse_class_name(const std::string& text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  auto boundary = [&](std::size_t end) { return end >= lower.size() || !is_word_char(lower[end]); };
  for (std::size_t pos = 0; pos < lower.size(); ++pos) {
    if (pos > 0 && is_word_char(lower[pos - 1])) continue;  // names start at a word start
    for (const auto& [alias, label] : class_aliases()) {
      if (lower.compare(pos, alias.size(), alias) != 0) continue;
      const std::size_t end = pos + alias.size();
      // The name itself, or its plural ("sandals", "dresses").
      if (boundary(end) || (lower.compare(end, 1, "s") == 0 && boundary(end + 1)) ||
          (lower.compare(end, 2, "es") == 0 && boundary(end + 2))) {
        return label;
      }
    }
  }
  return -1;
}

}  // namespace draft
