#!/usr/bin/env bash
# The main job of `make demo`: check the set-up, then show the project's real pieces at work.
# Until the embedded Fashion-MNIST model ships (models/fashion-sd), this runs the best real thing there is.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
draft="$build/bin/draft"
out=${DEMO_OUT:-out/demo}
mkdir -p "$out"

echo "== draft doctor: LibTorch, BLAS, threads, devices, measured matmul speed"
"$draft" doctor
echo
echo "== draft info: the tensors of a diffusers UNet checkpoint (the tiny SD 1.x-shaped test model)"
"$draft" info tests/data/unet_sd15_tiny/diffusion_pytorch_model.safetensors --filter mid_block
if "$draft" --help | grep -qE "^ +sample( |$)"; then
  echo
  echo "== draft sample: text-to-image with the tiny diffusers pipeline (random weights: expect noise-like art)"
  "$draft" sample --model tests/data/sd_pipeline_tiny --prompt "a photograph of an astronaut riding a horse on mars" \
    --steps 5 --n 4 --seed 0 -o "$out/tiny_pipeline.png"
  echo "wrote $out/tiny_pipeline.png"
fi
