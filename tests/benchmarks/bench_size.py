#!/usr/bin/env python
"""Benchmark of program size: time and peak memory of the command per byte of program text.

    python tests/benchmarks/bench_size.py [--sizes 256K,1M,4M] [--repeat 3]

Programs (one statement each, generated with a fixed seed):
  * ``sum``: ``OUT = A+A+...+A``, the densest input there is (2 bytes per graph node);
  * ``mixed``: a sum of terms such as ``A*B``, ``sin(A)``, ``B^2``, ``3.5*A``, ``(A-B)*C``;
  * ``error``: ``sum`` with a syntax error at its very end (how long the report takes).

Each is run as ``gradcalc FILE --at A=1,... --max-size ...`` in a subprocess of a small
watcher process, which reports the peak resident memory of its child (``ru_maxrss``). Printed:
wall time (median of ``--repeat``) as a ratio to ``python3 -c pass``, peak memory, and peak
memory per byte of program; the growth column divides each size's time by the previous size's
(about 4 for four times the size is linear).

With ``--phases``, each program is instead run in this process under ``tracemalloc``, and the
memory of each phase is printed per byte of program: the AST (parse), the DAG with the merge
table at its peak (build), the DAG alone, and the numeric pass (forward values, gradients).
tracemalloc slows everything down several times: use sizes of 1M or less.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_WATCH = """
import resource, subprocess, sys
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(code, peak * (1 if sys.platform == "darwin" else 1024))
"""


def sum_program(size: int) -> str:
    terms = (size - len("OUT = A")) // 2
    return "OUT = A" + "+A" * terms


def mixed_program(size: int, seed: int = 3) -> str:
    rng = random.Random(seed)
    kinds = ["A*B", "sin(A)", "B^2", "3.5*A", "C", "(A-B)*C"]
    parts, length = ["OUT = C"], len("OUT = C")
    while True:
        term = rng.choice(kinds)
        if length + 1 + len(term) > size:
            break
        parts.append(term)
        length += 1 + len(term)
    return "+".join(parts)


def error_program(size: int) -> str:
    return sum_program(size - 1) + "+"


PROGRAMS = {"sum": sum_program, "mixed": mixed_program, "error": error_program}
INPUTS = {"sum": "A=1", "mixed": "A=1,B=2,C=3", "error": "A=1"}


def parse_size(text: str) -> int:
    units = {"K": 10, "M": 20, "G": 30}
    text = text.strip().upper()
    return int(text[:-1]) << units[text[-1]] if text[-1] in units else int(text)


def gradcalc_command() -> list[str]:
    script = Path(sys.executable).with_name("gradcalc")
    return [str(script)] if script.exists() else [sys.executable, "-m", "gradcalc"]


def measure(command: list[str], repeat: int) -> tuple[float, int, int]:
    """Median wall time, the largest peak memory, and the exit code."""
    times, peaks, code = [], [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", _WATCH, *command], capture_output=True,
                             text=True, check=True).stdout.split()
        times.append(time.perf_counter() - start)
        code, peak = int(out[0]), int(out[1])
        peaks.append(peak)
    return statistics.median(times), max(peaks), code


def phases(name: str, size: int) -> str:
    """One table row: memory per byte of program in each phase, from tracemalloc."""
    import gc
    import tracemalloc

    from gradcalc import api
    from gradcalc.dag import build
    from gradcalc.errors import GradcalcError
    from gradcalc.parse import parse

    text = PROGRAMS[name](size)
    per = 1 / len(text)
    tracemalloc.start()
    try:
        try:
            program = parse(text, max_size=len(text))
        except GradcalcError:
            _, peak = tracemalloc.get_traced_memory()
            return f"| {name} | {len(text):,} | {peak * per:.0f} (error) | | | |"
        ast, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        dag = build(program)
        _, build_peak = tracemalloc.get_traced_memory()
        del program
        gc.collect()
        dag_only, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        api.gradients(dag, at={n: float(i + 1) for i, n in enumerate(dag.inputs)})
        _, numeric_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return (f"| {name} | {len(text):,} | {ast * per:.0f} | {build_peak * per:.0f} "
            f"| {dag_only * per:.0f} | {numeric_peak * per:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="256K,1M,4M")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--programs", default="sum,mixed,error")
    parser.add_argument("--phases", action="store_true",
                        help="memory per phase, in this process, under tracemalloc")
    args = parser.parse_args()
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    if args.phases:
        print(f"# {' '.join(sys.argv)}\n\nbytes allocated per byte of program (tracemalloc)\n")
        print("| program | size | AST | build peak (AST + DAG + merge table) | DAG | "
              "gradients peak (DAG + numeric pass) |")
        print("|---|---|---|---|---|---|")
        for name in args.programs.split(","):
            for size in sizes:
                print(phases(name, size), flush=True)
        return
    baseline, _, _ = measure([sys.executable, "-c", "pass"], max(args.repeat, 5))
    print(f"# {' '.join(sys.argv)}\n\n`python3 -c pass`: {baseline * 1000:.1f} ms\n")
    print("| program | size | exit | time (x pass) | time growth | peak memory | bytes per byte |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for name in args.programs.split(","):
            previous = None
            for size in sizes:
                path = Path(folder) / f"{name}-{size}.gc"
                path.write_text(PROGRAMS[name](size))
                actual = path.stat().st_size
                command = [*gradcalc_command(), str(path), "--at", INPUTS[name],
                           "--max-size", str(max(actual, 1))]
                seconds, peak, code = measure(command, args.repeat)
                growth = f"{seconds / previous:.2f}" if previous else ""
                previous = seconds
                print(f"| {name} | {actual:,} | {code} | {seconds / baseline:.1f} | {growth} "
                      f"| {peak / 2**20:.0f} MiB | {peak / actual:.0f} |", flush=True)


if __name__ == "__main__":
    main()
