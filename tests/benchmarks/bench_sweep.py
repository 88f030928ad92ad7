#!/usr/bin/env python
"""Sweeps: points per second for a small program (14 graph nodes), evaluated and written.

    python tests/benchmarks/bench_sweep.py [--points 200000] [--repeat 5]

The program (14 graph nodes: 2 inputs, 3 constants, 9 operations)::

    B = A*3 + sin(A); C = B*B - A*Y; OUT = tanh(C/10) + C/B

is swept over ``A`` (``--points`` points) with ``Y`` fixed, its gradients with respect to
``A`` and ``Y`` at each point, three ways:

* ``rows``: ``gradcalc.sweep.sweep(...).rows()`` consumed in process (evaluation only: the
  plan compiled once to straight-line Python, run at each point);
* ``csv``: the same, each row written as CSV to an in-memory buffer (what ``--format csv``
  does);
* ``cli``: the whole command, ``gradcalc PROGRAM --at A=0.1:10/N --at Y=2 --format csv >
  /dev/null``, start-up included.

Against a floor: the same arithmetic as straight-line Python (forward and backward written by
hand, one function call per point), so the ratio says what gradcalc's machinery costs on top.
Medians of ``--repeat`` interleaved runs; points per second and the ratio to the floor.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import statistics
import subprocess
import sys
import time

from gradcalc.sweep import sweep

PROGRAM = "B = A*3 + sin(A); C = B*B - A*Y; OUT = tanh(C/10) + C/B"
WRT = ["A", "Y"]


def by_hand(a: float, y: float) -> tuple[float, float, float]:
    """The program's value and gradients (d/dA, d/dY), written out."""
    s = math.sin(a)
    b = a * 3 + s
    c = b * b - a * y
    t = math.tanh(c / 10)
    out = t + c / b
    g_c = (1 - t * t) / 10 + 1 / b
    g_b = -c / (b * b) + g_c * 2 * b
    g_a = g_b * (3 + math.cos(a)) - g_c * y
    g_y = -g_c * a
    return out, g_a, g_y


def floor(points: list[float]) -> float:
    start = time.perf_counter()
    for a in points:
        by_hand(a, 2.0)
    return time.perf_counter() - start


def rows(points: list[float]) -> float:
    start = time.perf_counter()
    for _ in sweep(PROGRAM, {"A": points}, at={"Y": 2.0}, wrt=WRT).rows():
        pass
    return time.perf_counter() - start


def written(points: list[float]) -> float:
    start = time.perf_counter()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in sweep(PROGRAM, {"A": points}, at={"Y": 2.0}, wrt=WRT).rows():
        writer.writerow([repr(x) for x in (*row.point, row.value, *row.gradients)])
    return time.perf_counter() - start


def cli(count: int) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "gradcalc", PROGRAM, "--at", f"A=0.1:10/{count}",
                    "--at", "Y=2", "--wrt", "A,Y", "--format", "csv"],
                   stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    n = args.points
    points = [0.1 + 9.9 * k / (n - 1) for k in range(n)]
    # the two agree (the floor is the same arithmetic)
    first = next(iter(sweep(PROGRAM, {"A": points[:1]}, at={"Y": 2.0}, wrt=WRT).rows()))
    hand = by_hand(points[0], 2.0)
    assert math.isclose(first.value, hand[0], rel_tol=1e-12)
    assert all(math.isclose(g, h, rel_tol=1e-9) for g, h in zip(first.gradients, hand[1:],
                                                                  strict=True))
    times: dict[str, list[float]] = {"floor": [], "rows": [], "csv": [], "cli": []}
    for _ in range(args.repeat):
        times["floor"].append(floor(points))
        times["rows"].append(rows(points))
        times["csv"].append(written(points))
        times["cli"].append(cli(n))
    base = statistics.median(times["floor"])
    print(f"# sweep of a 14-node program over {n:,} points, medians of {args.repeat}\n")
    print("| way | seconds | points per second | x straight-line Python |")
    print("|---|---|---|---|")
    for way, found in times.items():
        median = statistics.median(found)
        print(f"| {way} | {median:.3f} | {n / median:,.0f} | {median / base:.1f} |")


if __name__ == "__main__":
    main()
