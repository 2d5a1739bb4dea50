#!/usr/bin/env bash
# Installs every Debian 12 package draft.cpp needs to build, test and run. Idempotent: packages that are
# already installed are skipped, so `make demo` / `make test` can call it on every run at no cost.
#   scripts/install-deps.sh           build + test + run dependencies
#   scripts/install-deps.sh --fuzz    also clang, its sanitizer and libFuzzer runtime and llvm-symbolizer
#                                     (make test-asan, make fuzz)
#   scripts/install-deps.sh --browser also Chromium, for the headless-browser check of `draft report`'s page
#                                     (make test-browser); both options may be given
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libtorch-dev            # LibTorch 1.13 (CPU, with c10d and Gloo)
  libgloo-dev             # Gloo's headers, which c10d's ProcessGroupGloo.hpp includes
  libopenblas0-pthread    # without it LibTorch runs on the reference BLAS (a batched matmul 28x slower)
  nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev
  libpng-dev libjpeg-dev zlib1g-dev
  libutf8proc-dev libpcre2-dev
  libprotobuf-dev protobuf-compiler   # TensorBoard event files: protobuf's lite runtime and protoc
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  dataset-fashion-mnist   # the embedded model's training data (IDX files)
)
for option in "$@"; do
  case "$option" in
    --fuzz) packages+=(clang libclang-rt-14-dev llvm) ;;  # llvm: /usr/bin/llvm-symbolizer, for file:line in sanitizer reports
    --browser) packages+=(chromium) ;;  # headless Chromium renders the HTML report (tests/test_report_browser.cpp)
    *) echo "install-deps: unknown option '$option' (use --fuzz and/or --browser)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
