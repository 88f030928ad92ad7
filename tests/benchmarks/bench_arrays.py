#!/usr/bin/env python
"""Arrays against scalars: does a vector or matrix program cost more per graph node than the
same nodes written out with scalar names?

    python tests/benchmarks/bench_arrays.py                            # sum n=10^6, matvec k=256
    python tests/benchmarks/bench_arrays.py --sizes 100000 --k 64 --repeat 5     # a quick run
    python tests/benchmarks/bench_arrays.py --sizes 1000000 --k 256 --repeat 3 --cli-runs 0
    python tests/benchmarks/bench_arrays.py --sizes 100000 --k 0 --profile 25    # cProfile too

The requirement measured: a 1,000,000-element ``sum`` over a vector and a 256x256
matrix-vector product go through parse, build, forward and backward within 2x the per-node
cost of today's scalar programs. Two workloads, each as an ARRAY program and its SCALAR twin
(the same graph: same node and edge counts, same values, same order of additions):

* ``sum`` (``--sizes N``): ``V = [v0, v1, ...]; OUT = sum(V)``, against ``V0 = v0`` ... one
  statement per input, then ``OUT = V0 + V1 + ...`` on one line. 2N-1 nodes each.
* ``matvec`` (``--k K``): ``M = [[...K rows of K numbers...]]; X = [...K numbers...];
  Y = M @ X; OUT = sum(tanh(Y))``, against ``M0_0 = ...``, ``X0 = ...``,
  ``Y0 = M0_0*X0 + M0_1*X1 + ...`` (one statement per row) and
  ``OUT = tanh(Y0) + tanh(Y1) + ...``. ``tanh`` so that the first input's gradient is not
  simply X0. 3K^2 + 2K - 1 nodes each: K^2 + K inputs, K^2 mul, K(K-1) + K-1 add, K tanh.

The numbers are seeded (``--seed``), 4 decimals, M in [-1, 1], X in [-0.1, 0.1], V in [-1, 1].

Measured in this process with the library, stage by stage, as the CLI calls it:
``gradcalc.parse.parse(text, max_size=...)``, ``gradcalc.dag.build(program)``, then
``gradcalc.gradients(dag)`` (default targets: every input, then every named intermediate; the
forward and the counted backward pass and the result dictionaries). Each of those functions
pauses the cyclic garbage collector itself; nothing here changes that, so a collection that
falls due between two stages is paid by the next one, as in the CLI. Between repeats the
results are dropped and ``gc.collect()`` runs, outside the timed region. Runs are interleaved
(array, scalar, array, scalar, ...) ``--repeat`` times; figures are medians.

Both programs must give the same output value and the same gradient of their first input
(``V[0]`` / ``V0``, ``M[0][0]`` / ``M0_0``), relative difference at most 1e-9, and the same node
and edge counts; otherwise the benchmark exits 1.

Then the whole process: ``gradcalc FILE --format plain --max-size NM > /dev/null`` (the console
script beside this Python) for both programs, ``--cli-runs`` times each, interleaved, as a
ratio to ``python -c pass`` (median of 5) and array/scalar. The exit code must be 0.

``--profile N`` also runs cProfile over parse and over build of each array program (once, after
the timing) and prints the top N functions by cumulative time. No timing is asserted anywhere.
See tests/benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import io
import pstats
import random
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # the venv has gradcalc installed (editable); this is a fallback
    sys.path.insert(0, str(REPO))

from bench_core import git_state  # noqa: E402

from gradcalc.api import gradients  # noqa: E402
from gradcalc.dag import build  # noqa: E402
from gradcalc.parse import parse  # noqa: E402

pc = time.perf_counter
STAGES = ("parse", "build", "gradients")
TOLERANCE = 1e-9


@dataclass
class Twin:
    """One workload: its array program, its scalar twin, and their first inputs' names."""

    label: str
    array: str
    scalar: str
    first: tuple[str, str]  # (array name, scalar name) of the first input


def _numbers(rng: random.Random, count: int, scale: float) -> list[str]:
    return [f"{rng.uniform(-scale, scale):.4f}" for _ in range(count)]


def sum_workload(n: int, seed: int) -> Twin:
    values = _numbers(random.Random(seed), n, 1.0)
    array = "V = [" + ", ".join(values) + "]\nOUT = sum(V)\n"
    scalar = ("".join(f"V{i} = {v}\n" for i, v in enumerate(values))
              + "OUT = " + " + ".join(f"V{i}" for i in range(n)) + "\n")
    return Twin(f"sum n={n:,}", array, scalar, ("V[0]", "V0"))


def matvec_workload(k: int, seed: int) -> Twin:
    rng = random.Random(seed + 1)
    m = [_numbers(rng, k, 1.0) for _ in range(k)]
    x = _numbers(rng, k, 0.1)
    array = ("M = [" + ", ".join("[" + ", ".join(row) + "]" for row in m) + "]\n"
             "X = [" + ", ".join(x) + "]\n"
             "Y = M @ X\n"
             "OUT = sum(tanh(Y))\n")
    lines = [f"M{i}_{j} = {v}" for i, row in enumerate(m) for j, v in enumerate(row)]
    lines += [f"X{j} = {v}" for j, v in enumerate(x)]
    lines += [f"Y{i} = " + " + ".join(f"M{i}_{j}*X{j}" for j in range(k)) for i in range(k)]
    lines.append("OUT = " + " + ".join(f"tanh(Y{i})" for i in range(k)))
    return Twin(f"matvec k={k}", array, "\n".join(lines) + "\n", ("M[0][0]", "M0_0"))


@dataclass
class Run:
    times: dict[str, float]
    nodes: int
    edges: int
    value: float
    gradient: float
    first: str


def pipeline(text: str, max_size: int) -> Run:
    """parse, build, gradients() back to back, each timed; nothing kept but figures."""
    t0 = pc()
    program = parse(text, max_size=max_size)
    t1 = pc()
    dag = build(program)
    t2 = pc()
    result = gradients(dag)
    t3 = pc()
    first = next(iter(dag.inputs))
    run = Run({"parse": t1 - t0, "build": t2 - t1, "gradients": t3 - t2, "whole": t3 - t0},
              len(dag), dag.edge_count, float(result.value), result.gradients[first], first)
    del program, dag, result
    return run


def close(a: float, b: float) -> bool:
    return a == b or abs(a - b) <= TOLERANCE * max(abs(a), abs(b))


def limit_for(text: str) -> int:
    """A --max-size (bytes) that admits ``text``: its size rounded up to whole MiB, plus one."""
    return ((len(text.encode()) >> 20) + 2) << 20


def measure(twin: Twin, repeat: int, log: float) -> dict[str, list[Run]]:
    runs: dict[str, list[Run]] = {"array": [], "scalar": []}
    for r in range(repeat):
        for kind in ("array", "scalar"):
            text = getattr(twin, kind)
            print(f"[{pc() - log:6.0f}s] {twin.label}: {kind} run {r + 1}/{repeat}",
                  file=sys.stderr, flush=True)
            runs[kind].append(pipeline(text, limit_for(text)))
            gc.collect()  # outside the timed region: each repeat starts from the same heap
    return runs


def check(twin: Twin, runs: dict[str, list[Run]]) -> list[str]:
    """Problems: the two programs must be the same graph and give the same numbers."""
    a, s = runs["array"][0], runs["scalar"][0]
    problems = []
    if (a.first, s.first) != twin.first:
        problems.append(f"{twin.label}: first inputs {a.first!r} and {s.first!r}, expected "
                        f"{twin.first}")
    if (a.nodes, a.edges) != (s.nodes, s.edges):
        problems.append(f"{twin.label}: array {a.nodes:,} nodes/{a.edges:,} edges, scalar "
                        f"{s.nodes:,}/{s.edges:,}")
    if not close(a.value, s.value):
        problems.append(f"{twin.label}: values {a.value!r} (array) and {s.value!r} (scalar)")
    if not close(a.gradient, s.gradient):
        problems.append(f"{twin.label}: d OUT/d {a.first} = {a.gradient!r}, d OUT/d {s.first} "
                        f"= {s.gradient!r}")
    for kind, rs in runs.items():
        if any((r.value, r.gradient) != (rs[0].value, rs[0].gradient) for r in rs):
            problems.append(f"{twin.label}: {kind} program differs between repeats")
    return problems


def median(runs: list[Run], stage: str) -> float:
    return statistics.median(r.times[stage] for r in runs)


def stage_table(twin: Twin, runs: dict[str, list[Run]]) -> list[str]:
    rows = []
    med = {k: {st: median(rs, st) for st in (*STAGES, "whole")} for k, rs in runs.items()}
    for kind in ("array", "scalar"):
        r, m = runs[kind][0], med[kind]
        per_node = m["whole"] / r.nodes * 1e6
        size = len(getattr(twin, kind).encode())
        rows.append(f"| {twin.label} | {kind} | {size / 2**20:.1f} MiB | {r.nodes:,} | "
                    f"{r.edges:,} | " + " | ".join(f"{m[st]:.2f}" for st in STAGES)
                    + f" | {m['whole']:.2f} | {per_node:.2f} |")
    a, s = runs["array"][0], runs["scalar"][0]
    ratio = {st: med["array"][st] / med["scalar"][st] for st in (*STAGES, "whole")}
    per = (med["array"]["whole"] / a.nodes) / (med["scalar"]["whole"] / s.nodes)
    rows.append(f"| {twin.label} | **array/scalar** | | | | "
                + " | ".join(f"{ratio[st]:.2f}" for st in STAGES)
                + f" | {ratio['whole']:.2f} | **{per:.2f}** |")
    return rows


def run_process(command: list[str]) -> float:
    start = pc()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = pc() - start
    if done.returncode != 0:
        raise SystemExit(f"{shlex.join(command[:2])} ... exited {done.returncode}: "
                         f"{done.stderr.decode(errors='replace')[-2000:]}")
    return elapsed


def cli_times(twins: list[Twin], runs: int, log: float) -> tuple[float, list[str]]:
    """Whole-process times of the console script on both programs of every workload."""
    script = str(Path(sys.executable).with_name("gradcalc"))
    baseline = statistics.median(run_process([sys.executable, "-c", "pass"]) for _ in range(5))
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for number, twin in enumerate(twins):
            times: dict[str, list[float]] = {"array": [], "scalar": []}
            commands = {}
            for kind in ("array", "scalar"):
                text = getattr(twin, kind)
                path = Path(scratch) / f"{number}_{kind}.gc"
                path.write_text(text)
                commands[kind] = [script, str(path), "--format", "plain",
                                  "--max-size", f"{limit_for(text) >> 20}M"]
            for r in range(runs):
                for kind in ("array", "scalar"):
                    print(f"[{pc() - log:6.0f}s] {twin.label}: CLI {kind} {r + 1}/{runs}",
                          file=sys.stderr, flush=True)
                    times[kind].append(run_process(commands[kind]))
            med = {k: statistics.median(v) for k, v in times.items()}
            for kind in ("array", "scalar"):
                rows.append(f"| {twin.label} | {kind} | {med[kind]:.2f} | "
                            f"{med[kind] / baseline:.0f} | |")
            rows.append(f"| {twin.label} | **array/scalar** | | | "
                        f"**{med['array'] / med['scalar']:.2f}** |")
    return baseline, rows


def profile(twin: Twin, top: int) -> list[str]:
    """cProfile over parse, then over build, of the array program: the top functions by
    cumulative time."""
    out = []
    text = twin.array
    program = None
    for stage in ("parse", "build"):
        profiler = cProfile.Profile()
        if stage == "parse":
            program = profiler.runcall(parse, text, max_size=limit_for(text))
        else:
            profiler.runcall(build, program)
        stream = io.StringIO()
        pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(top)
        out += [f"### cProfile: {stage} of the array program, {twin.label}", "", "```",
                *_trim(stream.getvalue()), "```", ""]
    del program
    gc.collect()
    return out


def _trim(report: str) -> list[str]:
    lines = report.strip("\n").splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    return [line.rstrip() for line in lines[max(0, start - 2):] if line.strip()]


def code_digest() -> str:
    """A digest of gradcalc's sources and grammar, to tell whether they changed during a run
    (the CLI runs import them afresh; this process imported them at the start)."""
    h = hashlib.sha256()
    for path in sorted([*(REPO / "gradcalc").glob("*.py"), *(REPO / "grammar").glob("*.lark")]):
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()[:12]


def _ints(text: str) -> list[int]:
    return [int(s) for s in text.replace("_", "").split(",") if s.strip() and int(s) > 0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1000000",
                   help="comma-separated element counts of the sum workload (default "
                   "1000000; 0 skips it)")
    p.add_argument("--k", default="256",
                   help="comma-separated matrix sizes K of the matvec workload (default 256; "
                   "0 skips it)")
    p.add_argument("--repeat", type=int, default=3,
                   help="interleaved runs of each program in process (default 3)")
    p.add_argument("--cli-runs", type=int, default=1,
                   help="whole-process runs of the CLI per program (default 1; 0 skips)")
    p.add_argument("--seed", type=int, default=20240611)
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="also cProfile parse and build of each array program, top N functions")
    args = p.parse_args()
    if args.repeat < 1:
        p.error("--repeat must be at least 1")

    start = pc()
    print(f"[{pc() - start:6.0f}s] generating programs", file=sys.stderr, flush=True)
    twins = [sum_workload(n, args.seed) for n in _ints(args.sizes)]
    twins += [matvec_workload(k, args.seed) for k in _ints(args.k)]
    if not twins:
        p.error("nothing to measure: --sizes and --k are both 0")
    commit, digest = git_state(), code_digest()

    results = [(twin, measure(twin, args.repeat, start)) for twin in twins]
    problems = [problem for twin, runs in results for problem in check(twin, runs)]

    out = ["# gradcalc: array programs against their scalar twins", "", "```",
           "$ " + shlex.join([sys.executable, *sys.argv]), "```", "",
           f"gradcalc {commit} (sources {digest}); Python {sys.version.split()[0]}; "
           f"medians of {args.repeat} interleaved runs; seconds; per node = whole / nodes", "",
           "| workload | program | text | nodes | edges | parse | build | gradients "
           "| whole | µs/node |", "|---|---|---|---|---|---|---|---|---|---|"]
    for twin, runs in results:
        out += stage_table(twin, runs)
    out.append("")
    for twin, runs in results:
        a, s = runs["array"][0], runs["scalar"][0]
        same = ("bit-equal" if (a.value, a.gradient) == (s.value, s.gradient) else
                "within 1e-9" if close(a.value, s.value) and close(a.gradient, s.gradient)
                else f"DIFFERENT (scalar: {s.value!r}, {s.gradient!r})")
        out.append(f"- {twin.label}: OUT = {a.value!r}, d OUT/d {a.first} = {a.gradient!r} "
                   f"(scalar: d OUT/d {s.first}), {same}")
    out.append("")
    print("\n".join(out), flush=True)
    if problems:
        print("MISMATCH:\n" + "\n".join("- " + x for x in problems), flush=True)
        raise SystemExit(1)

    out = []
    if args.cli_runs > 0:
        baseline, rows = cli_times(twins, args.cli_runs, start)
        out += [f"Whole process: `gradcalc FILE --format plain --max-size NM > /dev/null`, "
                f"median of {args.cli_runs}; `python -c pass` = {baseline * 1000:.1f} ms", "",
                "| workload | program | seconds | x pass | array/scalar |",
                "|---|---|---|---|---|", *rows, ""]
    if args.profile > 0:
        for twin in twins:
            print(f"[{pc() - start:6.0f}s] {twin.label}: profiling", file=sys.stderr,
                  flush=True)
            out += profile(twin, args.profile)
    if code_digest() != digest or git_state() != commit:
        out.append(f"WARNING: gradcalc changed during the run (now {git_state()}, sources "
                   f"{code_digest()}): the figures may mix two versions")
    out.append(f"Total benchmark wall time: {pc() - start:.0f} s")
    print("\n".join(out), flush=True)


if __name__ == "__main__":
    main()
