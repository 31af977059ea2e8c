#!/usr/bin/env bash
# One script for a fresh GPU machine (nvcc, meson, ninja and PyTorch; no Debian packages: the
# doctest and stb headers travel in third_party/, see benchmarks/prepare_gpu_tree.sh):
#   1. configure loupe with -Dcuda=enabled and build it,
#   2. run the CUDA suite (tests/cuda/), then the whole test program,
#   3. run the GPU benchmarks (bench_gpu) and the same cases in PyTorch on the same GPU,
#   4. print a short summary table last.
# Everything it writes goes under $OUT (default: out/gpu_check). Budget: well under 8 minutes.
# Usage: [OUT=dir] [QUICK=1] benchmarks/gpu_check.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$root/out/gpu_check}
build=${BUILD:-$root/build-gpu}
quick=${QUICK:+--quick}
mkdir -p "$out"
cd "$root"
t0=$(date +%s)
step() { echo "== [$(( $(date +%s) - t0 ))s] $*"; }
fail() { echo "gpu_check: $*" >&2; exit 1; }

# --- the machine ---
step "machine"
[[ -f third_party/doctest/doctest/doctest.h && -f third_party/stb/stb_image.h ]] ||
  fail "third_party/ headers missing: run benchmarks/prepare_gpu_tree.sh where Debian's doctest-dev and libstb-dev exist"
command -v nvcc >/dev/null || export PATH=/usr/local/cuda/bin:$PATH
command -v nvcc >/dev/null || fail "nvcc not found (looked in PATH and /usr/local/cuda/bin)"
for tool in meson ninja python3; do command -v "$tool" >/dev/null || fail "$tool not found"; done
{ nvidia-smi || true; nvcc --version; meson --version; ninja --version; c++ --version | head -1; } > "$out/machine.txt" 2>&1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | tee "$out/gpu.txt" || true

# --- build ---
step "configure"
if [[ ! -f "$build/build.ninja" ]]; then
  meson setup "$build" -Dcuda=enabled --buildtype=release > "$out/configure.log" 2>&1 ||
    { tail -30 "$out/configure.log"; fail "meson setup failed (log: $out/configure.log)"; }
fi
grep -E "CUDA backend|cuDNN" "$out/configure.log" 2>/dev/null || true
# cuDNN is optional: without it (not in the CUDA toolkit), convolutions use our im2col kernels.
cudnn_note=$(grep -q LOUPE_WITH_CUDNN "$build/build.ninja" && echo "yes" || echo "no (im2col fallback)")
step "build ($(nproc) cores)"
ninja -C "$build" -j"$(nproc)" > "$out/build.log" 2>&1 ||
  { grep -E "error|FAILED" "$out/build.log" | head -40; fail "build failed (log: $out/build.log)"; }

# --- tests ---
step "CUDA suite"
suite=passed
"$build/tests/loupe_tests" -tc="cuda:*,allocator:*" > "$out/cuda_suite.log" 2>&1 || suite=FAILED
grep -E "MESSAGE|ERROR|test cases|assertions" "$out/cuda_suite.log" | cut -c1-400 | head -60
step "whole test program"
whole=passed
"$build/tests/loupe_tests" > "$out/all_tests.log" 2>&1 || whole=FAILED
tail -3 "$out/all_tests.log"

# --- benchmarks ---
step "benchmarks: loupe"
bench=ok
"$build/benchmarks/bench_gpu" $quick --json "$out/bench_loupe.json" 2>&1 | tee "$out/bench_loupe.txt" || bench=FAILED
step "benchmarks: PyTorch"
"$(command -v python3)" benchmarks/bench_gpu_torch.py $quick --json "$out/bench_torch.json" 2>&1 |
  tee "$out/bench_torch.txt" || bench=FAILED

# --- summary (last) ---
step "summary"
python3 - "$out" "$suite" "$whole" "$cudnn_note" <<'PY'
import json, os, sys
out, suite, whole, cudnn = sys.argv[1:5]
def load(name):
    try:
        with open(os.path.join(out, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {"results": {}}
ours, torch = load("bench_loupe.json"), load("bench_torch.json")
print(f"GPU: {ours.get('device') or torch.get('device', '?')}   cuDNN: {cudnn}")
print(f"CUDA suite: {suite}   whole test program: {whole}")
print(f"{'case':<12} {'loupe':>10} {'PyTorch':>10} {'unit':<8} {'loupe/PyTorch':>13}")
for name in ("sgemm_fp32", "sgemm_tf32", "add", "softmax", "copy_d2d"):
    a = ours["results"].get(name, {}).get("value")
    b = torch["results"].get(name, {}).get("value")
    unit = (ours["results"].get(name) or torch["results"].get(name) or {}).get("unit", "")
    ratio = f"{a / b:13.2f}" if a and b else f"{'-':>13}"
    fa = f"{a:10.2f}" if a else f"{'-':>10}"
    fb = f"{b:10.2f}" if b else f"{'-':>10}"
    print(f"{name:<12} {fa} {fb} {unit:<8} {ratio}")
PY
echo "gpu_check: logs and JSON in $out ($(( $(date +%s) - t0 ))s)"
[[ $suite == passed && $whole == passed && $bench == ok ]]
