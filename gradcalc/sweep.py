"""Sweeps: one program evaluated at every point of a range of inputs (``--at X=-2:2:0.5``), or of
the grid of several ranges, with its value and gradients at each.

A range is ``start:stop:step`` (the points ``start + k*step`` up to ``stop``, which is included
when it is on the grid, to a relative 1e-9) or ``start:stop/N`` (``N`` points, both ends
included); ``start``, ``stop`` and ``step`` are constant expressions (``0:pi:pi/8``). The graph
is built once; its plan is compiled to straight-line Python (:mod:`gradcalc.codegen`) and run at
each point, and where that function declines (a domain error, a kink, a gradient that is not
finite) the point takes the full path (:func:`gradcalc.gradients`), so its row carries the
error or the warnings. A point that fails is a row with its error, never the end of the sweep.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gradcalc import engine
from gradcalc.api import (
    ArrayValue,
    array_shapes,
    compile_program,
    default_targets,
    expand,
    gradients,
    leaf_values,
    lookup,
    question_notes,
    require_values,
    scalar_output,
)
from gradcalc.dag import Dag
from gradcalc.errors import Diagnostic, GradcalcError, InputError
from gradcalc.gcpause import paused_gc

__all__ = ["MAX_POINTS", "Row", "Sweep", "is_range", "range_points", "sweep"]

#: A sweep has at most this many points (the product of its ranges' lengths).
MAX_POINTS = 10_000_000
#: A graph up to this many nodes is compiled to straight-line Python for the sweep; a larger
#: one runs through the engine's loops at each point (compiling would cost more than it saves).
COMPILE_UP_TO = 20_000

_RANGE = re.compile(
    r"^(?P<start>[^:]+):(?P<stop>[^:]+?)(?::(?P<step>[^:]+)|/(?P<count>\s*\d+\s*))?$")


def is_range(text: str) -> bool:
    """Whether an ``--at`` value is a range (it has a ``:``)."""
    return ":" in text


def range_points(name: str, text: str, value: Callable[[str, str], float]) -> list[float]:
    """The points of the range ``text`` given to input ``name``; ``value(text, where)`` reads
    a constant expression (``api.constant_value``). Raises ``InputError`` for a malformed
    range, a step of 0 or away from the stop, or more than :data:`MAX_POINTS` points."""
    found = _RANGE.match(text.strip())
    if found is None or (found["step"] is None and found["count"] is None):
        raise InputError(f"--at {name}: {text!r} is not a range",
                         hint="write start:stop:step (-2:2:0.5) or start:stop/N for N points "
                         "(-2:2/41)")
    start = value(found["start"], f"--at {name} (start)")
    stop = value(found["stop"], f"--at {name} (stop)")
    if found["count"] is not None:
        count = int(found["count"])
        if not 1 <= count <= MAX_POINTS:
            raise InputError(f"--at {name}: a range has 1 to {MAX_POINTS:,} points, not {count}")
        if count == 1:
            if start != stop:
                raise InputError(f"--at {name}: one point cannot run from {start:g} to {stop:g}",
                                 hint="give 2 or more points, or one value")
            return [start]
        width = stop - start
        if math.isfinite(width):
            return [start + width * k / (count - 1) if k < count - 1 else stop
                    for k in range(count)]
        # (from near -max to near +max the width overflows: weigh the two ends instead)
        return [start * (1 - k / (count - 1)) + stop * (k / (count - 1)) if k < count - 1
                else stop for k in range(count)]
    step = value(found["step"], f"--at {name} (step)")
    if step == 0 or (stop - start) * step < 0:
        raise InputError(f"--at {name}: the step {step:g} never gets from {start:g} to {stop:g}",
                         hint="the step is not 0 and goes toward the stop: 2:-2:-0.5")
    steps = stop / step - start / step  # (each term finite: stop - start may overflow)
    if not steps + 1 <= MAX_POINTS:
        shown = f"{steps + 1:,.0f}" if steps < 1e15 else f"about {steps + 1:.3g}"
        raise InputError(f"--at {name}: {shown} points, more than the {MAX_POINTS:,} a "
                         "sweep may have", hint="take a larger step")
    last = math.floor(steps + 1e-9 * max(1.0, abs(steps)))
    points = [start + k * step for k in range(last + 1)]
    if not math.isfinite(points[-1]):  # k*step overflowed on the way to a finite stop
        points = [start + k * step if math.isfinite(start + k * step)
                  else (start / step + k) * step for k in range(last + 1)]
    return points


@dataclass(slots=True)
class Row:
    """One point of a sweep: the swept inputs' values, then the output's value and the
    gradients (empty where it failed), the point's warnings and its error (``None``: it
    succeeded)."""

    point: tuple[float, ...]
    value: float | None
    gradients: tuple[float, ...]
    warnings: list[Diagnostic] = field(default_factory=list)
    error: GradcalcError | None = None


@dataclass(slots=True)
class Sweep:
    """A sweep ready to run: the graph, the swept names (in order), the output and the
    gradients' names (the columns), the number of points, and the rows (:meth:`rows`)."""

    dag: Dag
    names: list[str]
    output: str
    targets: list[str]
    points: list[list[float]]
    fixed: dict[str, ArrayValue]
    notes: list[Diagnostic]

    @property
    def size(self) -> int:
        return math.prod(len(p) for p in self.points)

    def rows(self) -> Iterator[Row]:
        """The rows, the last range varying fastest."""
        dag = self.dag
        values = leaf_values(dag, self.fixed)
        nodes = [dag.inputs[n] for n in self.names]
        output = dag.named[self.output]
        targets = {n: dag.named[n] for n in self.targets}
        plan = engine.plan(dag, output, targets, engine.cone(dag, [output]))
        for node in nodes:
            values[node] = 0.0  # (swept: given at each point)
        require_values(dag, values, plan.needed, self.output)
        run = _compiled(plan) if sum(plan.needed) <= COMPILE_UP_TO else None
        count = len(targets)
        for point in itertools.product(*self.points):
            for node, x in zip(nodes, point, strict=True):
                values[node] = x
            outcome = run(values) if run is not None else None
            if outcome is not None:
                yield Row(point, outcome[0], outcome[1 : 1 + count])
            else:
                yield self._full(point)

    def _full(self, point: tuple[float, ...]) -> Row:
        """A point through :func:`gradcalc.gradients`: its error or its warnings."""
        at = dict(self.fixed) | dict(zip(self.names, point, strict=True))
        try:
            result = gradients(self.dag, at=at, wrt=self.targets, of=self.output,
                               symbolic=False)
        except GradcalcError as exc:
            return Row(point, None, (), error=exc)
        return Row(point, result.value, tuple(result.gradients[n] for n in self.targets),
                   [w for w in result.warnings if w.kind not in ("outputs", "constant")])


def _compiled(plan: engine.Plan) -> Callable[[Sequence[float | None]], Any] | None:
    from gradcalc.codegen import compile_plan

    return compile_plan(plan).run


def sweep(program: str | Dag, ranges: Mapping[str, Sequence[float]],
          at: Mapping[str, ArrayValue] | None = None, wrt: Sequence[str] | None = None,
          of: str | None = None) -> Sweep:
    """Prepare the sweep of ``program`` over ``ranges`` (input name -> its points; several
    make the grid), with ``at`` fixing other inputs; ``wrt`` and ``of`` as for
    :func:`gradcalc.gradients`. Each swept name must be an input (an element ``W[0]`` of an
    array set to numbers is one)."""
    with paused_gc():
        dag = compile_program(program, shapes=array_shapes(at or {}))
        output = scalar_output(dag, of)
        node = lookup(dag, output, "output")
        for name in ranges:
            if name in (at or {}):
                raise InputError(f"{name} is given a value and a range",
                                 hint="give it one or the other")
            if name not in dag.inputs:
                lookup(dag, name, "input")
                raise InputError(f"{name} is not an input: only inputs can be swept",
                                 hint="the inputs are " + ", ".join(dag.inputs))
        size = math.prod(len(points) for points in ranges.values())
        if size > MAX_POINTS:
            raise InputError(f"the grid has {size:,} points, more than the {MAX_POINTS:,} a "
                             "sweep may have", hint="take larger steps or fewer ranges")
        if wrt is None:
            targets = list(default_targets(dag, node, engine.cone(dag, [node])))
        else:
            targets = expand(dag, wrt)
            for name in targets:
                lookup(dag, name, "gradient")
        notes = question_notes(dag, of, output, None)
        return Sweep(dag, list(ranges), output, targets, [list(p) for p in ranges.values()],
                     dict(at or {}), notes)
