#!/usr/bin/env bash
# Downloads, here, the Debian 12 packages a GPU machine without apt or internet needs to build and test
# draft.cpp against its own pip PyTorch (CUDA LibTorch 2.x): the libraries and headers besides LibTorch, as
# .deb files in .device-deps/ (ignored by git), which scripts/device-check.sh unpacks into a prefix there.
# With --dataset it also writes a 512-image subset of Fashion-MNIST (the full set is too large to carry).
#   scripts/fetch-device-deps.sh [--dataset]
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.device-deps
mkdir -p "$dest"

# Headers and the shared libraries they need at run time. Not LibTorch, CUDA, CMake or ninja: the GPU machine
# has those. Gloo's headers: pip's LibTorch may not ship them, and c10d's ProcessGroupGloo.hpp includes them.
packages=(
  nlohmann-json3-dev libcli11-dev
  libspdlog-dev libspdlog1.10 libfmt-dev libfmt9
  libpng-dev libpng16-16 libjpeg-dev libjpeg62-turbo-dev libjpeg62-turbo zlib1g-dev
  libutf8proc-dev libutf8proc2
  libprotobuf-dev libprotobuf-lite32 libprotobuf32 protobuf-compiler libprotoc32
  libgtest-dev libgmock-dev googletest
  libgloo-dev
)
# (apt-get warns that it downloads "unsandboxed as root" when run as root: harmless.)
(cd "$dest" && apt-get download "${packages[@]}" >/dev/null)
echo "fetch-device-deps: $(ls "$dest"/*.deb | wc -l) packages in $dest ($(du -sh "$dest" | cut -f1))"

if [[ "${1:-}" == "--dataset" ]]; then
  src=/usr/share/datasets/fashion-mnist
  [[ -d "$src" ]] || { echo "fetch-device-deps: $src is missing (scripts/install-deps.sh)" >&2; exit 1; }
  mkdir -p "$dest/fashion-mnist"
  # IDX files keep their header (magic, count, dims): rewrite the count and keep the first 512 records.
  python3 - "$src" "$dest/fashion-mnist" <<'PY'
import gzip, struct, sys, os
src, dst = sys.argv[1], sys.argv[2]
keep = 512
for name in os.listdir(src):
    if not name.endswith("-ubyte.gz"):
        continue
    data = gzip.open(os.path.join(src, name)).read()
    magic, count = struct.unpack(">II", data[:8])
    dims = magic & 0xFF
    shape = struct.unpack(">" + "I" * (dims - 1), data[8:8 + 4 * (dims - 1)])
    record = 1
    for d in shape:
        record *= d
    header = struct.pack(">II", magic, min(keep, count)) + data[8:8 + 4 * (dims - 1)]
    body = data[8 + 4 * (dims - 1):][: min(keep, count) * record]
    with gzip.open(os.path.join(dst, name), "wb") as f:
        f.write(header + body)
PY
  echo "fetch-device-deps: 512-image Fashion-MNIST subset in $dest/fashion-mnist"
fi
