#!/usr/bin/env python
"""Benchmark of symbolic gradients: gradcalc against SymPy on diamond chains.

    python tests/benchmarks/bench_symbolic.py [--sizes 10,100,1000,10000] [--repeat 3]
                                              [--sympy-timeout 120] [--json PATH]

Workload: the diamond chain ``X0 = 0.5``, ``Xi = sin(X(i-1)) + cos(X(i-1))``; the symbolic
gradient dX_n/dX0 (n levels, 2^n paths from the output to X0).

Measured per size:
  * gradcalc, library: ``gradcalc.gradients(text, wrt=["X0"], symbolic=True)`` in this process
    (median of ``--repeat`` runs); output size = ``len(formula.text)``.
  * gradcalc, command line: ``gradcalc FILE --wrt X0 --symbolic --format plain`` as a subprocess
    (wall time, cold start included; median of ``--repeat`` runs); output size = bytes written
    (checked equal to ``"X0 " + formula.text + "\\n"``).
  * SymPy: the same expression built in SymPy (``x = X0; x = sin(x) + cos(x)`` n times, X0 a
    symbol), then, timed one by one: ``sympy.diff(x, X0)``, ``len(str(result))``,
    ``sympy.count_ops(result)`` and the value at X0 = 0.5 through ``sympy.lambdify`` (compared
    with gradcalc's number). Each
    size runs in its own subprocess, killed after ``--sympy-timeout`` seconds; steps not reached
    are reported as "timeout".

SymPy is used only here and in the tests, never by gradcalc. Figures are wall-clock seconds on
whatever machine runs this: compare within a run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
pc = time.perf_counter


def diamond(levels: int) -> str:
    lines = ["X0 = 0.5"]
    lines += [f"X{i} = sin(X{i - 1}) + cos(X{i - 1})" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------
# SymPy child: one size, results as JSON lines on stdout, flushed after every step.
# ------------------------------------------------------------------------------------------

SYMPY_CODE = ("X0 = sympy.Symbol('X0'); x = X0\n"
              "for _ in range(n): x = sympy.sin(x) + sympy.cos(x)\n"
              "d = sympy.diff(x, X0)            # timed\n"
              "len(str(d)); sympy.count_ops(d); sympy.lambdify(X0, d, 'math')(0.5)  # each timed")


def sympy_child(levels: int) -> None:
    sys.setrecursionlimit(1_000_000)  # SymPy recurses over the expression tree
    import sympy

    def emit(**data: Any) -> None:
        sys.stdout.write(json.dumps(data) + "\n")
        sys.stdout.flush()

    start = pc()
    X0 = sympy.Symbol("X0")
    x = X0
    for _ in range(levels):
        x = sympy.sin(x) + sympy.cos(x)
    emit(step="build", seconds=pc() - start)
    start = pc()
    d = sympy.diff(x, X0)
    emit(step="diff", seconds=pc() - start)
    start = pc()
    n = len(str(d))
    emit(step="str", seconds=pc() - start, length=n)
    start = pc()
    ops = sympy.count_ops(d)
    emit(step="count_ops", seconds=pc() - start, ops=int(ops))
    start = pc()
    value = float(sympy.lambdify(X0, d, "math")(0.5))
    emit(step="value", seconds=pc() - start, value=value)


def run_sympy(levels: int, timeout: float) -> dict[str, Any]:
    """The child's steps that finished within ``timeout`` seconds (the rest: "timeout")."""
    command = [sys.executable, __file__, "--sympy-child", str(levels)]
    results: dict[str, Any] = {}
    with tempfile.TemporaryFile("w+") as out:
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.PIPE, text=True,
                                 start_new_session=True)
        try:
            _, err = child.communicate(timeout=timeout)
            status = ("ok" if child.returncode == 0 else
                      f"crash (signal {-child.returncode})" if child.returncode < 0 else
                      f"error (exit {child.returncode})")
            if child.returncode != 0:
                results["error"] = (err or "").strip().splitlines()[-1:] or [""]
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, 9)  # the child and anything it started
            child.communicate()
            status = "timeout"
        out.seek(0)
        for line in out:
            data = json.loads(line)
            results[data.pop("step")] = data
    results["status"] = status
    return results


# ------------------------------------------------------------------------------------------
# gradcalc
# ------------------------------------------------------------------------------------------

def gradcalc_command() -> list[str]:
    script = Path(sys.executable).with_name("gradcalc")
    if script.exists():
        return [str(script)]
    found = shutil.which("gradcalc")
    return [found] if found else [sys.executable, "-m", "gradcalc"]


def run_library(text: str, repeat: int) -> tuple[float, str, float]:
    import gradcalc

    gradcalc.gradients("X1 = sin(X0) + cos(X0)", wrt=["X0"], symbolic=True)  # warm-up
    times, formula, number = [], "", math.nan
    for _ in range(repeat):
        start = pc()
        r = gradcalc.gradients(text, wrt=["X0"], symbolic=True)
        times.append(pc() - start)
        formula, number = r.formulas["X0"].text, r.gradients["X0"]
        value = r.formulas["X0"].value
        # (at 10,000 levels the gradient underflows: 0.0 against -5e-324 is agreement)
        assert value is not None and math.isclose(value, number, rel_tol=1e-9,
                                                  abs_tol=1e-300), (value, number)
    return statistics.median(times), formula, number


def run_cli(path: Path, repeat: int, expected: str) -> tuple[float, int, list[str]]:
    command = [*gradcalc_command(), str(path), "--wrt", "X0", "--symbolic", "--format",
               "plain"]
    times, size = [], 0
    for _ in range(repeat):
        start = pc()
        done = subprocess.run(command, capture_output=True, check=True)
        times.append(pc() - start)
        size = len(done.stdout)
        assert done.stdout.decode() == f"X0 {expected}\n", "CLI output differs from the library"
    return statistics.median(times), size, command


# ------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------

def seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 1e-3:
        return f"{value * 1e6:.0f} µs"
    if value < 1:
        return f"{value * 1e3:.1f} ms"
    return f"{value:.2f} s"


def count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def sympy_cell(result: dict[str, Any], step: str, key: str | None = None) -> str:
    data = result.get(step)
    if data is None:
        return result["status"] if result["status"] != "ok" else "—"
    if key is None:
        return seconds(data["seconds"])
    return f"{count(data[key])} ({seconds(data['seconds'])})"


def git_commit() -> str:
    try:
        return subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000,10000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sympy-timeout", type=float, default=120.0)
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--sympy-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sympy_child is not None:
        sympy_child(args.sympy_child)
        return

    import sympy

    import gradcalc

    sizes = [int(s) for s in args.sizes.split(",")]
    rows: list[dict[str, Any]] = []
    commands: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        for levels in sizes:
            print(f"[{levels} levels] gradcalc ...", file=sys.stderr, flush=True)
            text = diamond(levels)
            path = Path(folder) / f"diamond_{levels}.gc"
            path.write_text(text)
            lib_time, formula, number = run_library(text, args.repeat)
            cli_time, cli_bytes, command = run_cli(path, args.repeat, formula)
            commands.append(shlex.join(command))
            print(f"[{levels} levels] sympy (timeout {args.sympy_timeout:g} s) ...",
                  file=sys.stderr, flush=True)
            theirs = run_sympy(levels, args.sympy_timeout)
            agree = ""
            if "value" in theirs:
                v = theirs["value"]["value"]
                agree = "yes" if math.isclose(v, number, rel_tol=1e-9) else f"NO ({v!r})"
            rows.append({"levels": levels, "gradcalc_library_s": lib_time,
                         "gradcalc_cli_s": cli_time, "formula_chars": len(formula),
                         "cli_bytes": cli_bytes, "gradient": number, "sympy": theirs,
                         "values_agree": agree})

    print("# Symbolic gradient of a diamond chain: gradcalc vs SymPy\n")
    print(f"- command: `{shlex.join([Path(sys.executable).name, *sys.argv])}`")
    print(f"- gradcalc {gradcalc.__version__} (commit {git_commit()}), SymPy {sympy.__version__}, "
          f"Python {platform.python_version()}, {platform.machine()}, "
          f"{os.cpu_count()} CPUs")
    print("- workload: `X0 = 0.5`, `Xi = sin(X(i-1)) + cos(X(i-1))`, i = 1..n; "
          "the gradient dXn/dX0")
    print("- gradcalc library: `gradcalc.gradients(text, wrt=[\"X0\"], symbolic=True)`, "
          f"median of {args.repeat}")
    print(f"- gradcalc CLI (median of {args.repeat}, cold start included): "
          f"`{commands[0].replace(str(Path(folder)), '$TMP')}` (and likewise per size)")
    print("- SymPy, in a subprocess per size, killed after "
          f"{args.sympy_timeout:g} s: " + "; ".join(
              f"`{line.strip()}`" for line in SYMPY_CODE.splitlines()))
    print()
    print("| levels | dXn/dX0 at 0.5 | gradcalc library | gradcalc CLI "
          "| gradcalc formula (chars) "
          "| SymPy build | SymPy diff | SymPy len(str) | SymPy count_ops | SymPy value "
          "| values agree |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :---: |")
    for row in rows:
        s = row["sympy"]
        print(f"| {row['levels']:,} | {row['gradient']:.6g} "
              f"| {seconds(row['gradcalc_library_s'])} "
              f"| {seconds(row['gradcalc_cli_s'])} | {count(row['formula_chars'])} "
              f"| {sympy_cell(s, 'build')} "
              f"| {sympy_cell(s, 'diff')} | {sympy_cell(s, 'str', 'length')} "
              f"| {sympy_cell(s, 'count_ops', 'ops')} | {sympy_cell(s, 'value')} "
              f"| {row['values_agree'] or '—'} |")
    print()
    print("Cells with a count show the count and (the time of that step). \"timeout\": the "
          "SymPy child had not got through that step (or an earlier one) when it was killed.")
    print("gradcalc's formula is a program: the bindings X1 ... X(n-1), then the gradient, so "
          "its size is linear in n; SymPy's derivative is a tree with 2^n paths.")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
