#!/usr/bin/env bash
# Builds the safetensors reader fuzzer with clang (libFuzzer + ASan + UBSan) and runs it.
#   scripts/fuzz.sh [SECONDS]     (default 600; needs scripts/install-deps.sh --fuzz)
# New inputs go to build-fuzz/corpus; the seeds in fuzz/corpus/safetensors are only read. A finding is
# written to build-fuzz/artifacts/ and the script exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
out=build-fuzz
mkdir -p "$out/corpus" "$out/artifacts"
clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -Isrc fuzz/fuzz_safetensors.cpp src/io/safetensors_header.cpp -o "$out/fuzz_safetensors"
"$out/fuzz_safetensors" "$out/corpus" fuzz/corpus/safetensors -dict=fuzz/safetensors.dict \
  -max_total_time="$seconds" -max_len=4096 -timeout=5 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$out/artifacts/"
