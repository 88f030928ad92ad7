#!/usr/bin/env python
"""Benchmark of the engine's interpreters of one plan, and of build + forward + backward.

    python tests/benchmarks/bench_engine.py [--sizes 100000,1000000] [--repeat 3]

Workloads come from ``bench_core.py`` (chain, diamond, random DAGs of about N nodes; their
ASTs are made directly, so parsing is not measured here). For each, in microseconds per node
(median of ``--repeat``):

* ``build``: AST to DAG (:func:`gradcalc.dag.build`);
* ``plan``: :func:`gradcalc.engine.plan` (cone, active nodes, counting pass);
* ``forward``: :func:`gradcalc.engine.forward` over the plan's needed nodes;
* ``run``: :func:`gradcalc.engine.run`, the arity-specialised loop;
* ``stepping``: the same with ``record=True`` (the plain loop that makes every step);
* ``generic``: :func:`gradcalc.engine.run_over` with float arithmetic (the algebra loop);
* ``total``: build + plan + forward + run, the figure issue 12 asks to bring to 1.5 us/node;
* ``gc after``: what a full ``gc.collect()`` costs the caller once ``gradients()`` returned.

The ratios ``generic/run`` and ``stepping/run`` say what the specialised loop buys.
"""

from __future__ import annotations

import argparse
import gc
import operator
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_core import chain, diamond, random_dag

from gradcalc import engine
from gradcalc.api import gradients
from gradcalc.dag import build
from gradcalc.gcpause import paused_gc

WORKLOADS = {"chain": chain, "diamond": diamond, "random": random_dag}


def timed(function, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        with paused_gc():
            result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def measure(name: str, size: int, repeat: int) -> dict[str, float]:
    work = WORKLOADS[name](size)
    ast = work.make_ast()
    t_build, dag = timed(lambda: build(ast), repeat)
    output = dag.named[dag.output]
    targets = {n: i for n, i in dag.inputs.items()}
    if not targets:  # programs whose inputs are set in the program: their first name
        targets = {n: i for n, i in list(dag.named.items())[:1]}
    t_plan, question = timed(lambda: engine.plan(dag, output, targets), repeat)
    leaves = list(dag.values)
    t_forward, vals = timed(lambda: engine.forward(dag, list(leaves), question.needed), repeat)
    t_run, done = timed(lambda: engine.run(question, vals), repeat)
    t_step, stepped = timed(lambda: engine.run(question, vals, record=True), repeat)
    ops, args = dag.ops, dag.args

    def local(node: int):
        return ops[node].partials(*[vals[j] for j in args[node]], vals[node])

    t_generic, adjoints = timed(
        lambda: engine.run_over(question, local, lambda *xs: sum(xs), operator.mul, 1.0),
        repeat)
    for target in targets.values():  # the three interpreters agree
        assert done.gradients[target] == stepped.gradients[target]
        assert abs(adjoints.get(target, 0.0) - done.gradients[target]) <= 1e-9 * max(
            1.0, abs(done.gradients[target]))
    result = gradients(dag, at=work.at)
    start = time.perf_counter()
    gc.collect()
    t_gc = time.perf_counter() - start
    del result
    n = len(dag)
    per = 1e6 / n
    return {"nodes": n, "build": t_build * per, "plan": t_plan * per,
            "forward": t_forward * per, "run": t_run * per, "stepping": t_step * per,
            "generic": t_generic * per,
            "total": (t_build + t_plan + t_forward + t_run) * per, "gc after": t_gc * per}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workloads", default="chain,diamond,random")
    args = parser.parse_args()
    columns = ["build", "plan", "forward", "run", "stepping", "generic", "total", "gc after"]
    print(f"# {' '.join(sys.argv)}\n\nmicroseconds per node, median of {args.repeat}\n")
    print("| workload | nodes | " + " | ".join(columns) + " | generic/run | stepping/run |")
    print("|---" * (len(columns) + 4) + "|")
    for name in args.workloads.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            row = measure(name, size, args.repeat)
            cells = " | ".join(f"{row[c]:.2f}" for c in columns)
            print(f"| {name} | {row['nodes']:,} | {cells} | {row['generic'] / row['run']:.1f} "
                  f"| {row['stepping'] / row['run']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
