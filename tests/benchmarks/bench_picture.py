"""Timings of the graph pictures against the bars of shared/GRAPH.md: a 40-node random DAG
drawn in under 0.1 s, a 1,000-node DAG reaching its fallback in under 1 s.

    python tests/benchmarks/bench_picture.py            # from the repository root

Each drawing is also given as a ratio to evaluating the same program (``gradcalc.gradients``
on the built DAG), which is less sensitive to a busy machine than the seconds.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import test_picture as programs

import gradcalc
from gradcalc import picture, render


def timed(work: Callable[[], object], repeat: int = 7) -> tuple[float, float]:
    """Best and median wall time of ``repeat`` runs, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main() -> None:
    for statements in (27, 40):
        for seed in (0, 1, 2):
            text = programs.random_dag_program(statements, seed)
            dag = gradcalc.compile_program(text)
            r = gradcalc.gradients(dag)
            out = dag.named[r.output]
            evaluate, _ = timed(lambda dag=dag: gradcalc.gradients(dag))
            for compact in (False, True):
                best, median = timed(lambda compact=compact, r=r, out=out: picture.draw(
                    r.dag, out, r.node_values, r.node_gradients, compact=compact))
                print(f"random DAG, {statements} statements (seed {seed}, {len(dag)} nodes), "
                      f"{'compact' if compact else 'full'}: best {best * 1e3:.1f} ms, "
                      f"median {median * 1e3:.1f} ms, {best / evaluate:.0f}x evaluating it")
    for name, text in (("chain of 1,000", programs.chain_program(1000)),
                       ("random DAG of 1,000 statements", programs.random_dag_program(1000))):
        r = gradcalc.gradients(text)
        args = (r.dag, r.dag.named[r.output], r.node_values, r.node_gradients)
        best, median = timed(lambda args=args: render.graph_view(*args, form="auto", width=100),
                             5)
        print(f"{name} ({len(r.dag)} nodes), auto at 100 columns reaches its fallback: "
              f"best {best * 1e3:.0f} ms, median {median * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
