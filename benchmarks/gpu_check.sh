#!/usr/bin/env bash
# One script for a fresh GPU machine (nvcc, meson, ninja and PyTorch; no Debian packages: the
# doctest and stb headers travel in third_party/, see benchmarks/prepare_gpu_tree.sh):
#   1. configure loupe with -Dcuda=enabled and build it,
#   2. run the CUDA suite (tests/cuda/: every op-table entry on the GPU against the CPU, models,
#      training steps, attribution methods),
#   3. run the GPU benchmarks (bench_gpu) and the same cases in PyTorch on the same GPU,
#   4. print a short summary table last.
# Everything it writes goes under $OUT (default: out/gpu_check). Budget: well under 8 minutes.
#
# Lease time is scarce, so prepare_gpu_tree.sh may also leave binaries built on the CPU machine in
# third_party/prebuilt/ (the same sources, built with nvcc there). Then the suite starts at once
# from those while the build runs beside it at low priority; the fresh build then runs a smoke
# test and the benchmarks (the prebuilt ones only if the build failed; the summary says which).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$root/out/gpu_check}
build=${BUILD:-$root/build-gpu}
quick=${QUICK:+--quick}
prebuilt=$root/third_party/prebuilt
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
# Captum for the attribution benchmarks: the machine's, else a copy carried in third_party/py.
[[ -d third_party/py ]] && export PYTHONPATH=$root/third_party/py${PYTHONPATH:+:$PYTHONPATH}

# --- build (in the background when prebuilt binaries can run the suite meanwhile) ---
use_prebuilt=no
if [[ -x $prebuilt/loupe_tests && -x $prebuilt/bench_gpu ]] && ! ldd "$prebuilt/loupe_tests" | grep -q "not found"; then
  use_prebuilt=yes
fi
build_loupe() {
  if [[ ! -f "$build/build.ninja" ]]; then
    meson setup "$build" -Dcuda=enabled --buildtype=release > "$out/configure.log" 2>&1 || return 1
  fi
  ninja -C "$build" -j"$1" > "$out/build.log" 2>&1
}
step "build ($(nproc) cores; prebuilt binaries for the suite meanwhile: $use_prebuilt)"
build_start=$(date +%s)
if [[ $use_prebuilt == yes ]]; then
  # Two cores stay free for the suite and the benchmarks' host side.
  nice -n 19 bash -c "$(declare -f build_loupe); out='$out' build='$build' build_loupe $(( $(nproc) > 4 ? $(nproc) - 2 : 2 ))" &
  build_pid=$!
  tests_bin=$prebuilt/loupe_tests
else
  build_loupe "$(nproc)" || { grep -E "error|FAILED" "$out/build.log" "$out/configure.log" 2>/dev/null | head -40; fail "build failed"; }
  tests_bin=$build/tests/loupe_tests
fi

# --- tests ---
step "CUDA suite ($tests_bin)"
suite=passed
"$tests_bin" -tc="cuda*,allocator*" > "$out/cuda_suite.log" 2>&1 || suite=FAILED
grep -E "ERROR|FATAL|test cases|assertions" "$out/cuda_suite.log" | cut -c1-300 | head -60 || true
grep -E "checks on the GPU|did not run on the GPU" "$out/cuda_suite.log" | cut -c1-300 | head -5 || true
whole=not-run
if [[ -n ${WHOLE:-} ]]; then
  step "whole test program"
  whole=passed
  "$tests_bin" > "$out/all_tests.log" 2>&1 || whole=FAILED
  tail -3 "$out/all_tests.log" || true
fi

if [[ $use_prebuilt == no ]]; then
  built="ok in $(( $(date +%s) - build_start ))s"
fi

if [[ $use_prebuilt == yes ]]; then
  # At most BUILD_WAIT seconds more (default 240): the summary must come back within the lease.
  step "waiting for the build (at most ${BUILD_WAIT:-240}s)"
  for (( waited = 0; waited < ${BUILD_WAIT:-240}; waited += 5 )); do
    kill -0 "$build_pid" 2>/dev/null || break
    sleep 5
  done
  if kill -0 "$build_pid" 2>/dev/null; then
    pkill -P "$build_pid" 2>/dev/null || true
    kill "$build_pid" 2>/dev/null || true
    built="unfinished after $(( $(date +%s) - build_start ))s ($(tail -1 "$out/build.log" | cut -c1-60))"
  elif wait "$build_pid"; then
    built="ok in $(( $(date +%s) - build_start ))s (beside the suite)"
    # The fresh build answers too: the device-move and op-table cases.
    "$build/tests/loupe_tests" -tc="cuda: to_device*,cuda: every op-table entry*" > "$out/smoke.log" 2>&1 ||
      built="$built, smoke test FAILED"
    tail -2 "$out/smoke.log" || true
  else
    built=FAILED
    grep -E "error|FAILED" "$out/build.log" "$out/configure.log" 2>/dev/null | head -20 || true
  fi
  echo "build: $built"
fi

# --- benchmarks (the fresh build's, on an otherwise idle machine; the prebuilt ones if it failed) ---
bench_bin=$build/benchmarks/bench_gpu
[[ $built == ok* ]] || bench_bin=$prebuilt/bench_gpu
step "benchmarks: loupe ($bench_bin)"
bench=ok
"$bench_bin" $quick --json "$out/bench_loupe.json" > "$out/bench_loupe.txt" 2>&1 || bench=FAILED
grep -E "skipped|allocator" "$out/bench_loupe.txt" | cut -c1-300 || true
step "benchmarks: PyTorch"
python3 benchmarks/bench_gpu_torch.py $quick --json "$out/bench_torch.json" > "$out/bench_torch.txt" 2>&1 || bench=FAILED
grep -E "^device|skipped" "$out/bench_torch.txt" | cut -c1-300 || true

cudnn_note=$(grep -q LOUPE_WITH_CUDNN "$build/build.ninja" 2>/dev/null && echo "yes" || echo "unknown (build unfinished)")

# --- summary (last) ---
step "summary"
python3 - "$out" "$suite" "$whole" "$cudnn_note" "$built" <<'PY'
import json, os, sys
out, suite, whole, cudnn, built = sys.argv[1:6]
def load(name):
    try:
        with open(os.path.join(out, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {"results": {}}
ours, torch = load("bench_loupe.json"), load("bench_torch.json")
print(f"GPU: {ours.get('device') or torch.get('device', '?')}   cuDNN: {cudnn}   "
      f"torch {torch.get('torch', '?')} (CUDA {torch.get('cuda', '?')}, cuDNN {torch.get('cudnn', '?')})")
print(f"build: {built}   CUDA suite: {suite}   whole test program: {whole}")
print(f"{'case':<22} {'loupe':>10} {'PyTorch':>10} {'unit':<9} {'loupe/PyTorch':>13}")
names = list(dict.fromkeys(list(ours["results"]) + list(torch["results"])))
for name in names:
    a = ours["results"].get(name, {}).get("value")
    b = torch["results"].get(name, {}).get("value")
    unit = (ours["results"].get(name) or torch["results"].get(name) or {}).get("unit", "")
    ratio = f"{a / b:13.2f}" if a and b else f"{'-':>13}"
    fa = f"{a:10.2f}" if a else f"{'-':>10}"
    fb = f"{b:10.2f}" if b else f"{'-':>10}"
    print(f"{name:<22} {fa} {fb} {unit:<9} {ratio}")
copy = ours["results"].get("copy_d2d", {}).get("value")
if copy:
    for name in ("add", "softmax"):
        v = ours["results"].get(name, {}).get("value")
        if v:
            print(f"{name}: {100 * v / copy:.0f}% of loupe's measured device copy bandwidth")
PY
echo "gpu_check: logs and JSON in $out ($(( $(date +%s) - t0 ))s)"
[[ $suite == passed && $whole != FAILED && $bench == ok && $built == ok* ]]
