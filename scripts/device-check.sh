#!/usr/bin/env bash
# The GPU checks in one command, for a machine with CUDA, nvcc, CMake, ninja and a pip PyTorch but no apt
# and no internet (this workplace's device machine). Builds draft.cpp against pip's CUDA LibTorch 2.x (or,
# without one, the system's LibTorch, where only the CPU-possible parts run), runs the unit and gpu-labelled
# tests, the CUDA parity fixtures and bench_gpu, reads a run's TensorBoard file with TensorBoard itself when
# it is installed, and writes every figure into one JSON file: OUT_DIR/device-check.json.
#
#   here:   scripts/fetch-device-deps.sh --dataset      (Debian packages + a Fashion-MNIST subset, .device-deps/)
#   there:  scripts/device-check.sh [OUT_DIR]           (default: $OUT, else out/device-check)
#
# Environment: BUILD_DIR (default build-device), DEVICE_CHECK_LABELS (ctest labels, default 'unit|gpu'),
# DEVICE_CHECK_BENCH (0 skips bench_gpu). Every step's log is OUT_DIR/<step>.log; a failed step is recorded
# in the JSON and the script goes on, so one run reports everything it can.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=${1:-${OUT:-out/device-check}}
mkdir -p "$out"
out=$(cd "$out" && pwd)
build=${BUILD_DIR:-build-device}
labels=${DEVICE_CHECK_LABELS:-unit|gpu}
started=$(date +%s)
declare -A step_status step_seconds

# run_step NAME COMMAND...: runs COMMAND with its output in OUT_DIR/NAME.log, records status and seconds.
run_step() {
  local name=$1
  shift
  local t0=$(date +%s)
  echo "[device-check] $name ..."
  "$@" >"$out/$name.log" 2>&1
  local rc=$?
  step_status[$name]=$rc
  step_seconds[$name]=$(($(date +%s) - t0))
  echo "[device-check] $name: rc $rc, ${step_seconds[$name]} s"
  return $rc
}

# 1. The carried Debian packages, unpacked into a prefix (never into /), and the Fashion-MNIST subset.
prefix=/tmp/draft-device-prefix
unpack() {
  mkdir -p "$prefix"
  for f in .device-deps/*.deb; do dpkg -x "$f" "$prefix" || return 1; done
  if [[ -d .device-deps/fashion-mnist && ! -d /usr/share/datasets/fashion-mnist ]]; then
    mkdir -p /usr/share/datasets && cp -r .device-deps/fashion-mnist /usr/share/datasets/ || true
  fi
}
if compgen -G ".device-deps/*.deb" >/dev/null; then
  run_step unpack unpack
  export LD_LIBRARY_PATH="$prefix/usr/lib/x86_64-linux-gnu:$prefix/usr/lib:${LD_LIBRARY_PATH:-}"
  export PATH="$prefix/usr/bin:$PATH"
fi

# 2. Configure and build against pip's LibTorch when python3 has torch, else the system's.
torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>/dev/null || true)
generator=()
command -v ninja >/dev/null && [[ ! -f "$build/Makefile" ]] && generator=(-G Ninja)
run_step configure cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="${torch_prefix:+$torch_prefix;}$prefix/usr"
run_step build cmake --build "$build" -j "$(nproc)"

# 3. Tests: the unit suite and the gpu label (skipped, not passed, without CUDA).
run_step tests ctest --test-dir "$build" -L "$labels" -j "$(nproc)" --timeout 600 --output-junit "$out/tests.xml"
run_step parity "$build/bin/test_cuda_parity"

# 4. Figures: bench_gpu on SD 1.5 shapes on CUDA (the tiny pipeline on the CPU, to exercise the code).
if [[ "${DEVICE_CHECK_BENCH:-1}" != 0 ]]; then
  if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    run_step bench_gpu "$build/bin/bench_gpu" --device cuda --dtype bf16 --json "$out/bench_gpu.json"
    run_step bench_gpu_f32 "$build/bin/bench_gpu" --device cuda --dtype f32 --json "$out/bench_gpu_f32.json"
  else
    run_step bench_gpu "$build/bin/bench_gpu" --device cpu --shape tiny --steps 4 --json "$out/bench_gpu.json"
  fi
fi

# 5. TensorBoard reads our event file (when the machine has TensorBoard: pip's tensorboard package).
tensorboard_check() {
  local run=/tmp/draft-device-tb
  rm -rf "$run"
  "$build/bin/draft" finetune --model models/fashion-sd --reward jpeg-proxy:-1 --prompt "a coat" --steps 2 \
    --batch-size 2 --sampling-steps 4 --guidance 3 --eval-every 1 --eval-n 1 --device cuda --dtype bf16 \
    --run-dir "$run" || return 1
  python3 - "$run/tensorboard" <<'PY'
import sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0, "images": 0, "tensors": 0})
acc.Reload()
tags = acc.Tags()
print("scalars", len(tags["scalars"]), "images", len(tags["images"]), "tensors", len(tags["tensors"]))
assert tags["scalars"], "no scalars read"
PY
}
if python3 -c 'import tensorboard' 2>/dev/null; then run_step tensorboard tensorboard_check; fi

# 6. One JSON with everything.
status_json=$(for k in "${!step_status[@]}"; do echo "$k ${step_status[$k]} ${step_seconds[$k]}"; done)
python3 - "$out" "$started" "$torch_prefix" <<PY
import json, os, re, socket, sys, time
out, started, torch_prefix = sys.argv[1], int(sys.argv[2]), sys.argv[3]
steps = {}
for line in """$status_json""".strip().splitlines():
    name, rc, seconds = line.split()
    steps[name] = {"rc": int(rc), "seconds": int(seconds)}
report = {"host": socket.gethostname(), "torch_cmake_prefix": torch_prefix or "system", "steps": steps,
          "total_seconds": int(time.time()) - started}
def read(name):
    path = os.path.join(out, name)
    return open(path).read() if os.path.exists(path) else ""
m = re.search(r"(\d+)% tests passed, (\d+) tests failed out of (\d+)", read("tests.log"))
if m:
    report["tests"] = {"passed_percent": int(m.group(1)), "failed": int(m.group(2)), "total": int(m.group(3)),
                       "skipped": read("tests.log").count("(Skipped)")}
report["parity"] = [dict(zip(("what", "max_abs_diff", "bound"), (g[0], float(g[1]), float(g[2]))))
                    for g in re.findall(r"\[parity\] (.+?) max_abs_diff=(\S+) bound=(\S+)", read("parity.log"))]
for name in ("bench_gpu", "bench_gpu_f32"):
    if os.path.exists(os.path.join(out, name + ".json")):
        report[name] = json.load(open(os.path.join(out, name + ".json")))
tb = re.search(r"scalars (\d+) images (\d+) tensors (\d+)", read("tensorboard.log"))
if tb:
    report["tensorboard"] = {"scalar_tags": int(tb.group(1)), "image_tags": int(tb.group(2)),
                             "tensor_tags": int(tb.group(3))}
json.dump(report, open(os.path.join(out, "device-check.json"), "w"), indent=2)
print(json.dumps({k: report[k] for k in report if k not in ("bench_gpu", "bench_gpu_f32")}, indent=2))
PY
failed=0
for k in "${!step_status[@]}"; do [[ ${step_status[$k]} -ne 0 ]] && failed=1; done
echo "[device-check] done in $(($(date +%s) - started)) s; $out/device-check.json"
exit $failed
