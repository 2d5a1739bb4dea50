#!/usr/bin/env bash
# Runs the libFuzzer targets of fuzz/ (built by `make fuzz` into build-asan: clang, ASan + UBSan, DRAFT_FUZZ=ON),
# each for SECONDS, one after another, and prints a table at the end.
#   scripts/fuzz.sh [SECONDS] [KIND...]     (default 600 s each, every kind)
# For each kind, fuzz/corpus/<kind> holds the committed seeds and is only read; new inputs go to
# $BUILD/fuzz-corpus/<kind>, a finding (crash, sanitizer report, leak, timeout, out-of-memory) to
# $BUILD/fuzz-artifacts/<kind>-*, the log to $BUILD/fuzz-logs/<kind>.log. Exits non-zero when any kind has a finding.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build-asan}
seconds=${1:-600}
shift $(($# > 0 ? 1 : 0))
all_kinds=(safetensors idx png prompt_file tokenizer config lora reward_spec)
kinds=("$@")
[[ ${#kinds[@]} -eq 0 ]] && kinds=("${all_kinds[@]}")

# Per kind: the longest input and a dictionary, if any. Seeds must fit in max_len.
declare -A max_len=([safetensors]=4096 [idx]=4096 [png]=8192 [prompt_file]=4096 [tokenizer]=16384 [config]=8192
                    [lora]=8192 [reward_spec]=256)
declare -A dict=([safetensors]=fuzz/safetensors.dict [png]=fuzz/png.dict [tokenizer]=fuzz/tokenizer.dict
                 [config]=fuzz/config.dict [lora]=fuzz/lora.dict [reward_spec]=fuzz/reward_spec.dict)

# As `make test-asan`: leaks are findings (libFuzzer checks each input that allocates more than it frees), and
# UBSan halts on its first report, so it counts as a crash.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:check_initialization_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

mkdir -p "$build/fuzz-artifacts" "$build/fuzz-logs"
rows=()
failed=0
for kind in "${kinds[@]}"; do
  bin="$build/bin/fuzz_$kind"
  if [[ ! -x "$bin" ]]; then
    echo "fuzz.sh: $bin is missing: run 'make fuzz' (or build the draft_fuzzers target in $build)" >&2
    exit 2
  fi
  corpus="$build/fuzz-corpus/$kind"
  log="$build/fuzz-logs/$kind.log"
  mkdir -p "$corpus"
  args=("$corpus" "fuzz/corpus/$kind" -max_total_time="$seconds" -max_len="${max_len[$kind]:-4096}" -timeout=10
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$build/fuzz-artifacts/$kind-")
  [[ -n "${dict[$kind]:-}" ]] && args+=(-dict="${dict[$kind]}")
  echo "== fuzz_$kind: ${seconds} s (log: $log)"
  start=$(date +%s)
  "$bin" "${args[@]}" >"$log" 2>&1
  rc=$?
  wall=$(($(date +%s) - start))
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  speed=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  cov=$(grep -o ' cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
  items=$(find "$corpus" -type f | wc -l)
  finding="none"
  if [[ $rc -ne 0 ]]; then
    failed=1
    finding=$(grep -m1 -oE "terminate called after throwing an instance of '[^']*'|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer): [a-z-]+|runtime error: .*" "$log" | head -c 160)
    finding="exit $rc: ${finding:-see $log}; $(ls "$build"/fuzz-artifacts/"$kind"-* 2>/dev/null | head -1)"
    tail -40 "$log" >&2
  fi
  rows+=("| $kind | ${wall} s | ${runs:-?} | ${speed:-?} | ${cov:-?} | $items | $finding |")
done

echo
echo "| target | time | runs | exec/s | coverage (edges) | corpus | findings |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
exit $failed
