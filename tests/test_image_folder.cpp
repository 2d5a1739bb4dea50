// Image-folder datasets (<split>/<class>/*.png) for the pretrain commands, and the choice between them and
// Fashion-MNIST's IDX files.
#include <filesystem>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "io/png.h"
#include "pretrain/classifier_training.h"
#include "data/image_folder.h"
#include "support.h"

namespace {

using draft::test::expect_error;
using draft::test::TempDir;

// `per_class` random 32x32 grayscale PNGs for each class, in dir/<split>/<class>/.
void write_folder(const std::string& dir, const std::string& split, const std::vector<std::string>& classes,
                  int per_class) {
  torch::manual_seed(0);
  for (const auto& c : classes) {
    std::filesystem::create_directories(dir + "/" + split + "/" + c);
    for (int i = 0; i < per_class; ++i) {
      draft::write_png(dir + "/" + split + "/" + c + "/" + std::to_string(i) + ".png", torch::rand({1, 32, 32}));
    }
  }
}

TEST(ImageFolder, ClassesFromSubfoldersInSortedOrder) {
  TempDir dir;
  write_folder(dir.path(), "train", {"zebra", "ankle_boot"}, 3);
  const draft::ImageDataset data = draft::load_image_folder(dir.path(), "train");
  EXPECT_EQ(data.classes, (std::vector<std::string>{"ankle boot", "zebra"}));
  EXPECT_EQ(data.images.sizes(), (std::vector<int64_t>{6, 1, 32, 32}));
  EXPECT_EQ(data.labels.sum().item<int64_t>(), 3);
  EXPECT_EQ(data.labels[0].item<int64_t>(), 0);
  EXPECT_EQ(draft::load_image_folder(dir.path(), "train", 4).size(), 4);
  // The pretrain commands' loader takes the folder too.
  EXPECT_EQ(draft::load_training_images(dir.path(), "train").size(), 6);
}

TEST(ImageFolder, ErrorsNameTheProblem) {
  TempDir dir;
  std::string message = expect_error([&] { draft::load_training_images(dir.path(), "train"); });
  EXPECT_NE(message.find("IDX"), std::string::npos) << message;
  EXPECT_NE(message.find("<class>/*.png"), std::string::npos) << message;
  write_folder(dir.path(), "train", {"a"}, 1);
  draft::write_png(dir.file("train/a/odd.png"), torch::rand({1, 16, 16}));
  message = expect_error([&] { draft::load_image_folder(dir.path(), "train"); });
  EXPECT_NE(message.find("odd.png"), std::string::npos) << message;
  std::filesystem::remove(dir.file("train/a/odd.png"));
  std::filesystem::create_directories(dir.file("train/empty"));
  message = expect_error([&] { draft::load_image_folder(dir.path(), "train"); });
  EXPECT_NE(message.find("empty"), std::string::npos) << message;
}

TEST(ImageFolder, ClassifierTrainsOnAFolderWithItsOwnClasses) {
  draft::test::OneThread one;
  TempDir dir;
  write_folder(dir.file("data"), "train", {"circle", "square", "star"}, 8);
  write_folder(dir.file("data"), "test", {"circle", "square", "star"}, 2);
  draft::ClassifierTrainConfig c;
  c.data_dir = dir.file("data");
  c.out_dir = dir.file("run");
  c.epochs = 1;
  c.batch_size = 8;
  c.model.channels = {8};
  c.model.layers_per_block = 1;
  c.model.norm_num_groups = 4;
  c.model.hidden = 8;
  const draft::ClassifierTrainResult r = draft::train_classifier(c);
  EXPECT_EQ(r.labels, (std::vector<std::string>{"circle", "square", "star"}));
  EXPECT_EQ(draft::load_fashion_classifier(r.model_dir)->config().num_classes, 3);
}

}  // namespace
