#!/usr/bin/env bash
# Fails when a source includes a layer above its own (the layer map of DESIGN.md and docs/development.md):
#   util < io < nn < models < lora < diffusion < data < rewards < train < {pretrain, finetune} < bench < cli
# pretrain and finetune are peers: neither includes the other. Run by `make test` (CTest: layer_order).
#   scripts/check-layers.sh [SOURCE_ROOT]
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"

declare -A rank=([util]=0 [io]=1 [nn]=2 [models]=3 [lora]=4 [diffusion]=5 [data]=6 [rewards]=7 [train]=8
                 [pretrain]=9 [finetune]=9 [efficiency]=10)
layer_of() {  # the layer of a source path
  case "$1" in
    src/*) local rest=${1#src/}; echo "${rest%%/*}" ;;
    bench/efficiency/*) echo efficiency ;;
  esac
}

violations=0
checked=0
while IFS= read -r file; do
  own=$(layer_of "$file")
  [[ -n "${rank[$own]:-}" ]] || continue
  checked=$((checked + 1))
  while IFS= read -r line; do
    inc=${line#*\"}
    inc=${inc%%\"*}
    target=${inc%%/*}
    [[ "$inc" == */* && -n "${rank[$target]:-}" ]] || continue
    if (( rank[$target] > rank[$own] )) || { [[ $target != "$own" ]] && (( rank[$target] == rank[$own] )); }; then
      echo "layer violation: $file ($own) includes \"$inc\" ($target): move the code down a layer, or the include up" >&2
      violations=$((violations + 1))
    fi
  done < <(grep -E '^[[:space:]]*#[[:space:]]*include[[:space:]]+"' "$file" || true)
done < <(find src bench/efficiency -name '*.h' -o -name '*.cpp' | sort)

unknown=$(find src -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | while read -r d; do [[ -n "${rank[$d]:-}" ]] || echo "$d"; done)
if [[ -n "$unknown" ]]; then
  echo "layer check: src/ has folders outside the layer map: $unknown (add them to scripts/check-layers.sh and docs/development.md)" >&2
  violations=$((violations + 1))
fi
echo "layer check: $checked files, $violations violations"
(( violations == 0 ))
