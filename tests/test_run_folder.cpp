// Run folders: metrics logs, checkpoints that restore modules and AdamW state exactly, data order, the
// folder lock, and atomic writes that a failure never leaves half done.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "data/data_order.h"
#include "util/seeds.h"
#include "train/checkpoint.h"
#include "train/metrics.h"
#include "train/resumable_run.h"
#include "train/run_folder.h"
#include "train/run_lock.h"
#include "util/error.h"
#include "support.h"

namespace {

using draft::test::expect_error;
using draft::test::TempDir;

std::string text_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

torch::nn::Sequential small_net() {
  // BatchNorm only to have buffers (running stats, a counter) in the checkpoint.
  return torch::nn::Sequential(torch::nn::Linear(4, 8), torch::nn::BatchNorm1d(8), torch::nn::Linear(8, 2));
}

void adamw_step(torch::nn::Sequential& net, torch::optim::AdamW& opt, int64_t i) {
  at::Tensor x = torch::sin(torch::arange(16, torch::kFloat).view({4, 4}) + static_cast<double>(i));
  opt.zero_grad();
  net->forward(x).pow(2).mean().backward();
  opt.step();
}

void expect_same_tensors(torch::nn::Module& a, torch::nn::Module& b) {
  auto pa = a.named_parameters();
  auto pb = b.named_parameters();
  for (const auto& item : pa) EXPECT_TRUE(torch::equal(item.value(), pb[item.key()])) << item.key();
  auto ba = a.named_buffers();
  auto bb = b.named_buffers();
  for (const auto& item : ba) EXPECT_TRUE(torch::equal(item.value(), bb[item.key()])) << item.key();
}

TEST(RunFolder, MetricsAppendReadAndTruncate) {
  TempDir dir;
  draft::RunFolder run(dir.file("runs/a"));  // parents are created
  EXPECT_TRUE(std::filesystem::is_directory(run.dir()));
  EXPECT_FALSE(run.has_checkpoint());
  for (int64_t step : {10, 20, 30}) run.append_metrics({{"step", step}, {"loss", 1.0 / static_cast<double>(step)}});
  run.append_metrics({{"note", "no step"}});
  auto records = draft::read_metrics(run.metrics_path());
  ASSERT_EQ(records.size(), 4u);
  EXPECT_EQ(records[1].at("step"), 20);
  run.truncate_metrics_after(20);
  records = draft::read_metrics(run.metrics_path());
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[1].at("step"), 20);
  EXPECT_EQ(records[2].at("note"), "no step");

  run.write_config({{"epochs", 3}});
  EXPECT_TRUE(std::filesystem::is_regular_file(run.config_path()));
  draft::test::write_bytes(dir.file("bad.jsonl"), "{\"step\": 1}\n{oops\n");
  std::string message = expect_error([&] { draft::read_metrics(dir.file("bad.jsonl")); });
  EXPECT_NE(message.find("bad.jsonl:2"), std::string::npos) << message;
}

// A record cut short by a kill or a full disk has no newline: it is left out, and truncation (a resume)
// rewrites the file without it, so the next record starts on a line of its own.
TEST(RunFolder, ARecordCutShortIsLeftOutAndDroppedOnResume) {
  TempDir dir;
  draft::RunFolder run(dir.file("run"));
  run.append_metrics({{"step", 1}});
  {
    std::ofstream out(run.metrics_path(), std::ios::app);
    out << "{\"step\": 2, \"lo";
  }
  ASSERT_EQ(draft::read_metrics(run.metrics_path()).size(), 1u);
  run.truncate_metrics_after(1);
  run.append_metrics({{"step", 2}});
  const auto records = draft::read_metrics(run.metrics_path());
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[1].at("step"), 2);
}

TEST(AtomicFile, CommitReplacesAndAFailureKeepsTheOldFile) {
  TempDir dir;
  const std::string path = dir.file("a.json");
  draft::write_file_atomically(path, "old\n");
  {
    draft::AtomicFileWriter writer(path);
    writer.write("half of a new fi");
    EXPECT_TRUE(std::filesystem::exists(draft::temporary_path(path)));
  }  // destroyed without commit: an exception on the way
  EXPECT_FALSE(std::filesystem::exists(draft::temporary_path(path)));
  EXPECT_EQ(text_of(path), "old\n");
  draft::write_file_atomically(path, "new\n");
  EXPECT_EQ(text_of(path), "new\n");
  const std::string m = expect_error([&] { draft::write_file_atomically(dir.file("missing/a.json"), "x"); });
  EXPECT_NE(m.find("missing/a.json"), std::string::npos) << m;
  EXPECT_NE(m.find("does the folder exist?"), std::string::npos) << m;
}

// In a child process with a file-size limit and SIGXFSZ ignored, write() fails with EFBIG as it fails with
// ENOSPC on a full disk: the error names the file and the cause, and the old file stays.
TEST(AtomicFile, FullDiskNamesTheFileAndKeepsTheOldOne) {
  TempDir dir;
  const std::string path = dir.file("checkpoint.safetensors");
  draft::write_file_atomically(path, "the last good checkpoint");
  const std::string message_file = dir.file("message");
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::signal(SIGXFSZ, SIG_IGN);
    const rlimit limit{4096, 4096};
    setrlimit(RLIMIT_FSIZE, &limit);
    std::string message = "no error";
    try {
      draft::write_file_atomically(path, std::string(100000, 'x'));
    } catch (const draft::Error& e) {
      message = e.what();
    }
    std::ofstream(message_file) << message;
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  const std::string message = text_of(message_file);
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("file-size limit"), std::string::npos) << message;
  EXPECT_NE(message.find("the file on disk is unchanged"), std::string::npos) << message;
  EXPECT_EQ(text_of(path), "the last good checkpoint");
  EXPECT_FALSE(std::filesystem::exists(draft::temporary_path(path)));
}

TEST(RunLock, OneHolderAtATimeAndPartialFilesAreRemoved) {
  TempDir dir;
  std::filesystem::create_directories(dir.file("run/samples"));
  {
    draft::RunLock lock(dir.file("run"));
    const std::string m = expect_error([&] { draft::RunLock again(dir.file("run")); });
    EXPECT_NE(m.find("is in use by another draft process (pid " + std::to_string(getpid()) + ")"), std::string::npos)
        << m;
    EXPECT_NE(m.find("choose another run folder"), std::string::npos) << m;
    // A second ResumableRun on the folder is refused the same way.
    EXPECT_NE(expect_error([&] { draft::ResumableRun(dir.file("run"), true); }).find("in use"), std::string::npos);
  }
  // Released: taken again; the temporary files of killed writes are gone once a run opens the folder.
  draft::test::write_bytes(dir.file("run/checkpoint.safetensors.tmp"), "torn");
  draft::test::write_bytes(dir.file("run/samples/step_000002.png.tmp"), "torn");
  draft::ResumableRun run(dir.file("run"), true);
  EXPECT_FALSE(std::filesystem::exists(dir.file("run/checkpoint.safetensors.tmp")));
  EXPECT_FALSE(std::filesystem::exists(dir.file("run/samples/step_000002.png.tmp")));
}

// The checkpoint records the thread counts of the process that wrote it (a resume with others warns).
TEST(Checkpoint, RecordsTheThreadCounts) {
  TempDir dir;
  torch::nn::Sequential net = small_net();
  draft::save_checkpoint(dir.file("c.safetensors"), {{"model.", net.ptr().get()}}, nullptr, {1, 0, 0}, {});
  const auto info = draft::read_checkpoint_info(dir.file("c.safetensors"));
  EXPECT_EQ(info.threads, at::get_num_threads());
  EXPECT_NE(info.blas_threads, 0);
}

TEST(Checkpoint, RestoresModuleAndAdamWExactly) {
  TempDir dir;
  torch::manual_seed(0);
  auto net = small_net();
  torch::optim::AdamW opt(net->parameters(), torch::optim::AdamWOptions(0.05).weight_decay(0.1));
  for (int64_t i = 0; i < 3; ++i) adamw_step(net, opt, i);
  const uint64_t seed = (uint64_t{1} << 63) + 5;  // survives the metadata round trip as unsigned
  draft::save_checkpoint(dir.file("ckpt.safetensors"), {{"model.", net.ptr().get()}}, &opt, {3, 1, seed},
                         {{"batch_size", 4}});

  torch::manual_seed(1);  // different initial weights, replaced by the checkpoint's
  auto other = small_net();
  torch::optim::AdamW other_opt(other->parameters(), torch::optim::AdamWOptions(0.05).weight_decay(0.1));
  draft::CheckpointInfo info = draft::load_checkpoint(dir.file("ckpt.safetensors"), {{"model.", other.ptr().get()}},
                                                      &other_opt);
  EXPECT_EQ(info.progress.step, 3);
  EXPECT_EQ(info.progress.epoch, 1);
  EXPECT_EQ(info.progress.seed, seed);
  EXPECT_EQ(info.config.at("batch_size"), 4);
  EXPECT_EQ(draft::read_checkpoint_info(dir.file("ckpt.safetensors")).progress.step, 3);
  expect_same_tensors(*net, *other);
  EXPECT_EQ(other_opt.state().size(), opt.state().size());

  // The next steps agree bit for bit only when exp_avg, exp_avg_sq and the step count were all restored.
  for (int64_t i = 3; i < 5; ++i) {
    adamw_step(net, opt, i);
    adamw_step(other, other_opt, i);
  }
  expect_same_tensors(*net, *other);
}

TEST(Checkpoint, WithoutOptimizerStateYet) {
  TempDir dir;
  auto net = small_net();
  torch::optim::AdamW opt(net->parameters());
  draft::save_checkpoint(dir.file("c.safetensors"), {{"model.", net.ptr().get()}}, &opt, {0, 0, 0}, {});
  auto other = small_net();
  torch::optim::AdamW other_opt(other->parameters());
  draft::load_checkpoint(dir.file("c.safetensors"), {{"model.", other.ptr().get()}}, &other_opt);
  expect_same_tensors(*net, *other);
  EXPECT_TRUE(other_opt.state().empty());
}

TEST(Checkpoint, StrictErrors) {
  TempDir dir;
  auto net = small_net();
  draft::save_checkpoint(dir.file("c.safetensors"), {{"model.", net.ptr().get()}}, nullptr, {0, 0, 0}, {});

  auto wider = torch::nn::Sequential(torch::nn::Linear(4, 9), torch::nn::BatchNorm1d(9), torch::nn::Linear(9, 2));
  std::string message = expect_error(
      [&] { draft::load_checkpoint(dir.file("c.safetensors"), {{"model.", wider.ptr().get()}}, nullptr); });
  EXPECT_NE(message.find("model.0.weight"), std::string::npos) << message;

  auto longer = torch::nn::Sequential(torch::nn::Linear(4, 8), torch::nn::BatchNorm1d(8), torch::nn::Linear(8, 2),
                                      torch::nn::Linear(2, 2));
  message = expect_error(
      [&] { draft::load_checkpoint(dir.file("c.safetensors"), {{"model.", longer.ptr().get()}}, nullptr); });
  EXPECT_NE(message.find("lacks 'model.3.weight'"), std::string::npos) << message;

  auto shorter = torch::nn::Sequential(torch::nn::Linear(4, 8), torch::nn::BatchNorm1d(8));
  message = expect_error(
      [&] { draft::load_checkpoint(dir.file("c.safetensors"), {{"model.", shorter.ptr().get()}}, nullptr); });
  EXPECT_NE(message.find("model.2.weight"), std::string::npos) << message;

  // An optimizer over a parameter the checkpoint does not cover.
  auto stray = torch::nn::Linear(2, 2);
  std::vector<at::Tensor> params = net->parameters();
  params.push_back(stray->weight);
  torch::optim::AdamW opt(params);
  message = expect_error(
      [&] { draft::save_checkpoint(dir.file("d.safetensors"), {{"model.", net.ptr().get()}}, &opt, {0, 0, 0}, {}); });
  EXPECT_NE(message.find("none of the checkpointed modules"), std::string::npos) << message;

  draft::save_safetensors(dir.file("weights.safetensors"), {{"w", torch::zeros({2})}});
  message = expect_error([&] { draft::read_checkpoint_info(dir.file("weights.safetensors")); });
  EXPECT_NE(message.find("not a draft training checkpoint"), std::string::npos) << message;
}

TEST(DataOrder, EpochPermutations) {
  at::Tensor a = draft::epoch_permutation(1000, 5, 0);
  EXPECT_TRUE(torch::equal(a, draft::epoch_permutation(1000, 5, 0)));
  EXPECT_FALSE(torch::equal(a, draft::epoch_permutation(1000, 5, 1)));
  EXPECT_FALSE(torch::equal(a, draft::epoch_permutation(1000, 6, 0)));
  EXPECT_TRUE(torch::equal(std::get<0>(a.sort()), torch::arange(1000, torch::kLong)));
  EXPECT_NE(draft::derive_seed(1, draft::RandomStream::kShuffle, 0),
            draft::derive_seed(1, draft::RandomStream::kAugment, 0));
}

}  // namespace

namespace {

TEST(ResumableRun, ANewRunNeverOverwritesAnOldOne) {
  TempDir dir;
  const std::string run_dir = dir.file("run");
  {
    draft::ResumableRun run(run_dir, false);
    EXPECT_FALSE(run.resuming());
    run.start({{"lr", 1e-3}}, {});
    run.log({{"step", 1}});
  }
  // Metrics but no checkpoint yet: refused without --resume, started anew with it.
  std::string m = expect_error([&] { draft::ResumableRun(run_dir, false); });
  EXPECT_NE(m.find("already holds a run (metrics.jsonl)"), std::string::npos) << m;
  EXPECT_NE(m.find("--resume"), std::string::npos) << m;
  draft::ResumableRun again(run_dir, true);
  EXPECT_FALSE(again.resuming());
  again.start({{"lr", 2e-3}}, {});
  EXPECT_FALSE(std::filesystem::exists(run_dir + "/metrics.jsonl"));
}

TEST(ResumableRun, ResumeRefusesChangedSettingsNamingEachKey) {
  TempDir dir;
  const std::string run_dir = dir.file("run");
  torch::nn::Sequential net = small_net();
  const nlohmann::json config = {{"optimizer", {{"lr", 1e-3}, {"beta1", 0.9}}}, {"train", {{"steps", 10}}},
                                 {"eval", {{"every", 5}}}};
  {
    draft::ResumableRun run(run_dir, false);
    run.start(config, {});
    run.log({{"step", 1}});
    run.log({{"step", 2}});
    run.save({{"model.", net.ptr().get()}}, nullptr, {1, 0, 0});
  }
  std::string m = expect_error([&] { draft::ResumableRun(run_dir, false); });
  EXPECT_NE(m.find("already holds a run (checkpoint.safetensors)"), std::string::npos) << m;

  nlohmann::json changed = config;
  changed["optimizer"]["lr"] = 2e-3;
  changed["optimizer"]["beta1"] = 0.8;
  changed["train"]["steps"] = 20;
  changed["eval"]["every"] = 2;
  {
    draft::ResumableRun refused(run_dir, true);  // scoped: it holds the folder's lock while it lives
    EXPECT_TRUE(refused.resuming());
    m = expect_error([&] { refused.start(changed, {"train.steps", "eval"}); });
  }
  EXPECT_NE(m.find("optimizer.lr: 0.001 -> 0.002"), std::string::npos) << m;
  EXPECT_NE(m.find("optimizer.beta1: 0.9 -> 0.8"), std::string::npos) << m;
  EXPECT_EQ(m.find("train.steps"), m.rfind("train.steps")) << m;  // named once: in the allow-list only
  EXPECT_EQ(m.find("eval.every"), std::string::npos) << m;

  // The allowed keys may change; restoring drops the metrics after the checkpoint's step.
  changed["optimizer"] = config["optimizer"];
  draft::ResumableRun resumed(run_dir, true);
  resumed.start(changed, {"train.steps", "eval"});
  torch::nn::Sequential other = small_net();
  EXPECT_EQ(resumed.restore({{"model.", other.ptr().get()}}, nullptr).step, 1);
  expect_same_tensors(*net, *other);
  EXPECT_EQ(draft::read_metrics(run_dir + "/metrics.jsonl").size(), 1u);
}

}  // namespace
