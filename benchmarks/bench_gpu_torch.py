#!/usr/bin/env python3
"""PyTorch counterpart of benchmarks/bench_gpu.cpp: the same cases, sizes and timing rule
(3 warm-up runs, median of 20, each run synchronised), so the numbers compare side by side.
Every value is "higher is better"; see bench_gpu.cpp for what each case measures.
PyTorch runs eager, NCHW, with TF32 off unless a case says otherwise (its default for cuDNN
convolutions is TF32 on: fp32 cases turn it off so both sides compute the same arithmetic).
The explain cases need Captum (pure Python: gpu_check.sh puts a copy on the path when the
machine lacks it).
Usage: bench_gpu_torch.py [--quick] [--json FILE] [--filter S]"""
import argparse
import contextlib
import json
import os
import statistics
import sys
import time
import types

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_torch import RESNET18_CONVS, ResNet18  # noqa: E402  (the same model definition as the CPU side)


def time_median(f, warmup=3, reps=20):
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


@contextlib.contextmanager
def tf32(enabled):
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


class Bench:
    def __init__(self, quick, filter_):
        self.quick, self.filter, self.results = quick, filter_, {}

    def run(self, name, unit, measure):
        """measure() returns (value, ms)."""
        if self.filter and self.filter not in name:
            return
        try:
            value, ms = measure()
        except Exception as e:  # a case that cannot run is reported, the others go on
            print(f"{name:<22} skipped: {e}", flush=True)
            return
        self.results[name] = {"value": value, "unit": unit, "ms": ms}
        print(f"{name:<22} {value:10.2f} {unit:<10} ({ms:.3f} ms)", flush=True)

    def rate(self, name, unit, amount, f, setup=None):
        def measure():
            if setup:
                setup()
            s = time_median(f)
            return amount / s, 1e3 * s
        self.run(name, unit, measure)


def gemm_cases(bench, dev):
    n = 2048 if bench.quick else 4096
    a = torch.rand(n, n, device=dev) * 2 - 1
    b = torch.rand(n, n, device=dev) * 2 - 1
    tflop = 2.0 * n ** 3 / 1e12
    for name, allow in (("sgemm_fp32", False), ("sgemm_tf32", True)):
        with tf32(allow):
            bench.rate(name, "TFLOP/s", tflop, lambda: a @ b)
    a16, b16 = a.bfloat16(), b.bfloat16()
    bench.rate("sgemm_bf16", "TFLOP/s", tflop, lambda: a16 @ b16)


def memory_cases(bench, dev):
    count = (1 << 24) if bench.quick else (1 << 26)
    x = torch.rand(count, device=dev) * 2 - 1
    y = torch.rand(count, device=dev) * 2 - 1
    gb = 4.0 * count / 1e9
    bench.rate("add", "GB/s", 3 * gb, lambda: x + y)
    dst = torch.empty_like(x)
    bench.rate("copy_d2d", "GB/s", 2 * gb, lambda: dst.copy_(x))
    rows = x.view(count // 4096, 4096)
    bench.rate("softmax", "GB/s", 2 * gb, lambda: torch.softmax(rows, -1))


def conv_cases(bench, dev):
    batch = 32 if bench.quick else 64
    for backward in (False, True):
        def measure():
            seconds = flops = 0.0
            with tf32(False):
                for _, cin, cout, k, stride, pad, size, count in RESNET18_CONVS:
                    x = torch.rand(batch, cin, size, size, device=dev) * 2 - 1
                    w = (torch.rand(cout, cin, k, k, device=dev) * 2 - 1) * 0.1
                    y = F.conv2d(x, w, None, stride, pad)
                    layer_flops = 2.0 * y.numel() * cin * k * k
                    if backward:
                        def run():
                            torch.nn.grad.conv2d_input(x.shape, w, y, stride, pad)
                            torch.nn.grad.conv2d_weight(x, w.shape, y, stride, pad)
                    else:
                        def run():
                            F.conv2d(x, w, None, stride, pad)
                    seconds += count * time_median(run)
                    flops += count * layer_flops * (2 if backward else 1)
            return flops / seconds / 1e12, 1e3 * seconds
        bench.run("conv_bwd" if backward else "conv_fwd", "TFLOP/s", measure)


def train_case(bench, dev, name, precision, cudnn_benchmark=False):
    batch = 64 if bench.quick else 128
    state = {}

    def setup():
        torch.manual_seed(7)
        model = ResNet18(1000).to(dev).train()
        state.update(model=model, sgd=torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9),
                     x=torch.rand(batch, 3, 224, 224, device=dev) * 2 - 1,
                     labels=torch.randint(0, 1000, (batch,), device=dev))

    def step():
        model, sgd = state["model"], state["sgd"]
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()
        sgd.zero_grad()
        with autocast:
            loss = F.cross_entropy(model(state["x"]), state["labels"])
        loss.backward()
        sgd.step()

    torch.backends.cudnn.benchmark = cudnn_benchmark
    with tf32(precision == "tf32"):
        bench.rate(name, "images/s", float(batch), step, setup)
    torch.backends.cudnn.benchmark = False


def import_captum():
    """Captum imports matplotlib at import time only for its plots; where matplotlib is missing
    (a bare GPU machine), empty stand-in modules let the attribution classes load."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        class Stub(types.ModuleType):
            def __getattr__(self, attr):
                if attr.startswith("__"):
                    raise AttributeError(attr)
                return Stub(f"{self.__name__}.{attr}")

            def __call__(self, *args, **kwargs):
                return Stub("stub")

            def __mro_entries__(self, bases):
                return (object,)
        for name in ("matplotlib", "matplotlib.colors", "matplotlib.pyplot", "matplotlib.cm", "matplotlib.figure",
                     "matplotlib.axes", "matplotlib.patches", "matplotlib.collections", "matplotlib.text",
                     "matplotlib.lines", "matplotlib.image", "mpl_toolkits", "mpl_toolkits.axes_grid1"):
            sys.modules.setdefault(name, Stub(name))
    from captum.attr import IntegratedGradients, KernelShap, NoiseTunnel, Saliency
    return IntegratedGradients, NoiseTunnel, Saliency, KernelShap


def explain_cases(bench, dev):
    if bench.filter and bench.filter not in ("ig50 smoothgrad50 guided deeplift ig50_folded smoothgrad50_folded "
                                             "guided_folded deeplift_folded occlusion_w15s8 kernelshap1000"):
        return
    try:
        IntegratedGradients, NoiseTunnel, Saliency, KernelShap = import_captum()
    except ImportError as e:
        print(f"bench_gpu_torch: captum not importable ({e}): explain cases skipped", file=sys.stderr)
        return
    n = 50
    state = {}

    def make_setup(separate_relus=False):
        def setup():
            torch.manual_seed(11)
            model = ResNet18(1000, separate_relus=separate_relus).to(dev).eval()
            for p in model.parameters():
                p.requires_grad_(False)
            state.update(model=model, x=torch.rand(1, 3, 224, 224, device=dev) * 2 - 1)
        return setup

    setup = make_setup()
    # Captum's GuidedBackprop and DeepLift hook ReLU modules: one module per use, not in place.
    setup_relus = make_setup(separate_relus=True)

    def ig():
        IntegratedGradients(state["model"]).attribute(state["x"], baselines=0.0, target=3, n_steps=n,
                                                      method="gausslegendre", internal_batch_size=n)

    def smoothgrad():
        NoiseTunnel(Saliency(state["model"])).attribute(state["x"], nt_type="smoothgrad", nt_samples=n,
                                                        nt_samples_batch_size=n, stdevs=0.15, target=3)

    def guided():
        from captum.attr import GuidedBackprop
        GuidedBackprop(state["model"]).attribute(state["x"], target=3)

    def deeplift():
        from captum.attr import DeepLift
        DeepLift(state["model"]).attribute(state["x"], baselines=0.0, target=3)

    def occlusion():
        # perturbations_per_eval: loupe's default chunk (copies of the row in 64 MiB: 111).
        from captum.attr import Occlusion
        Occlusion(state["model"]).attribute(state["x"], sliding_window_shapes=(3, 15, 15), strides=(3, 8, 8),
                                            baselines=0.0, target=3, perturbations_per_eval=111)

    def kernelshap():
        size, grid = 224, 8
        cells = torch.arange(grid, device=dev).repeat_interleave(size // grid)
        mask = (cells[:, None] * grid + cells[None, :]).reshape(1, 1, size, size)  # 8x8 grid, all channels
        with torch.no_grad():
            KernelShap(state["model"]).attribute(state["x"], baselines=0.0, target=3, feature_mask=mask,
                                                 n_samples=1000, perturbations_per_eval=100)

    with tf32(False):
        # "<name>_folded" rows: loupe with its batch norms folded (bench_gpu.cpp) vs the same Captum call.
        for name, fn, case_setup in (("ig50", ig, setup), ("smoothgrad50", smoothgrad, setup),
                                     ("guided", guided, setup_relus), ("deeplift", deeplift, setup_relus)):
            bench.rate(name, "expl/s", 1.0, fn, case_setup)
            bench.rate(name + "_folded", "expl/s", 1.0, fn, case_setup)
        bench.rate("occlusion_w15s8", "expl/s", 1.0, occlusion, setup)
        bench.rate("kernelshap1000", "expl/s", 1.0, kernelshap, setup)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json")
    parser.add_argument("--filter", default="")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench_gpu_torch: no CUDA GPU visible to PyTorch")
    dev = torch.device("cuda:0")
    print(f"device: {torch.cuda.get_device_name(0)} (torch {torch.__version__}, CUDA {torch.version.cuda}, "
          f"cuDNN {torch.backends.cudnn.version()})")
    bench = Bench(args.quick, args.filter)
    gemm_cases(bench, dev)
    memory_cases(bench, dev)
    conv_cases(bench, dev)
    train_case(bench, dev, "resnet18_train_fp32", "fp32")
    train_case(bench, dev, "resnet18_train_tf32", "tf32")
    train_case(bench, dev, "resnet18_train_bf16", "bf16")
    train_case(bench, dev, "resnet18_train_fp32_find", "fp32", cudnn_benchmark=True)
    explain_cases(bench, dev)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
                       "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
                       "results": bench.results}, f, indent=2)


if __name__ == "__main__":
    main()
