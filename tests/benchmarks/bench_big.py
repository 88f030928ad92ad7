#!/usr/bin/env python
"""Big programs, whole process: gradcalc against PyTorch on the same statements.

    python tests/benchmarks/bench_big.py [--sizes 100000,1000000] [--repeat 1] [--keep DIR]
        [--workloads chain,diamond,random,distinct] [--command 'python -m gradcalc']

The workloads are ``bench_core``'s (chain, diamond, random DAG) at about N graph nodes, and
``distinct``: statements that all differ in shape (the operations of each one spell its number
in base 4), for what the statement shapes of ``gradcalc.replay`` cost when there is nothing to
replay. Each one is written twice:

* ``prog.gc``, run as ``gradcalc prog.gc --format plain --wrt INPUTS`` (the gradients of the
  output with respect to the program's inputs), and once more without ``--wrt`` (every input and
  every named intermediate, gradcalc's default);
* ``prog.py``, the same statements as Python over PyTorch 0-d float64 tensors: inputs are leaf
  tensors with ``requires_grad``, ``sin``/``cos``/``tanh`` are torch's, the output's
  ``backward()`` runs and the inputs' gradients are printed. It is run as ``python prog.py``, so
  its time includes compiling the statements, as gradcalc's includes parsing them. A sum of many
  terms on one line (the random DAG's output) is cut into lines of 64 terms, because CPython's
  compiler recurses on long chains of ``+``.

Every run is a fresh process under a small watcher that reports the child's peak resident memory
(``ru_maxrss``). Printed: the median wall time over ``--repeat``, as a ratio to
``python3 -c pass`` and to PyTorch's time in the same run, and peak memory. Both programs'
gradients of the first input are compared (relative 1e-9), so the two did the same work.
PyTorch is needed (``pip install torch``); without it only gradcalc is measured, and the report
says so.
"""

from __future__ import annotations

import argparse
import random
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import bench_core

_WATCH = """
import resource, subprocess, sys
run = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
sys.stderr.write(run.stderr.decode(errors="replace")[-2000:])
print(run.returncode, peak * 1024)
sys.stdout.write(run.stdout.decode(errors="replace")[:4000])
"""

_INPUT = re.compile(r"^([A-Za-z_][A-Za-z_0-9]*) = (-?[0-9.]+)$")
_SUM = re.compile(r"^([A-Za-z_][A-Za-z_0-9]*) = ([A-Za-z_0-9]+(?: \+ [A-Za-z_0-9]+)+)$")


def distinct(size: int, seed: int = 11) -> str:
    """Inputs I0..I9, then Yi = tanh(...) of about 20 nodes, each of a shape of its own: the
    operations applied to Y(i-1) spell i in base 4 (+ X, - X, sin, tanh(* X)), X an input.
    The output is the last Y. Every value stays in [-1, 1] or near it, and every statement's
    derivative with respect to Y(i-1) is at most 1 in size, so the gradients neither explode
    nor cancel (the two sides' sums are compared)."""
    rng = random.Random(seed)
    count = max(2, size // 20)
    digits = 1
    while 4 ** digits < count:
        digits += 1
    lines = [f"I{i} = {rng.uniform(-1, 1):.4f}" for i in range(10)]
    names = [f"I{i}" for i in range(10)]
    for i in range(count):
        expr = names[-1]
        for position in range(digits + 1):
            digit = (i // 4 ** position) % 4 if position < digits else 1
            other = names[rng.randrange(10)]
            expr = (f"({expr} + {other})", f"({expr} - {other})", f"sin({expr})",
                    f"tanh({expr}*{other})")[digit]
        lines.append(f"Y{i} = tanh({expr})")
        names.append(f"Y{i}")
    return "\n".join(lines) + "\n"


def torch_program(text: str) -> tuple[str, list[str]]:
    """The gradcalc program as Python over torch scalars, and its input names."""
    lines = ["import sys, torch", "from torch import sin, cos, tanh",
             "torch.set_grad_enabled(True)",
             "def leaf(v):",
             "    return torch.tensor(v, dtype=torch.float64, requires_grad=True)"]
    inputs: list[str] = []
    last = ""
    for line in text.splitlines():
        match = _INPUT.match(line)
        if match:
            inputs.append(match[1])
            lines.append(f"{match[1]} = leaf({match[2]})")
            last = match[1]
            continue
        total = _SUM.match(line)
        if total and total[2].count("+") > 64:
            terms = total[2].split(" + ")
            lines += bench_core._sum_lines(total[1], terms)
        else:
            lines.append(line)
        last = line.split(" = ", 1)[0]
    lines.append(f"{last}.backward()")
    lines.append("for name, value in ((n, globals()[n]) for n in sys.argv[1:]):")
    lines.append("    print(name, repr(value.grad.item()))")
    return "\n".join(lines) + "\n", inputs


def measure(command: list[str], repeat: int) -> tuple[float, int, str]:
    """Median wall time, peak memory of the last run, and the head of its standard output."""
    times: list[float] = []
    peak, head = 0, ""
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", _WATCH, *command], capture_output=True,
                              text=True, check=True)
        times.append(time.perf_counter() - start)
        first, _, head = done.stdout.partition("\n")
        code, peak_text = first.split()
        if code != "0":
            raise SystemExit(f"{command[:3]} exited {code}: {done.stderr[-2000:]}")
        peak = int(peak_text)
    return statistics.median(times), peak, head


def first_gradient(head: str, name: str) -> float:
    for line in head.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == name:
            return float(parts[1])
    raise SystemExit(f"no gradient of {name} in: {head[:300]!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--workloads", default="chain,diamond,random,distinct")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="write the programs here and keep them")
    parser.add_argument("--command", help="how to run gradcalc (default: the gradcalc beside "
                        "this Python), e.g. 'python -m gradcalc' under another PYTHONPATH")
    args = parser.parse_args()
    try:
        import torch  # noqa: F401
        has_torch = True
    except ImportError:
        has_torch = False
    gradcalc = (shlex.split(args.command) if args.command
                else [str(Path(sys.executable).with_name("gradcalc"))])
    base, _, _ = measure([sys.executable, "-c", "pass"], max(3, args.repeat))
    print(f"# bench_big: {' '.join(sys.argv[1:])}")
    print(f"python3 -c pass: {base * 1000:.1f} ms" + ("" if has_torch else "; PyTorch not "
                                                     "installed: gradcalc only"))
    print()
    print("| workload | nodes | gradcalc --wrt inputs | x pass | x PyTorch | peak | gradcalc, "
          "all names | x PyTorch | peak | PyTorch | x pass | peak |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        for size in (int(s) for s in args.sizes.split(",")):
            for name in args.workloads.split(","):
                text = (distinct(size) if name == "distinct"
                        else bench_core.WORKLOADS[name](size).text)
                program = folder / f"{name}{size}.gc"
                program.write_text(text)
                source, inputs = torch_program(text)
                script = folder / f"{name}{size}.py"
                script.write_text(source)
                limit = ["--max-size", str(max(1 << 20, 2 * len(text)))]
                print(f"{name} {size}: gradcalc", file=sys.stderr, flush=True)
                t_wrt, m_wrt, head = measure(
                    [*gradcalc, str(program), "--format", "plain", "--wrt", ",".join(inputs),
                     *limit], args.repeat)
                mine = first_gradient(head, inputs[0])
                t_all, m_all, _ = measure([*gradcalc, str(program), "--format", "plain", *limit],
                                          args.repeat)
                row = [name, f"{size:,}", f"{t_wrt:.2f} s", f"{t_wrt / base:.0f}"]
                if has_torch:
                    print(f"{name} {size}: PyTorch", file=sys.stderr, flush=True)
                    t_torch, m_torch, head = measure(
                        [sys.executable, str(script), inputs[0]], args.repeat)
                    theirs = first_gradient(head, inputs[0])
                    if abs(mine - theirs) > 1e-9 * max(1.0, abs(theirs)):
                        raise SystemExit(f"{name}: gradcalc {mine!r}, PyTorch {theirs!r}")
                    row += [f"**{t_wrt / t_torch:.2f}**", f"{m_wrt >> 20} MiB",
                            f"{t_all:.2f} s", f"{t_all / t_torch:.2f}", f"{m_all >> 20} MiB",
                            f"{t_torch:.2f} s", f"{t_torch / base:.0f}", f"{m_torch >> 20} MiB"]
                else:
                    row += ["-", f"{m_wrt >> 20} MiB", f"{t_all:.2f} s", "-",
                            f"{m_all >> 20} MiB", "-", "-", "-"]
                print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
