#!/usr/bin/env bash
# Data-parallel throughput on this machine (docs/distributed.md): the embedded demo recipe
# (configs/fashion-draft-lv.json) on 1 process with all cores as threads, then on NPROC processes with
# cores / NPROC threads each, started by `draft launch` exactly as torchrun would. Prints optimizer steps
# per second (training time only, evaluations excluded), the gradient all-reduce's share of a step and the
# held-out reward at the end. A benchmark, not a test: run it on an idle machine.
#   scripts/bench-distributed.sh [BUILD]      STEPS (default 200), NPROC (default 2), OUT (runs/bench-distributed)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
draft="$build/bin/draft"
steps=${STEPS:-200}
nproc=${NPROC:-2}
out=${OUT:-runs/bench-distributed}
cores=$(nproc)
per_rank=$(( cores / nproc > 0 ? cores / nproc : 1 ))
port=${MASTER_PORT:-29531}
rm -rf "$out"
mkdir -p "$out"

last_train() { grep -v '"kind":"eval"' "$1/metrics.jsonl" | tail -1; }
field() { grep -o "\"$2\":[-0-9.e+]*" <<<"$1" | head -1 | cut -d: -f2; }
last_eval() { grep '"kind":"eval"' "$1/metrics.jsonl" | tail -1; }

"$draft" --threads "$cores" finetune --config configs/fashion-draft-lv.json --steps "$steps" --run-dir "$out/one" \
  > "$out/one.log" 2>&1
"$draft" launch --nproc "$nproc" --master-port "$port" -- --threads "$per_rank" finetune \
  --config configs/fashion-draft-lv.json --steps "$steps" --run-dir "$out/many" > "$out/many.log" 2>&1

printf '%-28s %10s %12s %14s %14s\n' "layout" "steps/s" "s/step" "all-reduce" "held-out"
for run in one many; do
  record=$(last_train "$out/$run")
  wall=$(field "$record" wall_time)
  sync=$({ grep -o '"dist_sync_s":[-0-9.e+]*' "$out/$run/metrics.jsonl" || true; } | cut -d: -f2 |
    awk '{s += $1} END {print s + 0}')
  held=$(field "$(last_eval "$out/$run")" eval_reward_mean)
  if [[ $run == one ]]; then layout="1 process x $cores threads"; else layout="$nproc processes x $per_rank threads"; fi
  awk -v l="$layout" -v w="$wall" -v n="$steps" -v s="$sync" -v h="$held" \
    'BEGIN { printf "%-28s %10.3f %12.3f %13.1f%% %14.4f\n", l, n / w, w / n, 100 * s / w, h }'
done
echo "(all-reduce: the share of training time spent in the gradient all-reduce, summed over steps, rank 0)"
