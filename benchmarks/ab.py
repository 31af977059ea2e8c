#!/usr/bin/env python3
"""ab: times two loupe variants against each other, interleaved case by case (like interleave.py
does for loupe and PyTorch), to decide whether a change pays before it goes into a full run.
    python ab.py --a PROGRAM [--a-env VAR=VALUE ...] [--b PROGRAM] [--b-env VAR=VALUE ...]
                 --filter SUBSTR[|SUBSTR...] [--rounds N] [--threads N]
A variant is a bench_cpu program plus environment settings: two builds (--a old/bench_cpu --b
build/benchmarks/bench_cpu), or one build with a switch (--a-env LOUPE_CONV_WINOGRAD=0). Both run
as workers (`bench_cpu --worker`); each round times every case on both, alternating which goes
first; a case's time is the median over the rounds. Prints one row per case: A ms, B ms, A/B
(above 1: B is faster) and the spread of the per-round ratios. Only the standard library is used.
"""
import argparse
import os
import statistics
import subprocess

from interleave import Worker, wanted


def environment(settings, threads):
    env = dict(os.environ, LOUPE_NUM_THREADS=str(threads))
    for setting in settings:
        name, sep, value = setting.partition("=")
        if not sep or not name:
            raise SystemExit(f"ab: '{setting}' is not VAR=VALUE")
        env[name] = value
    return env


def main():
    parser = argparse.ArgumentParser(description="interleaved A/B timing of two loupe variants")
    parser.add_argument("--a", required=True, metavar="PROGRAM", help="bench_cpu of variant A")
    parser.add_argument("--b", metavar="PROGRAM", help="bench_cpu of variant B (default: A's)")
    parser.add_argument("--a-env", action="append", default=[], metavar="VAR=VALUE")
    parser.add_argument("--b-env", action="append", default=[], metavar="VAR=VALUE")
    parser.add_argument("--filter", required=True, metavar="SUBSTR", help="cases whose name contains SUBSTR (A|B: either)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds over the cases (default 5)")
    parser.add_argument("--threads", type=int, default=0, help="threads (default: all cores)")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be a positive integer")
    threads = args.threads or os.cpu_count()
    common = ["--worker", "--rounds", str(args.rounds)]
    # The workers' own progress lines (stderr) would interleave with the table: dropped.
    a = Worker("A", [args.a] + common, environment(args.a_env, threads), stderr=subprocess.DEVNULL)
    b = Worker("B", [args.b or args.a] + common, environment(args.b_env, threads), stderr=subprocess.DEVNULL)
    finished = False
    try:
        cases = [r["case"] for r in a.list_cases() if wanted(r, args.filter) and r["group"] != "peak"
                 and not r["case"].startswith("copy ")]
        b.list_cases()
        times = {case: ([], []) for case in cases}
        for round_index in range(args.rounds):
            for case in cases:
                order = [(0, a), (1, b)] if round_index % 2 == 0 else [(1, b), (0, a)]
                for side, worker in order:
                    times[case][side].append(worker.time(case)["ms"])
        print(f"{'case':<55} {'A ms':>9} {'B ms':>9} {'A/B':>6}  per-round A/B")
        for case in cases:
            ta, tb = times[case]
            ratios = sorted(x / y for x, y in zip(ta, tb))
            print(f"{case:<55} {statistics.median(ta):9.3f} {statistics.median(tb):9.3f} "
                  f"{statistics.median(ta) / statistics.median(tb):6.2f}  {ratios[0]:.2f}-{ratios[-1]:.2f}")
        finished = True
    finally:
        a.close(abort=not finished)
        b.close(abort=not finished)


if __name__ == "__main__":
    main()
