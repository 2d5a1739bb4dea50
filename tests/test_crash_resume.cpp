// What a crash or a full disk does to a training run, tried on the real CLI: a run killed with SIGKILL at
// random moments and resumed after each kill ends byte-identical to an uninterrupted run, and after every
// kill each file in its folder parses; a second process on a run folder is refused while a killed one's
// lock never blocks a resume; a checkpoint write that runs out of space stops the run with one line and
// keeps the previous checkpoint, from which --resume continues.
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "cli_runner.h"
#include "io/png.h"
#include "io/safetensors.h"
#include "process_spawn.h"
#include "support.h"
#include "train/checkpoint.h"
#include "train/metrics.h"
#include "train/run_lock.h"
#include "io/tfrecord.h"

namespace {

namespace fs = std::filesystem;
using draft::test::slurp;
using draft::test::TempDir;

// Every file of a run folder, read the way its consumer reads it. A torn file throws (and fails the test);
// returns the temporary files (*.tmp) found, which a kill may leave and a resume must remove.
std::vector<std::string> check_every_file_parses(const std::string& dir) {
  std::vector<std::string> partial;
  if (!fs::exists(dir)) return partial;  // killed before it made the folder
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    const std::string path = entry.path().string();
    const std::string ext = entry.path().extension().string();
    SCOPED_TRACE(path);
    if (ext == ".tmp") {
      partial.push_back(path);
    } else if (entry.path().filename() == ".lock") {
      // the RunLock's file: its content is a pid, and the lock is the flock
    } else if (entry.path().filename().string().rfind("events.out.tfevents.", 0) == 0) {
      EXPECT_NO_THROW(draft::read_tfrecords(path));  // TensorBoard's: a torn last record is skipped, not an error
    } else if (ext == ".json") {
      EXPECT_NO_THROW(nlohmann::json::parse(slurp(path)));
    } else if (ext == ".jsonl") {
      EXPECT_NO_THROW(draft::read_metrics(path));
    } else if (ext == ".safetensors") {
      EXPECT_NO_THROW(draft::SafeTensorsFile(path).load_all());
    } else if (ext == ".png") {
      EXPECT_NO_THROW(draft::read_png(path));
    } else if (ext == ".svg") {
      EXPECT_NE(slurp(path).find("</svg>"), std::string::npos);
    } else if (ext == ".txt") {
      const std::string text = slurp(path);
      EXPECT_TRUE(!text.empty() && text.back() == '\n');
    } else {
      ADD_FAILURE() << "a file the check does not know how to read";
    }
  }
  return partial;
}

std::string bytes_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Words split on spaces (no quoting); '' stands for an empty argument.
std::vector<std::string> split_words(const std::string& line) {
  std::vector<std::string> words;
  std::string word;
  for (char c : line + " ") {
    if (c != ' ') {
      word += c;
      continue;
    }
    if (!word.empty()) words.push_back(word == "''" ? "" : word);
    word.clear();
  }
  return words;
}

// The error lines ("draft: error: ...") of a command's stderr, which also holds its log lines.
int error_lines(const std::string& err) {
  int n = 0;
  for (std::size_t at = err.find("draft: error:"); at != std::string::npos; at = err.find("draft: error:", at + 1)) ++n;
  return n;
}

// A command line run by /bin/sh (for `trap` and `prlimit`), both streams captured.
draft::test::CliRun run_in_shell(const std::string& command) {
  TempDir dir;
  const int status = std::system((command + " >" + dir.file("out") + " 2>" + dir.file("err")).c_str());
  draft::test::CliRun r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(dir.file("out"));
  r.err = slurp(dir.file("err"));
  return r;
}

// `draft ARGS` (words split on spaces, no quoting) started in the background, output into `log`.
pid_t start_cli(const std::string& args, const std::string& log) {
  std::vector<std::string> argv = {DRAFT_CLI_PATH};
  for (auto& w : split_words(args)) argv.push_back(w);
  return draft::test::spawn_process(argv, {}, log);
}

// Runs a command line to completion (5 minutes at most) and returns its exit code.
int run_to_end(const std::string& args, const std::string& log) {
  const pid_t pid = start_cli(args, log);
  return draft::test::wait_for(pid, 300);
}

// The modification time of `path`, or 0 when it does not exist.
int64_t mtime_ns(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return 0;
  return int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
}

// The kill campaign: `kills` times, start `args` (with --resume once the folder holds a config), wait until
// it has written a new checkpoint (so that every attempt makes progress and the kills fall among the
// training steps and their writes, not only in the start-up), wait a random 0 to 0.6 s more, kill it with
// SIGKILL and check every file of the folder; then let it finish. Returns how many kills found a
// temporary file.
int kill_and_resume(const std::string& args, const std::string& run_dir, int kills, const std::string& log) {
  std::mt19937 rng(20261203);
  std::uniform_real_distribution<double> extra(0.0, 0.6);
  const std::string checkpoint = run_dir + "/checkpoint.safetensors";
  int with_partial = 0, finished_early = 0;
  for (int i = 0; i < kills; ++i) {
    const bool resume = fs::exists(run_dir + "/config.json");
    const int64_t before = mtime_ns(checkpoint);
    const pid_t pid = start_cli(args + (resume ? " --resume" : ""), log);
    if (pid <= 0) {  // never kill(-1, ...): that would reach every process of the user
      ADD_FAILURE() << "could not start " << args << ": " << std::strerror(errno);
      return with_partial;
    }
    int status = 0;
    bool exited = false;
    for (int wait = 0; wait < 6000 && mtime_ns(checkpoint) == before; ++wait) {
      if (waitpid(pid, &status, WNOHANG) == pid) {
        exited = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    const double seconds = extra(rng);
    if (!exited) {
      std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
      kill(pid, SIGKILL);
    }
    const int code = exited ? (WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status))
                            : draft::test::wait_for(pid, 60);
    // Killed, or finished before the kill (then it must have succeeded).
    EXPECT_TRUE(code == 128 + SIGKILL || code == 0) << "attempt " << i << " exited " << code << ": " << slurp(log);
    if (code == 0) ++finished_early;
    const auto partial = check_every_file_parses(run_dir);
    if (!partial.empty()) ++with_partial;
    std::printf("kill %2d, %.2f s after a checkpoint: %s, %zu temporary file(s)\n", i + 1, seconds,
                code == 0 ? "had finished" : "killed", partial.size());
  }
  EXPECT_EQ(finished_early, 0) << "the run is too short for the kills: lengthen it";
  const int code = run_to_end(args + " --resume", log);
  EXPECT_EQ(code, 0) << slurp(log);
  EXPECT_TRUE(check_every_file_parses(run_dir).empty()) << "a temporary file outlived the resume";
  return with_partial;
}

// Same tensors, bit for bit (the files' metadata differ: each config names its own run folder).
void expect_same_tensors(const std::string& a, const std::string& b) {
  const auto x = draft::SafeTensorsFile(a).load_all();
  const auto y = draft::SafeTensorsFile(b).load_all();
  ASSERT_EQ(x.size(), y.size()) << a << " vs " << b;
  for (const auto& [name, tensor] : x) {
    ASSERT_EQ(y.count(name), 1u) << name;
    EXPECT_TRUE(torch::equal(tensor, y.at(name))) << name << " differs between " << a << " and " << b;
  }
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// A small fine-tuning run that checkpoints every step and evaluates every 4: many files, written often.
std::string finetune_args(const std::string& run_dir, int steps) {
  return "--threads 1 finetune --model " + draft::test::shipped_model("fashion-sd") +
         " --reward jpeg-proxy:-1 --prompt a_coat --prompt a_bag --method draft-k --k 2 --sampling-steps 4"
         " --guidance 2 --batch-size 2 --lr 0.003 --steps " + std::to_string(steps) +
         " --save-every 1 --eval-every 4 --eval-n 1 --run-dir " + run_dir;
}

TEST(CrashResume, FinetuneKilledTwentyTimesEndsByteIdentical) {
  TempDir dir;
  const auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(run_to_end(finetune_args(dir.file("whole"), 80), dir.file("whole.log")), 0) << slurp(dir.file("whole.log"));
  const double seconds = seconds_since(start);
  const int partial = kill_and_resume(finetune_args(dir.file("killed"), 80), dir.file("killed"), 20,
                                      dir.file("killed.log"));
  std::printf("uninterrupted run %.1f s; %d of 20 kills left a temporary file\n", seconds, partial);
  EXPECT_TRUE(bytes_of(dir.file("killed/lora_final.safetensors")) == bytes_of(dir.file("whole/lora_final.safetensors")))
      << "the final LoRA files differ";
  expect_same_tensors(dir.file("killed/checkpoint.safetensors"), dir.file("whole/checkpoint.safetensors"));
}

// draft pretrain unet on 64 images (the shipped VAE, a tiny UNet): 240 steps, a checkpoint after each.
std::string pretrain_args(const std::string& dir, const std::string& run_dir) {
  return "--threads 1 pretrain unet --config " + dir + "/unet.json --vae " +
         draft::test::shipped_model("fashion-sd") + "/vae --out " + run_dir +
         " --limit 64 --epochs 60 --batch-size 16 --checkpoint-every 1 --eval-every 40 --eval-per-class 1"
         " --eval-steps 2"
         " --classifier ''";
}

TEST(CrashResume, PretrainUnetKilledTwentyTimesEndsByteIdentical) {
  if (!std::ifstream("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "no Fashion-MNIST";
  }
  TempDir dir;
  const nlohmann::json unet = {
      {"unet", {{"block_out_channels", {16, 32}}, {"norm_num_groups", 8}, {"sample_size", 8},
                {"down_block_types", {"CrossAttnDownBlock2D", "DownBlock2D"}},
                {"up_block_types", {"UpBlock2D", "CrossAttnUpBlock2D"}}, {"layers_per_block", 1},
                {"cross_attention_dim", 16}, {"attention_head_dim", {1, 2}}}},
      {"text_encoder", {{"hidden_size", 16}, {"intermediate_size", 32}, {"num_hidden_layers", 1},
                        {"num_attention_heads", 2}, {"max_position_embeddings", 16}}}};
  std::ofstream(dir.file("unet.json")) << unet.dump();
  const auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(run_to_end(pretrain_args(dir.path(), dir.file("whole")), dir.file("whole.log")), 0)
      << slurp(dir.file("whole.log"));
  const double seconds = seconds_since(start);
  const int partial = kill_and_resume(pretrain_args(dir.path(), dir.file("killed")), dir.file("killed"), 20,
                                      dir.file("killed.log"));
  std::printf("uninterrupted run %.1f s; %d of 20 kills left a temporary file\n", seconds, partial);
  for (const auto& file : {"model/unet/diffusion_pytorch_model.safetensors", "model/text_encoder/model.safetensors"}) {
    EXPECT_TRUE(bytes_of(dir.file(std::string("killed/") + file)) == bytes_of(dir.file(std::string("whole/") + file)))
        << file << " differs";
  }
  expect_same_tensors(dir.file("killed/checkpoint.safetensors"), dir.file("whole/checkpoint.safetensors"));
}

// While one process trains in a folder, another one started on it is refused with one line naming the
// process; once the first is killed (its flock released by the kernel, its .lock file left behind), a
// resume proceeds.
TEST(CrashResume, SecondProcessOnARunFolderIsRefusedAndAKilledOnesLockIsNot) {
  TempDir dir;
  const std::string run = dir.file("run");
  const pid_t first = start_cli(finetune_args(run, 400), dir.file("first.log"));
  ASSERT_GT(first, 0);
  // Wait until it has locked the folder and written its config.
  for (int i = 0; i < 600 && !fs::exists(run + "/config.json"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(fs::exists(run + "/config.json")) << slurp(dir.file("first.log"));
  const draft::test::CliRun second = draft::test::run_cli(finetune_args(run, 400) + " --resume");
  EXPECT_EQ(second.code, 1);
  EXPECT_EQ(error_lines(second.err), 1) << second.err;
  EXPECT_NE(second.err.find("in use by another draft process (pid " + std::to_string(first) + ")"),
            std::string::npos)
      << second.err;
  kill(first, SIGKILL);
  draft::test::wait_for(first, 60);
  EXPECT_TRUE(fs::exists(draft::RunLock::path(run)));
  const draft::test::CliRun resumed = draft::test::run_cli(finetune_args(run, 2) + " --resume");
  EXPECT_EQ(resumed.code, 0) << resumed.err;
}

// A checkpoint write that fails for lack of space (a file-size limit below the checkpoint's size, with
// SIGXFSZ ignored, so write() fails with EFBIG as it fails with ENOSPC on a full disk): one line naming
// the file, the previous checkpoint intact, no temporary file left, and --resume (with space again)
// ends where an uninterrupted run ends.
TEST(CrashResume, FullDiskStopsTheRunAndKeepsTheLastCheckpoint) {
  TempDir dir;
  const std::string run = dir.file("run");
  ASSERT_EQ(run_to_end(finetune_args(run, 2), dir.file("a.log")), 0) << slurp(dir.file("a.log"));
  const auto before = bytes_of(run + "/checkpoint.safetensors");
  const auto limit = before.size() / 2;  // the LoRA, the metrics and the sample grids stay below it
  const draft::test::CliRun full = run_in_shell(
      "trap '' XFSZ; exec prlimit --fsize=" + std::to_string(limit) + " " + DRAFT_CLI_PATH + " " +
      finetune_args(run, 4) + " --resume");
  EXPECT_EQ(full.code, 1) << full.err;
  EXPECT_EQ(error_lines(full.err), 1) << full.err;
  EXPECT_NE(full.err.find(run + "/checkpoint.safetensors"), std::string::npos) << full.err;
  EXPECT_NE(full.err.find("file-size limit"), std::string::npos) << full.err;
  EXPECT_NE(full.err.find("checkpoint of step 2 is intact"), std::string::npos) << full.err;
  EXPECT_NE(full.err.find("--resume"), std::string::npos) << full.err;
  EXPECT_TRUE(bytes_of(run + "/checkpoint.safetensors") == before) << "the last good checkpoint changed";
  EXPECT_EQ(draft::read_checkpoint_info(run + "/checkpoint.safetensors").progress.step, 2);
  EXPECT_TRUE(check_every_file_parses(run).empty());

  ASSERT_EQ(run_to_end(finetune_args(run, 4) + " --resume", dir.file("b.log")), 0) << slurp(dir.file("b.log"));
  ASSERT_EQ(run_to_end(finetune_args(dir.file("whole"), 4), dir.file("c.log")), 0) << slurp(dir.file("c.log"));
  EXPECT_TRUE(bytes_of(run + "/lora_final.safetensors") == bytes_of(dir.file("whole/lora_final.safetensors")))
      << "the resumed run's final LoRA differs from an uninterrupted run's";
}

// A resume with another thread count works but says that it is not bit-identical, and how to make it so.
TEST(CrashResume, ResumeWithOtherThreadsWarns) {
  TempDir dir;
  const std::string run = dir.file("run");
  ASSERT_EQ(run_to_end(finetune_args(run, 1), dir.file("a.log")), 0) << slurp(dir.file("a.log"));
  EXPECT_EQ(draft::read_checkpoint_info(run + "/checkpoint.safetensors").threads, 1);
  std::string args = finetune_args(run, 2) + " --resume";
  args.replace(args.find("--threads 1"), 11, "--threads 2");
  const draft::test::CliRun r = draft::test::run_cli(args);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE((r.out + r.err).find("written with 1 LibTorch thread(s)"), std::string::npos) << r.out << r.err;
  EXPECT_NE((r.out + r.err).find("--threads 1"), std::string::npos);
}

}  // namespace
