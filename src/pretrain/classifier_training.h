// Training the Fashion-MNIST classifier (`draft pretrain classifier`): config, evaluation and the loop.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/config_json.h"
#include "io/config_table.h"
#include "models/fashion_classifier.h"
#include "data/fashion_mnist.h"

namespace draft {

/// Everything a classifier run depends on; written to the run folder as config.json.
struct ClassifierTrainConfig {
  std::string data_dir = kFashionMNISTDir;  ///< folder with the IDX files
  std::string out_dir;                      ///< the run folder (required)
  int64_t epochs = 3;
  int64_t batch_size = 128;
  double lr = 1e-3;  ///< AdamW peak learning rate
  double weight_decay = 1e-2;
  std::string lr_schedule = "cosine";  ///< "cosine" (to 0 over the run) or "constant"
  uint64_t seed = 0;                   ///< initial weights, data order, augmentation
  int64_t limit = 0;                   ///< > 0: use the first `limit` train and test examples (tests, smoke runs)
  bool hflip = true;                   ///< augmentation: random horizontal flips (p = 0.5)
  int64_t checkpoint_every = 500;      ///< steps between checkpoints (0: only at epoch ends); always at the end
  int64_t log_every = 50;              ///< steps between metrics.jsonl records
  bool tensorboard = true;             ///< TensorBoard events files in out_dir/tensorboard/
  std::string device = "cpu";           ///< where the model trains: cpu, cuda or cuda:N
  bool eval_every_epoch = true;        ///< test-set accuracy after each epoch (else only at the end)
  int64_t eval_batch_size = 500;
  int64_t stop_after_steps = 0;  ///< > 0: checkpoint and stop after this many steps in total (a time-boxed run)
  bool resume = false;           ///< continue from out_dir's checkpoint (a run option, not stored)
  FashionClassifierConfig model;  ///< the architecture; empty labels become the Fashion-MNIST class names

  /// Reads the keys present in `config` over `base` (so that defaults < file < flags compose). Unknown
  /// keys and wrong types throw draft::Error naming the file and key. Not validated.
  static ClassifierTrainConfig from_json(const ConfigJson& config, const ClassifierTrainConfig& base);
  /// The same over the defaults.
  static ClassifierTrainConfig from_json(const ConfigJson& config);
  nlohmann::json to_json() const;
  /// Throws draft::Error naming the key ("batch_size must be positive (got 0)").
  void validate() const;
};

/// Every `draft pretrain classifier` key, declared once (docs/config.md is generated from this table).
const ConfigTable<ClassifierTrainConfig>& classifier_train_config_table();

/// Accuracy of a classifier on a labelled set.
struct ClassifierEvaluation {
  double loss = 0.0;  ///< mean cross-entropy
  double accuracy = 0.0;
  std::vector<double> per_class_accuracy;  ///< by label; NaN for a class absent from the set
  std::vector<int64_t> per_class_count;
  int64_t count = 0;
};

/// Evaluates `model` on `data` in batches (no gradients), on the model's device.
ClassifierEvaluation evaluate_classifier(FashionClassifier& model, const ImageDataset& data, int64_t batch_size = 500);

/// A markdown table: class, test images, accuracy (%), and an "all" row.
std::string format_class_accuracy_table(const ClassifierEvaluation& evaluation, const std::vector<std::string>& labels);

/// What a finished (or stopped) run reports.
struct ClassifierTrainResult {
  double test_accuracy = 0.0;  ///< the final model on the test split (0 when stopped early)
  ClassifierEvaluation test;
  std::vector<std::string> labels;
  int64_t steps = 0;           ///< optimizer steps done in total
  bool stopped_early = false;  ///< stop_after_steps ended the run before its last epoch
  double seconds = 0.0;        ///< wall-clock time of this invocation
  std::string model_dir;       ///< `<out_dir>/model` (written only when the run finished)
};

/// Trains the classifier: AdamW on cross-entropy, the epoch's shuffle from (seed, epoch) and the flips
/// from (seed, step), a progress bar, metrics.jsonl records every log_every steps and after each
/// evaluation, a checkpoint every checkpoint_every steps, at each epoch end and at the end; on completion
/// the model goes to `<out_dir>/model/` (config.json + model.safetensors) and the per-class test accuracy
/// into metrics.jsonl. With resume, the run continues from the checkpoint and ends with exactly the weights
/// of an uninterrupted run (on the same machine and thread count). Without resume, a run folder that
/// already has a checkpoint is refused.
ClassifierTrainResult train_classifier(const ClassifierTrainConfig& config);

}  // namespace draft
