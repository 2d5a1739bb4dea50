// Starting and resuming runs.
#include "train/resumable_run.h"

#include <filesystem>
#include <map>
#include <set>

#include <ATen/Parallel.h>
#include <fmt/format.h>

#include "io/png.h"
#include "train/tensorboard_writer.h"
#include "util/error.h"
#include "util/log.h"
#include "util/threads.h"

namespace draft {
namespace {

// Leaves of nested objects by dotted path.
void flatten(const nlohmann::json& j, const std::string& prefix, std::map<std::string, nlohmann::json>& out) {
  if (j.is_object() && !j.empty()) {
    for (const auto& item : j.items()) flatten(item.value(), prefix.empty() ? item.key() : prefix + "." + item.key(), out);
    return;
  }
  out[prefix] = j;
}

bool allowed(const std::string& path, const std::vector<std::string>& may_change) {
  for (const auto& p : may_change) {
    if (path == p || path.rfind(p + ".", 0) == 0) return true;
  }
  return false;
}

// Sums split over another number of threads round differently: the resumed run is then a valid run, but not
// the bit-identical continuation a resume with the same counts gives (docs/cli.md#resuming-a-run).
void warn_on_other_threads(const CheckpointInfo& info) {
  const int threads = at::get_num_threads();
  const int blas = openblas_threads();
  if (info.threads == 0 || (info.threads == threads && info.blas_threads == blas)) return;
  DRAFT_LOG_WARN(
      "--resume: the checkpoint was written with {} LibTorch thread(s) (OpenBLAS {}) and this process has {} "
      "(OpenBLAS {}): the run continues, but its numbers will differ in the last bits from an uninterrupted run. "
      "For a bit-identical continuation pass --threads {}{}",
      info.threads, info.blas_threads, threads, blas, info.threads,
      info.blas_threads > 0 ? fmt::format(" --blas-threads {}", info.blas_threads) : std::string());
}

// The keys of a metrics record that are not scalars of their own: the step, the record's kind, the epoch.
bool bookkeeping_key(const std::string& key) {
  return key == "step" || key == "kind" || key == "event" || key == "epoch";
}

// "train", "eval", "final": a record's "kind" (fine-tuning) or "event" (pretraining); a fine-tuning step's
// record has neither.
std::string record_kind(const nlohmann::json& record) {
  for (const char* key : {"kind", "event"}) {
    if (record.contains(key) && record.at(key).is_string()) return record.at(key).get<std::string>();
  }
  return "train";
}

// The config as the text dashboard shows it: pretty JSON in a Markdown code block.
std::string config_text(const nlohmann::json& config) { return "```json\n" + config.dump(2) + "\n```"; }

}  // namespace

std::vector<std::string> changed_settings(const nlohmann::json& saved, const nlohmann::json& now,
                                          const std::vector<std::string>& may_change) {
  std::map<std::string, nlohmann::json> was, is;
  flatten(saved, "", was);
  flatten(now, "", is);
  std::set<std::string> paths;
  for (const auto& [path, value] : was) paths.insert(path);
  for (const auto& [path, value] : is) paths.insert(path);
  std::vector<std::string> changes;
  for (const auto& path : paths) {
    const nlohmann::json a = was.count(path) ? was.at(path) : nlohmann::json();
    const nlohmann::json b = is.count(path) ? is.at(path) : nlohmann::json();
    if (a == b || allowed(path, may_change)) continue;
    changes.push_back(path + ": " + a.dump() + " -> " + b.dump());
  }
  return changes;
}

ResumableRun::ResumableRun(const std::string& dir, bool resume, bool writer)
    : folder_(dir, writer), writer_(writer) {
  resuming_ = resume && folder_.has_checkpoint();
  if (!writer_) return;
  lock_.emplace(folder_.dir());
  remove_partial_files(folder_.dir());
  if (!resume) {
    DRAFT_CHECK(!folder_.has_checkpoint() && !folder_.has_metrics(), folder_.dir(),
                " already holds a run (", folder_.has_checkpoint() ? "checkpoint.safetensors" : "metrics.jsonl",
                "): continue it with --resume, or choose another run folder");
  } else if (!resuming_) {
    DRAFT_LOG_INFO("{}: no checkpoint yet, starting a new run", folder_.dir());
  }
}

ResumableRun::~ResumableRun() = default;

void ResumableRun::start(const nlohmann::json& config, const std::vector<std::string>& may_change, bool tensorboard) {
  DRAFT_CHECK(!started_, folder_.dir(), ": the run was started twice");
  started_ = true;
  config_ = config;
  int64_t first_step = 0;  // the first step this process logs
  if (resuming_) {
    const CheckpointInfo info = read_checkpoint_info(folder_.checkpoint_path());
    first_step = info.progress.step + 1;
    const std::vector<std::string> changes = changed_settings(info.config, config_, may_change);
    if (!changes.empty()) {
      std::string list, allowed_list;
      for (const auto& c : changes) list += (list.empty() ? " " : "; ") + c;
      for (const auto& p : may_change) allowed_list += (allowed_list.empty() ? "" : ", ") + p;
      fail("--resume: ", folder_.checkpoint_path(), " was written with other settings (saved -> now):", list,
           ". Resume with the run's settings (", folder_.config_path(), ") or start a new run folder; a resumed run "
           "may change only ", allowed_list.empty() ? "nothing" : allowed_list);
    }
    warn_on_other_threads(info);
  }
  if (!writer_) return;
  if (!resuming_ && folder_.has_metrics()) {
    std::filesystem::remove(folder_.metrics_path());  // from a run that stopped before its first checkpoint
  }
  if (!resuming_) {
    for (const auto& file : tensorboard_event_files(folder_.file("tensorboard"))) std::filesystem::remove(file);
  }
  folder_.write_config(config_);
  if (!tensorboard) return;
  tensorboard_ = std::make_unique<TensorBoardWriter>(folder_.file("tensorboard"));
  if (resuming_) tensorboard_->add_session_start(first_step);
  tensorboard_->add_text("config", config_text(config_), first_step);
}

void ResumableRun::log(const nlohmann::json& record) const {
  if (!writer_) return;
  folder_.append_metrics(record);
  if (!tensorboard_ || !record.contains("step") || !record.at("step").is_number_integer()) return;
  const int64_t step = record.at("step").get<int64_t>();
  const std::string kind = record_kind(record);
  std::vector<std::pair<std::string, double>> scalars;
  for (const auto& [key, value] : record.items()) {
    if (bookkeeping_key(key)) continue;
    if (value.is_number()) scalars.emplace_back(kind + "/" + key, value.get<double>());
    if (value.is_boolean()) scalars.emplace_back(kind + "/" + key, value.get<bool>() ? 1.0 : 0.0);
  }
  if (!scalars.empty()) tensorboard_->add_scalars(scalars, step);
}

void ResumableRun::log_image(const std::string& tag, const at::Tensor& image, int64_t step) const {
  if (!writer_ || !tensorboard_) return;
  const at::Tensor chw = image.dim() == 2 ? image.unsqueeze(0) : image;
  const std::string png = encode_png(chw, tensorboard_->path() + " (image '" + tag + "')");
  tensorboard_->add_image(tag, png, chw.size(1), chw.size(2), chw.size(0), step);
}

TrainingProgress ResumableRun::restore(const std::vector<CheckpointModule>& modules,
                                       torch::optim::AdamW* optimizer) const {
  DRAFT_CHECK(resuming_ && started_, folder_.dir(), ": nothing to restore (not resuming, or start() not called)");
  const CheckpointInfo info = load_checkpoint(folder_.checkpoint_path(), modules, optimizer);
  if (writer_) folder_.truncate_metrics_after(info.progress.step);
  return info.progress;
}

void ResumableRun::save(const std::vector<CheckpointModule>& modules, const torch::optim::AdamW* optimizer,
                        const TrainingProgress& progress) const {
  if (!writer_) return;
  try {
    save_checkpoint(folder_.checkpoint_path(), modules, optimizer, progress, config_);
  } catch (const Error& e) {
    if (!folder_.has_checkpoint()) {
      fail(e.what(), "; the run stopped at step ", progress.step, ", before its first checkpoint");
    }
    const int64_t kept = read_checkpoint_info(folder_.checkpoint_path()).progress.step;
    fail(e.what(), "; the run stopped at step ", progress.step, " and its checkpoint of step ", kept,
         " is intact: free space (or fix the cause), then continue from it with --resume");
  }
}

}  // namespace draft
