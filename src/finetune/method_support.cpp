// Shared pieces of the fine-tuning methods.
#include "finetune/method_support.h"

#include <torch/torch.h>

#include "nn/gradient_checkpoint.h"
#include "util/error.h"
#include "util/seeds.h"

namespace draft {

void check_context(const MethodContext& c, bool reward_values_only) {
  DRAFT_CHECK(c.sd != nullptr && c.sd->scheduler && c.sd->vae, "method: the context has no model (MethodContext.sd)");
  DRAFT_CHECK(c.reward != nullptr, "method: the context has no reward (MethodContext.reward)");
  DRAFT_CHECK(reward_values_only || c.reward->differentiable(), "reward '", c.reward->name(),
              "' is not differentiable: gradient methods need a differentiable reward (use DDPO, or e.g. jpeg-proxy)");
  DRAFT_CHECK(c.x_T.defined() && c.x_T.dim() == 4, "method: x_T must be a (B, C, h, w) latent");
  DRAFT_CHECK(c.micro_batches >= 1 && c.micro_batch >= 0 && c.micro_batch < c.micro_batches,
              "method: micro_batch ", c.micro_batch, " must be in [0, micro_batches = ", c.micro_batches, ")");
  DRAFT_CHECK(c.sampler.steps >= 1, "sampler.steps must be at least 1, got ", c.sampler.steps);
  DRAFT_CHECK(c.eps || (c.sd->unet && c.conditioning.cond.defined()),
              "method: the context has neither an eps function nor a UNet with conditioning");
  DRAFT_CHECK(!c.params.empty(), "method: no trainable parameters in the context (MethodContext.params)");
  DRAFT_CHECK(static_cast<int64_t>(c.generators.size()) == c.x_T.size(0) && c.step_generator.defined(),
              "method: the context needs one generator per sample and a step generator (seed_method_draws)");
  for (const auto& p : c.params) {
    DRAFT_CHECK(p.defined() && p.requires_grad(), "method: every trainable parameter must require grad");
  }
}

void seed_method_draws(MethodContext& c, uint64_t seed, int64_t step, int64_t first_sample) {
  DRAFT_CHECK(c.x_T.defined(), "seed_method_draws: set the context's x_T first (one generator per sample)");
  c.generators.clear();
  for (int64_t j = 0; j < c.x_T.size(0); ++j) {
    c.generators.push_back(cpu_generator(derive_seed(seed, RandomStream::kSampleMethod, step, first_sample + j)));
  }
  c.step_generator = cpu_generator(derive_seed(seed, RandomStream::kStepMethod, step));
}

at::Tensor gather_samples(const BatchShard& shard, const at::Tensor& local, int64_t dim) {
  if (shard.whole()) return local;
  DRAFT_CHECK(local.size(dim) == shard.local, "gather_samples: ", local.size(dim), " samples, the shard holds ",
              shard.local);
  std::vector<int64_t> shape = local.sizes().vec();
  shape[static_cast<std::size_t>(dim)] = shard.global;
  at::Tensor global = torch::zeros(shape, local.options());
  global.narrow(dim, shard.offset, shard.local).copy_(local.detach());
  shard.group->all_reduce_sum({global});
  return global;
}

at::Tensor local_samples(const BatchShard& shard, const at::Tensor& global, int64_t dim) {
  if (shard.whole()) return global;
  DRAFT_CHECK(global.size(dim) == shard.global, "local_samples: ", global.size(dim), " samples, the global batch "
              "holds ", shard.global);
  return global.narrow(dim, shard.offset, shard.local).clone();
}

EpsFn context_eps(const MethodContext& c) {
  if (c.eps) return c.eps;
  return guided_eps(c.sd->unet, c.conditioning, c.sampler.guidance_scale);
}

RolloutOptions rollout_options(const MethodContext& c) {
  RolloutOptions o;
  o.steps = c.sampler.steps;
  o.eta = c.sampler.eta;
  o.checkpoint = c.sampler.checkpoint;
  o.params = c.params;
  return o;
}

at::Tensor decode_checkpointed(AutoencoderKL vae, const at::Tensor& latents) {
  return checkpoint([vae](const at::Tensor& z) mutable { return vae->decode_latents_to_images(z); }, latents, {});
}

at::Tensor decode_for_reward(const MethodContext& c, const at::Tensor& latents) {
  AutoencoderKL vae = c.sd->vae;
  if (c.sampler.checkpoint) return decode_checkpointed(vae, latents);
  return vae->decode_latents_to_images(latents);
}

at::Tensor score_images(const MethodContext& c, const at::Tensor& images) {
  at::Tensor r = c.reward->score(images, c.prompts);
  DRAFT_CHECK(r.dim() == 1 && r.size(0) == images.size(0), "reward '", c.reward->name(), "' returned shape ",
              r.sizes(), " for ", images.size(0), " images; expected one score per image");
  return r;
}

}  // namespace draft
