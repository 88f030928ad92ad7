#!/usr/bin/env python
"""Benchmark of symbolic output growth: time and text size on the families that used to swell.

    python tests/benchmarks/bench_swell.py [--sizes 125,250,500,1000] [--repeat 3] [--json PATH]

Families (n statements each, every input free, so every gradient is a formula):
  * ``diamond``: ``Xi = sin(X(i-1)) + cos(X(i-1))``, default ``--wrt`` (X0 and every named
    intermediate: n formulas, 2^n paths to X0);
  * ``random``: ``X0 = P*Q``, ``Xi = sin(Xa)*cos(Xb) + X(i-1)*0.5`` with a, b < i drawn from a
    fixed seed, ``--wrt P``;
  * ``hessian``: ``X0 = A*B``, ``Xi = X(i-1)*(A + B + i)``, ``--hessian`` (formulas).

Measured per family and size: the command line as a subprocess (``gradcalc FILE ...
--format plain``; wall time, median of ``--repeat`` runs, as a ratio to ``python3 -c pass``
measured the same way) and the bytes it writes. The growth columns divide each size's figure
by the previous size's: about 2 per doubling is linear, about 4 quadratic.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def diamond(n: int) -> str:
    return "\n".join(f"X{i} = sin(X{i - 1}) + cos(X{i - 1})" for i in range(1, n + 1))


def random_family(n: int, seed: int = 1) -> str:
    rng = random.Random(seed)
    lines = ["X0 = P*Q"]
    for i in range(1, n + 1):
        a, b = rng.randrange(i), rng.randrange(i)
        lines.append(f"X{i} = sin(X{a})*cos(X{b}) + X{i - 1}*0.5")
    return "\n".join(lines)


def hessian_chain(n: int) -> str:
    return "\n".join(["X0 = A*B", *(f"X{i} = X{i - 1}*(A + B + {i})" for i in range(1, n + 1))])


FAMILIES = {
    "diamond": (diamond, []),
    "random": (random_family, ["--wrt", "P"]),
    "hessian": (hessian_chain, ["--hessian"]),
}


def gradcalc_command() -> list[str]:
    script = Path(sys.executable).with_name("gradcalc")
    return [str(script)] if script.exists() else [sys.executable, "-m", "gradcalc"]


def timed(command: list[str], repeat: int) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed: {done.stderr.decode()[:500]}")
        size = len(done.stdout)
    return statistics.median(times), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="125,250,500,1000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    baseline, _ = timed([sys.executable, "-c", "pass"], max(args.repeat, 5))
    print(f"python3 -c pass: {baseline * 1000:.1f} ms (the unit of the ratios below)")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for family, (make, flags) in FAMILIES.items():
            previous: tuple[float, int] | None = None
            print(f"\n{family} ({' '.join(flags) or 'default --wrt'})")
            print(f"{'n':>6} {'seconds':>9} {'x pass':>8} {'bytes':>10} "
                  f"{'time growth':>12} {'size growth':>12}")
            for n in sizes:
                path = Path(folder, f"{family}{n}.gc")
                path.write_text(make(n))
                seconds, size = timed([*gradcalc_command(), str(path), *flags,
                                       "--format", "plain"], args.repeat)
                growth = ("", "") if previous is None else (
                    f"{seconds / previous[0]:.2f}", f"{size / previous[1]:.2f}")
                print(f"{n:>6} {seconds:>9.3f} {seconds / baseline:>8.1f} {size:>10} "
                      f"{growth[0]:>12} {growth[1]:>12}")
                rows.append({"family": family, "n": n, "seconds": seconds,
                             "ratio_to_python": seconds / baseline, "bytes": size})
                previous = (seconds, size)
    if args.json:
        args.json.write_text(json.dumps({"baseline_seconds": baseline, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
