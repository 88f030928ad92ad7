#!/usr/bin/env python
"""Batch throughput by shape: ``gradcalc --batch FILE`` on realistic problem files.

    python tests/benchmarks/bench_shapes.py [--lines 200000] [--formats jsonl,csv,plain]
                                            [--jobs 1,2] [--files shapes,seed,unique]

Files (fixed seed):
  * ``shapes``: lines of 18 shapes a class or a parameter study would have (seed-like
    products, a logistic loss, a tanh layer, a softmax term, a projectile, a distance, ...),
    numbers varying per line, 0.5% of the lines malformed;
  * ``seed``: the seed example's shape only;
  * ``unique``: every line a different shape (a name that changes per line): the path that
    shapes cannot help, which must not get slower.

Each run is the console script in a subprocess, its output read through a pipe; printed:
problems per second (wall time of the whole process), and the ratio to ``python3 -c pass``.
With ``--profile``, one in-process run of ``shapes`` under cProfile instead, split into
tokenizing, shape lookup, evaluating and writing.
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

SHAPES = [
    "A = {a}; B = A*{b}; OUT = (B+1)*(B+{c})",
    "Z = W*X + B; P = sigmoid(Z); L = -(Y*log(P) + (1-Y)*log(1-P)); W = {a}; X = {b}; B = {c}; "
    "Y = {y}",
    "H = tanh(W1*X + B1); OUT = W2*H + B2; W1 = {a}; X = {b}; B1 = {c}; W2 = {d}; B2 = {e}",
    "S = exp(A) + exp(B) + exp(C); P = exp(A)/S; L = -log(P); A = {a}; B = {b}; C = {c}",
    "V = {a}; T = {b}; G = 9.81; ANGLE = {c}; X = V*cos(ANGLE)*T; "
    "Y = V*sin(ANGLE)*T - G*T^2/2; OUT = Y",
    "D = sqrt((X1 - X2)^2 + (Y1 - Y2)^2); X1 = {a}; X2 = {b}; Y1 = {c}; Y2 = {d}",
    "OUT = A^2*B + {a}*A*B^2; A = {b}; B = {c}",
    "OUT = sin(X)*cos(Y) + {a}*X*Y; X = {b}; Y = {c}",
    "OUT = log(1 + exp(A*{a})); A = {b}",
    "E = (P - T)^2/2; P = W*X; W = {a}; X = {b}; T = {c}",
    "R = sqrt(X^2 + Y^2); THETA = atan2(Y, X); OUT = R*THETA; X = {a}; Y = {b}",
    "OUT = X^3 - {a}*X^2 + {b}*X - {c}; X = {d}",
    "K = {a}; M = {b}; V = {c}; OUT = K*M*V^2/2",
    "OUT = exp(-(X - MU)^2/(2*S^2)); X = {a}; MU = {b}; S = {c}",
    "OUT = relu(W*X + B) * {a}; W = {b}; X = {c}; B = {d}",
    "F = G*M1*M2/R^2; G = 6.674e-11; M1 = {a}; M2 = {b}; R = {c}",
    "OUT = tanh(A)*tanh(B) + A*B*{a}; A = {b}; B = {c}",
    "C = A*B + B*C0 + C0*A; A = {a}; B = {b}; C0 = {c}",
]
MALFORMED = ["OUT = A*", "OUT = (A + 2", "OUT = foo(3)", "A = 1; OUT = A*2 2", "OUT = log(-1)"]


def number(rng: random.Random) -> str:
    return f"{rng.uniform(0.1, 5):.{rng.choice([1, 2, 3, 4])}f}"


def shapes_file(path: Path, lines: int, rng: random.Random) -> None:
    with path.open("w") as f:
        for _ in range(lines):
            if rng.random() < 0.005:
                f.write(rng.choice(MALFORMED) + "\n")
                continue
            template = rng.choice(SHAPES)
            f.write(template.format(**{k: number(rng) for k in "abcdey"}) + "\n")


def seed_file(path: Path, lines: int, rng: random.Random) -> None:
    with path.open("w") as f:
        for _ in range(lines):
            f.write(SHAPES[0].format(a=number(rng), b=number(rng), c=number(rng)) + "\n")


def unique_file(path: Path, lines: int, rng: random.Random) -> None:
    with path.open("w") as f:
        for i in range(lines):
            f.write(f"A{i} = {number(rng)}; B = A{i}*{number(rng)}; OUT = (B+1)*(B+2)\n")


FILES = {"shapes": shapes_file, "seed": seed_file, "unique": unique_file}


def gradcalc_command() -> list[str]:
    script = Path(sys.executable).with_name("gradcalc")
    return [str(script)] if script.exists() else [sys.executable, "-m", "gradcalc"]


def timed(command: list[str], pipe_from: Path | None = None) -> float:
    """Wall time of ``command``; with ``pipe_from``, its standard input is that file through
    a pipe (``cat FILE | command``)."""
    start = time.perf_counter()
    if pipe_from is None:
        subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=False)
    else:
        cat = subprocess.Popen(["cat", str(pipe_from)], stdout=subprocess.PIPE)
        subprocess.run(command, stdin=cat.stdout, stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, check=False)
        assert cat.stdout is not None
        cat.stdout.close()
        cat.wait()
    return time.perf_counter() - start


def profile(path: Path) -> None:
    import cProfile
    import io
    import pstats

    from gradcalc.batch import problems, solve_stream
    from gradcalc.cli import Format
    from gradcalc.cli_batch import _Lines

    out = io.StringIO()
    writer = _Lines(out, Format.jsonl, eager=False)
    profiler = cProfile.Profile()
    with path.open("rb") as stream:
        profiler.enable()
        for result in solve_stream(problems(stream), {}, None, None, 1, 1 << 20):
            writer.write(result)
        profiler.disable()
    stats = pstats.Stats(profiler)
    total = stats.total_tt  # type: ignore[attr-defined]
    parts = {"read (problems)": "problems", "tokenize (split_numbers)": "split_numbers",
             "shape lookup (pattern)": "pattern", "evaluate (_answer)": "_answer",
             "full path (parse, build, gradients)": "gradients",
             "make shapes (_make)": "_make", "write (_Lines.write)": "write"}
    print(f"\nprofile of {path.name}: {total:.2f} s in all (cProfile)\n")
    print("| part | cumulative seconds | share |\n|---|---|---|")
    for label, function in parts.items():
        found = [v for k, v in stats.stats.items() if k[2] == function]  # type: ignore[attr-defined]
        seconds = sum(v[3] for v in found)
        print(f"| {label} | {seconds:.2f} | {seconds / total:.0%} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--formats", default="jsonl,csv,plain")
    parser.add_argument("--jobs", default="1")
    parser.add_argument("--files", default="shapes,seed,unique")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--stdin", action="store_true",
                        help="feed each file through a pipe (--batch -) instead of naming it")
    parser.add_argument("--command", help="the command to measure (default: the console "
                        "script beside this Python), e.g. 'python -m gradcalc'")
    args = parser.parse_args()
    rng = random.Random(13)
    with tempfile.TemporaryDirectory() as folder:
        paths = {}
        for name in args.files.split(","):
            paths[name] = Path(folder) / f"{name}.txt"
            FILES[name](paths[name], args.lines, rng)
        if args.profile:
            profile(paths.get("shapes") or next(iter(paths.values())))
            return
        baseline = statistics.median(timed([sys.executable, "-c", "pass"]) for _ in range(5))
        print(f"# {' '.join(sys.argv)}\n\n{args.lines:,} lines; `python3 -c pass`: "
              f"{baseline * 1000:.1f} ms\n")
        print("| file | format | jobs | seconds | problems/s | x `python3 -c pass` |")
        print("|---|---|---|---|---|---|")
        for name, path in paths.items():
            for fmt in args.formats.split(","):
                for jobs in args.jobs.split(","):
                    command = [*(args.command.split() if args.command else gradcalc_command()),
                               "--batch", "-" if args.stdin else str(path), "--format", fmt,
                               "--jobs", jobs]
                    seconds = statistics.median(timed(command, path if args.stdin else None)
                                                for _ in range(args.repeat))
                    print(f"| {name} | {fmt} | {jobs} | {seconds:.2f} | "
                          f"{args.lines / seconds:,.0f} | {seconds / baseline:.0f} |",
                          flush=True)


if __name__ == "__main__":
    main()
