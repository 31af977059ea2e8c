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
