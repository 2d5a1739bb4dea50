// Benchmark: peak memory and time of one DRaFT-K step (forward + backward) on the embedded model for
// K = 1, 5, 10, 25, 50, with and without gradient checkpointing. Prints a markdown table, writes JSON.
//   build/bin/bench_checkpoint_memory [--model DIR] [--batch 4] [--steps 50] [--guidance 3]
//                                     [--reward classifier] [--json FILE]
// Memory method: LibTorch 1.13 has no hook on its CPU allocator, so each configuration runs in a child
// process (this program re-executed) with glibc's MALLOC_MMAP_THRESHOLD_=65536, so that freed buffers of
// 64 KiB and more go back to the OS and resident memory follows live tensor bytes (DESIGN.md section 6).
// The child resets its peak (echo 5 > /proc/self/clear_refs) after loading and a warm-up step, runs one
// step and reports VmHWM (peak resident) and the step's increment over the resident size before it.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "diffusion/text_to_image.h"
#include "finetune/method.h"
#include "io/json_file.h"
#include "rewards/reward_registry.h"
#include "method_step.h"
#include "util/threads.h"

namespace {

struct Args {
  std::string model = std::string(DRAFT_SOURCE_DIR) + "/models/fashion-sd";
  int64_t batch = 4, steps = 50;
  double guidance = 3.0;
  std::string reward = "classifier";
  std::string json = "bench_checkpoint_memory.json";
};

// kB value of a /proc/self/status field.
double status_kb(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stod(line.substr(field.size() + 1));
  }
  return -1;
}

void reset_peak() {
  std::ofstream clear("/proc/self/clear_refs");
  clear << "5";
}

// One configuration, in this process; prints one JSON line.
int child(const Args& a, int64_t k, bool checkpoint) {
  draft::configure_threads(0);
  draft::use_small_tensor_threading();
  draft::StableDiffusion sd = draft::load_stable_diffusion(a.model, {});
  draft::RewardContext rc;
  rc.models_dir = std::string(DRAFT_SOURCE_DIR) + "/models";
  auto reward = draft::make_reward(a.reward, rc);
  // Trainable stand-in for LoRA: the UNet's attention query/value projections.
  std::vector<at::Tensor> params;
  for (auto& item : sd.unet->named_parameters()) {
    const std::string& n = item.key();
    if (n.find("attn1.to_q.weight") != std::string::npos || n.find("attn1.to_v.weight") != std::string::npos) {
      item.value().set_requires_grad(true);
      params.push_back(item.value());
    }
  }
  std::vector<std::string> prompts;
  for (int64_t i = 0; i < a.batch; ++i) prompts.push_back(i % 2 ? "a photo of a sneaker" : "a photo of a coat");
  draft::Conditioning cond;
  {
    torch::NoGradGuard no_grad;
    cond = draft::encode_prompts(sd, prompts, {}, 1, 0, a.guidance > 1.0);
  }
  draft::MethodConfig cfg;
  cfg.name = "draft-k";
  cfg.k = k;
  cfg.validate(a.steps);
  auto method = draft::make_method(cfg);
  draft::SamplerSettings sampler;
  sampler.steps = a.steps;
  sampler.guidance_scale = a.guidance;
  sampler.checkpoint = checkpoint;
  auto run_step = [&](uint64_t seed) {
    draft::bench::run_method_step(*method, sd, *reward, prompts, cond, params, sampler, seed);
  };

  run_step(0);  // warm-up: first-call allocations, thread pools
  const double base_kb = status_kb("VmRSS");
  reset_peak();
  const auto start = std::chrono::steady_clock::now();
  run_step(1);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double peak_kb = status_kb("VmHWM");
  nlohmann::json out = {{"k", k}, {"checkpoint", checkpoint}, {"seconds", seconds},
                        {"base_mib", base_kb / 1024.0}, {"peak_mib", peak_kb / 1024.0},
                        {"step_peak_mib", (peak_kb - base_kb) / 1024.0}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

// Runs this program as a child for one configuration and parses its JSON line.
nlohmann::json run_child(char** argv, const std::vector<std::string>& extra) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    setenv("MALLOC_MMAP_THRESHOLD_", "65536", 1);
    std::vector<std::string> args;
    for (int i = 0; argv[i] != nullptr; ++i) args.push_back(argv[i]);
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> cargs;
    for (auto& s : args) cargs.push_back(s.data());
    cargs.push_back(nullptr);
    execv("/proc/self/exe", cargs.data());
    _exit(127);
  }
  close(fds[1]);
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) text.append(buf, static_cast<std::size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  const auto brace = text.rfind('{');
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || brace == std::string::npos) {
    throw std::runtime_error("child failed: " + text);
  }
  return nlohmann::json::parse(text.substr(brace));
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  int64_t child_k = -1;
  int child_ckpt = -1;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    if (s == "--model" && i + 1 < argc) a.model = argv[++i];
    else if (s == "--batch" && i + 1 < argc) a.batch = std::stoll(argv[++i]);
    else if (s == "--steps" && i + 1 < argc) a.steps = std::stoll(argv[++i]);
    else if (s == "--guidance" && i + 1 < argc) a.guidance = std::stod(argv[++i]);
    else if (s == "--reward" && i + 1 < argc) a.reward = argv[++i];
    else if (s == "--json" && i + 1 < argc) a.json = argv[++i];
    else if (s == "--child-k" && i + 1 < argc) child_k = std::stoll(argv[++i]);
    else if (s == "--child-checkpoint" && i + 1 < argc) child_ckpt = std::stoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: bench_checkpoint_memory [--model DIR] [--batch N] [--steps N] [--guidance W] "
                           "[--reward SPEC] [--json FILE]\n");
      return 2;
    }
  }
  try {
    if (child_k > 0) return child(a, child_k, child_ckpt != 0);
    std::printf("DRaFT-K step (forward + backward) on %s: batch %lld, %lld DDIM steps, guidance %.1f, reward %s;\n"
                "trainable: UNet attn1 to_q/to_v weights; %d cores, %s.\n"
                "Memory: peak resident (VmHWM) of a child process per row with MALLOC_MMAP_THRESHOLD_=65536;\n"
                "'step peak' = VmHWM during the step minus resident size before it.\n\n",
                a.model.c_str(), static_cast<long long>(a.batch), static_cast<long long>(a.steps), a.guidance,
                a.reward.c_str(), draft::available_cores(), draft::blas_description().c_str());
    std::printf("| K | checkpoint | step time (s) | step peak (MiB) | process peak (MiB) | step peak / K=1 |\n"
                "|---:|:---:|---:|---:|---:|---:|\n");
    nlohmann::json rows = nlohmann::json::array();
    for (int ckpt : {1, 0}) {
      double first = 0;
      for (int64_t k : {1, 5, 10, 25, 50}) {
        if (k > a.steps) continue;
        nlohmann::json r = run_child(argv, {"--child-k", std::to_string(k), "--child-checkpoint", std::to_string(ckpt)});
        const double step_peak = r["step_peak_mib"].get<double>();
        if (k == 1) first = step_peak;
        r["ratio_to_k1"] = step_peak / first;
        std::printf("| %lld | %s | %.2f | %.1f | %.1f | %.2fx |\n", static_cast<long long>(k), ckpt ? "yes" : "no",
                    r["seconds"].get<double>(), step_peak, r["peak_mib"].get<double>(), step_peak / first);
        std::fflush(stdout);
        rows.push_back(r);
      }
    }
    nlohmann::json out = {{"model", a.model}, {"batch", a.batch}, {"steps", a.steps}, {"guidance", a.guidance},
                          {"reward", a.reward}, {"malloc_mmap_threshold", 65536}, {"rows", rows}};
    draft::write_json_file(a.json, out);
    std::printf("\nwrote %s\n", a.json.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_checkpoint_memory: %s\n", e.what());
    return 1;
  }
  return 0;
}
