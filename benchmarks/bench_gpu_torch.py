#!/usr/bin/env python3
"""PyTorch counterpart of benchmarks/bench_gpu.cpp: the same cases, sizes and timing rule
(3 warm-up runs, median of 10, each run synchronised), so the numbers compare side by side.
Usage: bench_gpu_torch.py [--quick] [--json FILE]"""
import argparse
import json
import statistics
import time

import torch


def time_median(f, warmup=3, reps=10):
    for _ in range(warmup):
        f()
    torch.cuda.synchronize()
    seconds = []
    for _ in range(reps):
        start = time.perf_counter()
        f()
        torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench_gpu_torch: no CUDA GPU visible to PyTorch")
    dev = torch.device("cuda:0")
    print(f"device: {torch.cuda.get_device_name(0)} (torch {torch.__version__}, CUDA {torch.version.cuda})")
    results = {}
    n = 2048 if args.quick else 4096
    a = torch.rand(n, n, device=dev) * 2 - 1
    b = torch.rand(n, n, device=dev) * 2 - 1
    for name, tf32 in (("sgemm_fp32", False), ("sgemm_tf32", True)):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        s = time_median(lambda: a @ b)
        results[name] = {"value": 2.0 * n ** 3 / s / 1e12, "unit": "TFLOP/s"}
    torch.backends.cuda.matmul.allow_tf32 = False

    count = (1 << 24) if args.quick else (1 << 26)
    x = torch.rand(count, device=dev)
    y = torch.rand(count, device=dev)
    nbytes = 4.0 * count
    results["add"] = {"value": 3 * nbytes / time_median(lambda: x + y) / 1e9, "unit": "GB/s"}
    dst = torch.empty_like(x)
    results["copy_d2d"] = {"value": 2 * nbytes / time_median(lambda: dst.copy_(x)) / 1e9, "unit": "GB/s"}
    rows = x.view(count // 4096, 4096)
    results["softmax"] = {"value": 2 * nbytes / time_median(lambda: torch.softmax(rows, -1)) / 1e9, "unit": "GB/s"}

    for name, r in results.items():
        print(f"{name:<12} {r['value']:10.2f} {r['unit']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "results": results}, f,
                      indent=2)


if __name__ == "__main__":
    main()
