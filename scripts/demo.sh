#!/usr/bin/env bash
# The main job of `make demo`: check the set-up, then show the project's real pieces at work on the
# embedded default model (models/fashion-sd, trained by `draft pretrain` on Fashion-MNIST and shipped).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
draft="$build/bin/draft"
out=${DEMO_OUT:-out/demo}
mkdir -p "$out"

echo "== draft doctor: LibTorch, BLAS, threads, devices, measured matmul speed"
"$draft" doctor
echo
echo "== draft info: the embedded model's UNet, a diffusers UNet2DConditionModel (mid block shown)"
"$draft" info models/fashion-sd/unet/diffusion_pytorch_model.safetensors --filter mid_block
echo
echo "== draft sample: the embedded model, 8 images for each of the 10 class prompts (50 DDIM steps, guidance 3)"
"$draft" sample --model models/fashion-sd --prompts configs/fashion-prompts.txt --n 8 --steps 50 --guidance 3 \
  --seed 0 -o "$out/fashion_sd.png"
echo "wrote $out/fashion_sd.png (one row per prompt of configs/fashion-prompts.txt)"
echo
echo "== draft finetune: DRaFT-LV on the embedded model, classifier reward, 200 steps (configs/fashion-draft-lv.json)"
rm -rf "$out/finetune"
"$draft" finetune --config configs/fashion-draft-lv.json --run-dir "$out/finetune"
"$draft" plot "$out/finetune" --y eval_reward_mean --title "held-out classifier reward" -o "$out/finetune/eval_reward.svg"
"$draft" plot "$out/finetune" --y reward_mean --band none --title "training reward" -o "$out/finetune/train_reward.svg"
"$draft" report "$out/finetune" -o "$out/finetune/report.html" --title "make demo: DRaFT-LV on the embedded model"
echo "run folder $out/finetune: metrics.jsonl, lora_final.safetensors, samples/step_000000.png (base) ... step_000200.png, eval_reward.svg"
echo "watch it: open $out/finetune/report.html (one offline page), or tensorboard --logdir $out"
