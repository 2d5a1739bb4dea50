// The process-wide choice between the math and the fused attention kernel (attention_kernel.h).
#include "nn/attention_kernel.h"

#include <atomic>
#include <cstdlib>
#include <string>

#include "util/error.h"
#include "util/log.h"
#include "util/torch_compat.h"

namespace draft {

namespace {

AttentionKernel initial_kernel() {
  const AttentionKernel best = has_fused_attention() ? AttentionKernel::kFused : AttentionKernel::kMath;
  const char* text = std::getenv("DRAFT_ATTENTION");
  if (!text || !*text) return best;
  const std::string name = text;
  if (name == "math") return AttentionKernel::kMath;
  if (name == "fused" && has_fused_attention()) return AttentionKernel::kFused;
  DRAFT_LOG_WARN("DRAFT_ATTENTION='{}' is not {}; using {} attention", name,
                 has_fused_attention() ? "'math' or 'fused'" : "'math' (LibTorch " + std::string(torch_version()) +
                                                                   " has no fused attention)",
                 attention_kernel_name(best));
  return best;
}

std::atomic<AttentionKernel>& current() {
  static std::atomic<AttentionKernel> kernel{initial_kernel()};
  return kernel;
}

}  // namespace

AttentionKernel attention_kernel() { return current().load(std::memory_order_relaxed); }

void set_attention_kernel(AttentionKernel kernel) {
  DRAFT_CHECK(kernel == AttentionKernel::kMath || has_fused_attention(), "fused attention needs LibTorch 2.0 or "
              "later; this is LibTorch ", torch_version(), ": use the math kernel");
  current().store(kernel, std::memory_order_relaxed);
}

std::string attention_kernel_name(AttentionKernel kernel) {
  return kernel == AttentionKernel::kFused ? "fused" : "math";
}

}  // namespace draft
