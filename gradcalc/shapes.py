"""Batch lines by shape: parse, build and plan a line's program once, then answer every line of
the same shape by putting its numbers into the graph.

Two lines have the same *shape* when they differ only in their number literals, and their
numbers are equal to each other (and to ``pi`` or ``e``) in the same places: equal constants
are one node of the graph (``A*2 + A*2`` merges, ``A*2 + A*3`` does not), so that pattern is
part of the shape. One regular-expression pass finds a line's numbers and its shape key.

A line is answered from its shape only when the answer is exactly what the full path
(:func:`gradcalc.batch.solve_problem`) gives, byte for byte: every needed input has a value
(else gradients are formulas), the evaluation raises nothing, no warning or note arises (their
columns move with the numbers' lengths). Anything else goes the full path, which also knows
the positions of errors. A shape is made the second time its key is seen, from that line's
own parse, so a file whose every line differs pays only for the key. The cache is bounded
(:data:`MAX_SHAPES` shapes, :data:`MAX_NODES` graph nodes in all).
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from gradcalc import engine
from gradcalc.api import default_targets, leaf_values, lookup, question_notes, unique
from gradcalc.ast import NUM
from gradcalc.dag import Dag, build
from gradcalc.errors import EvaluationError, GradcalcError
from gradcalc.fmt import json_number
from gradcalc.ops import CONST, CONSTANTS
from gradcalc.parse import parse

__all__ = ["MAX_NODES", "MAX_SHAPES", "Shapes"]

#: At most this many shapes are kept (the least recently used goes first) ...
MAX_SHAPES = 512
#: ... and at most this many graph nodes in all of them; a line whose graph alone is larger
#: is never kept.
MAX_NODES = 200_000
#: Keys seen once are remembered (to make a shape on the second sighting) up to this many.
MAX_SEEN = 4096

# magnitudes of the named constants: a literal equal to one (or to its negation, after a
# folded minus) may share the constant's node
_CONSTANT_MAGNITUDES = frozenset(abs(v) for v in CONSTANTS.values())


@cache
def _tokens() -> re.Pattern[str]:
    """Comments and names (kept in the key) and numbers (the slots), as the grammar defines
    names and numbers; a name's digits are never taken for a number."""
    from gradcalc.parse import NAME_PATTERN, NUMBER_PATTERN

    return re.compile(f"(#[^\\n]*|{NAME_PATTERN})|({NUMBER_PATTERN})")


def shape_key(text: str) -> tuple[tuple[Any, ...], list[float]] | None:
    """The shape key of a line and its numbers as floats, or None when a number is beyond
    float range (the full path reports it)."""
    parts = _tokens().split(text)
    texts = [t for t in parts[2::3] if t is not None]
    numbers = list(map(float, texts))
    first: dict[tuple[float, float], int] = {}
    pattern = []
    for index, value in enumerate(numbers):
        if math.isinf(value):
            return None
        pattern.append(first.setdefault((value, math.copysign(1.0, value)), index))
    named = tuple(i for i, v in enumerate(numbers) if v in _CONSTANT_MAGNITUDES)
    return (tuple(parts[0::3]), tuple(parts[1::3]), tuple(pattern), named), numbers


@dataclass(slots=True, eq=False)
class _Shape:
    """What a shape's lines share: the graph, its plan, and where each number goes."""

    dag: Dag
    plan: engine.Plan
    output: str
    slots: list[tuple[int, float]]  # per number, in text order: (node, sign)
    base: list[float | None]  # leaf values with the command's values applied
    overrides: list[tuple[int, float]]  # the command's values, applied after the numbers
    inputs: list[tuple[str, int]]  # inputs with a value, in order


class Shapes:
    """A bounded cache of shapes for one question (``at``, ``wrt``, ``of``, ``max_size``)."""

    def __init__(self, at: Mapping[str, float] | None, wrt: Sequence[str] | None,
                 of: str | None, max_size: int) -> None:
        self.at, self.wrt, self.of, self.max_size = dict(at or {}), wrt, of, max_size
        self.shapes: OrderedDict[tuple[Any, ...], _Shape | None] = OrderedDict()
        self.seen: OrderedDict[tuple[Any, ...], None] = OrderedDict()
        self.nodes = 0

    def solve(self, text: str, line: int) -> dict[str, Any] | None:
        """The result of the text line ``line`` from its shape, or None: take the full path."""
        keyed = shape_key(text)
        if keyed is None:
            return None
        key, numbers = keyed
        shape = self.shapes.get(key)
        if shape is None:
            if key in self.shapes:  # a shape that never takes the fast path
                self.shapes.move_to_end(key)
                return None
            if key not in self.seen:
                self.seen[key] = None
                if len(self.seen) > MAX_SEEN:
                    self.seen.popitem(last=False)
                return None
            del self.seen[key]
            shape = self._make(text, line, numbers)
            self._keep(key, shape)
            if shape is None:
                return None
        else:
            self.shapes.move_to_end(key)
        return _answer(shape, numbers, line)

    def _keep(self, key: tuple[Any, ...], shape: _Shape | None) -> None:
        size = len(shape.dag) if shape is not None else 0
        if size > MAX_NODES:
            return
        self.shapes[key] = shape
        self.nodes += size
        while len(self.shapes) > MAX_SHAPES or self.nodes > MAX_NODES:
            _, old = self.shapes.popitem(last=False)
            self.nodes -= len(old.dag) if old is not None else 0

    def _make(self, text: str, line: int, numbers: list[float]) -> _Shape | None:
        try:
            program = parse(text, "<batch>", line, self.max_size)
            dag = build(program)
            output_name = self.of if self.of is not None else dag.output
            output = lookup(dag, output_name, "output")
            within = engine.cone(dag, [output])
            if self.wrt:
                names = [n for n in self.wrt if n in dag.named]
                targets = {n: lookup(dag, n, "gradient") for n in unique(names)}
            else:
                targets = default_targets(dag, output, within)
            at = {n: v for n, v in self.at.items() if n in dag.inputs}
            base = leaf_values(dag, at)
        except GradcalcError:
            return None
        plan = engine.plan(dag, output, targets, within)
        if any(plan.needed[i] and base[i] is None for i in dag.inputs.values()):
            return None  # formulas: the full path
        if question_notes(dag, self.of, output_name, None if self.wrt else targets):
            return None
        slots = _slots(program, dag, numbers)
        if slots is None:
            return None
        overrides = [(dag.inputs[n], float(v)) for n, v in at.items()]
        inputs = [(n, i) for n, i in dag.inputs.items() if base[i] is not None]
        return _Shape(dag, plan, output_name, slots, base, overrides, inputs)


def _slots(program: Any, dag: Dag, numbers: list[float]) -> list[tuple[int, float]] | None:
    """For each number of the line (in text order), the node it sets and the sign a minus
    folded into it gives; None when a number has no node of its own to set."""
    nodes = program.nodes
    if len(nodes.numbers) != len(numbers):
        return None
    constants = {(v, math.copysign(1.0, v)): i for i, v in enumerate(dag.values)
                 if dag.ops[i] is CONST and v is not None}
    roots = {s.root: s.name for s in program.statements}
    slots: list[tuple[int, float]] = [(-1, 1.0)] * len(numbers)
    for node in range(len(nodes)):
        if nodes.kinds[node] != NUM:
            continue
        index = nodes.payloads[node]
        value = nodes.numbers[index]
        sign = -1.0 if math.copysign(1.0, value) != math.copysign(1.0, numbers[index]) else 1.0
        name = roots.get(node)
        if node in roots:
            if name is None:  # a bare number as the program: rare, the full path
                return None
            where = dag.inputs[name]
        else:
            found = constants.get((value, math.copysign(1.0, value)))
            if found is None:
                return None
            where = found
        slots[index] = (where, sign)
    return slots


def _answer(shape: _Shape, numbers: list[float], line: int) -> dict[str, Any] | None:
    values = shape.base.copy()
    for (node, sign), number in zip(shape.slots, numbers, strict=True):
        values[node] = sign * number
    for node, number in shape.overrides:
        values[node] = number
    plan = shape.plan
    try:
        vals = engine.forward(shape.dag, list(values), plan.needed)
    except EvaluationError:
        return None
    done = engine.run(plan, vals)
    if engine.diagnose(done):
        return None
    return {
        "line": line,
        "output": shape.output,
        "value": json_number(vals[plan.output]),
        "gradients": {n: json_number(g) for n, g in done.target_gradients().items()},
        "values": {n: json_number(vals[i]) for n, i in plan.targets.items()},
        "inputs": {n: json_number(values[i]) for n, i in shape.inputs},  # type: ignore[arg-type]
        "warnings": [],
        "error": None,
    }
