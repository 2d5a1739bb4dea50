// The classifier's training run: config I/O, evaluation, and the AdamW loop with checkpoints and resume.
#include "pretrain/classifier_training.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>

#include <torch/torch.h>

#include "data/augmentation.h"
#include "data/image_folder.h"
#include "pretrain/recipe_run.h"
#include "train/lr_schedule.h"
#include "util/error.h"
#include "util/log.h"
#include "util/progress.h"
#include "util/seeds.h"

namespace draft {
namespace {

nlohmann::json per_class_json(const ClassifierEvaluation& e, const std::vector<std::string>& labels) {
  nlohmann::json j = nlohmann::json::object();
  for (std::size_t i = 0; i < e.per_class_accuracy.size(); ++i) {
    const std::string name = i < labels.size() ? labels[i] : std::to_string(i);
    j[name] = std::isnan(e.per_class_accuracy[i]) ? nlohmann::json() : nlohmann::json(e.per_class_accuracy[i]);
  }
  return j;
}

// The classifier's input and output must match the dataset's images and classes.
void check_model_fits_data(const FashionClassifierConfig& m, const ImageDataset& data, const std::string& dir) {
  DRAFT_CHECK(m.in_channels == data.images.size(1), "model.in_channels is ", m.in_channels, " but the images in ",
              dir, " have ", data.images.size(1), " channel(s)");
  DRAFT_CHECK(m.image_size == data.images.size(2) && m.image_size == data.images.size(3), "model.image_size is ",
              m.image_size, " but the images in ", dir, " are ", data.images.size(3), "x", data.images.size(2));
  DRAFT_CHECK(m.num_classes == static_cast<int64_t>(data.classes.size()), "model.num_classes is ", m.num_classes,
              " but ", dir, " has ", data.classes.size(), " classes");
}

}  // namespace

const ConfigTable<ClassifierTrainConfig>& classifier_train_config_table() {
  static const ConfigTable<ClassifierTrainConfig> table = [] {
    ConfigTable<ClassifierTrainConfig> t;
    add_run_settings(t);
    t.add("eval_every_epoch", "--eval-every-epoch", "test-set accuracy after each epoch (else only at the end)",
          DRAFT_MEMBER(eval_every_epoch), {}, true);
    t.add("eval_batch_size", "--eval-batch-size", "images per evaluation batch", DRAFT_MEMBER(eval_batch_size),
          check_at_least(1), true);
    t.add_object(
        "model", "the classifier's architecture (FashionClassifierConfig; empty labels: the dataset's class names)",
        [](const ClassifierTrainConfig& c) { return c.model.to_json(); },
        [](ClassifierTrainConfig& c, const nlohmann::json& j) {
          c.model = FashionClassifierConfig::from_json(ConfigJson{j, "model"});
        });
    return t;
  }();
  return table;
}

ClassifierTrainConfig ClassifierTrainConfig::from_json(const ConfigJson& c, const ClassifierTrainConfig& base) {
  ClassifierTrainConfig v = base;
  classifier_train_config_table().read(c.json, c.source, v);
  return v;
}

ClassifierTrainConfig ClassifierTrainConfig::from_json(const ConfigJson& c) {
  return from_json(c, ClassifierTrainConfig());
}

nlohmann::json ClassifierTrainConfig::to_json() const { return classifier_train_config_table().to_json(*this); }

void ClassifierTrainConfig::validate() const {
  classifier_train_config_table().validate(*this);
  try {
    model.validate();
  } catch (const Error& e) {
    fail("model.", e.what());
  }
}

ClassifierEvaluation evaluate_classifier(FashionClassifier& model, const ImageDataset& data, int64_t batch_size) {
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  const int64_t classes = model->config().num_classes;
  const c10::Device device = model->fc2->weight.device();
  at::Tensor correct = torch::zeros({classes}, torch::kLong);
  at::Tensor count = torch::zeros({classes}, torch::kLong);
  double loss_sum = 0.0;
  for (int64_t begin = 0; begin < data.size(); begin += batch_size) {
    const int64_t n = std::min(batch_size, data.size() - begin);
    at::Tensor x = data.images.narrow(0, begin, n).to(device);
    at::Tensor y = data.labels.narrow(0, begin, n).to(device);
    at::Tensor logits = model->forward(x);
    loss_sum += torch::nn::functional::cross_entropy(
                    logits, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                    .item<double>();
    at::Tensor hit = logits.argmax(1) == y;
    count += torch::bincount(y, {}, classes).cpu();
    correct += torch::bincount(y.masked_select(hit), {}, classes).cpu();
  }
  model->train(was_training);

  ClassifierEvaluation e;
  e.count = data.size();
  const int64_t total_correct = correct.sum().item<int64_t>();
  e.loss = e.count > 0 ? loss_sum / static_cast<double>(e.count) : 0.0;
  e.accuracy = e.count > 0 ? static_cast<double>(total_correct) / static_cast<double>(e.count) : 0.0;
  for (int64_t c = 0; c < classes; ++c) {
    const int64_t nc = count[c].item<int64_t>();
    e.per_class_count.push_back(nc);
    e.per_class_accuracy.push_back(nc > 0 ? static_cast<double>(correct[c].item<int64_t>()) / static_cast<double>(nc)
                                          : std::numeric_limits<double>::quiet_NaN());
  }
  return e;
}

std::string format_class_accuracy_table(const ClassifierEvaluation& e, const std::vector<std::string>& labels) {
  std::string out = "| class | test images | accuracy |\n|---|---:|---:|\n";
  char line[160];
  for (std::size_t i = 0; i < e.per_class_accuracy.size(); ++i) {
    const std::string name = i < labels.size() ? labels[i] : std::to_string(i);
    if (std::isnan(e.per_class_accuracy[i])) {
      std::snprintf(line, sizeof line, "| %s | %lld | - |\n", name.c_str(),
                    static_cast<long long>(e.per_class_count[i]));
    } else {
      std::snprintf(line, sizeof line, "| %s | %lld | %.2f%% |\n", name.c_str(),
                    static_cast<long long>(e.per_class_count[i]), 100.0 * e.per_class_accuracy[i]);
    }
    out += line;
  }
  std::snprintf(line, sizeof line, "| all | %lld | %.2f%% |\n", static_cast<long long>(e.count), 100.0 * e.accuracy);
  return out + line;
}

namespace {

// One classifier run: its data and model besides what every recipe holds (train_classifier drives it).
struct ClassifierRun : RecipeRun<ClassifierTrainConfig> {
  ImageDataset train, test;
  FashionClassifier model{nullptr};
};

// The data first, so that a wrong --data leaves no empty run folder behind; the model's classes and input
// shape follow it. Then the folder (a changed config refused on resume), the model and the optimizer.
void set_up(ClassifierRun& r) {
  ClassifierTrainConfig& config = r.config;
  config.validate();
  r.train = load_training_images(config.data_dir, "train", config.limit);
  r.test = load_training_images(config.data_dir, "test", config.limit);
  if (config.model.labels.empty()) {
    config.model.labels = r.train.classes;
    config.model.num_classes = static_cast<int64_t>(r.train.classes.size());
  }
  check_model_fits_data(config.model, r.train, config.data_dir);
  DRAFT_CHECK(r.train.size() > 0 && r.test.size() > 0, config.data_dir, ": the train or test split is empty");
  const c10::Device device = r.device();  // checked before the run folder is made
  r.open(classifier_train_config_table());
  torch::manual_seed(config.seed);  // the initial weights; a resumed run replaces them with the checkpoint's
  r.model = FashionClassifier(config.model);  // drawn on the CPU, then moved: the same weights on any device
  r.model->to(device);
  r.model->train();
  r.begin(r.model->parameters(), {{"model.", r.model.ptr().get()}}, r.train.size());
  DRAFT_LOG_INFO("training the classifier on {} images ({} test), {} epochs of {} steps, batch {}", r.train.size(),
                 r.test.size(), config.epochs, r.loop->steps_per_epoch(), config.batch_size);
}

// One AdamW step on the mean cross-entropy of the step's batch (flipped with p = 1/2 when hflip).
void train_step(ClassifierRun& r, IntervalMeans& interval, double& shown_loss, double& shown_acc) {
  const ClassifierTrainConfig& config = r.config;
  const int64_t step = r.loop->step();
  const at::Tensor index = r.loop->batch();
  at::Tensor x = r.train.images.index_select(0, index);
  if (config.hflip) x = random_hflip(x, derive_seed(config.seed, RandomStream::kAugment, step));
  const c10::Device device = r.model->fc2->weight.device();
  x = x.to(device);
  const at::Tensor y = r.train.labels.index_select(0, index).to(device);
  const double lr = scheduled_learning_rate(config.lr, config.lr_schedule, step, r.loop->total_steps());
  set_learning_rate(*r.optimizer, lr);
  r.optimizer->zero_grad();
  const at::Tensor logits = r.model->forward(x);
  const at::Tensor loss = torch::nn::functional::cross_entropy(logits, y);
  loss.backward();
  r.optimizer->step();
  r.loop->advance();

  // The bar shows moving averages, metrics.jsonl the mean over each log interval.
  const double loss_value = loss.item<double>();
  const double batch_acc = (logits.argmax(1) == y).to(torch::kDouble).mean().item<double>();
  shown_loss = std::isnan(shown_loss) ? loss_value : 0.95 * shown_loss + 0.05 * loss_value;
  shown_acc = std::isnan(shown_acc) ? batch_acc : 0.95 * shown_acc + 0.05 * batch_acc;
  interval.add("loss", loss_value);
  interval.add("accuracy", batch_acc);
  r.log_train(lr, interval);
}

ClassifierEvaluation evaluate_and_log(ClassifierRun& r) {
  const ClassifierEvaluation e = evaluate_classifier(r.model, r.test, r.config.eval_batch_size);
  r.run->log({{"event", "eval"}, {"step", r.loop->step()}, {"epoch", r.loop->epoch_progress()}, {"split", "test"},
              {"loss", e.loss}, {"accuracy", e.accuracy}, {"per_class_accuracy", per_class_json(e, r.config.model.labels)}});
  return e;
}

}  // namespace

ClassifierTrainResult train_classifier(const ClassifierTrainConfig& config_in) {
  ClassifierRun r;
  r.config = config_in;
  set_up(r);
  ProgressBar bar(r.loop->total_steps(), "classifier");
  if (r.loop->step() > 0) bar.update(r.loop->step());
  double shown_loss = std::nan(""), shown_acc = std::nan("");
  IntervalMeans interval;
  ClassifierEvaluation last_eval;
  int64_t last_eval_step = -1;
  while (r.loop->running()) {
    train_step(r, interval, shown_loss, shown_acc);
    bar.update(r.loop->step(), {{"loss", shown_loss}, {"acc", shown_acc}});
    // Evaluation at epoch ends, then a checkpoint (so a resumed run never repeats an evaluation).
    if (r.loop->epoch_end() && (r.config.eval_every_epoch || r.loop->finished())) {
      last_eval = evaluate_and_log(r);
      last_eval_step = r.loop->step();
      DRAFT_LOG_INFO("epoch {}: test accuracy {:.2f}%", r.loop->progress().epoch, 100.0 * last_eval.accuracy);
    }
    r.save_if_due();
  }
  bar.finish();

  ClassifierTrainResult result;
  result.labels = r.config.model.labels;
  result.steps = r.loop->step();
  result.stopped_early = r.loop->stopped();
  if (result.stopped_early) {
    DRAFT_LOG_INFO("stopped at step {} of {}; continue with --resume", result.steps, r.loop->total_steps());
  } else {
    if (last_eval_step != result.steps) last_eval = evaluate_and_log(r);
    result.model_dir = r.run->folder().file("model");
    save_fashion_classifier(result.model_dir, r.model);
    result.test = last_eval;
    result.test_accuracy = last_eval.accuracy;
    r.run->log({{"event", "final"}, {"step", result.steps}, {"test_accuracy", last_eval.accuracy},
                {"per_class_accuracy", per_class_json(last_eval, result.labels)}, {"model", result.model_dir}});
  }
  result.seconds = r.elapsed();
  return result;
}

}  // namespace draft
