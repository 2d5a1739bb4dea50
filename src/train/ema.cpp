// EMA update and weight copies between modules of the same architecture.
#include "train/ema.h"

#include <algorithm>

#include <torch/torch.h>

#include "util/error.h"

namespace draft {
namespace {

// Applies `fn(target, source)` to the same-named tensors of two modules.
template <typename Fn>
void zip_tensors(const torch::OrderedDict<std::string, at::Tensor>& to,
                 const torch::OrderedDict<std::string, at::Tensor>& from, const char* what, Fn fn) {
  DRAFT_CHECK(to.size() == from.size(), "EMA/copy: the modules have ", to.size(), " and ", from.size(), " ", what);
  for (const auto& item : to) {
    const at::Tensor* source = from.find(item.key());
    DRAFT_CHECK(source != nullptr, "EMA/copy: ", what, " '", item.key(), "' is missing in the source module");
    DRAFT_CHECK(source->sizes() == item.value().sizes(), "EMA/copy: ", what, " '", item.key(), "' has shape ",
                source->sizes(), " in the source but ", item.value().sizes(), " in the target");
    fn(item.value(), *source);
  }
}

}  // namespace

double ema_decay_at(double decay, int64_t step) {
  return std::min(decay, (1.0 + static_cast<double>(step)) / (10.0 + static_cast<double>(step)));
}

void ema_update(torch::nn::Module& ema, const torch::nn::Module& model, double decay) {
  torch::NoGradGuard no_grad;
  zip_tensors(ema.named_parameters(), model.named_parameters(), "parameter",
              [decay](at::Tensor to, const at::Tensor& from) { to.mul_(decay).add_(from.detach(), 1.0 - decay); });
  zip_tensors(ema.named_buffers(), model.named_buffers(), "buffer",
              [](at::Tensor to, const at::Tensor& from) { to.copy_(from); });
}

void copy_weights(torch::nn::Module& to, const torch::nn::Module& from) {
  torch::NoGradGuard no_grad;
  auto copy = [](at::Tensor target, const at::Tensor& source) { target.copy_(source.detach()); };
  zip_tensors(to.named_parameters(), from.named_parameters(), "parameter", copy);
  zip_tensors(to.named_buffers(), from.named_buffers(), "buffer", copy);
}

}  // namespace draft
