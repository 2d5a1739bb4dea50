// PNG class folders as an ImageDataset, and the choice between them and Fashion-MNIST's IDX files.
#include "data/image_folder.h"

#include <algorithm>
#include <filesystem>
#include <vector>

#include <torch/torch.h>

#include "io/png.h"
#include "util/error.h"

namespace draft {
namespace {

namespace fs = std::filesystem;

bool has_idx_files(const std::string& dir) {
  for (const char* name : {"train-images-idx3-ubyte", "train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte",
                           "t10k-images-idx3-ubyte.gz"}) {
    if (fs::is_regular_file(fs::path(dir) / name)) return true;
  }
  return false;
}

std::vector<fs::path> sorted_entries(const fs::path& dir, bool directories) {
  std::vector<fs::path> out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (directories ? entry.is_directory() : (entry.is_regular_file() && entry.path().extension() == ".png")) {
      out.push_back(entry.path());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

ImageDataset load_image_folder(const std::string& dir, const std::string& split, int64_t limit) {
  DRAFT_CHECK(limit >= 0, "image folder limit must be >= 0 (got ", limit, ")");
  const fs::path root = fs::path(dir) / split;
  DRAFT_CHECK(fs::is_directory(root), root.string(), ": no such folder (an image folder dataset has ", split,
              "/<class>/*.png)");
  const std::vector<fs::path> class_dirs = sorted_entries(root, true);
  DRAFT_CHECK(!class_dirs.empty(), root.string(), ": no class subfolders (expected ", root.string(), "/<class>/*.png)");
  ImageDataset data;
  std::vector<at::Tensor> images;
  std::vector<int64_t> labels;
  for (std::size_t c = 0; c < class_dirs.size(); ++c) {
    std::string name = class_dirs[c].filename().string();
    std::replace(name.begin(), name.end(), '_', ' ');
    data.classes.push_back(name);
    const std::vector<fs::path> files = sorted_entries(class_dirs[c], false);
    DRAFT_CHECK(!files.empty(), class_dirs[c].string(), ": no .png files in this class folder");
    for (const auto& file : files) {
      if (limit > 0 && static_cast<int64_t>(images.size()) >= limit) break;
      at::Tensor image = read_png(file.string());
      if (!images.empty()) {
        DRAFT_CHECK(image.sizes() == images.front().sizes(), file.string(), ": image of shape ", image.sizes(),
                    " but the first image of the dataset is ", images.front().sizes(),
                    ": resize the images to one size and channel count");
      }
      images.push_back(image);
      labels.push_back(static_cast<int64_t>(c));
    }
  }
  data.images = torch::stack(images).contiguous();
  data.labels = torch::tensor(labels, torch::kLong);
  return data;
}

ImageDataset load_training_images(const std::string& dir, const std::string& split, int64_t limit) {
  if (has_idx_files(dir)) return load_fashion_mnist(dir, split, limit);
  if (fs::is_directory(fs::path(dir) / split)) return load_image_folder(dir, split, limit);
  fail(dir, ": no training images: expected the Fashion-MNIST IDX files (train-images-idx3-ubyte.gz ...; "
            "scripts/install-deps.sh installs them into ", kFashionMNISTDir, ") or an image folder ", dir, "/", split,
       "/<class>/*.png");
}

}  // namespace draft
