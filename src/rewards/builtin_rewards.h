// The factories of the rewards draft.cpp ships; the registry adds them before any user reward. One
// function per reward file.
#pragma once

#include "rewards/reward_registry.h"

namespace draft {

// Embedded rewards (the shipped Fashion-MNIST classifier, JPEG size, fine detail).
RewardFactory classifier_reward_factory();
RewardFactory jpeg_reward_factory();
RewardFactory compressibility_reward_factory();
RewardFactory incompressibility_reward_factory();
RewardFactory jpeg_proxy_reward_factory();
RewardFactory detail_reward_factory();

// Preference models for Stable Diffusion (weights are the user's).
RewardFactory aesthetic_reward_factory();
RewardFactory pickscore_reward_factory();
RewardFactory hpsv2_reward_factory();
RewardFactory clip_score_reward_factory();

}  // namespace draft
