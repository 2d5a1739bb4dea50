// LoRA: LoRALinear (no-op init, merge/unmerge, scaling), injection into the tiny UNet, diffusers and kohya
// files (round trips, literal key names, alpha), mixing, merged model folders and error messages.
#include <cmath>
#include <filesystem>
#include <map>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "diffusion/stable_diffusion.h"
#include "lora/lora.h"
#include "diffusion/pipeline_lora.h"
#include "lora/lora_file.h"
#include "io/safetensors.h"
#include "models/unet_2d_condition.h"
#include "lora/lora_linear.h"
#include "support.h"
#include "util/error.h"

namespace {

using draft::test::expect_error;
using draft::test::TempDir;
using draft::test::tensors_close;
using draft::test::test_data;

const char* const kQ = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q";

draft::UNet2DCondition tiny_unet() { return draft::load_unet(test_data("unet_sd15_tiny")); }

struct UNetInput {
  at::Tensor sample, t, context;
};

UNetInput unet_input() {
  torch::manual_seed(7);
  return {torch::randn({2, 4, 16, 16}), torch::tensor({500, 20}), torch::randn({2, 5, 32})};
}

at::Tensor run(draft::UNet2DCondition& unet, const UNetInput& in) {
  torch::NoGradGuard no_grad;
  return unet->forward(in.sample, in.t, in.context);
}

// A trained-looking adapter: B is zero after injection, so give A and B random values.
void randomize(const draft::LoRANetwork& network, uint64_t seed, double std = 0.05) {
  torch::manual_seed(seed);
  torch::NoGradGuard no_grad;
  for (auto& p : network.parameters()) p.normal_(0.0, std);
}

draft::LoRANetwork trained_lora(draft::UNet2DCondition& unet, uint64_t seed, draft::LoRAConfig config = {}) {
  auto network = draft::inject_lora(unet, config);
  randomize(network, seed);
  return network;
}

std::map<std::string, at::Tensor> state(draft::UNet2DCondition& unet) {
  std::map<std::string, at::Tensor> out;
  for (const auto& item : unet->named_parameters()) out[item.key()] = item.value().detach().clone();
  return out;
}

TEST(LoRALinear, FreshAdapterIsABitExactNoOp) {
  torch::manual_seed(0);
  torch::nn::Linear base(16, 8);
  const at::Tensor x = torch::randn({3, 5, 16});
  const at::Tensor expected = base(x).detach();
  draft::LoRALinear lora(base);
  lora->add_adapter(4, 4.0);
  EXPECT_TRUE(torch::equal(lora(x), expected));
  // A is Kaiming-uniform as in PEFT (|A| <= 1/sqrt(in)), B is zero; only the adapter trains.
  EXPECT_LE(lora->lora_down(0).abs().max().item<double>(), 1.0 / std::sqrt(16.0) + 1e-7);
  EXPECT_EQ(lora->lora_up(0).abs().max().item<double>(), 0.0);
  EXPECT_TRUE(lora->lora_down(0).requires_grad());
  EXPECT_FALSE(lora->weight.requires_grad());
  EXPECT_FALSE(base->weight.requires_grad());
  // State-dict keys of the base are unchanged: weight, bias.
  EXPECT_TRUE(lora->named_parameters().contains("weight"));
  EXPECT_TRUE(lora->named_parameters().contains("bias"));
  EXPECT_TRUE(lora->named_parameters().contains("lora_A.0.weight"));
}

TEST(LoRALinear, ScalingMergeAndUnmerge) {
  torch::manual_seed(1);
  torch::nn::Linear base(12, 6);
  const at::Tensor w0 = base->weight.detach().clone();
  const at::Tensor x = torch::randn({4, 12});
  draft::LoRALinear lora(base);
  const at::Tensor down = torch::randn({3, 12}), up = torch::randn({6, 3});
  lora->add_adapter(down, up, /*alpha=*/6.0, /*scale=*/1.0);
  torch::NoGradGuard no_grad;
  const at::Tensor y0 = torch::linear(x, w0, base->bias);
  // Hu et al. eq. (3) with the alpha / r factor: y = W x + b + s (alpha / r) B A x.
  const at::Tensor expected = y0 + torch::linear(torch::linear(x, down), up) * (6.0 / 3.0);
  const at::Tensor y1 = lora(x);
  EXPECT_TRUE(tensors_close(y1, expected, 1e-5));
  lora->set_scale(0, 0.0);
  EXPECT_TRUE(torch::equal(lora(x), y0));
  lora->set_scale(0, 2.0);
  EXPECT_TRUE(tensors_close(lora(x) - y0, 2 * (y1 - y0), 1e-5));
  lora->set_scale(0, 1.0);
  lora->merge();
  EXPECT_TRUE(lora->merged());
  EXPECT_TRUE(tensors_close(lora(x), y1, 1e-5));
  EXPECT_THROW(lora->set_scale(0, 2.0), draft::Error);
  lora->unmerge();
  EXPECT_TRUE(tensors_close(lora->weight, w0, 1e-6));
  EXPECT_TRUE(tensors_close(lora(x), y1, 1e-5));
  // Two stacked adapters: the deltas add.
  const at::Tensor down2 = torch::randn({2, 12}), up2 = torch::randn({6, 2});
  lora->add_adapter(down2, up2, 2.0, 0.5);
  const at::Tensor y12 = lora(x);
  const at::Tensor delta2 = torch::linear(torch::linear(x, down2), up2) * 0.5;
  EXPECT_TRUE(tensors_close(y12, y1 + delta2, 1e-5));
}

// In inference mode (the sampling chain) forward uses W + the deltas merged once and kept: the same
// values as the unmerged sum, and a new merge after every change an optimizer step, a new scale or a second
// adapter makes; plain no-grad calls (what gradient checkpointing recomputes) stay unmerged and bit-exact.
TEST(LoRALinear, InferenceModeMergesOnceAndFollowsEveryChange) {
  torch::manual_seed(3);
  torch::nn::Linear base(12, 6);
  const at::Tensor x = torch::randn({4, 12});
  draft::LoRALinear lora(base);
  lora->add_adapter(torch::randn({3, 12}), torch::randn({6, 3}), /*alpha=*/6.0);
  auto unmerged = [&] {
    torch::NoGradGuard no_grad;
    return lora(x);
  };
  auto inference = [&] {
    c10::InferenceMode guard;
    return lora(x).clone();
  };
  EXPECT_TRUE(tensors_close(inference(), unmerged(), 1e-5));
  EXPECT_FALSE(torch::equal(inference(), unmerged()));  // a different sum: the merged path ran
  {
    torch::NoGradGuard no_grad;  // as AdamW updates: in place, without gradients
    lora->lora_up(0).add_(0.5);
  }
  EXPECT_TRUE(tensors_close(inference(), unmerged(), 1e-5));
  lora->set_scale(0, 0.25);
  EXPECT_TRUE(tensors_close(inference(), unmerged(), 1e-5));
  lora->add_adapter(torch::randn({2, 12}), torch::randn({6, 2}), 2.0, 0.5);
  EXPECT_TRUE(tensors_close(inference(), unmerged(), 1e-5));
  // The fresh adapter's zero B: bit-identical to the base in inference mode too.
  torch::nn::Linear base2(12, 6);
  draft::LoRALinear fresh(base2);
  fresh->add_adapter(4, 4.0);
  c10::InferenceMode guard;
  EXPECT_TRUE(torch::equal(fresh(x), base2(x)));
}

// Mixed precision: under a bfloat16 base the adapters stay float32 master weights (the optimizer and its
// state work in float32), are cast for the matmul, and receive float32 gradients; the fresh A is the one
// an f32 base gets for the same seed, since it is drawn on the CPU in float32 either way.
TEST(LoRALinear, MasterWeightsStayFloat32UnderABf16Base) {
  torch::manual_seed(2);
  torch::nn::Linear base(16, 8);
  torch::nn::Linear half(16, 8);
  {
    torch::NoGradGuard no_grad;
    half->weight.copy_(base->weight);
    half->bias.copy_(base->bias);
  }
  half->to(torch::kBFloat16);
  draft::LoRALinear full_lora(base), half_lora(half);
  torch::manual_seed(11);
  full_lora->add_adapter(4, 4.0);
  torch::manual_seed(11);
  half_lora->add_adapter(4, 4.0);
  EXPECT_EQ(half_lora->lora_down(0).scalar_type(), torch::kFloat);
  EXPECT_EQ(half_lora->lora_up(0).scalar_type(), torch::kFloat);
  EXPECT_EQ(half_lora->weight.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(half_lora->lora_down(0), full_lora->lora_down(0)));
  {
    torch::NoGradGuard no_grad;
    half_lora->lora_up(0).normal_(0.0, 0.1);
    full_lora->lora_up(0).copy_(half_lora->lora_up(0));
  }
  const at::Tensor x = torch::randn({3, 16});
  const at::Tensor y = half_lora(x.to(torch::kBFloat16));
  EXPECT_EQ(y.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(tensors_close(y.to(torch::kFloat), full_lora(x).detach(), 0.05));  // bf16 has 8 bits of mantissa
  y.to(torch::kFloat).square().sum().backward();
  EXPECT_EQ(half_lora->lora_down(0).grad().scalar_type(), torch::kFloat);
  EXPECT_EQ(half_lora->lora_up(0).grad().scalar_type(), torch::kFloat);
  EXPECT_GT(half_lora->lora_down(0).grad().abs().sum().item<double>(), 0.0);
  // Loaded adapters are float32 too, and merging folds the delta into the bf16 weight.
  draft::LoRALinear loaded(half);
  loaded->add_adapter(torch::randn({2, 16}, torch::kDouble), torch::randn({8, 2}, torch::kDouble), 2.0);
  EXPECT_EQ(loaded->lora_down(0).scalar_type(), torch::kFloat);
  EXPECT_EQ(loaded->delta_weight(0).scalar_type(), torch::kBFloat16);
}

// Label `gpu`: the seeded adapter is the same on CUDA as on the CPU (A is drawn on the CPU generator).
TEST(LoRAUNet, SeededInitIsTheSameOnCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "CUDA is not available";
  auto cpu_unet = tiny_unet();
  auto cuda_unet = tiny_unet();
  cuda_unet->to(torch::kCUDA);
  const auto on_cpu = draft::inject_lora(cpu_unet, {}, 1234);
  const auto on_cuda = draft::inject_lora(cuda_unet, {}, 1234);
  ASSERT_EQ(on_cpu.layers.size(), on_cuda.layers.size());
  for (std::size_t i = 0; i < on_cpu.layers.size(); ++i) {
    EXPECT_TRUE(on_cuda.layers[i].down().is_cuda());
    EXPECT_TRUE(torch::equal(on_cuda.layers[i].down().cpu(), on_cpu.layers[i].down())) << on_cpu.layers[i].name;
  }
}

TEST(LoRAUNet, InjectionIsANoOpAndOnlyAdaptersTrain) {
  auto unet = tiny_unet();
  const UNetInput in = unet_input();
  const at::Tensor before = run(unet, in);
  const auto base_keys = state(unet);
  auto network = draft::inject_lora(unet, {});
  EXPECT_TRUE(torch::equal(run(unet, in), before));
  // tiny UNet: 2 (down) + 1 (mid) + 3 (up) transformer blocks, 2 attentions each, 4 projections
  EXPECT_EQ(network.layers.size(), 6u * 2 * 4);
  EXPECT_EQ(network.layers.front().name, kQ);
  // Base keys unchanged; the only additions are the adapters, and only they require grad.
  const auto after = state(unet);
  for (const auto& [key, value] : base_keys) EXPECT_TRUE(after.count(key)) << key;
  int64_t trainable = 0;
  for (const auto& item : unet->named_parameters()) {
    const bool adapter = item.key().find(".lora_A.") != std::string::npos || item.key().find(".lora_B.") != std::string::npos;
    EXPECT_EQ(adapter, !base_keys.count(item.key())) << item.key();
    EXPECT_EQ(item.value().requires_grad(), adapter) << item.key();
    trainable += item.value().requires_grad() ? 1 : 0;
  }
  EXPECT_EQ(trainable, static_cast<int64_t>(network.parameters().size()));
  // Gradients reach the adapters (B first: with B = 0, dL/dA is zero).
  unet->forward(in.sample, in.t, in.context).square().mean().backward();
  EXPECT_GT(network.layers.front().up().grad().abs().sum().item<double>(), 0.0);
}

TEST(LoRAUNet, FeedForwardTargetsAndMergedForward) {
  auto unet = tiny_unet();
  const UNetInput in = unet_input();
  draft::LoRAConfig config;
  config.rank = 2;
  config.alpha = 4;
  config.targets = {"attn2.to_k", "ff.net.0.proj", "ff.net.2"};
  auto network = trained_lora(unet, 3, config);
  EXPECT_EQ(network.layers.size(), 6u * 3);
  const at::Tensor unmerged = run(unet, in);
  auto modules = draft::lora_modules(unet);
  for (auto& [name, module] : modules) module->merge();
  EXPECT_TRUE(tensors_close(run(unet, in), unmerged, 1e-5));
  for (auto& [name, module] : modules) module->unmerge();
  EXPECT_TRUE(tensors_close(run(unet, in), unmerged, 1e-5));
}

TEST(LoRAFiles, RoundTripInBothLayoutsGivesTheSameUNet) {
  for (const auto format : {draft::LoRAFormat::kDiffusers, draft::LoRAFormat::kKohya}) {
    SCOPED_TRACE(draft::lora_format_name(format));
    TempDir dir;
    auto unet = tiny_unet();
    draft::LoRAConfig config;
    config.alpha = 8;  // != rank, so alpha must round-trip
    config.targets.push_back("ff.net.2");
    auto network = trained_lora(unet, 11, config);
    const UNetInput in = unet_input();
    const at::Tensor expected = run(unet, in);
    const std::string path = dir.file(draft::kLoRAWeightName);
    draft::save_lora(network, path, format);

    auto fresh = tiny_unet();
    const draft::LoRAFile file = draft::apply_lora(fresh, path, 1.0);
    EXPECT_EQ(file.format, format);
    ASSERT_EQ(file.layers.size(), network.layers.size());
    EXPECT_EQ(file.layers.front().alpha, 8.0);
    ASSERT_TRUE(file.config.has_value());
    EXPECT_EQ(file.config->targets, config.targets);
    EXPECT_TRUE(tensors_close(run(fresh, in), expected, 1e-6));
    // A folder holding pytorch_lora_weights.safetensors loads too (diffusers' load_lora_weights(folder)).
    EXPECT_EQ(draft::read_lora_file(dir.path(), fresh).layers.size(), network.layers.size());
  }
}

TEST(LoRAFiles, KeyNamesMatchDiffusersAndKohya) {
  TempDir dir;
  auto unet = tiny_unet();
  auto network = trained_lora(unet, 5);
  draft::save_lora(network, dir.file("d.safetensors"), draft::LoRAFormat::kDiffusers);
  draft::save_lora(network, dir.file("k.safetensors"), draft::LoRAFormat::kKohya);
  draft::SafeTensorsFile d(dir.file("d.safetensors")), k(dir.file("k.safetensors"));
  for (const char* key : {"unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight",
                          "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_B.weight",
                          "unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_k.lora_A.weight",
                          "unet.up_blocks.1.attentions.2.transformer_blocks.0.attn2.to_out.0.lora_B.weight"}) {
    EXPECT_TRUE(d.contains(key)) << key;
  }
  EXPECT_EQ(d.tensors().size(), network.layers.size() * 2);
  EXPECT_EQ(d.find("unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight")->shape,
            (std::vector<int64_t>{4, 32}));
  EXPECT_EQ(d.metadata().at("format"), "pt");
  const auto meta = nlohmann::json::parse(d.metadata().at("lora_adapter_metadata"));
  EXPECT_EQ(meta.at("unet.r"), 4);
  EXPECT_EQ(meta.at("unet.lora_alpha"), 4.0);

  for (const char* key : {"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight",
                          "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_up.weight",
                          "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.alpha",
                          "lora_unet_up_blocks_1_attentions_2_transformer_blocks_0_attn2_to_out_0.lora_up.weight"}) {
    EXPECT_TRUE(k.contains(key)) << key;
  }
  EXPECT_EQ(k.tensors().size(), network.layers.size() * 3);
  const at::Tensor alpha = k.load("lora_unet_mid_block_attentions_0_transformer_blocks_0_attn1_to_v.alpha");
  EXPECT_EQ(alpha.dim(), 0);  // kohya stores alpha as a scalar
  EXPECT_EQ(alpha.item<float>(), 4.0f);
  EXPECT_EQ(k.metadata().at("ss_network_dim"), "4");
}

TEST(LoRAFiles, LdmNamesOfStableDiffusion15) {
  const auto sd15 = draft::UNetConfig::sd15();
  EXPECT_EQ(draft::ldm_module_name("down_blocks.0.attentions.1.transformer_blocks.0.attn1.to_q", sd15),
            "input_blocks.2.1.transformer_blocks.0.attn1.to_q");
  EXPECT_EQ(draft::ldm_module_name("down_blocks.2.attentions.1.transformer_blocks.0.attn2.to_out.0", sd15),
            "input_blocks.8.1.transformer_blocks.0.attn2.to_out.0");
  EXPECT_EQ(draft::ldm_module_name("mid_block.attentions.0.transformer_blocks.0.ff.net.2", sd15),
            "middle_block.1.transformer_blocks.0.ff.net.2");
  EXPECT_EQ(draft::ldm_module_name("up_blocks.1.attentions.0.transformer_blocks.0.attn1.to_k", sd15),
            "output_blocks.3.1.transformer_blocks.0.attn1.to_k");
  EXPECT_EQ(draft::ldm_module_name("up_blocks.3.attentions.2.transformer_blocks.0.attn1.to_k", sd15),
            "output_blocks.11.1.transformer_blocks.0.attn1.to_k");
  EXPECT_EQ(draft::ldm_module_name("down_blocks.0.resnets.0.conv1", sd15), "");
}

// Files as other tools write them: kohya with LDM names, diffusers < 0.21 attention processors, and a
// PEFT file without metadata (alpha = rank).
TEST(LoRAFiles, ReadsOtherSpellings) {
  TempDir dir;
  auto unet = tiny_unet();
  draft::LoRAConfig config;
  config.alpha = 2;
  auto network = trained_lora(unet, 9, config);
  const UNetInput in = unet_input();
  const at::Tensor expected = run(unet, in);
  const auto cfg = unet->config();
  std::vector<std::pair<std::string, at::Tensor>> ldm, procs, peft;
  for (const auto& layer : network.layers) {
    const std::string k = draft::kohya_lora_name(draft::ldm_module_name(layer.name, cfg));
    ldm.emplace_back(k + ".lora_down.weight", layer.down().detach());
    ldm.emplace_back(k + ".lora_up.weight", layer.up().detach());
    ldm.emplace_back(k + ".alpha", torch::tensor(2.0f));
    std::string p = layer.name;
    for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
             {".to_q", ".processor.to_q_lora"}, {".to_k", ".processor.to_k_lora"}, {".to_v", ".processor.to_v_lora"},
             {".to_out.0", ".processor.to_out_lora"}}) {
      if (p.size() > from.size() && p.compare(p.size() - from.size(), from.size(), from) == 0) {
        p = p.substr(0, p.size() - from.size()) + to;
        break;
      }
    }
    // The processor format predates alpha: fold alpha / r = 0.5 into B to keep the same delta.
    procs.emplace_back("unet." + p + ".down.weight", layer.down().detach());
    procs.emplace_back("unet." + p + ".up.weight", layer.up().detach() * 0.5);
    peft.emplace_back("unet." + layer.name + ".lora_A.weight", layer.down().detach());
    peft.emplace_back("unet." + layer.name + ".lora_B.weight", layer.up().detach() * 0.5);
  }
  draft::save_safetensors(dir.file("ldm.safetensors"), ldm);
  draft::save_safetensors(dir.file("procs.safetensors"), procs);
  draft::save_safetensors(dir.file("peft.safetensors"), peft);
  for (const char* name : {"ldm.safetensors", "procs.safetensors", "peft.safetensors"}) {
    SCOPED_TRACE(name);
    auto fresh = tiny_unet();
    draft::apply_lora(fresh, dir.file(name), 1.0);
    EXPECT_TRUE(tensors_close(run(fresh, in), expected, 1e-5));
  }
}

TEST(LoRAMix, ScalesAndSumsOfDeltas) {
  TempDir dir;
  auto unet = tiny_unet();
  const auto w0 = state(unet);
  auto a = trained_lora(unet, 21);
  draft::save_lora(a, dir.file("a.safetensors"), draft::LoRAFormat::kDiffusers);
  auto unet_b = tiny_unet();
  draft::LoRAConfig config_b;
  config_b.rank = 2;
  config_b.targets = {"to_v", "ff.net.2"};
  auto b = trained_lora(unet_b, 22, config_b);
  draft::save_lora(b, dir.file("b.safetensors"), draft::LoRAFormat::kKohya);

  // Merged weights W + s * delta for a file at a scale.
  auto merged = [&](const std::vector<std::pair<std::string, double>>& files) {
    auto u = tiny_unet();
    for (const auto& [f, s] : files) draft::apply_lora(u, dir.file(f), s);
    draft::remove_lora(u, /*merge=*/true);
    return state(u);
  };
  const UNetInput in = unet_input();
  {
    auto u = tiny_unet();
    const at::Tensor base = run(u, in);
    draft::apply_lora(u, dir.file("a.safetensors"), 0.0);
    EXPECT_TRUE(torch::equal(run(u, in), base));  // scale 0 is the base model
  }
  const auto m1 = merged({{"a.safetensors", 1.0}});
  const auto m2 = merged({{"a.safetensors", 2.0}});
  const auto mb = merged({{"b.safetensors", 1.0}});
  const auto mix = merged({{"a.safetensors", 1.0}, {"b.safetensors", 1.0}});
  const std::string key = std::string(kQ) + ".weight";
  EXPECT_GT((m1.at(key) - w0.at(key)).abs().max().item<double>(), 1e-4);
  for (const auto& [name, w] : w0) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(tensors_close(m2.at(name) - w, 2 * (m1.at(name) - w), 1e-6));              // scale 2 doubles
    EXPECT_TRUE(tensors_close(mix.at(name) - w, (m1.at(name) - w) + (mb.at(name) - w), 1e-6));  // deltas add
  }
  // Merged keys are exactly the base's: a merged UNet saves as a plain model.
  EXPECT_EQ(m1.size(), w0.size());
}

TEST(LoRAMix, MergedModelFolderMatchesModelPlusLoRA) {
  TempDir dir;
  const std::string pipeline = test_data("sd_pipeline_tiny");
  draft::StableDiffusion sd = draft::load_stable_diffusion(pipeline, {});
  auto network = trained_lora(sd.unet, 31);
  draft::save_lora(network, dir.file("l.safetensors"), draft::LoRAFormat::kKohya);
  const std::string spec = dir.file("l.safetensors") + ":0.7";
  draft::merge_lora_folder(pipeline, {spec}, dir.file("merged"));

  draft::StableDiffusion with_lora = draft::load_stable_diffusion(pipeline, {});
  draft::apply_loras(with_lora, {spec});
  draft::StableDiffusion merged = draft::load_stable_diffusion(dir.file("merged"), {});
  const UNetInput in = unet_input();
  EXPECT_TRUE(tensors_close(run(merged.unet, in), run(with_lora.unet, in), 1e-5));
  EXPECT_TRUE(expect_error([&] { draft::merge_lora_folder(pipeline, {spec}, pipeline); }).find("input model folder") !=
              std::string::npos);
}

TEST(LoRAErrors, ConfigAndSpecs) {
  draft::LoRAConfig c;
  c.rank = 0;
  EXPECT_NE(expect_error([&] { c.validate(); }).find("lora.rank must be >= 1"), std::string::npos);
  c = {};
  c.targets = {"to_q", "conv1"};
  EXPECT_NE(expect_error([&] { c.validate(); }).find("lora.targets: conv targets are not supported yet"),
            std::string::npos);
  c = {};
  c.text_encoder = true;
  EXPECT_NE(expect_error([&] { c.validate(); }).find("lora.text_encoder"), std::string::npos);
  EXPECT_NE(expect_error([&] { draft::LoRAConfig::from_json({{"rnak", 4}}); }).find("unknown key 'lora.rnak'"),
            std::string::npos);
  EXPECT_NE(expect_error([&] { draft::LoRAConfig::from_json({{"rank", "four"}}); }).find("key 'lora.rank' has the wrong type"),
            std::string::npos);
  const auto json = draft::LoRAConfig{8, 16, {"to_k"}, false}.to_json();
  EXPECT_EQ(draft::LoRAConfig::from_json(json).to_json(), json);
  auto unet = tiny_unet();
  c = {};
  c.targets = {"to_z"};
  EXPECT_NE(expect_error([&] { draft::inject_lora(unet, c); }).find("'to_z' matches no LoRA-capable layer"),
            std::string::npos);

  EXPECT_EQ(draft::parse_lora_spec("a/b.safetensors").scale, 1.0);
  const auto spec = draft::parse_lora_spec("c:/x:y/b.safetensors:0.5");
  EXPECT_EQ(spec.path, "c:/x:y/b.safetensors");
  EXPECT_EQ(spec.scale, 0.5);
  EXPECT_EQ(draft::parse_lora_spec("b.safetensors:-1").scale, -1.0);
  EXPECT_NE(expect_error([] { draft::parse_lora_spec(":2"); }).find("--lora"), std::string::npos);
  EXPECT_NE(expect_error([] { draft::parse_lora_format("webui"); }).find("--lora-format"), std::string::npos);
}

TEST(LoRAErrors, FilesNameTheKeyAndTheFile) {
  TempDir dir;
  auto unet = tiny_unet();
  const std::string a = "unet." + std::string(kQ) + ".lora_A.weight", b = "unet." + std::string(kQ) + ".lora_B.weight";
  auto write_and_read = [&](const std::string& name, const std::vector<std::pair<std::string, at::Tensor>>& tensors) {
    draft::save_safetensors(dir.file(name), tensors);
    return expect_error([&] { draft::apply_lora(unet, dir.file(name), 1.0); });
  };
  std::string msg = write_and_read("unknown.safetensors", {{a, torch::zeros({4, 32})}, {"unet.foo", torch::zeros({1})}});
  EXPECT_NE(msg.find("unknown key 'unet.foo'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unknown.safetensors"), std::string::npos) << msg;
  msg = write_and_read("shape.safetensors", {{a, torch::zeros({4, 31})}, {b, torch::zeros({32, 4})}});
  EXPECT_NE(msg.find("'" + a + "' has shape [4, 31], expected [rank, 32]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("shape.safetensors"), std::string::npos) << msg;
  msg = write_and_read("absent.safetensors",
                       {{"unet.down_blocks.7.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight", torch::zeros({4, 32})}});
  EXPECT_NE(msg.find("names layer 'unet.down_blocks.7.attentions.0.transformer_blocks.0.attn1.to_q'"),
            std::string::npos)
      << msg;
  msg = write_and_read("half.safetensors", {{a, torch::zeros({4, 32})}});
  EXPECT_NE(msg.find("no up (lora_B / lora_up) weight"), std::string::npos) << msg;
  msg = write_and_read("te.safetensors", {{"lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight",
                                           torch::zeros({4, 32})}});
  EXPECT_NE(msg.find("text-encoder LoRA"), std::string::npos) << msg;
  msg = expect_error([&] { draft::apply_lora(unet, dir.file("missing.safetensors"), 1.0); });
  EXPECT_NE(msg.find("missing.safetensors does not exist"), std::string::npos) << msg;
}

// Found by fuzz/fuzz_lora.cpp (seeds fuzz/corpus/lora/rank0_with_alpha and alpha_not_a_number): a rank-0 pair
// with an alpha in the metadata reached torch::nn::Linear(in, 0), whose initialisation threw c10::Error
// ("from is out of bounds"); a non-numeric unet.lora_alpha escaped as nlohmann's type_error.
TEST(LoRAErrors, HostileFilesRaiseDraftErrors) {
  TempDir dir;
  auto unet = tiny_unet();
  const std::string a = "unet." + std::string(kQ) + ".lora_A.weight", b = "unet." + std::string(kQ) + ".lora_B.weight";
  auto write_and_read = [&](const std::string& name, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                            const std::map<std::string, std::string>& metadata) {
    draft::save_safetensors(dir.file(name), tensors, metadata);
    return expect_error([&] { draft::apply_lora(unet, dir.file(name), 1.0); });
  };
  std::string msg = write_and_read("rank0.safetensors", {{a, torch::zeros({0, 32})}, {b, torch::zeros({32, 0})}},
                                   {{"lora_adapter_metadata", R"({"unet.lora_alpha": 1})"}});
  EXPECT_NE(msg.find("rank 0, a layer needs rank >= 1"), std::string::npos) << msg;
  msg = write_and_read("alpha.safetensors", {{a, torch::zeros({1, 32})}, {b, torch::zeros({32, 1})}},
                       {{"lora_adapter_metadata", R"({"unet.lora_alpha": "high"})"}});
  EXPECT_NE(msg.find("unet.lora_alpha must be a number, got \"high\""), std::string::npos) << msg;
  const std::string k = draft::kohya_lora_name(kQ);
  msg = write_and_read("inf.safetensors", {{k + ".lora_down.weight", torch::zeros({1, 32})},
                                           {k + ".lora_up.weight", torch::zeros({32, 1})},
                                           {k + ".alpha", torch::tensor(INFINITY)}}, {});
  EXPECT_NE(msg.find("must be a finite number > 0"), std::string::npos) << msg;
  EXPECT_TRUE(draft::lora_modules(unet).empty());  // nothing was applied
}

}  // namespace
