// Gradient checkpointing for LibTorch C++ (which has no torch.utils.checkpoint): a custom autograd
// Function that runs a function under no-grad, keeps only its inputs, and re-runs it in backward.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include <ATen/core/Tensor.h>

namespace draft {

/// The function a checkpoint wraps: x -> y. Every tensor that needs a gradient and that `fn` reaches
/// other than x (LoRA weights, ...) must be passed as `params`; anything else it captures is treated as
/// a constant. It must be deterministic (it runs twice: once in forward, once in backward).
using CheckpointFn = std::function<at::Tensor(const at::Tensor& x)>;

/// y = fn(x) with DESIGN.md section 3's checkpoint Function: the forward runs under no-grad and saves
/// only x and `params`; the backward re-runs fn with grad enabled and returns d/dx and d/dparams
/// (zeros-free: parameters the call does not use get no gradient). Gives the parameter gradients even
/// when x does not require grad (PyTorch's reentrant checkpoint gives none there). When neither x nor
/// any of `params` requires grad, or grad mode is off, this is a plain call of fn.
at::Tensor checkpoint(const CheckpointFn& fn, const at::Tensor& x, const std::vector<at::Tensor>& params);

/// A (x, t) -> y function such as the sampler's EpsFn (diffusion/rollout.h has the same signature).
using TimedFn = std::function<at::Tensor(const at::Tensor& x, int64_t t)>;

/// `fn` with every call checkpointed with respect to x and `params` (see checkpoint()).
TimedFn checkpointed(TimedFn fn, std::vector<at::Tensor> params);

}  // namespace draft
