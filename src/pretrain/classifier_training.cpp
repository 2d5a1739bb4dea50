// The classifier's training run: config I/O, evaluation, and the AdamW loop with checkpoints and resume.
#include "pretrain/classifier_training.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <set>

#include <torch/torch.h>

#include "pretrain/data_order.h"
#include "pretrain/image_folder.h"
#include "pretrain/run_folder.h"
#include "pretrain/run_settings.h"
#include "pretrain/training_schedule.h"
#include "util/error.h"
#include "util/log.h"
#include "util/progress.h"

namespace draft {
namespace {

// The settings a checkpoint's weights and optimizer state depend on must not change when resuming.
std::vector<std::string> resume_keys(const nlohmann::json& now) {
  std::vector<std::string> keys = {"batch_size", "lr", "weight_decay", "lr_schedule", "seed", "limit", "hflip", "model"};
  if (now.at("lr_schedule") == "cosine") keys.push_back("epochs");  // the schedule spans all epochs
  return keys;
}

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

ClassifierTrainConfig ClassifierTrainConfig::from_json(const ConfigJson& c, const ClassifierTrainConfig& base) {
  std::set<std::string> known = run_setting_keys();
  known.insert({"eval_every_epoch", "eval_batch_size", "model"});
  check_known_keys(c, known);
  ClassifierTrainConfig v = base;
  read_run_settings(c, v);
  v.eval_every_epoch = c.get<bool>("eval_every_epoch", v.eval_every_epoch);
  v.eval_batch_size = c.get<int64_t>("eval_batch_size", v.eval_batch_size);
  if (c.has("model")) {
    v.model = FashionClassifierConfig::from_json(ConfigJson{c.json.at("model"), c.source + " (model)"});
  }
  return v;
}

ClassifierTrainConfig ClassifierTrainConfig::from_json(const ConfigJson& c) {
  return from_json(c, ClassifierTrainConfig());
}

nlohmann::json ClassifierTrainConfig::to_json() const {
  nlohmann::json j = write_run_settings(*this);
  j["eval_every_epoch"] = eval_every_epoch;
  j["eval_batch_size"] = eval_batch_size;
  j["model"] = model.to_json();
  return j;
}

void ClassifierTrainConfig::validate() const {
  validate_run_settings(*this);
  DRAFT_CHECK(eval_batch_size > 0, "eval_batch_size must be positive (got ", eval_batch_size, ")");
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

ClassifierTrainResult train_classifier(const ClassifierTrainConfig& config_in) {
  const auto started = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(); };
  ClassifierTrainConfig config = config_in;
  config.validate();

  // The data first, so that a wrong --data leaves no empty run folder behind; the model's classes and
  // input shape follow it.
  const ImageDataset train = load_training_images(config.data_dir, "train", config.limit);
  const ImageDataset test = load_training_images(config.data_dir, "test", config.limit);
  if (config.model.labels.empty()) {
    config.model.labels = train.classes;
    config.model.num_classes = static_cast<int64_t>(train.classes.size());
  }
  check_model_fits_data(config.model, train, config.data_dir);
  const nlohmann::json resolved = config.to_json();
  const auto& labels = config.model.labels;
  const int64_t n = train.size();
  DRAFT_CHECK(n > 0 && test.size() > 0, config.data_dir, ": the train or test split is empty");

  RunFolder run(config.out_dir);
  DRAFT_CHECK(config.resume || !run.has_checkpoint(), run.checkpoint_path(),
              " exists: pass --resume to continue that run, or choose another run folder");
  const bool resuming = config.resume && run.has_checkpoint();
  if (config.resume && !resuming) DRAFT_LOG_INFO("{}: no checkpoint yet, starting a new run", run.dir());
  const int64_t steps_per_epoch = (n + config.batch_size - 1) / config.batch_size;
  const int64_t total_steps = steps_per_epoch * config.epochs;

  torch::manual_seed(config.seed);  // the initial weights; a resumed run replaces them with the checkpoint's
  FashionClassifier model(config.model);
  model->train();
  torch::optim::AdamW optimizer(model->parameters(),
                                torch::optim::AdamWOptions(config.lr).weight_decay(config.weight_decay));
  const std::vector<CheckpointModule> modules = {{"model.", model.ptr().get()}};

  int64_t step = 0;
  if (resuming) {
    const CheckpointInfo info = read_checkpoint_info(run.checkpoint_path());
    check_resumable(info.config, resolved, resume_keys(resolved), run.dir(), run.checkpoint_path());
    load_checkpoint(run.checkpoint_path(), modules, &optimizer);
    step = info.progress.step;
    DRAFT_CHECK(step <= total_steps, run.checkpoint_path(), " is at step ", step, ", beyond the run's ", total_steps);
    run.truncate_metrics_after(step);  // records logged after the checkpoint are logged again
    DRAFT_LOG_INFO("resuming {} at step {} of {}", run.dir(), step, total_steps);
  } else {
    std::filesystem::remove(run.metrics_path());  // left by a run that died before its first checkpoint
  }
  run.write_config(resolved);
  DRAFT_LOG_INFO("training the classifier on {} images ({} test), {} epochs of {} steps, batch {}", n, test.size(),
                 config.epochs, steps_per_epoch, config.batch_size);

  ProgressBar bar(total_steps, "classifier");
  if (step > 0) bar.update(step);
  at::Tensor order;
  int64_t order_epoch = -1;
  double interval_loss = 0.0, shown_loss = std::nan(""), shown_acc = std::nan("");
  int64_t interval_correct = 0, interval_count = 0, interval_steps = 0, steps_this_run = 0;
  ClassifierEvaluation last_eval;
  int64_t last_eval_step = -1;
  bool stopped = false;
  auto log_eval = [&](const ClassifierEvaluation& e) {
    run.append_metrics({{"event", "eval"}, {"step", step}, {"epoch", double(step) / double(steps_per_epoch)},
                        {"split", "test"}, {"loss", e.loss}, {"accuracy", e.accuracy},
                        {"per_class_accuracy", per_class_json(e, labels)}});
  };

  while (step < total_steps && !stopped) {
    // 1. The batch: this epoch's permutation of the training set, sliced at this step.
    const int64_t epoch = step / steps_per_epoch;
    if (epoch != order_epoch) {
      order = epoch_permutation(n, config.seed, epoch);
      order_epoch = epoch;
    }
    const int64_t begin = (step % steps_per_epoch) * config.batch_size;
    const at::Tensor index = order.narrow(0, begin, std::min(config.batch_size, n - begin));
    at::Tensor x = train.images.index_select(0, index);
    const at::Tensor y = train.labels.index_select(0, index);
    if (config.hflip) {
      x = random_hflip(x, derive_seed(config.seed, RandomStream::kAugment, static_cast<uint64_t>(step)));
    }

    // 2. One AdamW step on the mean cross-entropy at this step's learning rate.
    const double lr = scheduled_learning_rate(config.lr, config.lr_schedule, step, total_steps);
    set_learning_rate(optimizer, lr);
    optimizer.zero_grad();
    const at::Tensor logits = model->forward(x);
    const at::Tensor loss = torch::nn::functional::cross_entropy(logits, y);
    loss.backward();
    optimizer.step();
    ++step;
    ++steps_this_run;

    // 3. Metrics: the bar shows moving averages, metrics.jsonl the mean over each log interval.
    const double loss_value = loss.item<double>();
    const int64_t hits = (logits.argmax(1) == y).sum().item<int64_t>();
    const double batch_acc = static_cast<double>(hits) / static_cast<double>(y.size(0));
    shown_loss = std::isnan(shown_loss) ? loss_value : 0.95 * shown_loss + 0.05 * loss_value;
    shown_acc = std::isnan(shown_acc) ? batch_acc : 0.95 * shown_acc + 0.05 * batch_acc;
    interval_loss += loss_value;
    interval_correct += hits;
    interval_count += y.size(0);
    ++interval_steps;
    bar.update(step, {{"loss", shown_loss}, {"acc", shown_acc}});
    const bool epoch_end = step % steps_per_epoch == 0;
    if (step % config.log_every == 0 || epoch_end) {
      run.append_metrics({{"event", "train"}, {"step", step}, {"epoch", double(step) / double(steps_per_epoch)},
                          {"loss", interval_loss / double(interval_steps)},
                          {"accuracy", double(interval_correct) / double(interval_count)}, {"lr", lr},
                          {"elapsed_s", elapsed()}});
      interval_loss = 0.0;
      interval_correct = interval_count = interval_steps = 0;
    }

    // 4. Evaluation at epoch ends, then a checkpoint (so a resumed run never repeats an evaluation).
    if (epoch_end && (config.eval_every_epoch || step == total_steps)) {
      last_eval = evaluate_classifier(model, test, config.eval_batch_size);
      last_eval_step = step;
      log_eval(last_eval);
      DRAFT_LOG_INFO("epoch {}: test accuracy {:.2f}%", step / steps_per_epoch, 100.0 * last_eval.accuracy);
    }
    stopped = config.stop_after_steps > 0 && steps_this_run >= config.stop_after_steps && step < total_steps;
    if (epoch_end || stopped || step == total_steps ||
        (config.checkpoint_every > 0 && step % config.checkpoint_every == 0)) {
      save_checkpoint(run.checkpoint_path(), modules, &optimizer, {step, step / steps_per_epoch, config.seed},
                      resolved);
    }
  }
  bar.finish();

  ClassifierTrainResult result;
  result.labels = labels;
  result.steps = step;
  result.stopped_early = stopped;
  if (stopped) {
    DRAFT_LOG_INFO("stopped at step {} of {}; continue with --resume", step, total_steps);
  } else {
    if (last_eval_step != step) {
      last_eval = evaluate_classifier(model, test, config.eval_batch_size);
      log_eval(last_eval);
    }
    result.model_dir = run.file("model");
    save_fashion_classifier(result.model_dir, model);
    result.test = last_eval;
    result.test_accuracy = last_eval.accuracy;
    run.append_metrics({{"event", "final"}, {"step", step}, {"test_accuracy", last_eval.accuracy},
                        {"per_class_accuracy", per_class_json(last_eval, labels)}, {"model", result.model_dir}});
  }
  result.seconds = elapsed();
  return result;
}

}  // namespace draft
