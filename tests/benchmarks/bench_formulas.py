#!/usr/bin/env python
"""Formula sizes: gradcalc's symbolic gradients against SymPy's ``simplify(diff(...))``.

    python tests/benchmarks/bench_formulas.py [--programs 300] [--seed 16] [--timeout 20]
                                              [--worst 5] [--cache FILE]

Workload: ``--programs`` random programs (seeded, deterministic) of 2 to 4 statements over the
inputs ``A``, ``B``, ``C``, each statement an expression of depth up to 3 over the inputs and
the earlier names, with ``+ - * /``, small integer powers and ``sin cos exp log tanh sqrt
sigmoid``. For each program, the gradient of its output with respect to ``A``:

* gradcalc: ``gradcalc.gradients(program, wrt=["A"], symbolic=True)``, the formula program as
  printed (bindings included); its size in characters, and its ``count_ops`` once read by SymPy
  with the bindings substituted (the same measure as SymPy's own result);
* SymPy: the same program built as a SymPy expression, ``sympy.diff`` then ``sympy.simplify``,
  in a subprocess killed after ``--timeout`` seconds (reported, and left out of the ratios).

Printed: the ratio gradcalc / SymPy of ``count_ops`` and of characters (median, 90th
percentile, worst), the total time of each side, and the ``--worst`` programs by ``count_ops``
ratio with both formulas. SymPy is used only here and in the tests, never by gradcalc.

With ``--cache FILE`` SymPy's results (and its time-outs) are kept in a JSON file keyed by
program and read back on the next run, so that a change to gradcalc is measured again in
seconds; SymPy's times are then the recorded ones.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from typing import Any

import gradcalc
import gradcalc.engine

FUNCTIONS = ("sin", "cos", "exp", "log", "tanh", "sqrt", "sigmoid")


def expression(rng: random.Random, names: list[str], depth: int) -> str:
    if depth == 0 or rng.random() < 0.25:
        return rng.choice([*names, *names, str(rng.randint(1, 3))])
    kind = rng.random()
    if kind < 0.3:
        name = rng.choice(FUNCTIONS)
        inner = expression(rng, names, depth - 1)
        if name in ("log", "sqrt"):  # keep the argument positive where inputs are
            inner = f"(({inner})^2 + 1)"
        return f"{name}({inner})"
    if kind < 0.4:
        return f"({expression(rng, names, depth - 1)})^{rng.randint(2, 3)}"
    op = rng.choice(["+", "-", "*", "*", "/"])
    right = expression(rng, names, depth - 1)
    if op == "/":
        right = f"(({right})^2 + 1)"
    return f"({expression(rng, names, depth - 1)} {op} {right})"


def program(rng: random.Random) -> str:
    names = ["A", "B", "C"]
    lines = []
    for i in range(rng.randint(2, 4)):
        name = f"N{i}" if i < 3 else "OUT"
        lines.append(f"{name} = {expression(rng, names, 3)}")
        names.append(name)
    lines[-1] = "OUT" + lines[-1][lines[-1].index(" ="):]
    text = "\n".join(lines)
    dag = gradcalc.compile_program(text)
    # OUT must be computed (not a number: an input) and depend on A: else draw again
    if "A" not in dag.inputs or "OUT" in dag.inputs \
            or not gradcalc.engine.cone(dag, [dag.named["OUT"]])[dag.inputs["A"]]:
        return program(rng)
    return text


SYMPY_PRELUDE = r"""
import json, re, sys, time
import sympy
A, B, C = sympy.symbols("A B C")
env = {"A": A, "B": B, "C": C, "sin": sympy.sin, "cos": sympy.cos, "exp": sympy.exp,
       "log": sympy.log, "tanh": sympy.tanh, "sqrt": sympy.sqrt,
       "sigmoid": lambda x: 1 / (1 + sympy.exp(-x)), "pow": lambda a, b: a**b}
"""

SYMPY_CHILD = SYMPY_PRELUDE + r"""
program = sys.stdin.read()
value = None
for line in program.splitlines():
    name, _, text = line.partition(" = ")
    value = sympy.sympify(text.replace("^", "**"), locals=env)
    env[name] = value
start = time.perf_counter()
d = sympy.diff(value, A)
simple = sympy.simplify(d)
seconds = time.perf_counter() - start
print(json.dumps({"text": str(simple).replace("**", "^"), "ops": int(sympy.count_ops(simple)),
                  "seconds": seconds}))
"""

GRADCALC_OPS_CHILD = SYMPY_PRELUDE + r"""
base = dict(env)
counts = []
for text in json.load(sys.stdin):
    env = dict(base)
    value = None
    for statement in text.split("; "):
        name, sep, body = statement.partition(" = ")
        source = body if sep else name
        for word in set(re.findall(r"[A-Za-z_]\w*", source)) - set(env):
            env[word] = sympy.Symbol(word)
        value = sympy.sympify(source.replace("^", "**"), locals=env)
        if sep:
            env[name] = value
    counts.append(int(sympy.count_ops(value)))
print(json.dumps(counts))
"""


def child(code: str, text: str, timeout: float) -> Any:
    try:
        done = subprocess.run([sys.executable, "-c", code], input=text, capture_output=True,
                              text=True, timeout=timeout, check=True)
    except (subprocess.TimeoutExpired, subprocess.CalledProcessError):
        return None
    return json.loads(done.stdout)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--programs", type=int, default=300)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=20.0)
    parser.add_argument("--worst", type=int, default=5)
    parser.add_argument("--cache", help="a JSON file of SymPy's results to read and update")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    cache: dict[str, dict] = {}
    if args.cache and os.path.exists(args.cache):
        with open(args.cache) as file:
            cache = json.load(file)
    programs = [program(rng) for _ in range(args.programs)]
    formulas = []
    ours_seconds = theirs_seconds = 0.0
    for text in programs:
        start = time.perf_counter()
        result = gradcalc.gradients(text, wrt=["A"], of="OUT", symbolic=True)
        ours_seconds += time.perf_counter() - start
        formulas.append(result.formulas["A"].text)
    ours_ops = child(GRADCALC_OPS_CHILD, json.dumps(formulas), 60 + args.programs)
    assert ours_ops is not None, "SymPy could not read gradcalc's formulas"
    rows = []
    timeouts = 0
    for text, formula, ops in zip(programs, formulas, ours_ops, strict=True):
        theirs = cache[text] if text in cache else child(SYMPY_CHILD, text, args.timeout)
        cache[text] = theirs = theirs or {"timeout": args.timeout}
        if "timeout" in theirs:
            timeouts += 1
            continue
        theirs_seconds += theirs["seconds"]
        rows.append({"program": text, "ours": formula, "theirs": theirs["text"],
                     "ops": ops / max(1, theirs["ops"]),
                     "chars": len(formula) / max(1, len(theirs["text"]))})
    if args.cache:
        with open(args.cache, "w") as file:
            json.dump(cache, file)
    ops = [r["ops"] for r in rows]
    chars = [r["chars"] for r in rows]
    print(f"# gradcalc formulas against SymPy simplify(diff(...)): {len(rows)} programs "
          f"(seed {args.seed}; {timeouts} left out: SymPy over {args.timeout:g} s)\n")
    print("| size ratio (gradcalc / SymPy) | median | 90th percentile | worst |")
    print("|---|---|---|---|")
    for label, values in (("count_ops", ops), ("characters", chars)):
        print(f"| {label} | {statistics.median(values):.2f} | {percentile(values, 0.9):.2f} "
              f"| {max(values):.2f} |")
    print(f"\ntime: gradcalc {ours_seconds:.2f} s in all; SymPy diff + simplify "
          f"{theirs_seconds:.2f} s ({theirs_seconds / max(ours_seconds, 1e-9):.0f}x)\n")
    print(f"the {args.worst} worst by count_ops ratio:")
    for row in sorted(rows, key=lambda r: -r["ops"])[: args.worst]:
        print(f"\n- ratio {row['ops']:.2f} (characters {row['chars']:.2f})")
        print("  program: " + row["program"].replace("\n", "; "))
        print("  gradcalc: " + row["ours"])
        print("  SymPy:    " + row["theirs"])


if __name__ == "__main__":
    main()
