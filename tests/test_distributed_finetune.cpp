// Data-parallel fine-tuning (docs/distributed.md), with real processes over Gloo on localhost: every method
// on 2 processes computes what 1 process computes with the same global batch; a run resumes with another
// number of processes; ranks with other settings are refused; a rank killed with SIGKILL makes the other
// fail within --dist-timeout, and the last checkpoint resumes.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "cli_runner.h"
#include "io/safetensors.h"
#include "process_spawn.h"
#include "support.h"

namespace {

using draft::test::free_port;
using draft::test::rank_env;
using draft::test::slurp;
using draft::test::spawn_process;
using draft::test::TempDir;
using draft::test::wait_for;

// Words separated by spaces; '...' groups words into one argument (as the shell would).
std::vector<std::string> split_args(const std::string& text) {
  std::vector<std::string> out;
  std::string word;
  bool quoted = false, any = false;
  for (char c : text) {
    if (c == '\'') {
      quoted = !quoted;
      any = true;
    } else if (c == ' ' && !quoted) {
      if (any) out.push_back(word);
      word.clear();
      any = false;
    } else {
      word += c;
      any = true;
    }
  }
  if (any) out.push_back(word);
  return out;
}

// A tiny run on the shipped model: 3 DDIM steps, global batch 4, the UNet in float64. In float32 the
// LoRA of two runs that differ only in summation order (even one process with 1 thread against 2) ends
// 2.5e-3 apart after 3 steps: Adam's m / sqrt(v) turns rounding noise in near-zero gradient entries into
// full-size updates. In float64 (model and classifier reward) that noise is gone, so a 1e-5 bound tests
// that the ranks compute the same thing, not the rounding.
std::string finetune_args(const std::string& method, const std::string& run_dir) {
  std::string args = "--threads 1 finetune --model " + draft::test::shipped_model("fashion-sd") +
                     " --reward classifier:model=" + draft::test::shipped_model("fashion-classifier") +
                     " --prompt 'a photo of a bag' --prompt 'a photo of a sneaker'"
                     " --sampling-steps 3 --guidance 1 --batch-size 4 --lr 0.003 --eval-every 0 --save-every 1"
                     " --dtype f64 --dist-timeout 30 --run-dir " + run_dir + " --method " + method;
  if (method == "ddpo") args += " --eta 1 --ddpo-inner-epochs 2";
  if (method == "draft-k") args += " --k 2";
  if (method == "alignprop") args += " --alignprop-k-min 1 --alignprop-k-max 3";
  if (method == "refl") args += " --refl-range 1:2";
  return args;
}

// Runs `draft ARGS` as `ranks` processes with torchrun's variables; returns each rank's exit code.
std::vector<int> run_ranks(int ranks, const std::string& args, const std::string& log_prefix, double seconds = 240) {
  std::vector<std::string> argv = {DRAFT_CLI_PATH};
  for (const auto& a : split_args(args)) argv.push_back(a);
  const int port = free_port();
  std::vector<pid_t> pids;
  for (int r = 0; r < ranks; ++r) {
    const auto env = ranks == 1 ? std::map<std::string, std::string>{} : rank_env(r, ranks, port);
    pids.push_back(spawn_process(argv, env, log_prefix + std::to_string(r) + ".log"));
  }
  std::vector<int> codes;
  for (pid_t pid : pids) codes.push_back(wait_for(pid, seconds));
  return codes;
}

std::map<std::string, at::Tensor> lora(const std::string& run_dir) {
  return draft::SafeTensorsFile(run_dir + "/lora_final.safetensors").load_all();
}

std::vector<nlohmann::json> train_records(const std::string& run_dir) {
  std::vector<nlohmann::json> out;
  std::istringstream in(slurp(run_dir + "/metrics.jsonl"));
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    auto record = nlohmann::json::parse(line);
    if (record.value("kind", "") != "eval") out.push_back(record);
  }
  return out;
}

// The largest ||a − b|| / ||b|| over the LoRA tensors (which must have the same names).
double lora_difference(const std::string& a_dir, const std::string& b_dir) {
  const auto a = lora(a_dir), b = lora(b_dir);
  EXPECT_EQ(a.size(), b.size());
  double worst = 0;
  for (const auto& [name, tensor] : b) {
    if (a.count(name) == 0) {
      ADD_FAILURE() << name << " missing";
      continue;
    }
    const double norm = tensor.to(torch::kDouble).norm().item<double>();
    const double diff = (a.at(name).to(torch::kDouble) - tensor.to(torch::kDouble)).norm().item<double>();
    worst = std::max(worst, norm > 0 ? diff / norm : diff);
  }
  return worst;
}

void expect_same_rewards(const std::string& a_dir, const std::string& b_dir) {
  const auto a = train_records(a_dir), b = train_records(b_dir);
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double x = a[i]["reward_mean"].get<double>(), y = b[i]["reward_mean"].get<double>();
    EXPECT_NEAR(x, y, 1e-5 * std::max(1.0, std::abs(y))) << "step " << i + 1;
    EXPECT_EQ(a[i]["reward_queries"], b[i]["reward_queries"]) << "step " << i + 1;
  }
}

class EveryMethod : public testing::TestWithParam<std::string> {};

// 2 processes with 2 samples each against 1 process with 4, same seed, 3 optimizer steps.
TEST_P(EveryMethod, TwoProcessesComputeWhatOneDoes) {
  TempDir dir;
  const std::string one = dir.file("one"), two = dir.file("two");
  const auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(run_ranks(1, finetune_args(GetParam(), one) + " --steps 3", dir.file("one")),
            std::vector<int>({0}))
      << slurp(dir.file("one0.log"));
  const auto codes = run_ranks(2, finetune_args(GetParam(), two) + " --steps 3", dir.file("two"));
  ASSERT_EQ(codes, std::vector<int>({0, 0})) << slurp(dir.file("two0.log")) << slurp(dir.file("two1.log"));
  const double rel = lora_difference(two, one);
  std::printf("%s: 2 processes vs 1, 3 steps: LoRA relative difference %.2e (%.1f s for both runs)\n",
              GetParam().c_str(), rel,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  EXPECT_LE(rel, 1e-5);
  expect_same_rewards(two, one);
  // Rank 0 alone wrote the run: rank 1 printed no run folder.
  EXPECT_EQ(slurp(dir.file("two1.log")).find("run folder:"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(DataParallel, EveryMethod,
                         testing::Values("draft", "draft-k", "draft-lv", "refl", "alignprop", "ddpo"),
                         [](const testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           for (char& c : name) c = c == '-' ? '_' : c;
                           return name;
                         });

// A run started on 2 processes resumes on 1, and one started on 1 on 2, and both end where a run on one
// process without a stop ends. DDPO with 2 inner epochs: the resumed step re-uses the samples stored by
// the other world size.
TEST(DataParallel, ARunResumesWithAnotherNumberOfProcesses) {
  TempDir dir;
  for (const std::string method : {"draft-lv", "ddpo"}) {
    const std::string whole = dir.file(method + "_whole"), a = dir.file(method + "_2to1"),
                      b = dir.file(method + "_1to2");
    ASSERT_EQ(run_ranks(1, finetune_args(method, whole) + " --steps 4", dir.file("w")), std::vector<int>({0}))
        << slurp(dir.file("w0.log"));
    ASSERT_EQ(run_ranks(2, finetune_args(method, a) + " --steps 3", dir.file("a")), std::vector<int>({0, 0}))
        << slurp(dir.file("a0.log")) << slurp(dir.file("a1.log"));
    ASSERT_EQ(run_ranks(1, "--threads 1 finetune --resume " + a + " --steps 4", dir.file("ar")), std::vector<int>({0}))
        << slurp(dir.file("ar0.log"));
    ASSERT_EQ(run_ranks(1, finetune_args(method, b) + " --steps 3", dir.file("b")), std::vector<int>({0}))
        << slurp(dir.file("b0.log"));
    ASSERT_EQ(run_ranks(2, "--threads 1 finetune --resume " + b + " --steps 4", dir.file("br")),
              std::vector<int>({0, 0}))
        << slurp(dir.file("br0.log")) << slurp(dir.file("br1.log"));
    const double rel_a = lora_difference(a, whole), rel_b = lora_difference(b, whole);
    std::printf("%s: resumed 2 -> 1 processes: %.2e, 1 -> 2: %.2e (LoRA relative difference to no stop)\n",
                method.c_str(), rel_a, rel_b);
    EXPECT_LE(rel_a, 1e-5);
    EXPECT_LE(rel_b, 1e-5);
    expect_same_rewards(a, whole);
    expect_same_rewards(b, whole);
  }
}

TEST(DataParallel, RanksWithOtherSettingsAreRefusedAtStart) {
  TempDir dir;
  const std::string base = finetune_args("draft-lv", dir.file("run")) + " --steps 2";
  std::vector<std::string> argv0 = {DRAFT_CLI_PATH}, argv1 = {DRAFT_CLI_PATH};
  for (const auto& a : split_args(base)) argv0.push_back(a), argv1.push_back(a);
  argv1.push_back("--seed");
  argv1.push_back("7");
  const int port = free_port();
  const pid_t p0 = spawn_process(argv0, rank_env(0, 2, port), dir.file("r0.log"));
  const pid_t p1 = spawn_process(argv1, rank_env(1, 2, port), dir.file("r1.log"));
  EXPECT_EQ(wait_for(p0, 120), 1);
  EXPECT_EQ(wait_for(p1, 120), 1);
  const std::string rank1 = slurp(dir.file("r1.log")), rank0 = slurp(dir.file("r0.log"));
  EXPECT_NE(rank1.find("train.seed: 0 -> 7"), std::string::npos) << rank1;
  EXPECT_NE(rank0.find("1 of 2 ranks were started with other settings"), std::string::npos) << rank0;
  EXPECT_FALSE(std::filesystem::exists(dir.file("run") + "/checkpoint.safetensors"));
}

TEST(DataParallel, ABatchThatDoesNotSplitIsRefused) {
  TempDir dir;
  std::string args = finetune_args("draft-lv", dir.file("run")) + " --steps 1";
  args.replace(args.find("--batch-size 4"), 14, "--batch-size 3");
  const auto codes = run_ranks(2, args, dir.file("r"), 120);
  EXPECT_EQ(codes, std::vector<int>({1, 1}));
  EXPECT_NE(slurp(dir.file("r0.log")).find("train.batch_size 3 does not split over 2 processes"), std::string::npos)
      << slurp(dir.file("r0.log"));
}

// SIGKILL of rank 1 after the first checkpoint: rank 0 exits non-zero within --dist-timeout with one line
// saying a rank was lost; the checkpoint it left resumes.
TEST(DataParallel, AKilledRankStopsTheOtherWithinTheTimeoutAndTheRunResumes) {
  TempDir dir;
  const std::string run = dir.file("run");
  std::string args = finetune_args("draft-lv", run) + " --steps 400";
  args.replace(args.find("--dist-timeout 30"), 17, "--dist-timeout 5");
  std::vector<std::string> argv = {DRAFT_CLI_PATH};
  for (const auto& a : split_args(args)) argv.push_back(a);
  const int port = free_port();
  const pid_t p0 = spawn_process(argv, rank_env(0, 2, port), dir.file("r0.log"));
  const pid_t p1 = spawn_process(argv, rank_env(1, 2, port), dir.file("r1.log"));
  const auto waited = std::chrono::steady_clock::now();
  while (!std::filesystem::exists(run + "/checkpoint.safetensors") &&
         std::chrono::steady_clock::now() - waited < std::chrono::seconds(120)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (!std::filesystem::exists(run + "/checkpoint.safetensors")) {
    kill(p0, SIGKILL);
    kill(p1, SIGKILL);
    wait_for(p0, 5);
    wait_for(p1, 5);
    FAIL() << "no checkpoint within 120 s: " << slurp(dir.file("r0.log")) << slurp(dir.file("r1.log"));
  }
  ASSERT_EQ(kill(p1, SIGKILL), 0);
  const auto killed = std::chrono::steady_clock::now();
  const int code = wait_for(p0, 60);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  wait_for(p1, 5);
  const std::string log = slurp(dir.file("r0.log"));
  std::printf("rank 1 killed: rank 0 exited with %d after %.1f s\n", code, seconds);
  EXPECT_NE(code, 0) << log;
  EXPECT_NE(code, -1) << "rank 0 hung: " << log;
  EXPECT_LT(seconds, 5.0 + 15.0) << log;
  EXPECT_NE(log.find("a rank was lost"), std::string::npos) << log;
  // The checkpoint is whole: the run resumes (on one process) and finishes a step beyond what rank 0 recorded
  // (the checkpoint is at most that far).
  const std::string steps = std::to_string(train_records(run).size() + 1);
  const auto resumed = run_ranks(1, "--threads 1 finetune --resume " + run + " --steps " + steps, dir.file("resume"));
  EXPECT_EQ(resumed, std::vector<int>({0})) << slurp(dir.file("resume0.log"));
  EXPECT_TRUE(std::filesystem::exists(run + "/lora_final.safetensors"));
}

}  // namespace
