#!/usr/bin/env python
"""gradcalc.Value against micrograd and PyTorch scalars, in one run (issue 17).

    python tests/benchmarks/bench_value.py                    # the issue's sizes, ~2 min
    python tests/benchmarks/bench_value.py --chain 100000 --leaves 1000,10000   # ~15 s
    python tests/benchmarks/bench_value.py --only gradcalc,micrograd --gc off

Needs ``pip install micrograd`` (karpathy's package, 0.1.0) for the micrograd columns and
``pip install torch`` for PyTorch's (0-d float64 tensors); a library that cannot be imported is
left out and the report says so. micrograd's package has no ``tanh``: the one its author writes
in his lecture (a closure, like its ``relu``) is added to its ``Value`` here when missing.

Workloads, each written once and run on every library's scalar type (so the operations are the
same, one for one):

* **mlp** — a 3-16-16-1 multilayer perceptron with tanh on every layer (micrograd's
  ``Neuron``: ``tanh(sum(w*x, b))``), four samples, loss ``sum((y - t)^2)`` written as
  ``d = y + (-t); d*d`` (one operation each in every library). The parameters are made once;
  each step builds a new graph (forward) and backpropagates it (backward), as a training loop
  does. ``kept order`` is a third ``backward()`` on the same graph (gradcalc keeps the order
  of the pass from the second call on: then the pass alone).
* **chain** — ``x = x*1.0000001`` and ``x = x + 0.5`` alternating, ``--chain`` steps (default
  10^6): building it, then ``backward()``.
* **leaves** — ``sum(v*v for v in leaves)`` over N unnamed leaves (``--leaves``, default
  1,000, 10,000 and 100,000): ``backward()`` per leaf; linear when the per-leaf time stays flat.

Timing: ``time.perf_counter`` around each call, medians over ``--repeat`` runs (MLP:
``--mlp-repeat``), the libraries interleaved (gradcalc, micrograd, torch, then again in a
rotated order). ``gc.collect()`` runs before each timed call, outside it; inside, the cyclic
collector is on (``--gc on``, what a user gets: micrograd's closures make reference cycles, so
it pays for collections there) or off throughout (``--gc off``). micrograd's backward recurses
once per node: the whole benchmark runs in a thread with a 1 GiB stack and a raised recursion
limit. Gradients are compared across libraries (relative 1e-9), so every library did the same
work. Figures: microseconds per operation (per leaf for ``leaves``), and gradcalc's time as a
ratio to each other library's (below 1: gradcalc is faster). Timings are never asserted in the
test suite; ``tests/test_value.py`` counts work instead.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import math
import platform
import random
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradcalc

REPO = Path(__file__).resolve().parents[2]
SIZES = (3, 16, 16, 1)
SAMPLES = ([2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0])
TARGETS = (1.0, -1.0, -1.0, 1.0)


# --- the libraries -------------------------------------------------------------------------------

class Library:
    """One scalar autograd: how to make a leaf, read a number and a gradient, zero a gradient."""

    def __init__(self, name: str, leaf: Callable[[float], Any], number: Callable[[Any], float],
                 gradient: Callable[[Any], float], zero: Callable[[Any], None]) -> None:
        self.name, self.leaf, self.number, self.gradient, self.zero = (
            name, leaf, number, gradient, zero)


def _gradcalc() -> Library:
    def zero(v: Any) -> None:
        v.grad = 0.0

    return Library("gradcalc", gradcalc.Value, lambda v: v.data, lambda v: v.grad, zero)


def _micrograd() -> Library:
    from micrograd.engine import Value

    if not hasattr(Value, "tanh"):
        Value.tanh = _micrograd_tanh

    def zero(v: Any) -> None:
        v.grad = 0

    return Library("micrograd", Value, lambda v: v.data, lambda v: v.grad, zero)


def _micrograd_tanh(self: Any) -> Any:
    """tanh as micrograd's author writes it (his lecture; the package lacks it)."""
    from micrograd.engine import Value

    t = math.tanh(self.data)
    out = Value(t, (self,), "tanh")

    def _backward() -> None:
        self.grad += (1 - t**2) * out.grad

    out._backward = _backward
    return out


def _torch() -> Library:
    import torch

    torch.set_grad_enabled(True)
    torch.set_num_threads(1)  # scalars: threads only compete with the other libraries' runs

    def leaf(x: float) -> Any:
        return torch.tensor(x, dtype=torch.float64, requires_grad=True)

    def zero(v: Any) -> None:
        v.grad = None

    return Library("torch", leaf, lambda v: v.item(), lambda v: v.grad.item(), zero)


def libraries(only: list[str]) -> tuple[list[Library], list[str]]:
    """The libraries that import, and a note for each one that does not."""
    found, missing = [], []
    for name, make in (("gradcalc", _gradcalc), ("micrograd", _micrograd), ("torch", _torch)):
        if name not in only:
            continue
        try:
            found.append(make())
        except ImportError as error:
            missing.append(f"{name} is not installed ({error}): its columns are left out")
    return found, missing


# --- the workloads -------------------------------------------------------------------------------

def mlp_parameters(lib: Library) -> list[list[tuple[list[Any], Any]]]:
    """Layers of neurons (weights, bias), the same numbers for every library."""
    rng = random.Random(17)
    return [[([lib.leaf(rng.uniform(-1, 1)) for _ in range(fan_in)], lib.leaf(0.0))
             for _ in range(fan_out)] for fan_in, fan_out in itertools.pairwise(SIZES)]


def mlp_loss(layers: list[list[tuple[list[Any], Any]]]) -> Any:
    loss = 0.0
    for sample, target in zip(SAMPLES, TARGETS, strict=True):
        x: list[Any] = list(sample)
        for layer in layers:
            x = [sum((wi * xi for wi, xi in zip(w, x, strict=True)), b).tanh() for w, b in layer]
        d = x[0] + (-target)
        loss = d * d + loss
    return loss


def chain(lib: Library, steps: int) -> tuple[Any, Any]:
    x = a = lib.leaf(0.25)
    for i in range(steps):
        x = x * 1.0000001 if i % 2 == 0 else x + 0.5
    return a, x


def leaf_sum(lib: Library, count: int) -> tuple[list[Any], Any]:
    rng = random.Random(count)
    leaves = [lib.leaf(rng.uniform(-1, 1)) for _ in range(count)]
    return leaves, sum(v * v for v in leaves)


def operations(out: gradcalc.Value) -> int:
    """The operations of a gradcalc graph (its nodes that are not inputs or constants)."""
    return sum(1 for op in out.to_dag().ops if op.name not in ("input", "const"))


# --- timing --------------------------------------------------------------------------------------

class Clock:
    def __init__(self, collector: bool) -> None:
        self.collector = collector

    def __call__(self, function: Callable[[], Any]) -> tuple[float, Any]:
        gc.collect()
        if not self.collector:
            gc.disable()
        try:
            start = time.perf_counter()
            result = function()
            return time.perf_counter() - start, result
        finally:
            gc.enable()


def rotations(libs: list[Library], repeat: int) -> list[list[Library]]:
    """``repeat`` rounds, each running every library once, the order rotated every round."""
    return [libs[r % len(libs):] + libs[:r % len(libs)] for r in range(repeat)]


def agree(name: str, values: dict[str, float]) -> None:
    reference = values["gradcalc"]
    for lib, value in values.items():
        if not math.isclose(value, reference, rel_tol=1e-9, abs_tol=1e-12):
            raise SystemExit(f"{name}: {lib} gives {value!r}, gradcalc {reference!r}")


def measure_mlp(libs: list[Library], clock: Clock, repeat: int) -> dict[str, dict[str, float]]:
    params = {lib.name: mlp_parameters(lib) for lib in libs}
    times: dict[str, dict[str, list[float]]] = {
        lib.name: {"forward": [], "backward": [], "again": []} for lib in libs}
    first_grads: dict[str, float] = {}
    for round_ in rotations(libs, repeat):
        for lib in round_:
            layers = params[lib.name]
            for layer in layers:
                for w, b in layer:
                    for p in (*w, b):
                        lib.zero(p)
            t_forward, loss = clock(lambda layers=layers: mlp_loss(layers))
            t_backward, _ = clock(loss.backward)
            first_grads[lib.name] = lib.gradient(layers[0][0][0][0])
            if lib.name == "gradcalc":
                loss.backward()  # the second call keeps the order: the third is timed
                t_again, _ = clock(loss.backward)
                times[lib.name]["again"].append(t_again)
            times[lib.name]["forward"].append(t_forward)
            times[lib.name]["backward"].append(t_backward)
            del loss
    agree("mlp: d(loss)/d(first weight)", first_grads)
    ops = operations(mlp_loss(mlp_parameters(libs[0])))
    return {name: {k: statistics.median(v) / ops * 1e6 for k, v in row.items() if v}
            | {"ops": ops} for name, row in times.items()}


def measure_chain(libs: list[Library], clock: Clock, steps: int, repeat: int
                  ) -> dict[str, dict[str, float]]:
    times: dict[str, dict[str, list[float]]] = {
        lib.name: {"build": [], "backward": []} for lib in libs}
    grads: dict[str, float] = {}
    for round_ in rotations(libs, repeat):
        for lib in round_:
            t_build, (a, out) = clock(lambda lib=lib: chain(lib, steps))
            t_backward, _ = clock(out.backward)
            grads[lib.name] = lib.gradient(a)
            times[lib.name]["build"].append(t_build)
            times[lib.name]["backward"].append(t_backward)
            del a, out
    agree("chain: d(out)/d(x0)", grads)
    return {name: {k: statistics.median(v) / steps * 1e6 for k, v in row.items()}
            for name, row in times.items()}


def measure_leaves(libs: list[Library], clock: Clock, counts: list[int], repeat: int
                   ) -> dict[str, dict[int, float]]:
    result: dict[str, dict[int, float]] = {lib.name: {} for lib in libs}
    for count in counts:
        times: dict[str, list[float]] = {lib.name: [] for lib in libs}
        grads: dict[str, float] = {}
        for round_ in rotations(libs, repeat):
            for lib in round_:
                leaves, out = leaf_sum(lib, count)
                t_backward, _ = clock(out.backward)
                grads[lib.name] = lib.gradient(leaves[-1])
                times[lib.name].append(t_backward)
                del leaves, out
        agree(f"leaves {count}: d(out)/d(last leaf)", grads)
        for name, row in times.items():
            result[name][count] = statistics.median(row) / count * 1e6
    return result


# --- the report ----------------------------------------------------------------------------------

def ratios(row: dict[str, dict[str, float]], key: str, others: list[str]) -> list[str]:
    return [f"{row['gradcalc'][key] / row[o][key]:.2f}" for o in others]


def report_mlp(result: dict[str, dict[str, float]], others: list[str]) -> None:
    ops = int(result["gradcalc"]["ops"])
    print(f"\n## MLP 3-16-16-1 tanh, 4 samples: {ops:,} operations a step\n")
    print("µs per operation, median; `fwd+bwd` is one training step's forward and backward\n")
    print("| library | forward | backward | fwd+bwd | fwd+bwd ms a step | kept order |")
    print("|---|---|---|---|---|---|")
    for name, row in result.items():
        total = row["forward"] + row["backward"]
        again = f"{row['again']:.2f}" if "again" in row else "—"
        print(f"| {name} | {row['forward']:.2f} | {row['backward']:.2f} | {total:.2f} | "
              f"{total * ops / 1000:.2f} | {again} |")
    for other in others:
        g, o = result["gradcalc"], result[other]
        print(f"\ngradcalc / {other}: forward {g['forward'] / o['forward']:.2f}, backward "
              f"{g['backward'] / o['backward']:.2f}, **fwd+bwd "
              f"{(g['forward'] + g['backward']) / (o['forward'] + o['backward']):.2f}**")


def report_chain(result: dict[str, dict[str, float]], steps: int, others: list[str]) -> None:
    print(f"\n## Chain of {steps:,} steps\n")
    print("µs per operation, median\n")
    print("| library | build | backward |")
    print("|---|---|---|")
    for name, row in result.items():
        print(f"| {name} | {row['build']:.2f} | {row['backward']:.2f} |")
    for other in others:
        build, backward = ratios(result, "build", [other]), ratios(result, "backward", [other])
        print(f"\ngradcalc / {other}: build {build[0]}, backward {backward[0]}")
    print(f"\ngradcalc's backward: **{result['gradcalc']['backward']:.2f} µs/op** (issue 17: "
          "at most 2)")


def report_leaves(result: dict[str, dict[int, float]], counts: list[int]) -> None:
    print("\n## Backward over unnamed leaves: `sum(v*v for v in leaves)`\n")
    print("µs per leaf, median; `per leaf ×` is the per-leaf time as a multiple of the first "
          "size's (1.00: linear)\n")
    print("| library | " + " | ".join(f"{c:,} leaves" for c in counts) + " | per leaf × |")
    print("|---" * (len(counts) + 2) + "|")
    for name, row in result.items():
        cells = " | ".join(f"{row[c]:.2f}" for c in counts)
        growth = ", ".join(f"{row[c] / row[counts[0]]:.2f}" for c in counts[1:])
        print(f"| {name} | {cells} | {growth or '—'} |")


def header(args: argparse.Namespace, notes: list[str], libs: list[Library]) -> None:
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    print(f"# {' '.join(sys.argv)}\n")
    print(f"gradcalc {commit} from {Path(gradcalc.__file__).parent}; Python "
          f"{platform.python_version()}; collector {'on' if args.gc == 'on' else 'off'} in the "
          f"timed calls")
    versions = []
    for lib in libs[1:]:
        module = sys.modules.get(lib.name)
        versions.append(f"{lib.name} {getattr(module, '__version__', '(no version)')}")
    if versions:
        print("; ".join(versions))
    for note in notes:
        print(f"\n**{note}**")


def run(args: argparse.Namespace) -> None:
    libs, notes = libraries(args.only.split(","))
    if not libs or libs[0].name != "gradcalc":
        raise SystemExit("gradcalc must be among --only")
    header(args, notes, libs)
    others = [lib.name for lib in libs[1:]]
    clock = Clock(args.gc == "on")
    workloads = args.workloads.split(",")
    if "mlp" in workloads:
        report_mlp(measure_mlp(libs, clock, args.mlp_repeat), others)
    if "chain" in workloads and args.chain:
        report_chain(measure_chain(libs, clock, args.chain, args.repeat), args.chain, others)
    counts = [int(c) for c in args.leaves.split(",") if c]
    if "leaves" in workloads and counts:
        report_leaves(measure_leaves(libs, clock, counts, args.repeat), counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chain", type=int, default=1_000_000, help="steps of the chain")
    parser.add_argument("--leaves", default="1000,10000,100000", help="leaf counts")
    parser.add_argument("--repeat", type=int, default=3, help="runs of chain and leaves")
    parser.add_argument("--mlp-repeat", type=int, default=30, help="runs of the MLP step")
    parser.add_argument("--workloads", default="mlp,chain,leaves")
    parser.add_argument("--only", default="gradcalc,micrograd,torch",
                        help="libraries (gradcalc first)")
    parser.add_argument("--gc", choices=("on", "off"), default="on",
                        help="the cyclic collector inside the timed calls")
    args = parser.parse_args()
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * args.chain + 10_000,
                              10 * max([int(c) for c in args.leaves.split(",") if c] or [0])))
    threading.stack_size(1 << 30)  # micrograd's backward recurses once per node
    failure: list[BaseException] = []

    def target() -> None:
        try:
            run(args)
        except BaseException as error:  # reported by the main thread
            failure.append(error)

    worker = threading.Thread(target=target)
    worker.start()
    worker.join()
    if failure:
        raise failure[0]


if __name__ == "__main__":
    main()
