// FashionClassifier: folder round trip, gradients for rewards, and `draft pretrain classifier`'s loop on a
// tiny subset: its run folder, and a resumed run ending with the uninterrupted run's weights.
#include <filesystem>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "io/json_file.h"
#include "models/fashion_classifier.h"
#include "pretrain/classifier_training.h"
#include "train/checkpoint.h"
#include "train/metrics.h"
#include "train/run_folder.h"
#include "support.h"

namespace {

using draft::test::expect_error;
using draft::test::TempDir;
using draft::test::tensors_close;

draft::FashionClassifierConfig tiny_config() {
  draft::FashionClassifierConfig c;
  c.channels = {8, 16};
  c.layers_per_block = 1;
  c.norm_num_groups = 4;
  c.hidden = 16;
  c.labels = draft::fashion_mnist_classes();
  return c;
}

// 256 images, batches of 32: 8 steps per epoch.
draft::ClassifierTrainConfig tiny_run(const std::string& out) {
  draft::ClassifierTrainConfig c;
  c.out_dir = out;
  c.limit = 256;
  c.epochs = 2;
  c.batch_size = 32;
  c.lr = 1e-2;
  c.checkpoint_every = 3;
  c.log_every = 4;
  c.eval_batch_size = 128;
  c.model = tiny_config();
  return c;
}


TEST(FashionClassifier, ShapesAndTrainEvalAgree) {
  torch::manual_seed(0);
  draft::FashionClassifier model(tiny_config());
  at::Tensor x = torch::rand({3, 1, 32, 32});
  at::Tensor logits = model->forward(x);
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{3, 10}));
  EXPECT_EQ(model->features(x).sizes(), (std::vector<int64_t>{3, 16}));
  model->eval();
  EXPECT_TRUE(tensors_close(model->forward(x), logits, 0.0));  // no BatchNorm, no dropout
  std::string message = expect_error([&] { model->forward(torch::rand({3, 3, 32, 32})); });
  EXPECT_NE(message.find("(B, 1, 32, 32)"), std::string::npos) << message;
}

TEST(FashionClassifier, GradientReachesTheImages) {
  torch::manual_seed(0);
  draft::FashionClassifier model(tiny_config());
  at::Tensor x = torch::rand({2, 1, 32, 32}).requires_grad_(true);
  torch::log_softmax(model->forward(x), 1).select(1, 3).sum().backward();
  ASSERT_TRUE(x.grad().defined());
  EXPECT_TRUE(torch::isfinite(x.grad()).all().item<bool>());
  EXPECT_GT(x.grad().abs().max().item<double>(), 0.0);
}

TEST(FashionClassifier, SaveLoadRoundTrip) {
  TempDir dir;
  torch::manual_seed(0);
  draft::FashionClassifier model(tiny_config());
  draft::save_fashion_classifier(dir.file("model"), model);
  EXPECT_TRUE(std::filesystem::is_regular_file(dir.file("model/config.json")));
  EXPECT_TRUE(std::filesystem::is_regular_file(dir.file("model/model.safetensors")));
  draft::FashionClassifier loaded = draft::load_fashion_classifier(dir.file("model"));
  EXPECT_EQ(loaded->config().channels, tiny_config().channels);
  EXPECT_EQ(loaded->config().labels, draft::fashion_mnist_classes());
  at::Tensor x = torch::rand({4, 1, 32, 32});
  EXPECT_TRUE(tensors_close(loaded->forward(x), model->forward(x), 0.0));
  EXPECT_TRUE(tensors_close(loaded->features(x), model->features(x), 0.0));
}

TEST(FashionClassifier, ConfigErrorsNameTheKey) {
  draft::FashionClassifierConfig c = tiny_config();
  c.channels = {8, 10};
  std::string message = expect_error([&] { c.validate(); });
  EXPECT_NE(message.find("channels entry 10"), std::string::npos) << message;
  c = tiny_config();
  c.labels = {"a", "b"};
  message = expect_error([&] { c.validate(); });
  EXPECT_NE(message.find("labels"), std::string::npos) << message;

  TempDir dir;
  draft::write_json_file(dir.file("config.json"), {{"_class_name", "FashionClassifier"}, {"hidden", "wide"}});
  message = expect_error(
      [&] { draft::FashionClassifierConfig::from_json(draft::ConfigJson::load(dir.file("config.json"))); });
  EXPECT_NE(message.find("'hidden'"), std::string::npos) << message;
}

// The classifier shipped in models/ loads through the generic loader and is as accurate as models/README.md
// says (92.7% on the whole test set; checked here on the first 2000 images to stay fast).
TEST(FashionClassifier, ShippedModelJudgesTestImages) {
  const std::string folder = draft::test::shipped_model("fashion-classifier");
  ASSERT_TRUE(std::filesystem::is_regular_file(folder + "/model.safetensors")) << folder;
  draft::FashionClassifier model = draft::load_fashion_classifier(folder);
  EXPECT_EQ(model->config().labels, draft::fashion_mnist_classes());
  if (!draft::test::have_fashion_mnist()) GTEST_SKIP() << draft::kFashionMNISTDir << " is missing (scripts/install-deps.sh)";
  draft::ImageDataset test = draft::load_fashion_mnist(draft::kFashionMNISTDir, "test", 2000);
  draft::ClassifierEvaluation e = draft::evaluate_classifier(model, test);
  std::printf("    shipped classifier: %.4f on the first 2000 test images\n", e.accuracy);
  EXPECT_GE(e.accuracy, 0.9);
}

TEST(ClassifierTrainConfig, JsonRoundTripAndValidation) {
  draft::ClassifierTrainConfig c = tiny_run("/tmp/x");
  c.seed = 12;
  TempDir dir;
  draft::write_json_file(dir.file("c.json"), c.to_json());
  auto load = [&](const std::string& name, const draft::ClassifierTrainConfig& base) {
    return draft::ClassifierTrainConfig::from_json(draft::ConfigJson::load(dir.file(name)), base);
  };
  draft::ClassifierTrainConfig back = load("c.json", {});
  EXPECT_EQ(back.to_json(), c.to_json());

  // Keys present in a file override the base; absent ones keep it.
  draft::write_json_file(dir.file("partial.json"), {{"epochs", 7}});
  draft::ClassifierTrainConfig merged = load("partial.json", c);
  EXPECT_EQ(merged.epochs, 7);
  EXPECT_EQ(merged.seed, 12u);

  draft::write_json_file(dir.file("typo.json"), {{"epoch", 7}});
  std::string message = expect_error([&] { load("typo.json", {}); });
  EXPECT_NE(message.find("unknown key 'epoch'"), std::string::npos) << message;

  c.batch_size = 0;
  message = expect_error([&] { c.validate(); });
  EXPECT_NE(message.find("batch_size"), std::string::npos) << message;
  c = tiny_run("");
  message = expect_error([&] { c.validate(); });
  EXPECT_NE(message.find("out_dir"), std::string::npos) << message;
}

TEST(ClassifierTraining, TinySubsetWritesTheRunFolder) {
  if (!draft::test::have_fashion_mnist()) GTEST_SKIP() << draft::kFashionMNISTDir << " is missing (scripts/install-deps.sh)";
  draft::test::OneThread one;
  TempDir dir;
  draft::ClassifierTrainConfig c = tiny_run(dir.file("run"));
  draft::ClassifierTrainResult r = draft::train_classifier(c);
  std::printf("    tiny run: test accuracy %.3f after %lld steps, %.2f s\n", r.test_accuracy,
              static_cast<long long>(r.steps), r.seconds);
  EXPECT_EQ(r.steps, 16);
  EXPECT_FALSE(r.stopped_early);
  EXPECT_GT(r.test_accuracy, 0.3);  // chance is 0.1
  EXPECT_EQ(r.test.count, 256);

  draft::RunFolder run(dir.file("run"));
  EXPECT_TRUE(run.has_checkpoint());
  EXPECT_EQ(draft::read_checkpoint_info(run.checkpoint_path()).progress.step, 16);
  EXPECT_EQ(draft::read_json_file(run.config_path()).at("batch_size"), 32);
  int train_records = 0, eval_records = 0, final_records = 0;
  for (const auto& record : draft::read_metrics(run.metrics_path())) {
    const std::string event = record.at("event");
    train_records += event == "train";
    eval_records += event == "eval";
    final_records += event == "final";
    if (event == "final") {
      EXPECT_EQ(record.at("per_class_accuracy").size(), 10u);
    }
  }
  EXPECT_EQ(train_records, 4);  // steps 4, 8, 12, 16
  EXPECT_EQ(eval_records, 2);   // one per epoch
  EXPECT_EQ(final_records, 1);

  // The saved model is the trained one.
  draft::FashionClassifier model = draft::load_fashion_classifier(r.model_dir);
  draft::ImageDataset test = draft::load_fashion_mnist(draft::kFashionMNISTDir, "test", 256);
  EXPECT_DOUBLE_EQ(draft::evaluate_classifier(model, test, 128).accuracy, r.test_accuracy);
  std::string table = draft::format_class_accuracy_table(r.test, r.labels);
  EXPECT_NE(table.find("| ankle boot |"), std::string::npos) << table;

  // A second run into the same folder must not overwrite it silently.
  std::string message = expect_error([&] { draft::train_classifier(c); });
  EXPECT_NE(message.find("--resume"), std::string::npos) << message;
}

TEST(ClassifierTraining, ResumeReproducesTheUninterruptedRun) {
  if (!draft::test::have_fashion_mnist()) GTEST_SKIP() << draft::kFashionMNISTDir << " is missing (scripts/install-deps.sh)";
  draft::test::OneThread one;
  TempDir dir;
  draft::ClassifierTrainResult full = draft::train_classifier(tiny_run(dir.file("full")));

  // Stop mid-epoch (step 5 of 8), then resume: the checkpoint holds step 5.
  draft::ClassifierTrainConfig c = tiny_run(dir.file("split"));
  c.stop_after_steps = 5;
  draft::ClassifierTrainResult first = draft::train_classifier(c);
  EXPECT_TRUE(first.stopped_early);
  EXPECT_EQ(first.steps, 5);
  EXPECT_FALSE(std::filesystem::exists(dir.file("split/model")));

  c.stop_after_steps = 0;
  c.batch_size = 16;
  c.resume = true;
  std::string message = expect_error([&] { draft::train_classifier(c); });
  EXPECT_NE(message.find("batch_size"), std::string::npos) << message;

  c.batch_size = 32;
  draft::ClassifierTrainResult rest = draft::train_classifier(c);
  EXPECT_EQ(rest.steps, 16);
  EXPECT_EQ(rest.test_accuracy, full.test_accuracy);
  draft::FashionClassifier a = draft::load_fashion_classifier(full.model_dir);
  draft::FashionClassifier b = draft::load_fashion_classifier(rest.model_dir);
  auto pb = b->named_parameters();
  for (const auto& item : a->named_parameters()) {
    EXPECT_TRUE(tensors_close(pb[item.key()], item.value(), 0.0)) << item.key();
  }
  // The resumed run's log has each step once.
  int train_records = 0;
  for (const auto& record : draft::read_metrics(dir.file("split/metrics.jsonl"))) {
    train_records += record.at("event") == "train";
  }
  EXPECT_EQ(train_records, 4);
}

}  // namespace
