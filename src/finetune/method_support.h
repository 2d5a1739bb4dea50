// What the method files (src/finetune/*_method.cpp) share: the model call, rollout options from the
// context, the decode into reward images (checkpointed when differentiated), the reward loss, and the
// factories make_method() dispatches to. Internal to src/finetune.
#pragma once

#include <cstdint>
#include <memory>

#include <ATen/core/Tensor.h>

#include "finetune/method.h"
#include "models/autoencoder_kl.h"

namespace draft {

/// Throws draft::Error naming the missing or inconsistent field of a MethodContext (and a
/// non-differentiable reward unless `reward_values_only`).
void check_context(const MethodContext& context, bool reward_values_only = false);

/// context.eps, or guided_eps(sd->unet, conditioning, sampler.guidance_scale) when it is undefined.
EpsFn context_eps(const MethodContext& context);

/// RolloutOptions from the sampler settings: steps, eta, checkpoint, params; keeps no gradients.
RolloutOptions rollout_options(const MethodContext& context);

/// images = clamp(D(latents / scaling_factor) / 2 + 0.5, 0, 1) with the VAE decode inside a gradient
/// checkpoint (inputs: the latents), so its activations are not kept for backward. A plain decode when
/// the latents need no gradient.
at::Tensor decode_checkpointed(AutoencoderKL vae, const at::Tensor& latents);

/// The images the reward sees for `latents`: decode_checkpointed when context.sampler.checkpoint, else a
/// plain differentiable decode.
at::Tensor decode_for_reward(const MethodContext& context, const at::Tensor& latents);

/// r(images, prompts) as a (B) tensor; checks the reward returned one finite-typed score per image.
at::Tensor score_images(const MethodContext& context, const at::Tensor& images);

/// `local` (this process's samples along `dim`) placed at shard.offset in a zero tensor of the global
/// micro-batch's size and summed over the ranks: every process gets the whole micro-batch. `local` itself
/// when the shard is whole.
at::Tensor gather_samples(const BatchShard& shard, const at::Tensor& local, int64_t dim = 0);

/// This process's samples [offset, offset + local) of a global micro-batch tensor along `dim`.
at::Tensor local_samples(const BatchShard& shard, const at::Tensor& global, int64_t dim = 0);

/// The factories make_method() dispatches to (one file each). k = 0 means all N steps (full DRaFT).
std::unique_ptr<Method> make_draft_k_method(const std::string& name, int64_t k);
std::unique_ptr<Method> make_draft_lv_method(int64_t n);
std::unique_ptr<Method> make_refl_method(const MethodConfig& config);
std::unique_ptr<Method> make_alignprop_method(const MethodConfig& config);
std::unique_ptr<Method> make_ddpo_method(const MethodConfig& config);

}  // namespace draft
