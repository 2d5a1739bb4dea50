// One fine-tuning step for the benchmarks (method_step.h).
#include "method_step.h"

#include <torch/torch.h>

namespace draft::bench {

void run_method_step(Method& method, const StableDiffusion& sd, Reward& reward, const std::vector<std::string>& prompts,
                     const Conditioning& conditioning, const std::vector<at::Tensor>& params,
                     const SamplerSettings& sampler, uint64_t seed) {
  at::Generator generator = at::detail::createCPUGenerator(seed);
  MethodContext c;
  c.sd = &sd;
  c.reward = &reward;
  c.prompts = prompts;
  c.conditioning = conditioning;
  const int64_t size = sd.default_image_size();
  c.x_T = initial_latents(sd, static_cast<int64_t>(prompts.size()), size, size, generator);
  seed_method_draws(c, seed, 0, 0);
  c.params = params;
  c.sampler = sampler;
  method.run(c).loss.backward();
  for (auto p : params) p.mutable_grad() = at::Tensor();
}

}  // namespace draft::bench
