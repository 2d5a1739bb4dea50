// Precompiled header: LibTorch costs ~18 s of CPU per translation unit without it.
#pragma once
#include <torch/torch.h>
