// Uses the user-written "contrast" reward through the registry, alone and in a weighted sum with a
// built-in reward, exactly as `draft eval --reward ...` would.
//   build/bin/custom_reward_example
#include <iostream>

#include <torch/torch.h>

#include "rewards/reward_registry.h"

int main() {
  torch::manual_seed(0);
  const at::Tensor images = torch::rand({4, 1, 32, 32});
  for (const char* spec : {"contrast", "contrast:gain=2,jpeg-proxy:-0.1"}) {
    draft::RewardPtr reward = draft::make_reward(spec);
    std::cout << reward->name() << ": " << reward->score(images, {}) << '\n';
  }
  return 0;
}
