// Gradient checkpoint Function (DESIGN.md section 3, "Gradient checkpointing").
#include "nn/gradient_checkpoint.h"

#include <memory>

#include <torch/torch.h>

#include "util/error.h"

namespace draft {
namespace {

// Holds the wrapped function inside the autograd context (saved_data keeps IValues; a capsule carries
// any CustomClassHolder), so it lives exactly as long as the graph node.
// The parameters are kept here as well (the same tensors, so autograd::grad finds them as inputs).
struct FnHolder : torch::CustomClassHolder {
  FnHolder(CheckpointFn f, std::vector<at::Tensor> p) : fn(std::move(f)), params(std::move(p)) {}
  CheckpointFn fn;
  std::vector<at::Tensor> params;
};

struct CheckpointFunction : public torch::autograd::Function<CheckpointFunction> {
  // Inputs: x, then the parameters as at::TensorList (LibTorch 1.13 sees a TensorList as inputs, not a
  // std::vector), then the function (not a tensor: it gets an undefined gradient).
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, at::TensorList params,
                            c10::intrusive_ptr<FnHolder> holder) {
    // 1. Run under no-grad (apply() already disabled grad mode) and keep only the inputs.
    std::vector<at::Tensor> saved{x};
    saved.insert(saved.end(), params.begin(), params.end());
    ctx->save_for_backward(saved);  // also checks that nothing modifies them in place before backward
    ctx->saved_data["fn"] = at::IValue::make_capsule(holder);
    return holder->fn(x);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    auto holder = c10::static_intrusive_pointer_cast<FnHolder>(ctx->saved_data["fn"].toCapsule());
    // 2. Backward runs with grad mode off: re-enable it and recompute from a fresh leaf copy of x.
    torch::AutoGradMode grad_on(true);
    at::Tensor x = saved[0].detach().requires_grad_(saved[0].requires_grad());
    at::Tensor y = holder->fn(x);
    // 3. d/d(inputs) of <grad_y, y> for the inputs that need it; one gradient per forward input.
    std::vector<at::Tensor> wrt;
    std::vector<std::size_t> index;
    for (std::size_t i = 0; i < saved.size(); ++i) {
      const at::Tensor& input = i == 0 ? x : holder->params[i - 1];
      if (input.requires_grad()) {
        wrt.push_back(input);
        index.push_back(i);
      }
    }
    torch::autograd::variable_list grads(saved.size() + 1);  // + the function argument
    if (wrt.empty() || !y.requires_grad()) return grads;
    auto computed = torch::autograd::grad({y}, wrt, {grad_outputs[0]}, /*retain_graph=*/false,
                                          /*create_graph=*/false, /*allow_unused=*/true);
    for (std::size_t j = 0; j < index.size(); ++j) grads[index[j]] = computed[j];
    return grads;
  }
};

}  // namespace

at::Tensor checkpoint(const CheckpointFn& fn, const at::Tensor& x, const std::vector<at::Tensor>& params) {
  DRAFT_CHECK(static_cast<bool>(fn), "checkpoint: no function given");
  bool needs_grad = x.requires_grad();
  for (const auto& p : params) {
    DRAFT_CHECK(p.defined(), "checkpoint: an undefined tensor among the trainable parameters");
    needs_grad = needs_grad || p.requires_grad();
  }
  if (!needs_grad || !torch::GradMode::is_enabled()) return fn(x);
  return CheckpointFunction::apply(x, at::TensorList(params), c10::make_intrusive<FnHolder>(fn, params));
}

TimedFn checkpointed(TimedFn fn, std::vector<at::Tensor> params) {
  // The backward may run after the returned function is gone: the recompute owns its own reference.
  auto shared = std::make_shared<const TimedFn>(std::move(fn));
  return [shared, params = std::move(params)](const at::Tensor& x, int64_t t) {
    return checkpoint([shared, t](const at::Tensor& input) { return (*shared)(input, t); }, x, params);
  };
}

}  // namespace draft
