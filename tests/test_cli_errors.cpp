// Bad command lines as a new user types them: missing, unreadable and wrong-kind files, zero, negative and
// absurd numbers, unknown names, bad prompt files, pickle weights, outputs nobody can write. Each row of one
// table runs `draft` in a fresh empty folder and must end with its exit code (1 or 2; never 0, never a
// signal), one error line on stderr that names what is wrong (log lines may precede it, a stack trace may
// not), within seconds (every check comes before the work), and with nothing written outside that folder.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "cli_runner.h"
#include "support.h"

namespace {
namespace fs = std::filesystem;
using draft::test::slurp;
using draft::test::TempDir;

struct BadCall {
  const char* name;
  std::vector<std::string> args;  ///< after `draft`; {placeholders} are filled in by Places
  int code;                       ///< 1: a failure (missing file, bad value in a file); 2: bad usage
  const char* says;               ///< a part of the error line (placeholders allowed)
};

// Heavy settings for the rows whose check must come before the work: without it they run for minutes
// and hit the row deadline instead of passing.
#define DRAFT_HEAVY_SAMPLE "--n", "256", "--steps", "200"

// clang-format off
const std::vector<BadCall> kBadCalls = {
    // Missing files and folders.
    {"info_missing_file", {"info", "missing.safetensors"}, 1, "missing.safetensors: cannot open: No such file"},
    {"sample_missing_model", {"sample", "--model", "no-model", "--prompt", "a coat"}, 1, "no-model: no such model folder"},
    {"sample_missing_prompts_file", {"sample", "--model", "{model}", "--prompts", "missing.txt"}, 1,
     "missing.txt: cannot open the prompts file: No such file"},
    {"sample_missing_lora", {"sample", "--model", "{model}", "--prompt", "a coat", "--lora", "missing.safetensors"}, 1,
     "LoRA file missing.safetensors does not exist"},
    {"score_missing_image", {"score", "--reward", "jpeg", "missing.png"}, 2, "File does not exist: missing.png"},
    {"finetune_missing_config", {"finetune", "--config", "missing.json"}, 2, "--config: File does not exist: missing.json"},
    {"plot_missing_run", {"plot", "no-run"}, 1, "no-run/metrics.jsonl: cannot open the run's metrics"},
    {"report_missing_run", {"report", "no-run"}, 1, "no-run: no such folder"},
    {"report_not_a_run", {"report", "{fx}"}, 1, "{fx} is not a run folder: it has no metrics.jsonl"},
    {"finetune_missing_classifier", {"finetune", "--model", "{model}", "--reward", "classifier:model=no-classifier",
     "--prompt", "a coat"}, 1, "no-classifier"},
    // Files that exist but cannot be read.
    {"sample_unreadable_prompts", {"sample", "--model", "{model}", "--prompts", "{unreadable}"}, 1,
     "{unreadable}: cannot open the prompts file: Permission denied"},
    {"finetune_unreadable_config", {"finetune", "--config", "{unreadable}"}, 1, "{unreadable}: cannot open: Permission denied"},
    // A folder where a file belongs.
    {"info_folder", {"info", "{fx}"}, 1, "{fx}: is a folder; a .safetensors file is expected"},
    {"sample_prompts_folder", {"sample", "--model", "{model}", "--prompts", "{fx}"}, 1, "{fx}: is a folder, not a prompts file"},
    {"finetune_config_folder", {"finetune", "--config", "{fx}"}, 2, "File is actually a directory: {fx}"},
    {"sample_output_folder", {"sample", "--model", "{model}", "--prompt", "a coat", DRAFT_HEAVY_SAMPLE, "-o", "{fx}"}, 1,
     "-o {fx}: is a folder"},
    // Zero and negative counts.
    {"score_not_a_png", {"score", "--reward", "jpeg", "{fx}/prompts.txt"}, 1,
     "{fx}/prompts.txt: cannot read PNG: not a PNG file"},
    {"sample_steps_past_the_schedule", {"sample", "--model", "{model}", "--prompt", "a coat", "--steps", "5000"}, 1,
     "the number of sampling steps (--steps, sampler.steps) must be in [1, 1000]"},
    {"sample_n_zero", {"sample", "--model", "{model}", "--prompt", "a coat", "--n", "0"}, 2, "--n: must be at least 1, got 0"},
    {"sample_steps_negative", {"sample", "--model", "{model}", "--prompt", "a coat", "--steps", "-5"}, 2,
     "--steps: must be at least 1, got -5"},
    {"eval_batch_size_zero", {"eval", "--model", "{model}", "--reward", "jpeg", "--prompt", "a coat", "--batch-size", "0"}, 2,
     "--batch-size: must be at least 1, got 0"},
    {"probe_trajectories_zero", {"probe", "--model", "{model}", "--reward", "jpeg-proxy", "--trajectories", "0"}, 2,
     "--trajectories: must be at least 1, got 0"},
    {"finetune_steps_zero", {"finetune", "--model", "{model}", "--reward", "{classifier}", "--prompt", "a coat", "--steps", "0"},
     1, "train.steps must be >= 1, got 0 (--steps)"},
    {"finetune_batch_size_negative", {"finetune", "--model", "{model}", "--reward", "jpeg-proxy:-1", "--prompt", "a coat",
     "--batch-size", "-2"}, 1, "train.batch_size must be >= 1, got -2 (--batch-size)"},
    {"pretrain_batch_size_zero", {"pretrain", "classifier", "--batch-size", "0", "--run-dir", "run"}, 1,
     "batch_size must be >= 1, got 0 (--batch-size)"},
    {"pretrain_device_unknown", {"pretrain", "vae", "--device", "gpu", "--limit", "64", "--run-dir", "run"}, 1,
     "unknown device 'gpu': use cpu, cuda or cuda:N"},
    {"threads_negative", {"--threads", "-3", "doctor"}, 2, "--threads: must be at least 0, got -3"},
    {"eta_negative", {"eval", "--model", "{model}", "--reward", "jpeg", "--prompt", "a coat", "--eta", "-0.5"}, 2,
     "--eta: must be between 0 and 1, got -0.5"},
    {"report_diversity_warning_above_one", {"report", "{fx}/run", "--diversity-warning", "1.5"}, 2,
     "--diversity-warning: must be between 0 and 1, got 1.5"},
    // Absurdly large values.
    {"sample_n_overflow", {"sample", "--model", "{model}", "--prompt", "a coat", "--n", "99999999999999999999"}, 2,
     "--n: must be at most 1000000, got 99999999999999999999"},
    {"sample_height_huge", {"sample", "--model", "{model}", "--prompt", "a coat", "--height", "100000"}, 2,
     "--height: must be at most 8192, got 100000"},
    {"sample_steps_above_schedule", {"sample", "--model", "{model}", "--prompt", "a coat", "--steps", "5000"}, 1,
     "got 5000"},
    {"threads_huge", {"--threads", "100000", "doctor"}, 2, "--threads: must be at most 1024, got 100000"},
    {"finetune_steps_overflow", {"finetune", "--model", "{model}", "--reward", "jpeg-proxy:-1", "--prompt", "a coat",
     "--steps", "99999999999999999999"}, 2, "--steps: must be at most 9223372036854775807"},
    {"finetune_k_above_steps", {"finetune", "--model", "{model}", "--reward", "jpeg-proxy:-1", "--prompt", "a coat",
     "--method", "draft-k", "--k", "1000", "--sampling-steps", "10"}, 1, "method.k"},
    // Unknown names.
    {"finetune_unknown_method", {"finetune", "--model", "{model}", "--reward", "{classifier}", "--prompt", "a coat",
     "--method", "dpo"}, 1, "got 'dpo' (--method)"},
    {"finetune_unknown_reward", {"finetune", "--model", "{model}", "--reward", "aesthetics", "--prompt", "a coat"}, 1,
     "unknown reward 'aesthetics'"},
    {"score_unknown_reward", {"score", "--reward", "aesthetics", "{fx}/prompts.txt"}, 1, "unknown reward 'aesthetics'; available: "},
    {"sample_unknown_dtype", {"sample", "--model", "{model}", "--prompt", "a coat", "--dtype", "f8"}, 1, "unknown dtype 'f8'"},
    {"lora_unknown_format", {"lora", "convert", "--model", "{model}", "--lora", "x", "--out", "y", "--lora-format", "lycoris"},
     2, "--lora-format: lycoris not in"},
    {"config_unknown_name", {"config", "finetuning"}, 1, "'finetuning' is not a config"},
    {"unknown_command", {"frobnicate"}, 2, "frobnicate"},
    // Empty and non-UTF-8 prompts.
    {"sample_empty_prompts", {"sample", "--model", "{model}", "--prompts", "{fx}/empty.txt"}, 1,
     "{fx}/empty.txt: the prompts file has no non-empty line"},
    {"sample_latin1_prompts", {"sample", "--model", "{model}", "--prompts", "{fx}/latin1.txt"}, 1,
     "{fx}/latin1.txt: line 2 is not valid UTF-8 (byte 4 of the line)"},
    {"finetune_latin1_prompts", {"finetune", "--model", "{model}", "--reward", "jpeg-proxy:-1", "--prompts", "{fx}/latin1.txt"},
     1, "{fx}/latin1.txt: line 2 is not valid UTF-8"},
    {"sample_latin1_prompt_flag", {"sample", "--model", "{model}", "--prompt", "caf\xe9"}, 1, "--prompt: the text is not valid UTF-8"},
    // Pickle weights.
    {"sample_pickle_model", {"sample", "--model", "{pickle}", "--prompt", "a coat"}, 1, "pickle checkpoints are never read"},
    {"lora_merge_pickle_model", {"lora", "merge", "--model", "{pickle}", "--lora", "x.safetensors", "--out", "merged"}, 1,
     "pickle checkpoints are never read"},
    {"info_pickle_file", {"info", "{fx}/model.ckpt"}, 1, "it looks like a PyTorch pickle checkpoint"},
    {"sample_pickle_lora", {"sample", "--model", "{model}", "--prompt", "a coat", "--lora", "{fx}/lora.bin"}, 1,
     "it looks like a PyTorch torch.save zip checkpoint"},
    // Outputs in a missing or read-only folder, checked before the work.
    {"sample_output_missing_folder", {"sample", "--model", "{model}", "--prompt", "a coat", DRAFT_HEAVY_SAMPLE, "-o",
     "/missing-dir/a.png"}, 1, "-o /missing-dir/a.png: the folder /missing-dir does not exist"},
    {"sample_output_read_only", {"sample", "--model", "{model}", "--prompt", "a coat", DRAFT_HEAVY_SAMPLE, "-o", "{ro}/a.png"},
     1, "-o {ro}/a.png: cannot write into {ro}"},
    {"sample_save_tensor_missing_folder", {"sample", "--model", "{model}", "--prompt", "a coat", DRAFT_HEAVY_SAMPLE,
     "--save-tensor", "missing/x.safetensors"}, 1, "--save-tensor missing/x.safetensors: the folder missing does not exist"},
    {"eval_json_file_missing_folder", {"eval", "--model", "{model}", "--reward", "jpeg", "--prompt", "a coat", DRAFT_HEAVY_SAMPLE,
     "--json-file", "missing/e.json"}, 1, "--json-file missing/e.json: the folder missing does not exist"},
    {"probe_plot_missing_folder", {"probe", "--model", "{model}", "--reward", "jpeg-proxy", "--plot", "missing/p.svg"}, 1,
     "--plot missing/p.svg: the folder missing does not exist"},
    {"plot_output_read_only", {"plot", "{fx}/run", "-o", "{ro}/r.svg"}, 1, "-o {ro}/r.svg: cannot write into {ro}"},
    {"report_output_missing_folder", {"report", "{fx}/run", "-o", "missing/r.html"}, 1,
     "-o missing/r.html: the folder missing does not exist"},
    {"finetune_run_dir_read_only", {"finetune", "--model", "{model}", "--reward", "{classifier}", "--prompt", "a coat",
     "--run-dir", "{ro}/run"}, 1, "--run-dir {ro}/run: cannot write into {ro}"},
    {"finetune_run_dir_under_file", {"finetune", "--model", "{model}", "--reward", "jpeg-proxy:-1", "--prompt", "a coat",
     "--run-dir", "{fx}/prompts.txt/run"}, 1, "{fx}/prompts.txt is a file, not a folder"},
    {"pretrain_run_dir_read_only", {"pretrain", "vae", "--out", "{ro}/vae"}, 1, "--run-dir {ro}/vae: cannot write into {ro}"},
    {"lora_convert_out_missing_folder", {"lora", "convert", "--model", "{model}", "--lora", "x.safetensors", "--out",
     "missing/l.safetensors"}, 1, "--out missing/l.safetensors: the folder missing does not exist"},
    {"bench_out_read_only", {"bench", "efficiency", "--config", "{configs}/bench-efficiency.json", "--out", "{ro}/bench"}, 1,
     "--out {ro}/bench: cannot write into {ro}"},
};
// clang-format on

/// What one run of `draft` did.
struct Outcome {
  int code = -1;    ///< exit code, or -1
  int signal = 0;   ///< the signal that ended it, or 0
  bool timed_out = false;
  double seconds = 0;
  std::string out;
  std::string err;
};

/// A row's deadline: its checks come before any work, so seconds suffice even on a loaded machine; a
/// row that does the work first (minutes, see DRAFT_HEAVY_SAMPLE) runs into it.
constexpr double kDeadlineSeconds = 60;

/// `draft ARGS` in the folder `cwd`, stdout and stderr into `log_dir`; not waited for.
pid_t start_draft(const std::vector<std::string>& args, const std::string& cwd, const std::string& log_dir) {
  std::vector<std::string> argv = {DRAFT_CLI_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> argp;
  for (auto& a : argv) argp.push_back(a.data());
  argp.push_back(nullptr);
  const std::string out = log_dir + "/out";
  const std::string err = log_dir + "/err";
  const pid_t pid = fork();
  if (pid == 0) {
    // In the child only async-signal-safe calls until exec.
    const int out_fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err_fd = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out_fd < 0 || err_fd < 0 || chdir(cwd.c_str()) != 0) _exit(125);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    execv(argp[0], argp.data());
    _exit(126);
  }
  return pid;
}

/// Waits for `pid` until the deadline, then kills it.
Outcome finish(pid_t pid, std::chrono::steady_clock::time_point start, const std::string& log_dir) {
  Outcome o;
  const auto deadline = start + std::chrono::duration<double>(kDeadlineSeconds);
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      o.timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!o.timed_out && WIFEXITED(status)) o.code = WEXITSTATUS(status);
  if (!o.timed_out && WIFSIGNALED(status)) o.signal = WTERMSIG(status);
  o.out = slurp(log_dir + "/out");
  o.err = slurp(log_dir + "/err");
  return o;
}

/// Every path under `root` with its size (folders as "/"), sorted: what a row may not change.
std::vector<std::string> listing(const std::string& root) {
  std::vector<std::string> entries;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
       !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    std::error_code size_ec;
    const std::string size = it->is_directory(size_ec) ? "/" : " " + std::to_string(it->file_size(size_ec));
    entries.push_back(p.lexically_relative(root).string() + size);
  }
  std::sort(entries.begin(), entries.end());
  return entries;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

/// The places the rows' {placeholders} stand for: shipped models, and fixtures made once per test.
class Places {
 public:
  Places() {
    const std::string models = fs::canonical(draft::test::shipped_model("")).string();
    values_["{model}"] = models + "/fashion-sd";
    values_["{classifier}"] = "classifier:model=" + models + "/fashion-classifier";
    values_["{configs}"] = fs::canonical(models + "/../configs").string();
    values_["{fx}"] = fixtures_.path();
    values_["{pickle}"] = make_pickle_model(values_["{model}"]);
    make_files();
    values_["{ro}"] = find_read_only_folder();
    values_["{unreadable}"] = find_unreadable_file();
  }

  /// `text` with every placeholder replaced.
  std::string fill(std::string text) const {
    for (const auto& [key, value] : values_) {
      for (auto at = text.find(key); at != std::string::npos; at = text.find(key, at + value.size())) {
        text.replace(at, key.size(), value);
      }
    }
    return text;
  }

  /// Why a row cannot run on this machine ("" when it can).
  std::string missing_for(const BadCall& row) const {
    for (const auto& arg : row.args) {
      for (const char* key : {"{ro}", "{unreadable}"}) {
        if (arg.find(key) != std::string::npos && values_.at(key).empty()) {
          return std::string("no ") + key + " place on this machine (running as root with no read-only file system)";
        }
      }
    }
    return "";
  }

  const std::string& fixtures() const { return fixtures_.path(); }

 private:
  void make_files() {
    draft::test::write_bytes(fixtures_.file("empty.txt"), "");
    draft::test::write_bytes(fixtures_.file("prompts.txt"), "a coat\na bag\n");
    draft::test::write_bytes(fixtures_.file("latin1.txt"), "a coat\ncaf\xe9 au lait\n");  // Latin-1, not UTF-8
    draft::test::write_bytes(fixtures_.file("model.ckpt"), std::string("\x80\x02}q\x00.", 6));  // torch.save, protocol 2
    draft::test::write_bytes(fixtures_.file("lora.bin"), std::string("PK\x03\x04\x14\x00\x00\x00", 8) +
                                                             std::string(64, '\0'));  // torch.save's zip
    fs::create_directories(fixtures_.file("run"));
    draft::test::write_bytes(fixtures_.file("run/metrics.jsonl"), "{\"step\": 1, \"reward_mean\": -1.0}\n");
    fs::create_directories(fixtures_.file("read-only"));
    fs::create_directories(fixtures_.file("unreadable"));
    draft::test::write_bytes(fixtures_.file("unreadable/secret.txt"), "a coat\n");
  }

  // A copy of the shipped model's configs and tokenizer with pickle files for weights: the layout of a
  // diffusers download saved without safe_serialization.
  std::string make_pickle_model(const std::string& model) {
    const std::string dir = fixtures_.file("pickle-model");
    for (const auto& entry : fs::recursive_directory_iterator(model)) {
      const fs::path target = dir / entry.path().lexically_relative(model);
      if (entry.is_directory()) {
        fs::create_directories(target);
      } else if (entry.path().extension() == ".safetensors") {
        draft::test::write_bytes(fs::path(target).replace_extension(".bin").string(), std::string("\x80\x02}q\x00.", 6));
      } else {
        fs::copy_file(entry.path(), target);
      }
    }
    return dir;
  }

  // A folder this process cannot create files in: a chmod 555 folder, or for root (whom permissions do not
  // stop) a pseudo file system's folder that refuses new files.
  std::string find_read_only_folder() const {
    const std::string own = fixtures_.file("read-only");
    fs::permissions(own, fs::perms::owner_read | fs::perms::owner_exec);
    for (const std::string& dir : {own, std::string("/sys"), std::string("/proc")}) {
      const std::string probe = dir + "/draft-test-probe";
      const int fd = open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
      if (fd < 0) return dir;
      close(fd);
      unlink(probe.c_str());
    }
    return "";
  }

  // A file this process cannot read: a chmod 000 file, or for root a kernel file that root may not read.
  std::string find_unreadable_file() const {
    const std::string own = fixtures_.file("unreadable/secret.txt");
    fs::permissions(own, fs::perms::none);
    for (const std::string& file : {own, std::string("/proc/1/mem"), std::string("/sys/bus/pci/rescan")}) {
      if (!fs::is_regular_file(file)) continue;
      const int fd = open(file.c_str(), O_RDONLY);
      if (fd < 0 && errno == EACCES) return file;
      if (fd >= 0) close(fd);
    }
    return "";
  }

  TempDir fixtures_;
  std::map<std::string, std::string> values_;
};

/// One row's run: its own empty working folder and log folder.
struct RowRun {
  const BadCall* row = nullptr;
  std::unique_ptr<TempDir> cwd;
  std::unique_ptr<TempDir> logs;
  std::chrono::steady_clock::time_point start;
  pid_t pid = -1;
  Outcome outcome;
};

/// What is wrong with a row's outcome ("" when nothing is).
std::string judge(const BadCall& row, const Outcome& o, const std::string& says, const std::vector<std::string>& cwd_after) {
  std::ostringstream why;
  if (o.timed_out) why << "still running after " << kDeadlineSeconds << " s: does it work before it checks? ";
  if (o.signal != 0) why << "killed by signal " << o.signal << ' ';
  if (!o.timed_out && o.signal == 0 && o.code != row.code) why << "exit code " << o.code << ", expected " << row.code << ' ';
  std::vector<std::string> errors;
  for (const auto& line : lines_of(o.err)) {
    if (starts_with(line, "draft: error: ")) {
      errors.push_back(line);
    } else if (!starts_with(line, "[info]") && !starts_with(line, "[warn]")) {
      why << "stray stderr line '" << line << "' ";
    }
  }
  if (errors.size() != 1) why << errors.size() << " error lines, expected 1 ";
  if (errors.size() == 1 && errors[0].find(says) == std::string::npos) why << "the error does not say '" << says << "' ";
  for (const char* trace : {"Exception raised from", "frame #", "terminate called"}) {
    if (o.err.find(trace) != std::string::npos || o.out.find(trace) != std::string::npos) why << "a stack trace ";
  }
  // The one place a row may write is its run folder (runs/<date-time>/ by default): finetune opens it before
  // it loads the reward's model, so a missing classifier folder is found after.
  std::vector<std::string> written;
  for (const auto& entry : cwd_after) {
    if (!starts_with(entry, "runs/")) written.push_back(entry);
  }
  if (!written.empty()) {
    why << "wrote into its working folder:";
    for (const auto& entry : written) why << ' ' << entry;
  }
  return why.str();
}

TEST(CliErrors, TableCoversEnoughBadCommandLines) {
  EXPECT_GE(kBadCalls.size(), 30U);
  std::vector<std::string> names;
  for (const auto& row : kBadCalls) names.push_back(row.name);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(std::adjacent_find(names.begin(), names.end()), names.end()) << "two rows share a name";
}

// Every row, a few at a time (each is mostly LibTorch's start-up): the table runs in seconds.
TEST(CliErrors, EveryBadCommandLineFailsInOneLineAndWritesNothing) {
  Places places;
  const std::string models = draft::test::shipped_model("");
  const std::vector<std::string> fixtures_before = listing(places.fixtures());
  const std::vector<std::string> models_before = listing(models);
  const std::size_t parallel = std::max(2U, std::min(4U, std::thread::hardware_concurrency()));

  std::vector<RowRun> runs(kBadCalls.size());
  std::size_t next = 0, done = 0;
  while (done < runs.size()) {
    // Start rows until `parallel` are running, then finish the oldest.
    while (next < runs.size() && next - done < parallel) {
      RowRun& r = runs[next++];
      r.row = &kBadCalls[next - 1];
      const std::string skip = places.missing_for(*r.row);
      if (!skip.empty()) {
        std::printf("[ skipped  ] %s: %s\n", r.row->name, skip.c_str());
        continue;
      }
      std::vector<std::string> args;
      for (const auto& a : r.row->args) args.push_back(places.fill(a));
      r.cwd = std::make_unique<TempDir>();
      r.logs = std::make_unique<TempDir>();
      r.start = std::chrono::steady_clock::now();
      r.pid = start_draft(args, r.cwd->path(), r.logs->path());
      ASSERT_GT(r.pid, 0) << "fork failed";
    }
    RowRun& r = runs[done++];
    if (r.pid <= 0) continue;
    r.outcome = finish(r.pid, r.start, r.logs->path());
  }

  double total = 0;
  for (const RowRun& r : runs) {
    if (r.pid <= 0) continue;
    const Outcome& o = r.outcome;
    total += o.seconds;
    const std::string why = judge(*r.row, o, places.fill(r.row->says), listing(r.cwd->path()));
    EXPECT_TRUE(why.empty()) << r.row->name << ": " << why << "\n  stderr: " << o.err << "  stdout: " << o.out;
    std::printf("  %-36s %d  %4.1f s  %s", r.row->name, o.code, o.seconds,
                lines_of(o.err).empty() ? "\n" : (lines_of(o.err).back() + "\n").c_str());
  }
  std::printf("%zu rows, %.1f s of process time\n", runs.size(), total);
  EXPECT_EQ(listing(places.fixtures()), fixtures_before) << "a row wrote into the fixtures";
  EXPECT_EQ(listing(models), models_before) << "a row wrote into models/";
}

// The write check itself leaves nothing behind: a good -o gives the image and nothing else.
TEST(CliErrors, OutputCheckLeavesOnlyTheOutput) {
  TempDir dir;
  draft::test::CliRun r = draft::test::run_cli("sample --model " + draft::test::shipped_model("fashion-sd") +
                                               " --prompt 'a coat' --steps 1 -o " + dir.file("a.png"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(listing(dir.path()), std::vector<std::string>{"a.png " + std::to_string(fs::file_size(dir.file("a.png")))});
}

}  // namespace
