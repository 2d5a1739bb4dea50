// The draft CLI as a user meets it: help, version, info, doctor, and one-line errors with non-zero exits.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "cli_runner.h"
#include "io/safetensors.h"
#include "support.h"

namespace {

using draft::test::CliRun;
using draft::test::run_cli;
using draft::test::slurp;

int count_lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

TEST(Cli, HelpListsCommands) {
  CliRun r = run_cli("--help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("info"), std::string::npos);
  EXPECT_NE(r.out.find("doctor"), std::string::npos);
  EXPECT_NE(r.out.find("--threads"), std::string::npos);
}

TEST(Cli, EverySubcommandHasHelp) {
  for (const char* sub : {"info", "doctor", "sample", "eval", "score"}) {
    CliRun r = run_cli(std::string(sub) + " --help");
    EXPECT_EQ(r.code, 0) << sub;
    EXPECT_NE(r.out.find(sub), std::string::npos) << sub;
  }
}

TEST(Cli, Version) {
  CliRun r = run_cli("--version");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("draft 0."), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("LibTorch"), std::string::npos) << r.out;
}

TEST(Cli, BadFlagIsOneLineAndExitTwo) {
  CliRun r = run_cli("--no-such-flag");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("draft: error:"), std::string::npos);
  EXPECT_TRUE(r.out.empty());

  r = run_cli("info a.safetensors --bogus");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(count_lines(r.err), 1) << r.err;

  r = run_cli("--threads -3 doctor");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(count_lines(r.err), 1) << r.err;

  r = run_cli("");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
}

TEST(Cli, MissingFileIsOneLineAndExitOne) {
  CliRun r = run_cli("info /nonexistent/model.safetensors");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("/nonexistent/model.safetensors"), std::string::npos) << r.err;
}

TEST(Cli, InfoTableAndJson) {
  draft::test::TempDir dir;
  std::string path = dir.file("m.safetensors");
  draft::save_safetensors(path, {{"b.weight", torch::zeros({4, 3})}, {"a.bias", torch::zeros({4}, torch::kHalf)}},
                          {{"format", "pt"}});
  CliRun r = run_cli("info " + path);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_LT(r.out.find("a.bias"), r.out.find("b.weight"));  // sorted by name
  EXPECT_NE(r.out.find("2 tensors, 16 parameters"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("format: pt"), std::string::npos) << r.out;

  r = run_cli("info --json " + path);
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["parameter_count"], 16);
  EXPECT_EQ(j["tensors"][0]["name"], "a.bias");
  EXPECT_EQ(j["tensors"][0]["dtype"], "F16");
  EXPECT_EQ(j["tensors"][1]["shape"], nlohmann::json({4, 3}));
  EXPECT_EQ(j["metadata"]["format"], "pt");
}

TEST(Cli, DoctorReportsBlasThreadsAndSpeed) {
  CliRun r = run_cli("--threads 2 doctor --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["intra_op_threads"], 2);
  EXPECT_GT(j["matmul_gflops_512"].get<double>(), 0.0);
  EXPECT_NE(j["blas"].get<std::string>().find("BLAS"), std::string::npos);
}

TEST(Cli, PretrainHelpListsClassifier) {
  CliRun r = run_cli("pretrain --help");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("classifier"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("vae"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("unet"), std::string::npos) << r.out;
  r = run_cli("pretrain classifier --help");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("--resume"), std::string::npos) << r.out;
  r = run_cli("pretrain");  // a model is required
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
}

TEST(Cli, PretrainClassifierFlagsOverrideConfigFile) {
  if (!std::ifstream("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "no Fashion-MNIST";
  }
  draft::test::TempDir dir;
  nlohmann::json model = {{"channels", nlohmann::json::array({8})}, {"layers_per_block", 1},
                          {"norm_num_groups", 4}, {"hidden", 8}};
  nlohmann::json config = {{"epochs", 5}, {"limit", 64}, {"batch_size", 64}, {"seed", 3}, {"model", model}};
  std::ofstream(dir.file("c.json")) << config.dump();
  CliRun r = run_cli("--threads 1 pretrain classifier --config " + dir.file("c.json") + " --out " + dir.file("run") +
                     " --epochs 1 --batch-size 32");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("| all | 64 |"), std::string::npos) << r.out;
  auto resolved = nlohmann::json::parse(slurp(dir.file("run/config.json")));
  EXPECT_EQ(resolved["epochs"], 1);       // flag over file
  EXPECT_EQ(resolved["batch_size"], 32);  // flag over file
  EXPECT_EQ(resolved["limit"], 64);       // file over default
  EXPECT_EQ(resolved["seed"], 3);
  EXPECT_EQ(resolved["model"]["hidden"], 8);
  EXPECT_EQ(resolved["lr"], 1e-3);  // default

  r = run_cli("pretrain classifier --out " + dir.file("run"));  // the folder holds a run already
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("--resume"), std::string::npos) << r.err;
  // --resume takes the run's settings; a changed one is refused, naming it with both values.
  r = run_cli("pretrain classifier --resume " + dir.file("run") + " --lr 0.5 --batch-size 16");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("lr: 0.001 -> 0.5"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("batch_size: 32 -> 16"), std::string::npos) << r.err;
}

TEST(Cli, PretrainVaeThenUnetThenSample) {
  if (!std::ifstream("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "no Fashion-MNIST";
  }
  draft::test::TempDir dir;
  CliRun r = run_cli("pretrain unet --out " + dir.file("unet"));  // no VAE given
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("--vae"), std::string::npos) << r.err;

  nlohmann::json vae = {{"model", {{"block_out_channels", {8, 8, 16}}, {"norm_num_groups", 4}, {"in_channels", 1},
                                   {"out_channels", 1}, {"down_block_types", {"DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"}},
                                   {"up_block_types", {"UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"}}}}};
  std::ofstream(dir.file("vae.json")) << vae.dump();
  r = run_cli("--threads 1 pretrain vae --config " + dir.file("vae.json") + " --out " + dir.file("vae") +
              " --limit 64 --epochs 1 --batch-size 32");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("scaling_factor"), std::string::npos) << r.out;

  nlohmann::json unet = {{"unet", {{"block_out_channels", {16, 32}}, {"norm_num_groups", 8}, {"sample_size", 8},
                                   {"down_block_types", {"CrossAttnDownBlock2D", "DownBlock2D"}},
                                   {"up_block_types", {"UpBlock2D", "CrossAttnUpBlock2D"}}, {"layers_per_block", 1},
                                   {"cross_attention_dim", 16}, {"attention_head_dim", {1, 2}}}},
                         {"text_encoder", {{"hidden_size", 16}, {"intermediate_size", 32}, {"num_hidden_layers", 1},
                                           {"num_attention_heads", 2}, {"max_position_embeddings", 16}}}};
  std::ofstream(dir.file("unet.json")) << unet.dump();
  r = run_cli("--threads 1 pretrain unet --config " + dir.file("unet.json") + " --vae " + dir.file("vae/model") +
              " --out " + dir.file("unet") + " --limit 64 --epochs 1 --batch-size 32 --classifier \"\"");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("pipeline written"), std::string::npos) << r.out;
  auto resolved = nlohmann::json::parse(slurp(dir.file("unet/config.json")));
  EXPECT_EQ(resolved["unet"]["block_out_channels"], nlohmann::json({16, 32}));
  EXPECT_EQ(resolved["lr"], 5e-4);  // default

  r = run_cli("sample --model " + dir.file("unet/model") + " --prompt \"a bag\" --steps 2 -o " + dir.file("s.png"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(std::filesystem::exists(dir.file("s.png")));
}

TEST(Cli, EvalReportsRewardIntervalDiversityAndDrift) {
  const std::string model = draft::test::shipped_model("fashion-sd");
  const std::string models = draft::test::shipped_model("");
  CliRun r = run_cli("eval --model " + model + " --base " + model + " --models-dir " + models +
                     " --reward classifier --prompt 'a photo of a coat' --prompt 'a bag' --n 3 --steps 3"
                     " --guidance 3 --seed 1 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["reward"], "classifier");
  EXPECT_EQ(j["overall"]["n"], 6);
  EXPECT_EQ(j["per_prompt"].size(), 2U);
  const double mean = j["overall"]["mean"];
  EXPECT_LE(mean, 0.0);
  EXPECT_LE(j["overall"]["ci95"][0].get<double>(), mean);
  EXPECT_GE(j["overall"]["ci95"][1].get<double>(), mean);
  EXPECT_EQ(j["feature_space"], "reward:classifier");
  EXPECT_GT(j["diversity"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(j["drift"].get<double>(), 0.0);  // the base is the same model, same seeds
  EXPECT_DOUBLE_EQ(j["base"]["reward"]["mean"].get<double>(), mean);

  CliRun table = run_cli("eval --model " + model + " --models-dir " + models +
                         " --reward jpeg --prompt 'a coat' --n 2 --steps 2");
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_NE(table.out.find("| **all** | 2 |"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("classifier feature space"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("n/a (give --base DIR)"), std::string::npos) << table.out;
}

TEST(Cli, ScoreImagesAndUnknownReward) {
  draft::test::TempDir dir;
  const std::string model = draft::test::shipped_model("fashion-sd");
  CliRun sample = run_cli("sample --model " + model + " --prompt 'a sandal' --n 2 --steps 3 --guidance 3 -o " +
                          dir.file("a.png"));
  ASSERT_EQ(sample.code, 0) << sample.err;
  // A grid of two 32x32 images is 32x66 with padding; score it with the JPEG size, which takes any size.
  CliRun r = run_cli("score --reward jpeg,jpeg:quality=50:-1 " + dir.file("a.png") + " " + dir.file("a.png") +
                     " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["images"].size(), 2U);
  EXPECT_GT(j["images"][0]["score"].get<double>(), 0.0);  // quality 95 is larger than quality 50
  EXPECT_DOUBLE_EQ(j["images"][0]["score"].get<double>(), j["images"][1]["score"].get<double>());
  CliRun table = run_cli("score --reward jpeg " + dir.file("a.png"));
  EXPECT_NE(table.out.find("| " + dir.file("a.png") + " |  | "), std::string::npos) << table.out;

  CliRun unknown = run_cli("score --reward aesthetics " + dir.file("a.png"));
  EXPECT_EQ(unknown.code, 1);
  EXPECT_NE(unknown.err.find("unknown reward 'aesthetics'; available: "), std::string::npos) << unknown.err;
  EXPECT_EQ(count_lines(unknown.err), 1);
  CliRun wrong = run_cli("score --reward classifier --models-dir " + draft::test::shipped_model("") + " --prompt 'a car' " +
                         dir.file("a.png"));
  EXPECT_EQ(wrong.code, 1);
  EXPECT_NE(wrong.err.find("32x32"), std::string::npos) << wrong.err;
}

TEST(Cli, PlotDrawsAMetricOfRuns) {
  draft::test::TempDir a;
  draft::test::TempDir b;
  {
    std::ofstream m(a.file("metrics.jsonl"));
    m << R"({"step": 1, "reward_mean": -1.0, "reward_std": 0.2, "reward_queries": 8})" << "\n"
      << R"({"step": 2, "reward_mean": -0.5, "reward_std": 0.1, "reward_queries": 16})" << "\n"
      << R"({"kind": "eval", "step": 2, "eval_reward_mean": -0.4})" << "\n";
    std::ofstream n(b.file("metrics.jsonl"));
    n << R"({"step": 1, "reward_mean": -0.9, "reward_queries": 4})" << "\n";
  }
  CliRun one = run_cli("plot " + a.path());
  ASSERT_EQ(one.code, 0) << one.err;
  const std::string svg = slurp(a.file("reward_mean.svg"));
  EXPECT_NE(svg.find("<polyline"), std::string::npos);
  EXPECT_NE(svg.find("<polygon"), std::string::npos);  // reward_std band
  CliRun two = run_cli("plot " + a.path() + " " + b.path() + " --x reward_queries --log-x --label LV --label ReFL -o " +
                       a.file("q.svg"));
  ASSERT_EQ(two.code, 0) << two.err;
  EXPECT_NE(slurp(a.file("q.svg")).find(">ReFL</text>"), std::string::npos);
  CliRun missing = run_cli("plot " + a.path() + " --y nothing");
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("no line with both 'step' and 'nothing'"), std::string::npos) << missing.err;
}

TEST(Cli, FinetuneFlagsReachTheRunConfigAndResumeFinishes) {
  draft::test::TempDir dir;
  const std::string run = dir.file("run");
  const std::string base = "--threads 1 finetune --model " + draft::test::shipped_model("fashion-sd") +
                           " --reward jpeg-proxy:-1 --prompt 'a photo of a bag' --method draft-k --k 2"
                           " --sampling-steps 3 --guidance 1 --batch-size 1 --lr 0.002 --eval-every 0"
                           " --save-every 1 --run-dir " + run;
  CliRun r = run_cli(base + " --steps 2");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("done: 2 steps"), std::string::npos) << r.out;
  const auto config = nlohmann::json::parse(slurp(run + "/config.json"));
  EXPECT_EQ(config["method"]["name"], "draft-k");
  EXPECT_EQ(config["method"]["k"], 2);
  EXPECT_EQ(config["sampler"]["steps"], 3);
  EXPECT_DOUBLE_EQ(config["optimizer"]["lr"].get<double>(), 0.002);
  EXPECT_TRUE(std::filesystem::exists(run + "/lora_final.safetensors"));
  // --resume with more steps continues from the checkpoint at step 2.
  CliRun more = run_cli("--threads 1 finetune --resume " + run + " --steps 3");
  ASSERT_EQ(more.code, 0) << more.err;
  EXPECT_NE(more.out.find("done: 3 steps"), std::string::npos) << more.out;
  CliRun changed = run_cli("--threads 1 finetune --resume " + run + " --lr 0.01 --k 1");
  EXPECT_EQ(changed.code, 1);
  EXPECT_NE(changed.err.find("optimizer.lr: 0.002 -> 0.01"), std::string::npos) << changed.err;
  EXPECT_NE(changed.err.find("method.k: 2 -> 1"), std::string::npos) << changed.err;
  CliRun bad = run_cli("--threads 1 finetune --model " + draft::test::shipped_model("fashion-sd") +
                       " --prompt 'a bag' --method dpo --run-dir " + dir.file("bad"));
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("dpo"), std::string::npos) << bad.err;
}

}  // namespace
