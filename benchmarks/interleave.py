#!/usr/bin/env python3
"""interleave: times loupe's and PyTorch's cases interleaved, case by case, the way `./run bench cpu`
does, and writes the two JSON files benchmarks/compare.py joins.

    python interleave.py --loupe build/benchmarks/bench_cpu --out DIR [--rounds N] [--quick]
                         [--filter SUBSTR[|SUBSTR...]] [--threads N] [--python PYTHON]

Both sides run as long-lived workers (`bench_cpu --worker`, `bench_torch.py --worker`): the driver
asks each for its list of cases, then, for R rounds, goes through the cases in the table's order
and asks both sides to time the case back to back, alternating which side goes first. Each
answer is the median of that round's timed calls (1/R of the usual budget); a case's reported time
is the median over the rounds, and min_ms the fastest call of all rounds. Machine noise (other
work starting or stopping, frequency changes) then falls on both sides of a row alike instead of
on whichever program happened to run at that moment. Cases that take tens of seconds per call
(marked single_run by the workers: occlusion) are timed in the first round only.

Writes DIR/loupe.json and DIR/torch.json in the form of `bench_cpu --json` / `bench_torch.py
--json`, each row with its per-round times ("rounds_ms"), and the machine facts compare.py prints
in its header (CPU model, thread count, interleaving). Only the standard library is used.
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time

from compare import cpu_model  # the same CPU name compare.py prints in its header


class Worker:
    """One side's worker process: requests on its stdin, one JSON line per answer on its stdout."""

    def __init__(self, side, command, env, stderr=None):
        self.side = side
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=env,
                                        text=True, bufsize=1)

    def ask(self, request):
        self.process.stdin.write(request + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"interleave: the {self.side} worker exited (status {self.process.wait()}) "
                               f"while answering '{request}'")
        return line.rstrip("\n")

    def list_cases(self):
        first = self.ask("list")
        rows = []
        while first != "end":
            rows.append(json.loads(first))
            first = self.process.stdout.readline().rstrip("\n")
            if first == "" and self.process.poll() is not None:
                raise RuntimeError(f"interleave: the {self.side} worker exited while listing its cases")
        return rows

    def time(self, case):
        answer = json.loads(self.ask("time " + case))
        if "error" in answer:
            raise RuntimeError(f"interleave: {self.side}: {answer['error']}")
        return answer

    def close(self, abort=False):
        """Ends the worker: 'quit' after a complete run; killed when the run was cut short (it may be
        in the middle of a long case)."""
        if self.process.poll() is not None:
            return
        if abort:
            self.process.kill()
            self.process.wait()
            return
        try:
            self.process.stdin.write("quit\n")
            self.process.stdin.flush()
            self.process.wait(timeout=60)
        except (BrokenPipeError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()


def wanted(row, pattern):
    """Ceilings always run (compare.py needs them); the rest when the name contains the filter, or
    one of its '|'-separated alternatives."""
    if not pattern or row["group"] == "peak" or row["case"].startswith("copy "):
        return True
    return any(part in row["case"] for part in pattern.split("|") if part)


def main():
    parser = argparse.ArgumentParser(description="interleaved loupe / PyTorch CPU benchmark driver")
    parser.add_argument("--loupe", required=True, metavar="PROGRAM", help="build/benchmarks/bench_cpu")
    parser.add_argument("--torch-script", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                               "bench_torch.py"), metavar="FILE")
    parser.add_argument("--python", default=sys.executable, help="the Python with PyTorch (default: this one)")
    parser.add_argument("--out", required=True, metavar="DIR", help="where loupe.json and torch.json go")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over all cases (default 3)")
    parser.add_argument("--threads", type=int, default=0, help="threads on both sides (default: all cores)")
    parser.add_argument("--quick", action="store_true", help="smaller shapes and shorter timing")
    parser.add_argument("--filter", default="", metavar="SUBSTR",
                        help="only cases whose name contains SUBSTR (A|B: either)")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be a positive integer")

    threads = args.threads or os.cpu_count()
    env = dict(os.environ, LOUPE_NUM_THREADS=str(threads))
    common = ["--worker", "--rounds", str(args.rounds)] + (["--quick"] if args.quick else [])
    load_before = list(os.getloadavg())
    started = time.time()
    loupe = Worker("loupe", [args.loupe] + common, env)
    torch = Worker("torch", [args.python, args.torch_script, "--threads", str(threads)] + common, env)
    finished = False
    try:
        listed = {"loupe": loupe.list_cases(), "torch": torch.list_cases()}
        names = {side: {r["case"] for r in rows} for side, rows in listed.items()}
        order = [r for r in listed["loupe"]] + [r for r in listed["torch"] if r["case"] not in names["loupe"]]
        order = [r for r in order if wanted(r, args.filter)]
        print(f"interleave: {len(order)} cases, {args.rounds} rounds, {threads} threads, CPU {cpu_model()}",
              file=sys.stderr)
        answers = {"loupe": {}, "torch": {}}
        for round_index in range(args.rounds):
            for i, row in enumerate(order):
                if row.get("single_run") and round_index > 0:
                    continue
                sides = [(loupe, "loupe"), (torch, "torch")]
                if (round_index + i) % 2:
                    sides.reverse()  # alternate which side goes first
                for worker, side in sides:
                    if row["case"] in names[side]:
                        answers[side].setdefault(row["case"], []).append(worker.time(row["case"]))
            print(f"interleave: round {round_index + 1} of {args.rounds} done ({time.time() - started:.0f} s)",
                  file=sys.stderr)
        finished = True
    finally:
        loupe.close(abort=not finished)
        torch.close(abort=not finished)

    torch_version = ""
    try:
        torch_version = subprocess.run([args.python, "-c", "import torch; print(torch.__version__)"],
                                       capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    load_after = list(os.getloadavg())
    os.makedirs(args.out, exist_ok=True)
    for side, per_case in answers.items():
        rows = []
        for row in order:
            rounds = per_case.get(row["case"])
            if not rounds:
                continue
            combined = dict(rounds[0])
            combined["ms"] = statistics.median(r["ms"] for r in rounds)
            combined["min_ms"] = min(r["min_ms"] for r in rounds)
            combined["reps"] = sum(r["reps"] for r in rounds)
            combined["rounds_ms"] = [r["ms"] for r in rounds]
            rows.append(combined)
        document = dict(side=side, threads=threads, quick=args.quick, interleaved=True, rounds=args.rounds,
                        cpu=cpu_model(), load_before=load_before, load_after=load_after, rows=rows)
        if side == "torch":
            document["torch_version"] = torch_version
        with open(os.path.join(args.out, f"{side}.json"), "w") as f:
            json.dump(document, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    # A terminated driver ends its workers too (the finally clause in main runs on SystemExit).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        main()
    except RuntimeError as error:
        print(error, file=sys.stderr)
        sys.exit(1)
