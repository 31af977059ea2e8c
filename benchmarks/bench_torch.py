#!/usr/bin/env python3
"""bench_torch: the PyTorch side of the side-by-side CPU benchmark (benchmarks/README.md).

Mirrors benchmarks/bench_cpu.cpp case for case: the same names, shapes, FLOP and byte counts and
the same timing method (two warm-up calls, the second one sizing the repetition count, then the
median of `reps` timed calls). Change one side, change the other.

    python bench_torch.py [--json FILE] [--filter SUBSTR] [--quick] [--threads N]
    python bench_torch.py --worker [--rounds N] [--quick] [--threads N]   # for interleave.py

--worker serves benchmarks/interleave.py like `bench_cpu --worker`: requests on stdin ("list",
"time CASE", "quit"), one JSON line per answer on stdout, each request with 1/N of the budget.

The thread count is --threads, else LOUPE_NUM_THREADS, else all cores (as loupe's default).
"""
import argparse
import importlib.util
import json
import os
import statistics
import sys
import time
import types

import torch
import torch.nn.functional as F


class Bench:
    def __init__(self, args):
        self.args = args
        if args.quick:
            self.budget_s, self.min_reps, self.max_reps = 0.2, 3, 20
        else:
            self.budget_s, self.min_reps, self.max_reps = 1.0, 5, 100
        if args.worker:  # each of the driver's rounds gets its share (as bench_cpu --worker)
            r = args.rounds
            self.budget_s, self.min_reps, self.max_reps = (self.budget_s / r, max(2, -(-self.min_reps // r)),
                                                           max(3, self.max_reps // r))
        self.rows = []
        self.mode, self.only = "run", None  # worker: "list" records rows only; "one" times self.only

    def wants(self, name, always=False):
        """Whether this pass times the case `name` (run: the filter; one: the requested case)."""
        if self.mode == "one":
            return name == self.only
        if self.mode == "list":
            return False
        return always or not self.args.filter or self.args.filter in name

    def time_median(self, fn):
        fn()  # warm-up: first touch of pages, thread pool start-up
        start = time.perf_counter()
        fn()  # warm-up that also sizes the repetition count
        estimate = time.perf_counter() - start
        reps = min(max(round(self.budget_s / max(estimate, 1e-6)), self.min_reps), self.max_reps)
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return statistics.median(times), min(times), reps

    def run(self, name, group, shape, fn, flops=0.0, bytes=0.0, count=1, setup=None, always=False,
            single_run=False):
        """Times fn (after setup(), which returns the state fn needs) and records a row.
        single_run: one timed call without warm-up calls (cases of tens of seconds; setup warms up)."""
        if self.mode == "list":
            self.rows.append(dict(case=name, group=group, shape=shape, flops=float(flops), bytes=float(bytes),
                                  count=count, single_run=single_run))
            return
        if not self.wants(name, always):
            return
        print(f"  {name:<48}", end="", file=sys.stderr, flush=True)
        state = setup() if setup else None
        call = (lambda: fn(state)) if setup else fn
        if single_run:
            start = time.perf_counter()
            call()
            median_s = min_s = time.perf_counter() - start
            reps = 1
        else:
            median_s, min_s, reps = self.time_median(call)
        del state
        row = dict(case=name, group=group, shape=shape, ms=median_s * 1e3, min_ms=min_s * 1e3, flops=float(flops),
                   bytes=float(bytes), count=count, reps=reps, single_run=single_run)
        print(f" {median_s * 1e3:10.3f} ms  {rate_str(row)}", file=sys.stderr)
        self.rows.append(row)


def rate_str(row):
    if row["flops"] > 0:
        return f"{row['flops'] / row['ms'] * 1e-6:8.1f} GFLOP/s"
    return f"{row['bytes'] / row['ms'] * 1e-6:8.1f} GB/s"


def shape_str(shape):
    """loupe's shape_str: "(2, 3)", and Python's "(5,)" for one dim."""
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def shape_text(*shapes):
    return " x ".join(shape_str(s) for s in shapes)


def randn(*shape):
    return torch.randn(*shape, dtype=torch.float32)


# --- Memory-bound cases: the copy ceiling and the elementwise ops ------------------------------

def memory_cases(bench):
    n = (4 << 20) if bench.args.quick else (16 << 20)
    count = f"{n >> 20}M"
    fbytes = 4.0 * n
    row_length = 1024  # softmax over rows of 1024, n / 1024 rows
    flat = shape_str((n,))
    cache = {}

    def setup():  # allocated by the first case that runs (a worker asked for another case allocates nothing)
        if not cache:
            a = randn(n)
            cache.update(a=a, b=randn(n), dst=torch.zeros(n), rows=a.reshape(n // row_length, row_length))
        return cache

    bench.run(f"copy {count}", "memory", flat, lambda c: c["dst"].copy_(c["a"]), bytes=2 * fbytes, always=True,
              setup=setup)
    bench.run(f"clone {count}", "memory", flat, lambda c: c["a"].clone(), bytes=2 * fbytes, setup=setup)
    bench.run(f"add {count}", "elementwise", flat, lambda c: torch.add(c["a"], c["b"]), bytes=3 * fbytes, setup=setup)
    bench.run(f"mul {count}", "elementwise", flat, lambda c: torch.mul(c["a"], c["b"]), bytes=3 * fbytes, setup=setup)
    bench.run(f"gelu {count}", "elementwise", flat, lambda c: F.gelu(c["a"]), bytes=2 * fbytes, setup=setup)
    # The input gradient kernel autograd calls for F.gelu (output gradient b, input a).
    bench.run(f"gelu backward {count}", "elementwise", flat, lambda c: torch.ops.aten.gelu_backward(c["b"], c["a"]),
              bytes=3 * fbytes, setup=setup)
    bench.run(f"silu backward {count}", "elementwise", flat, lambda c: torch.ops.aten.silu_backward(c["b"], c["a"]),
              bytes=3 * fbytes, setup=setup)
    bench.run(f"softmax {count} rows of 1024", "elementwise", shape_str((n // row_length, row_length)),
              lambda c: torch.softmax(c["rows"], -1), bytes=2 * fbytes, setup=setup)


# --- SGEMM and the small transformer ------------------------------------------------------------

def gemm_cases(bench):
    for s in ([256, 512] if bench.args.quick else [256, 512, 1024, 2048]):
        bench.run(f"sgemm {s}", "gemm", shape_text((s, s), (s, s)),
                  lambda st: torch.matmul(st[0], st[1]), flops=2.0 * s * s * s,
                  setup=lambda: (randn(s, s), randn(s, s)))


def transformer_cases(bench):
    batch = 2 if bench.args.quick else 8
    seq, d_model, heads, ffn = 128, 512, 8, 2048
    head_dim, tokens = d_model // heads, batch * seq

    def linear_case(name, fin, fout):
        bench.run(f"transformer {name}", "transformer", shape_text((tokens, fin), (fout, fin)),
                  lambda st: F.linear(st[0], st[1]), flops=2.0 * tokens * fin * fout,
                  setup=lambda: (randn(tokens, fin), randn(fout, fin)))

    linear_case("qkv projection", d_model, 3 * d_model)
    qkv = (batch, heads, seq, head_dim)
    attention_flops = 2.0 * batch * heads * seq * seq * head_dim
    bench.run("transformer attention scores", "transformer", shape_text(qkv, (batch, heads, head_dim, seq)),
              lambda st: torch.matmul(st[0], st[1].transpose(-2, -1)), flops=attention_flops,
              setup=lambda: (randn(*qkv), randn(*qkv)))
    bench.run("transformer attention context", "transformer", shape_text((batch, heads, seq, seq), qkv),
              lambda st: torch.matmul(st[0], st[1]), flops=attention_flops,
              setup=lambda: (randn(batch, heads, seq, seq), randn(*qkv)))
    linear_case("output projection", d_model, d_model)
    linear_case("ffn up", d_model, ffn)
    linear_case("ffn down", ffn, d_model)


# --- Fused attention vs torch.nn.functional.scaled_dot_product_attention -----------------------

def attention_cases(bench):
    """Causal self-attention, 8 heads of 64, float32 (see bench_cpu.cpp's attention_cases)."""
    batches = [1] if bench.args.quick else [1, 2, 4]
    lengths = [256] if bench.args.quick else [512, 1024, 2048]
    heads, head_dim = 8, 64
    for backward in (False, True):
        for t in lengths:
            for b in batches:
                qkv = (b, heads, t, head_dim)
                name = f"attention causal {'fwd+bwd' if backward else 'forward'} B{b} T{t}"
                flops = 2.0 * b * heads * t * t * head_dim * (3.5 if backward else 1.0)

                def setup(qkv=qkv, backward=backward):
                    return [randn(*qkv).requires_grad_(backward) for _ in range(3)] + [randn(*qkv)]

                def forward(st):
                    F.scaled_dot_product_attention(st[0], st[1], st[2], is_causal=True)

                def forward_backward(st):
                    with torch.enable_grad():
                        y = F.scaled_dot_product_attention(st[0], st[1], st[2], is_causal=True)
                        torch.autograd.grad(y, st[:3], st[3])

                bench.run(name, "attention", shape_text(qkv, qkv, qkv), forward_backward if backward else forward,
                          flops=flops, setup=setup)


# --- ResNet18's convolutions --------------------------------------------------------------------

# (name, in_channels, out_channels, kernel, stride, padding, in_size, occurrences in ResNet18)
RESNET18_CONVS = [
    ("conv1 7x7/2 3->64", 3, 64, 7, 2, 3, 224, 1),
    ("layer1 3x3 64->64", 64, 64, 3, 1, 1, 56, 4),
    ("layer2 3x3/2 64->128", 64, 128, 3, 2, 1, 56, 1),
    ("layer2 3x3 128->128", 128, 128, 3, 1, 1, 28, 3),
    ("layer2 downsample 1x1/2 64->128", 64, 128, 1, 2, 0, 56, 1),
    ("layer3 3x3/2 128->256", 128, 256, 3, 2, 1, 28, 1),
    ("layer3 3x3 256->256", 256, 256, 3, 1, 1, 14, 3),
    ("layer3 downsample 1x1/2 128->256", 128, 256, 1, 2, 0, 28, 1),
    ("layer4 3x3/2 256->512", 256, 512, 3, 2, 1, 14, 1),
    ("layer4 3x3 512->512", 512, 512, 3, 1, 1, 7, 3),
    ("layer4 downsample 1x1/2 256->512", 256, 512, 1, 2, 0, 14, 1),
]


def conv_cases(bench):
    batch = 1 if bench.args.quick else 8
    for name, cin, cout, k, stride, pad, size, count in RESNET18_CONVS:
        out = (size + 2 * pad - k) // stride + 1
        x_shape, w_shape, y_shape = (batch, cin, size, size), (cout, cin, k, k), (batch, cout, out, out)
        flops = 2.0 * batch * cout * out * out * cin * k * k
        shape = shape_text(x_shape, w_shape)
        setup = lambda: (randn(*x_shape), randn(*w_shape), randn(*y_shape))

        # The two backward passes exactly as autograd runs them (one aten call, the other
        # outputs masked off), without building a graph.
        def backward(st, mask):
            x, w, g = st
            return torch.ops.aten.convolution_backward(g, x, w, None, [stride, stride], [pad, pad], [1, 1], False,
                                                       [0, 0], 1, mask)

        bench.run(f"conv {name} fwd", "conv", shape, lambda st: F.conv2d(st[0], st[1], None, stride, pad),
                  flops=flops, count=count, setup=setup)
        bench.run(f"conv {name} bwd-data", "conv", shape, lambda st: backward(st, [True, False, False]),
                  flops=flops, count=count, setup=setup)
        bench.run(f"conv {name} bwd-weight", "conv", shape, lambda st: backward(st, [False, True, False]),
                  flops=flops, count=count, setup=setup)


# --- A depthwise convolution (MobileNetV2's 3x3 depthwise layer at 56x56, 144 channels) ---------
def depthwise_cases(bench):
    batch, channels, size = (1 if bench.args.quick else 8), 144, 56
    x_shape, w_shape = (batch, channels, size, size), (channels, 1, 3, 3)
    flops = 2.0 * batch * channels * size * size * 9
    shape = shape_text(x_shape, w_shape)
    setup = lambda: (randn(*x_shape), randn(*w_shape), randn(*x_shape))

    def backward(st, mask):
        x, w, g = st
        return torch.ops.aten.convolution_backward(g, x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], channels,
                                                   mask)

    name = "conv depthwise 3x3 144ch 56x56"
    bench.run(f"{name} fwd", "conv-depthwise", shape, lambda st: F.conv2d(st[0], st[1], None, 1, 1, 1, channels),
              flops=flops, setup=setup)
    bench.run(f"{name} bwd-data", "conv-depthwise", shape, lambda st: backward(st, [True, False, False]),
              flops=flops, setup=setup)
    bench.run(f"{name} bwd-weight", "conv-depthwise", shape, lambda st: backward(st, [False, True, False]),
              flops=flops, setup=setup)


# --- Models -------------------------------------------------------------------------------------
# Whole models, the same cases as bench_cpu.cpp's model_cases (torchvision's definitions, which
# loupe's nn/models reproduce layer for layer; FLOPs counted the same way on both sides):
#   "resnet18 train step"  batch 16, 3x224x224, 1000 classes: forward, cross-entropy loss,
#                          backward, one SGD step (momentum 0.9), in training mode.
#   "densenet121 forward"  batch 8, 3x224x224, eval mode, under torch.no_grad().
def model_cases(bench):
    import torchvision

    train_batch = 2 if bench.args.quick else 16
    eval_batch = 1 if bench.args.quick else 8

    def train_setup():
        model = torchvision.models.resnet18(num_classes=1000).train()
        sgd = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        return model, sgd, randn(train_batch, 3, 224, 224), torch.randint(0, 1000, (train_batch,))

    def train_step(state):
        model, sgd, x, labels = state
        with torch.enable_grad():  # the rest of this script runs without autograd
            sgd.zero_grad()
            F.cross_entropy(model(x), labels).backward()
            sgd.step()

    bench.run("resnet18 train step", "model", shape_text((train_batch, 3, 224, 224)), train_step,
              flops=3.0 * 2.0 * 1.814e9 * train_batch, setup=train_setup)

    def eval_setup():
        return torchvision.models.densenet121(num_classes=1000).eval(), randn(eval_batch, 3, 224, 224)

    def forward(state):
        model, x = state
        with torch.no_grad():
            model(x)

    bench.run("densenet121 forward", "model", shape_text((eval_batch, 3, 224, 224)), forward,
              flops=2.0 * 2.865e9 * eval_batch, setup=eval_setup)


# --- Attribution against Captum (bench_cpu.cpp's explain_cases) --------------------------------------
# ResNet18 (1000 classes) as torchvision defines it (the same state-dict names, so the fixture fill
# formula gives both sides the same weights), eval mode, one formula input, target class 3, the
# logit explained. Captum's gradients come from torch.autograd.grad with respect to the input, which
# skips the weight gradients; loupe's side turns off requires_grad of the parameters for the same.

class BasicBlock(torch.nn.Module):
    def __init__(self, cin, cout, stride, separate_relus=False):
        super().__init__()
        nn = torch.nn
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=not separate_relus)
        # Captum's DeepLift and GuidedBackprop hook ReLU modules: each use needs its own module
        # and no in-place operation (torchvision's block reuses one in-place ReLU).
        self.relu_out = nn.ReLU() if separate_relus else self.relu
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu_out(self.bn2(self.conv2(out)) + identity)


class ResNet18(torch.nn.Module):
    def __init__(self, num_classes=1000, separate_relus=False):
        super().__init__()
        nn = torch.nn
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=not separate_relus)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        block = lambda cin, cout, stride: BasicBlock(cin, cout, stride, separate_relus)
        self.layer1 = nn.Sequential(block(64, 64, 1), block(64, 64, 1))
        self.layer2 = nn.Sequential(block(64, 128, 2), block(128, 128, 1))
        self.layer3 = nn.Sequential(block(128, 256, 2), block(256, 256, 1))
        self.layer4 = nn.Sequential(block(256, 512, 2), block(512, 512, 1))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def fixture_formula():
    """tests/fixtures/make_fixtures.py as a module, for its fill formula (imported, not copied).
    That script needs torchvision only to export fixtures; a placeholder stands in when the
    benchmark's environment lacks it."""
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "tests", "fixtures", "make_fixtures.py")
    spec = importlib.util.spec_from_file_location("loupe_make_fixtures", path)
    module = importlib.util.module_from_spec(spec)
    if importlib.util.find_spec("torchvision") is None:
        sys.modules.setdefault("torchvision", types.ModuleType("torchvision"))
    spec.loader.exec_module(module)
    return module


def resnet18_forward_flops(size):
    """Multiply-adds x 2 of the convolutions and the linear layer of one ResNet18 forward."""
    flops = 2.0 * 512 * 1000
    for _, cin, cout, k, stride, pad, in_size, count in RESNET18_CONVS:
        out = (in_size * size // 224 + 2 * pad - k) // stride + 1
        flops += 2.0 * count * cout * out * out * cin * k * k
    return flops


_FORMULA = []


def explain_cases(bench):
    quick = bench.args.quick
    size, n, chunk = (112, 10, 5) if quick else (224, 50, 25)
    ks_n, ks_chunk, grid = (100, 25, 8) if quick else (1000, 50, 8)
    tail = f" resnet18 {size}"
    gradient_names = [f"explain/ig{n}{tail}", f"explain/smoothgrad{n}{tail}", f"explain/guided{tail}",
                      f"explain/deeplift{tail}"]
    # "... folded-bn": loupe with its batch norms folded (bench_cpu.cpp) against the same Captum call.
    names = [name + suffix for name in gradient_names for suffix in ("", " folded-bn")]
    names.append(f"explain/kernelshap{tail} {ks_n} samples {grid}x{grid} grid")
    occ_size, occ_stride = (112, 15) if quick else (224, 8)
    occ_name = f"explain/occlusion resnet18 {occ_size} window 15 stride {occ_stride}"
    if bench.mode != "list" and not any(bench.wants(name) for name in names + [occ_name, occ_name + " (captum per_eval 1)"]):
        return
    try:
        from captum.attr import DeepLift, GuidedBackprop, IntegratedGradients, KernelShap, NoiseTunnel, Saliency
    except ImportError:
        print("bench_torch: captum is not installed: explain cases skipped (pip install captum)", file=sys.stderr)
        return
    x_shape = (1, 3, size, size)
    flops = 2.0 * n * resnet18_forward_flops(size)
    if not _FORMULA:
        _FORMULA.append(fixture_formula())
    formula = _FORMULA[0]

    def make_setup(separate_relus=False):
        def setup():
            model = ResNet18(separate_relus=separate_relus)
            formula.fill_with_formula(model)
            model.eval()
            return model, formula.formula_input(x_shape).float()
        return setup

    setup = make_setup()

    def ig(state):
        model, x = state
        with torch.enable_grad():
            return IntegratedGradients(model).attribute(x, baselines=0.0, target=3, n_steps=n,
                                                        method="gausslegendre", internal_batch_size=chunk)

    def smoothgrad(state):
        model, x = state
        with torch.enable_grad():
            return NoiseTunnel(Saliency(model)).attribute(x, nt_type="smoothgrad", nt_samples=n,
                                                          nt_samples_batch_size=chunk, stdevs=0.15, target=3)

    def guided(state):
        model, x = state
        with torch.enable_grad():
            return GuidedBackprop(model).attribute(x, target=3)

    def deeplift(state):
        model, x = state
        with torch.enable_grad():
            return DeepLift(model).attribute(x, baselines=0.0, target=3)

    def kernelshap(state):
        model, x = state
        patch = size // grid
        cells = torch.arange(grid).repeat_interleave(patch)
        mask = (cells[:, None] * grid + cells[None, :]).reshape(1, 1, size, size)  # 8x8 grid, all channels
        torch.manual_seed(0)
        with torch.no_grad():
            return KernelShap(model).attribute(x, baselines=0.0, target=3, feature_mask=mask, n_samples=ks_n,
                                               perturbations_per_eval=ks_chunk)

    cases = [(ig, flops, setup), (smoothgrad, flops, setup),
             (guided, 2.0 * resnet18_forward_flops(size), make_setup(separate_relus=True)),
             (deeplift, 4.0 * resnet18_forward_flops(size), make_setup(separate_relus=True))]
    for name, (fn, case_flops, case_setup) in zip(gradient_names, cases):
        for suffix in ("", " folded-bn"):
            bench.run(name + suffix, "explain", shape_text(x_shape), fn, flops=case_flops, setup=case_setup)
    bench.run(names[-1], "explain", shape_text(x_shape), kernelshap, flops=ks_n * resnet18_forward_flops(size),
              setup=setup)
    occlusion_cases(bench, formula)


def occlusion_cases(bench, formula):
    """bench_cpu.cpp's occlusion case: window (3, 15, 15), strides (3, 8, 8) (--quick: 112x112,
    stride 15), zero baseline, target 3, one timed call. perturbations_per_eval is loupe's default
    chunk (explain::detail::default_per_eval: copies of the row in 64 MiB, 111 at 3x224x224); a
    second row runs Captum's own default of 1 (one forward per window)."""
    from captum.attr import Occlusion
    quick = bench.args.quick
    size, stride, window = (112, 15, 15) if quick else (224, 8, 15)
    name = f"explain/occlusion resnet18 {size} window {window} stride {stride}"
    names = (name, name + " (captum per_eval 1)")
    if bench.mode != "list" and not any(bench.wants(n) for n in names):
        return
    x_shape = (1, 3, size, size)
    per_dim = (size - window + stride - 1) // stride + 1
    flops = (per_dim * per_dim + 1) * resnet18_forward_flops(size)
    chunk = max(1, (64 << 20) // (3 * size * size * 4))

    def setup():
        model = ResNet18()
        formula.fill_with_formula(model)
        model.eval()
        x = formula.formula_input(x_shape).float()
        model(torch.zeros(min(chunk, per_dim * per_dim), 3, size, size))  # warm-up at the chunk size, as loupe's side
        return model, x

    def occlusion(per_eval):
        def run(state):
            model, x = state
            return Occlusion(model).attribute(x, sliding_window_shapes=(3, window, window),
                                              strides=(3, stride, stride), baselines=0.0, target=3,
                                              perturbations_per_eval=per_eval)
        return run

    bench.run(names[0], "explain", shape_text(x_shape), occlusion(chunk), flops=flops, setup=setup, single_run=True)
    bench.run(names[1], "explain", shape_text(x_shape), occlusion(1), flops=flops, setup=setup, single_run=True)


def all_cases(bench):
    memory_cases(bench)
    gemm_cases(bench)
    transformer_cases(bench)
    attention_cases(bench)
    conv_cases(bench)
    depthwise_cases(bench)
    model_cases(bench)
    explain_cases(bench)


def serve(bench):
    """The worker loop (bench_cpu.cpp's serve): one JSON line per request on stdout."""
    for line in sys.stdin:
        line = line.rstrip("\n")
        if line == "quit":
            break
        if line == "list":
            bench.mode, bench.only, bench.rows = "list", None, []
            all_cases(bench)
            for row in bench.rows:
                print(json.dumps(row))
            print("end", flush=True)
        elif line.startswith("time "):
            bench.mode, bench.only, bench.rows = "one", line[5:], []
            all_cases(bench)
            answer = bench.rows[0] if bench.rows else dict(error=f"no case named '{line[5:]}'")
            print(json.dumps(answer), flush=True)
        else:
            print(json.dumps(dict(error=f"unknown request '{line}'")), flush=True)


def main():
    parser = argparse.ArgumentParser(description="PyTorch side of loupe's CPU benchmark")
    parser.add_argument("--json", metavar="FILE", help="write the rows as JSON (read by compare.py)")
    parser.add_argument("--filter", metavar="SUBSTR", default="", help="only cases whose name contains SUBSTR")
    parser.add_argument("--quick", action="store_true", help="smaller shapes and shorter timing")
    parser.add_argument("--threads", type=int, default=0, help="thread count (default: LOUPE_NUM_THREADS or all cores)")
    parser.add_argument("--worker", action="store_true", help="serve benchmarks/interleave.py on stdin/stdout")
    parser.add_argument("--rounds", type=int, default=1, help="--worker: the driver's round count")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be a positive integer")

    threads = args.threads or int(os.environ.get("LOUPE_NUM_THREADS", "0") or 0) or os.cpu_count()
    torch.set_num_threads(threads)
    bench = Bench(args)
    if args.worker:
        with torch.no_grad():
            serve(bench)
        return
    load_before = list(os.getloadavg())
    print(f"bench_torch: PyTorch {torch.__version__}, {torch.get_num_threads()} threads"
          + (", quick" if args.quick else ""), file=sys.stderr)
    with torch.no_grad():
        all_cases(bench)

    for row in bench.rows:
        print(f"{row['case']:<52} {row['ms']:10.3f} ms {rate_str(row)}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(side="torch", torch_version=torch.__version__, threads=torch.get_num_threads(),
                           quick=args.quick, load_before=load_before,
                           load_after=list(os.getloadavg()), rows=bench.rows), f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
