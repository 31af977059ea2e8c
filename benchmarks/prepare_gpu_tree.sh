#!/usr/bin/env bash
# Copies the header-only libraries the build needs into third_party/ (git-ignored), so the tree
# builds on a GPU machine that has no Debian packages (benchmarks/gpu_check.sh). Run it on a
# machine with Debian's doctest-dev and libstb-dev; the root meson.build falls back to
# third_party/ when the packages are missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
copy() {  # copy SOURCE DEST_DIR
  if [[ ! -f "$1" ]]; then
    echo "prepare_gpu_tree: $1 not found (install doctest-dev and libstb-dev)" >&2
    exit 1
  fi
  mkdir -p "$2"
  cp "$1" "$2/"
}
copy /usr/include/doctest/doctest.h "$root/third_party/doctest/doctest"
copy /usr/include/stb/stb_image.h "$root/third_party/stb"
copy /usr/include/stb/stb_image_write.h "$root/third_party/stb"
echo "prepare_gpu_tree: third_party/ holds doctest.h, stb_image.h and stb_image_write.h"

# Optional: binaries built here with the CUDA backend (./run build on a machine with nvcc), so
# gpu_check.sh can run the suite while it builds on the GPU machine: PREBUILT=build-dir.
if [[ -n ${PREBUILT:-} ]]; then
  mkdir -p "$root/third_party/prebuilt"
  for binary in tests/loupe_tests benchmarks/bench_gpu; do
    [[ -x "$PREBUILT/$binary" ]] || { echo "prepare_gpu_tree: $PREBUILT/$binary not built" >&2; exit 1; }
    cp "$PREBUILT/$binary" "$root/third_party/prebuilt/"
    strip --strip-unneeded "$root/third_party/prebuilt/$(basename "$binary")" 2>/dev/null || true  # the lease copies less
  done
  echo "prepare_gpu_tree: third_party/prebuilt holds loupe_tests and bench_gpu from $PREBUILT"
fi

# Optional: Captum (pure Python, with tqdm which it imports) for the attribution benchmarks on a
# machine whose PyTorch has no Captum: PYTHON=a python that has them.
if [[ -n ${PYTHON:-} ]]; then
  mkdir -p "$root/third_party/py"
  for package in captum tqdm; do
    dir=$("$PYTHON" -c "import $package, os; print(os.path.dirname($package.__file__))")
    rm -rf "$root/third_party/py/$package"
    cp -r "$dir" "$root/third_party/py/"
  done
  find "$root/third_party/py" -name __pycache__ -type d -prune -exec rm -rf {} +
  echo "prepare_gpu_tree: third_party/py holds captum and tqdm"
fi
