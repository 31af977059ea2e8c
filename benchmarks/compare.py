#!/usr/bin/env python3
"""compare: joins the loupe rows (bench_cpu --json) and the PyTorch rows (bench_torch.py --json)
into one side-by-side table, the one `./run bench cpu` prints.

    python compare.py LOUPE.json TORCH.json [--json FILE] [--markdown] [--stat median|min]
    python compare.py COMBINED.json [--markdown] [--stat median|min]   # re-render a --json file

Columns: case | loupe ms | torch ms | ratio (torch ms / loupe ms; above 1 means loupe is faster) |
loupe and torch GFLOP/s or GB/s | loupe's % of the ceiling.
Ceilings: compute-bound rows (GEMM, convolution) against the FMA peak bench_cpu measured
("peak fma ... f32", the higher one); memory-bound rows (elementwise) against the copy bandwidth
(the faster of the two sides' "copy" rows), counting bytes read + bytes written.

Derived rows: for each ResNet18 convolution the sum fwd + bwd-data + bwd-weight, and totals over
all of ResNet18's convolutions with each distinct layer weighted by how often it occurs.
--stat min compares the fastest run of each case instead of the median.
Only the standard library is used, so this runs with any python3.
"""
import argparse
import json
import os
import platform
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def rate(row, ms):
    """GFLOP/s for compute rows, GB/s for memory rows (None without a time)."""
    if ms is None or ms <= 0:
        return None
    if row["flops"] > 0:
        return row["flops"] / ms * 1e-6
    return row["bytes"] / ms * 1e-6


def build_rows(loupe, torch):
    loupe_rows = {r["case"]: r for r in loupe["rows"]}
    torch_rows = {r["case"]: r for r in torch["rows"]}
    order = [r["case"] for r in loupe["rows"]] + [r["case"] for r in torch["rows"] if r["case"] not in loupe_rows]

    peaks = [r["flops"] / r["ms"] * 1e-6 for r in loupe["rows"] if r["group"] == "peak"]
    peak = max(peaks) if peaks else None
    copies = [rate(r, r["ms"]) for side in (loupe, torch) for r in side["rows"] if r["group"] == "memory"
              and r["case"].startswith("copy ")]
    copy_bw = max(copies) if copies else None

    rows = []
    for case in order:
        lr, tr = loupe_rows.get(case), torch_rows.get(case)
        base = lr or tr
        if lr and tr and lr["shape"] != tr["shape"]:
            print(f"compare: shapes differ for '{case}': {lr['shape']} vs {tr['shape']}", file=sys.stderr)
        rows.append(dict(case=case, group=base["group"], shape=base["shape"], flops=base["flops"],
                         bytes=base["bytes"], count=base.get("count", 1),
                         loupe_ms=lr["ms"] if lr else None, torch_ms=tr["ms"] if tr else None))

    rows = add_conv_sums(rows)
    for r in rows:
        r["ratio"] = r["torch_ms"] / r["loupe_ms"] if r["loupe_ms"] and r["torch_ms"] else None
        r["unit"] = "GFLOP/s" if r["flops"] > 0 else "GB/s"
        r["loupe_rate"] = rate(r, r["loupe_ms"])
        r["torch_rate"] = rate(r, r["torch_ms"])
        ceiling = None
        if r["group"] == "peak":
            ceiling = None
        elif r["flops"] > 0:
            ceiling = peak
        elif r["bytes"] > 0:
            ceiling = copy_bw
        r["ceiling"] = ceiling
        r["loupe_pct_ceiling"] = 100.0 * r["loupe_rate"] / ceiling if ceiling and r["loupe_rate"] else None
    return rows, peak, copy_bw


def add_conv_sums(rows):
    """After each conv layer's three passes, a 'fwd+bwd' row; at the end of the conv block, the
    ResNet18 totals (each layer weighted by its occurrences)."""
    passes = ("fwd", "bwd-data", "bwd-weight")
    out, totals = [], {}
    by_case = {r["case"]: r for r in rows}
    last_conv_index = max((i for i, r in enumerate(rows) if r["group"] == "conv"), default=-1)

    def summed(members, name, group, weights=None):
        weights = weights or [1] * len(members)
        row = dict(case=name, group=group, shape=members[0]["shape"] if group == "conv-sum" else "",
                   flops=sum(w * m["flops"] for w, m in zip(weights, members)), bytes=0.0, count=1)
        for side in ("loupe_ms", "torch_ms"):
            values = [m[side] for m in members]
            row[side] = sum(w * v for w, v in zip(weights, values)) if all(v is not None for v in values) else None
        return row

    for i, r in enumerate(rows):
        out.append(r)
        if r["group"] == "conv" and r["case"].endswith(" bwd-weight"):
            stem = r["case"][: -len(" bwd-weight")]
            members = [by_case.get(f"{stem} {p}") for p in passes]
            if all(members):
                out.append(summed(members, f"{stem} fwd+bwd", "conv-sum"))
                for p, m in zip(passes, members):
                    totals.setdefault(p, []).append(m)
        if i == last_conv_index and totals.get("fwd") and len(set(len(v) for v in totals.values())) == 1:
            fwd, data, weight = totals["fwd"], totals["bwd-data"], totals["bwd-weight"]
            counts = [m["count"] for m in fwd]
            out.append(summed(fwd, "resnet18 convs total fwd", "conv-total", counts))
            out.append(summed(data + weight, "resnet18 convs total bwd", "conv-total", counts + counts))
            out.append(summed(fwd + data + weight, "resnet18 convs total fwd+bwd", "conv-total", counts * 3))
    return out


def fmt(value, spec, missing="-"):
    return missing if value is None else format(value, spec)


def print_table(rows, meta, markdown):
    header = ["case", "loupe ms", "torch ms", "ratio", "loupe rate", "torch rate", "% ceiling"]
    lines = []
    for r in rows:
        unit = r["unit"]
        lines.append([
            r["case"],
            fmt(r["loupe_ms"], ".3f"),
            fmt(r["torch_ms"], ".3f"),
            fmt(r["ratio"], ".2f"),
            fmt(r["loupe_rate"], ".1f") + ("" if r["loupe_rate"] is None else " " + unit),
            fmt(r["torch_rate"], ".1f") + ("" if r["torch_rate"] is None else " " + unit),
            fmt(r["loupe_pct_ceiling"], ".0f") + ("" if r["loupe_pct_ceiling"] is None else "%"),
        ])
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
        for line in lines:
            print("| " + " | ".join(line) + " |")
        return
    widths = [max(len(header[i]), *(len(line[i]) for line in lines)) if lines else len(header[i])
              for i in range(len(header))]
    print(f"CPU: {meta['cpu']}, {meta['threads']} threads, PyTorch {meta['torch_version']}")
    print(f"ceilings: FMA peak {fmt(meta['peak_gflops'], '.1f')} GFLOP/s, copy {fmt(meta['copy_gbs'], '.1f')} GB/s;"
          " ratio = torch ms / loupe ms (above 1: loupe is faster)")
    if meta.get("interleaved"):
        print(f"timing: both sides interleaved case by case, {meta['rounds']} rounds, {meta['statistic']} over the rounds")
        before, after = meta["load"]["loupe"]
        if before and after:
            print(f"load average: {before[0]:.2f} at the start, {after[0]:.2f} at the end")
    else:
        for side, (before, after) in meta["load"].items():
            if before and after:
                print(f"load average during the {side} side: {before[0]:.2f} at the start, {after[0]:.2f} at the end")
    print("  ".join(h.ljust(widths[0]) if i == 0 else h.rjust(widths[i]) for i, h in enumerate(header)))
    for line in lines:
        print("  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(line)))


def main():
    parser = argparse.ArgumentParser(description="side-by-side table of loupe and PyTorch benchmark rows")
    parser.add_argument("inputs", nargs="+", metavar="FILE",
                        help="LOUPE.json TORCH.json, or one combined file written by --json")
    parser.add_argument("--json", metavar="FILE", help="write the combined rows as JSON")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--stat", choices=("median", "min"), default="median",
                        help="which time of each case to compare (default: the median; the fastest run "
                             "is less disturbed by other work on a loaded machine)")
    args = parser.parse_args()

    if len(args.inputs) == 2:
        loupe, torch = load(args.inputs[0]), load(args.inputs[1])
    elif len(args.inputs) == 1 and "sides" in load(args.inputs[0]):
        sides = load(args.inputs[0])["sides"]
        loupe, torch = sides["loupe"], sides["torch"]
    else:
        parser.error("give LOUPE.json TORCH.json, or one file written by --json")
    raw = json.loads(json.dumps(dict(loupe=loupe, torch=torch)))  # kept whole in --json output
    if args.stat == "min":
        for side in (loupe, torch):
            for r in side["rows"]:
                r["ms"] = r.get("min_ms", r["ms"])
    if loupe["threads"] != torch["threads"]:
        print(f"compare: thread counts differ (loupe {loupe['threads']}, torch {torch['threads']})", file=sys.stderr)
    rows, peak, copy_bw = build_rows(loupe, torch)
    meta = dict(cpu=loupe.get("cpu") or cpu_model(), cores=os.cpu_count(), threads=loupe["threads"],
                interleaved=bool(loupe.get("interleaved")), rounds=loupe.get("rounds", 1),
                torch_version=torch.get("torch_version", "?"), quick=loupe.get("quick", False), statistic=args.stat,
                peak_gflops=peak, copy_gbs=copy_bw,
                load=dict(loupe=[loupe.get("load_before"), loupe.get("load_after")],
                          torch=[torch.get("load_before"), torch.get("load_after")]))
    print_table(rows, meta, args.markdown)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(meta=meta, rows=rows, sides=raw), f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
