#!/usr/bin/env python
"""Throughput and peak memory of ``gradcalc --batch`` (the console script, end to end).

    python tests/benchmarks/bench_batch.py [--sizes 10000,100000] [--formats jsonl,csv,plain]
                                           [--jobs 1,2] [--repeat N] [--big]
                                           [--memory-sizes 10000,100000] [--startup-runs N]
                                           [--workdir DIR] [--timeout S]

Input: N seed-like problems with constants varying per line,
``A = {a}; B = A*{k}; OUT = (B+1)*(B+{m})`` (the answer of every line is known exactly, and the
last result of every run is checked against it, as is the number of results).

Every run is one fresh measuring subprocess (this file with ``--_child``) that starts the
console script on the input file, reads its standard output through a pipe (counting lines,
keeping the last), waits for it and reports the wall time from start to exit and
``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``: the peak resident set of the largest process
of that one run (with ``--jobs 2`` the largest of the parent and its workers, not their sum).

Start-up is measured the same way: ``python -c pass`` and ``gradcalc --batch EMPTY`` (a file
with no problems, same format and jobs). Throughput is reported raw (N / wall time) and net of
start-up (N / (wall - start-up)), for both start-up baselines.

Not part of the test suite (pytest ignores tests/benchmarks). The report is Markdown on
standard output; progress goes to standard error.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_core import git_state

REPO = Path(__file__).resolve().parents[2]
FORMATS = ("jsonl", "csv", "plain")


# --- the measuring child ---------------------------------------------------------------------


def child(spec: dict[str, Any]) -> None:
    """Run one command with stdin from a file and stdout into a pipe; print one JSON line."""
    stdin = open(spec["stdin"], "rb") if spec.get("stdin") else subprocess.DEVNULL  # noqa: SIM115
    lines = 0
    last = b""
    tail = b""
    start = time.perf_counter()
    proc = subprocess.Popen(spec["cmd"], stdin=stdin, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    read = proc.stdout.read1 if hasattr(proc.stdout, "read1") else proc.stdout.read
    while True:
        chunk = read(1 << 16)
        if not chunk:
            break
        lines += chunk.count(b"\n")
        tail = (tail + chunk)[-4096:]
    code = proc.wait()
    elapsed = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    if tail:
        parts = tail.rstrip(b"\n").split(b"\n")
        last = parts[-1]
    print(json.dumps({"elapsed": elapsed, "maxrss_kib": usage.ru_maxrss,
                      "cpu": usage.ru_utime + usage.ru_stime, "returncode": code,
                      "lines": lines, "last": last.decode("utf-8", "replace")}))


def measure(cmd: list[str], stdin: Path | None, timeout: float) -> dict[str, Any]:
    spec = {"cmd": cmd, "stdin": str(stdin) if stdin else None}
    done = subprocess.run([sys.executable, os.path.abspath(__file__), "--_child",
                           json.dumps(spec)], capture_output=True, text=True, timeout=timeout,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- inputs and answers ----------------------------------------------------------------------


def params(i: int) -> tuple[int, int, int]:
    return i % 997 + 1, i % 13 + 2, i % 7


def seed_line(i: int) -> str:
    a, k, m = params(i)
    return f"A = {a}; B = A*{k}; OUT = (B+1)*(B+{m})"


def answer(i: int) -> tuple[float, float, float]:
    a, k, m = params(i)
    b = a * k
    return float((b + 1) * (b + m)), float(k * (2 * b + 1 + m)), float(2 * b + 1 + m)


def write_input(path: Path, n: int) -> None:
    with open(path, "w", encoding="utf-8") as f:
        chunk: list[str] = []
        for i in range(1, n + 1):
            chunk.append(seed_line(i))
            if len(chunk) == 10_000:
                f.write("\n".join(chunk) + "\n")
                chunk = []
        if chunk:
            f.write("\n".join(chunk) + "\n")


def check(result: dict[str, Any], n: int, fmt: str) -> None:
    """The run gave n results and the last one is right."""
    assert result["returncode"] == 0, result
    header = 1 if fmt in ("csv", "tsv") else 0
    assert result["lines"] == n + header, (result["lines"], n, fmt)
    if n == 0:
        return
    value, d_a, d_b = answer(n)
    last = result["last"]
    if fmt == "jsonl":
        data = json.loads(last)
        assert (data["line"], data["value"], data["gradients"]) == (
            n, value, {"A": d_a, "B": d_b}), last
    elif fmt == "plain":
        assert last.split() == [str(n), "OUT", _num(value), f"A={_num(d_a)}",
                                f"B={_num(d_b)}"], last
    else:
        cells = last.split("," if fmt == "csv" else "\t")
        assert cells[:5] == [str(n), "OUT", _num(value), _num(d_a), _num(d_b)], last


def _num(x: float) -> str:
    text = repr(x)
    return text[:-2] if text.endswith(".0") else text


# --- the runs --------------------------------------------------------------------------------


def console_script() -> str:
    found = Path(sys.executable).with_name("gradcalc")
    if found.exists():
        return str(found)
    which = shutil.which("gradcalc")
    if not which:
        sys.exit("the gradcalc console script is not installed")
    return which


def batch_cmd(script: str, path: Path, fmt: str, jobs: int) -> list[str]:
    return [script, "--batch", str(path), "--format", fmt, "--jobs", str(jobs)]


def show(cmd: list[str], work: Path) -> str:
    text = shlex.join(cmd).replace(str(work) + "/", "$WORK/")
    return text.replace(sys.executable, "python").replace(str(Path(sys.executable).parent)
                                                          + "/", "")


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--_child":
        child(json.loads(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--jobs", default="1,2")
    parser.add_argument("--repeat", type=int, default=None,
                        help="runs per measurement (default 3 below 50,000 lines, else 1)")
    parser.add_argument("--memory-sizes", default="10000,100000")
    parser.add_argument("--big", action="store_true",
                        help="also measure 1,000,000 lines (peak memory, jsonl and csv, -j 1)")
    parser.add_argument("--startup-runs", type=int, default=7)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()

    sizes = [int(s) for s in args.sizes.split(",") if s]
    formats = [f for f in args.formats.split(",") if f]
    jobs_list = [int(j) for j in args.jobs.split(",") if j]
    memory_sizes = [int(s) for s in args.memory_sizes.split(",") if s]
    if args.big:
        memory_sizes.append(1_000_000)
    script = console_script()
    commit = git_state()
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench_batch_"))
    work.mkdir(parents=True, exist_ok=True)

    inputs: dict[int, Path] = {}
    for n in sorted({*sizes, *memory_sizes, 0}):
        path = work / f"seed-{n}.txt"
        if not path.exists():
            progress(f"writing {path} ({n:,} lines)")
            write_input(path, n)
        inputs[n] = path

    # Warm-up: bytecode caches, the grammar table cache.
    for fmt in formats:
        check(measure(batch_cmd(script, inputs[min(sizes)], fmt, 1), None, args.timeout),
              min(sizes), fmt)

    # Start-up baselines, interleaved.
    python_pass = [sys.executable, "-c", "pass"]
    empty_cmds = {(fmt, jobs): batch_cmd(script, inputs[0], fmt, jobs)
                  for fmt in formats for jobs in jobs_list}
    startup: dict[Any, list[float]] = {"python": [], **{k: [] for k in empty_cmds}}
    startup_rss: dict[Any, int] = {}
    for _ in range(args.startup_runs):
        r = measure(python_pass, None, args.timeout)
        startup["python"].append(r["elapsed"])
        startup_rss["python"] = r["maxrss_kib"]
        for key, cmd in empty_cmds.items():
            r = measure(cmd, None, args.timeout)
            check(r, 0, key[0])
            startup[key].append(r["elapsed"])
            startup_rss[key] = r["maxrss_kib"]
    start_python = median(startup["python"])
    progress(f"start-up: python -c pass {start_python * 1000:.0f} ms")

    # Throughput: every (size, format, jobs), runs interleaved across jobs.
    times: dict[tuple[int, str, int], list[float]] = {}
    rss: dict[tuple[int, str, int], list[int]] = {}
    cpu: dict[tuple[int, str, int], list[float]] = {}
    for n in sizes:
        repeat = args.repeat or (3 if n < 50_000 else 1)
        for rep in range(repeat):
            for fmt in formats:
                for jobs in jobs_list:
                    r = measure(batch_cmd(script, inputs[n], fmt, jobs), None, args.timeout)
                    check(r, n, fmt)
                    times.setdefault((n, fmt, jobs), []).append(r["elapsed"])
                    rss.setdefault((n, fmt, jobs), []).append(r["maxrss_kib"])
                    cpu.setdefault((n, fmt, jobs), []).append(r["cpu"])
                    progress(f"N={n:,} {fmt} -j {jobs} run {rep + 1}/{repeat}: "
                             f"{r['elapsed']:.2f} s, {n / r['elapsed']:,.0f} problems/s, "
                             f"peak {r['maxrss_kib'] / 1024:.1f} MiB")

    # Peak memory with growing inputs (one fresh run each; -j 1, jsonl and csv).
    memory: dict[tuple[int, str, int], dict[str, Any]] = {}
    mem_formats = [f for f in ("jsonl", "csv") if f in formats] or formats[:1]
    for n in memory_sizes:
        for fmt in mem_formats:
            key = (n, fmt, 1)
            if key in rss and n != 1_000_000:
                memory[key] = {"maxrss_kib": max(rss[key]), "elapsed": median(times[key])}
                continue
            r = measure(batch_cmd(script, inputs[n], fmt, 1), None, args.timeout)
            check(r, n, fmt)
            memory[key] = r
            progress(f"memory N={n:,} {fmt}: peak {r['maxrss_kib'] / 1024:.1f} MiB, "
                     f"{r['elapsed']:.1f} s")
    if 2 in jobs_list:  # one --jobs 2 point at the largest memory size measured by default
        n = max(s for s in memory_sizes if s <= max(sizes))
        key = (n, mem_formats[0], 2)
        memory[key] = ({"maxrss_kib": max(rss[key]), "elapsed": median(times[key])}
                       if key in rss else measure(batch_cmd(script, inputs[n], key[1], 2),
                                                  None, args.timeout))

    # --- report ---
    out: list[str] = []
    w = out.append
    w("# gradcalc batch benchmark")
    w("")
    w(f"- command: `{shlex.join(['python', 'tests/benchmarks/bench_batch.py', *sys.argv[1:]])}`")
    w(f"- gradcalc commit: {commit}")
    w(f"- Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
      f"{os.cpu_count()} CPUs; load average at the end: "
      f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    w(f"- input: `A = {{a}}; B = A*{{k}}; OUT = (B+1)*(B+{{m}})` with a = i mod 997 + 1, "
      f"k = i mod 13 + 2, m = i mod 7 (line i); `$WORK` = `{work}`")
    w("- each run: a fresh measuring subprocess starts the command with stdout into a pipe it "
      "drains (counting lines), waits, and reports wall time and "
      "`getrusage(RUSAGE_CHILDREN).ru_maxrss`; every run's result count and last result are "
      "checked")
    w("")
    w("## Start-up")
    w("")
    w("| command | median ms | peak RSS MiB |")
    w("|---|---:|---:|")
    w(f"| `{show(python_pass, work)}` | {start_python * 1000:.0f} | "
      f"{startup_rss['python'] / 1024:.1f} |")
    for key, cmd in empty_cmds.items():
        w(f"| `{show(cmd, work)}` (no problems) | {median(startup[key]) * 1000:.0f} | "
          f"{startup_rss[key] / 1024:.1f} |")
    w("")
    w(f"({args.startup_runs} runs each, interleaved.)")
    w("")
    w("## Throughput")
    w("")
    w("net = N / (wall − start-up): `−python` subtracts `python -c pass`, `−empty` subtracts "
      "the same gradcalc command on an empty file. Speed-up = wall(-j 1) / wall(-j 2). CPU s = "
      "user + system time of the command and its workers (less sensitive to other load on "
      "the machine than wall time).")
    w("")
    w("| N | format | jobs | runs | wall s (median) | problems/s | net problems/s (−python) "
      "| µs/problem (−python) | µs/problem (−empty) | speed-up | CPU s (all processes) "
      "| peak RSS MiB | command |")
    w("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for n in sizes:
        for fmt in formats:
            for jobs in jobs_list:
                ts = times[(n, fmt, jobs)]
                wall = median(ts)
                net_py = wall - start_python
                net_empty = wall - median(startup[(fmt, jobs)])
                speed = ""
                if jobs != 1 and (n, fmt, 1) in times:
                    speed = f"{median(times[(n, fmt, 1)]) / wall:.2f}×"
                cmd = show(batch_cmd(script, inputs[n], fmt, jobs), work)
                w(f"| {n:,} | {fmt} | {jobs} | {len(ts)} | {wall:.2f} | {n / wall:,.0f} | "
                  f"{n / net_py:,.0f} | {net_py / n * 1e6:.1f} | {net_empty / n * 1e6:.1f} | "
                  f"{speed} | {median(cpu[(n, fmt, jobs)]):.2f} | "
                  f"{max(rss[(n, fmt, jobs)]) / 1024:.1f} | `{cmd}` |")
    w("")
    w("## Peak memory")
    w("")
    w("| N | format | jobs | peak RSS MiB | wall s | problems/s | command |")
    w("|---:|---|---:|---:|---:|---:|---|")
    for (n, fmt, jobs), r in sorted(memory.items()):
        cmd = show(batch_cmd(script, inputs[n], fmt, jobs), work)
        w(f"| {n:,} | {fmt} | {jobs} | {r['maxrss_kib'] / 1024:.1f} | {r['elapsed']:.1f} | "
          f"{n / r['elapsed']:,.0f} | `{cmd}` |")
    peaks = [r["maxrss_kib"] for (n, _, jobs), r in memory.items() if jobs == 1]
    w("")
    w(f"Peak RSS across {min(memory_sizes):,} to {max(memory_sizes):,} lines (-j 1): "
      f"{min(peaks) / 1024:.1f} to {max(peaks) / 1024:.1f} MiB "
      f"(empty input: {min(v for k, v in startup_rss.items() if k != 'python') / 1024:.1f} "
      "MiB).")
    print("\n".join(out))


if __name__ == "__main__":
    main()
