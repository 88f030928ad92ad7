"""Batch lines by shape: parse, build and plan a line's program once, then answer every line of
the same shape by putting its numbers into the graph.

Lines of one *family* differ only in their number literals (one regular-expression pass takes
the numbers out of a line). The first time a family is seen twice, that line is parsed and
built: this tells which numbers set inputs (``A = 2``) and which are constants. Within a
family, a *shape* is also fixed by which constants are equal to each other (and to ``pi`` or
``e``): equal constants are one node, so ``A*2 + A*2`` merges where ``A*2 + A*3`` does not.

A line is answered from its shape only when the answer is exactly what the full path
(:func:`gradcalc.batch.solve_problem`) gives, byte for byte: every needed input has a value
(else gradients are formulas), the evaluation raises nothing, no warning arises, and a note
has no position (a column moves with the lengths of the numbers before it). Anything else goes
the full path, which also knows the positions of errors. A file whose every line differs pays
only for taking the numbers out. The cache is bounded (:data:`MAX_SHAPES` families and shapes,
:data:`MAX_NODES` graph nodes in all).
"""

from __future__ import annotations

import json
import math
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from gradcalc import engine
from gradcalc.api import default_targets, leaf_values, lookup, question_notes, unique
from gradcalc.ast import NUM
from gradcalc.codegen import CompiledPlan, compile_plan
from gradcalc.dag import Dag, build
from gradcalc.errors import EvaluationError, GradcalcError
from gradcalc.fmt import json_number
from gradcalc.ops import CONST, CONSTANTS
from gradcalc.parse import parse
from gradcalc.serialize import diagnostic_object

__all__ = ["MAX_NODES", "MAX_SHAPES", "Shapes"]

#: At most this many shapes are kept (the least recently used goes first) ...
MAX_SHAPES = 512
#: ... and at most this many graph nodes in all of them; a line whose graph alone is larger
#: is never kept.
MAX_NODES = 200_000
#: Shapes of at most this many nodes are compiled to straight-line Python (gradcalc.codegen);
#: larger ones run the engine's loops.
MAX_COMPILED = 5000
#: After this many lines in a row whose family was new, only one line in :data:`SAMPLE` is
#: looked at until a family repeats: a file whose every line differs pays almost nothing.
COLD_AFTER = 1000
SAMPLE = 32
#: Lines longer than this many characters take the full path: the keys of up to
#: :data:`MAX_SEEN` lines are kept (at most 16 MiB of them).
MAX_LINE = 4096
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


def split_numbers(text: str) -> tuple[str, list[str]]:
    """A line's *family* (its text with each number replaced by a NUL character: two lines of
    one family differ only in their numbers) and its numbers as written, in text order. A
    string, whose hash Python keeps: the key is looked up several times a line."""
    parts = _tokens().split(text)  # gap, word or None, number or None, gap, ...
    numbers = [t for t in parts[2::3] if t is not None]
    words = parts[1::3]
    parts[1::3] = [_MARK if word is None else word for word in words]
    parts[2::3] = [""] * len(words)
    return "".join(parts), numbers


_MARK = "\0"


def _floats(texts: list[str]) -> list[float] | None:
    """The numbers as floats; None when one is beyond float range (the full path says so)."""
    numbers = list(map(float, texts))
    return None if any(map(math.isinf, numbers)) else numbers


def pattern(numbers: list[float], constants: tuple[int, ...]) -> tuple[Any, ...]:
    """Which of the numbers at ``constants`` (the ones that become constant nodes) are equal
    to each other, and which may be equal to a named constant: equal constants are one node,
    so this decides which sub-expressions merge."""
    first: dict[tuple[float, float], int] = {}
    equal = tuple(first.setdefault((numbers[i], math.copysign(1.0, numbers[i])), i)
                  for i in constants)
    return equal, tuple((i, numbers[i]) for i in constants if numbers[i] in _CONSTANT_MAGNITUDES)


@dataclass(slots=True, eq=False)
class _Shape:
    """What the lines of a shape share: the graph, its plan, and where each number goes."""

    dag: Dag
    plan: engine.Plan
    output: str
    slots: list[tuple[int, float]]  # per number, in text order: (node, sign)
    constants: tuple[int, ...]  # the numbers that are constant nodes (not input values)
    base: list[float | None]  # leaf values with the command's values applied
    overrides: list[tuple[int, float]]  # the command's values, applied after the numbers
    inputs: list[tuple[str, int]]  # inputs with a value, in order
    notes: list[dict[str, Any]]  # notes on the question, the same for every line (no position)
    compiled: CompiledPlan | None  # the plan as straight-line Python (small graphs)
    targets: list[str]  # the gradients asked for, in order
    templates: dict[bool, str] = field(default_factory=dict)  # JSON lines, by ensure_ascii

    input_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.input_names = [name for name, _ in self.inputs]

    def json_template(self, ensure_ascii: bool) -> str:
        """The JSON line of this shape's results as a %-format of their numbers (see
        :meth:`ShapedResult.json_line`): the same text ``json.dumps`` makes of the dict."""
        template = self.templates.get(ensure_ascii)
        if template is None:
            encode = json.JSONEncoder(ensure_ascii=ensure_ascii).encode

            def text(value: Any) -> str:
                return encode(value).replace("%", "%%")

            def numbers(names: list[str]) -> str:
                return "{" + ", ".join(f"{text(n)}: %r" for n in names) + "}"

            template = self.templates[ensure_ascii] = (
                '{"line": %d, "output": ' + text(self.output) + ', "value": %r, '
                '"gradients": ' + numbers(self.targets) + ', "values": '
                + numbers(self.targets) + ', "inputs": ' + numbers(self.input_names)
                + ', "warnings": ' + text(self.notes) + ', "error": null}\n')
        return template


class ShapedResult(dict[str, Any]):
    """A result answered from a shape: the result's dict, and its JSON line written from the
    shape's template (no encoder walking the dict)."""

    __slots__ = ("numbers", "shape")

    shape: _Shape
    numbers: tuple[float, ...]

    def __reduce__(self) -> tuple[Any, ...]:
        # pickled (to or from a worker process) as the plain dict it is: the shape's
        # compiled code stays in the process that made it
        return (dict, (dict(self),))

    def json_line(self, ensure_ascii: bool) -> str:
        """``json.dumps(self, ensure_ascii=ensure_ascii) + "\\n"``, from the template."""
        return self.shape.json_template(ensure_ascii) % self.numbers


# A family whose lines always take the full path (its program fails to parse or build,
# needs formulas, or has a note with a position: the same for every line of the family).
_NEVER: tuple[int, ...] = (-1,)


class Shapes:
    """A bounded cache of shapes for one question (``at``, ``wrt``, ``of``, ``max_size``).

    A family seen for the second time is parsed and built from that line: this tells which of
    its numbers are constants (their pattern of equalities then picks the shape) and which
    set inputs (``A = 2``: never merged, so not part of the shape)."""

    def __init__(self, at: Mapping[str, float] | None, wrt: Sequence[str] | None,
                 of: str | None, max_size: int) -> None:
        self.at, self.wrt, self.of, self.max_size = dict(at or {}), wrt, of, max_size
        self.families: OrderedDict[str, tuple[int, ...]] = OrderedDict()
        self.shapes: OrderedDict[tuple[Any, ...], _Shape] = OrderedDict()
        self.seen: OrderedDict[str, None] = OrderedDict()
        self.nodes = 0
        self.cold = 0  # first sightings in a row
        self.skipped = 0

    def solve(self, text: str, line: int) -> dict[str, Any] | None:
        """The result of the text line ``line`` from its shape, or None: take the full path."""
        if self.cold >= COLD_AFTER:  # no family repeats lately: look at one line in SAMPLE
            self.skipped += 1
            if self.skipped % SAMPLE:
                return None
        if _MARK in text or len(text) > MAX_LINE:  # the mark must mean a number; keys are
            return None  # kept, so their length is bounded
        family, texts = split_numbers(text)
        constants = self.families.get(family)
        if constants is None and family not in self.seen:  # a first sighting: the full path
            self.seen[family] = None
            if len(self.seen) > MAX_SEEN:
                self.seen.popitem(last=False)
            self.cold += 1
            return None
        self.cold = 0
        numbers = _floats(texts)
        if numbers is None:
            return None
        if constants is None:
            del self.seen[family]
            shape = self._make(text, line, numbers)
            self._remember(family, _NEVER if shape is None else shape.constants)
            if shape is None:
                return None
            self._keep((family, pattern(numbers, shape.constants)), shape)
        elif constants is _NEVER:
            self.families.move_to_end(family)
            return None
        else:
            self.families.move_to_end(family)
            key = (family, pattern(numbers, constants))
            found = self.shapes.get(key)
            if found is None:
                found = self._make(text, line, numbers)
                if found is None or found.constants != constants:
                    return None
                self._keep(key, found)
            else:
                self.shapes.move_to_end(key)
            shape = found
        return _answer(shape, numbers, line)

    def _remember(self, family: str, constants: tuple[int, ...]) -> None:
        self.families[family] = constants
        if len(self.families) > MAX_SHAPES:
            self.families.popitem(last=False)

    def _keep(self, key: tuple[Any, ...], shape: _Shape) -> None:
        size = len(shape.dag)
        if size > MAX_NODES:
            return
        self.shapes[key] = shape
        self.nodes += size
        while len(self.shapes) > MAX_SHAPES or self.nodes > MAX_NODES:
            _, old = self.shapes.popitem(last=False)
            self.nodes -= len(old.dag)

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
        notes = question_notes(dag, self.of, output_name, None if self.wrt else targets)
        if any(note.span is not None for note in notes):
            return None  # its column moves with the lengths of the numbers before it
        slots = _slots(program, dag, numbers)
        if slots is None:
            return None
        constants = tuple(i for i, (node, _) in enumerate(slots) if dag.ops[node] is CONST)
        overrides = [(dag.inputs[n], float(v)) for n, v in at.items()]
        inputs = [(n, i) for n, i in dag.inputs.items() if base[i] is not None]
        compiled = None
        if len(dag) <= MAX_COMPILED:
            try:
                compiled = compile_plan(plan, [i for _, i in inputs])
            except (RecursionError, MemoryError):  # the engine's loops answer instead
                compiled = None
        return _Shape(dag, plan, output_name, slots, constants, base, overrides, inputs,
                      [diagnostic_object(note) for note in notes], compiled, list(targets))


def _slots(program: Any, dag: Dag, numbers: list[float]) -> list[tuple[int, float]] | None:
    """For each number of the line (in text order), the node it sets and the sign a minus
    folded into it gives; None when a number has no node of its own to set."""
    nodes = program.nodes
    if len(nodes.numbers) != len(numbers):
        return None
    constants = {(v, math.copysign(1.0, v)): i for i, v in enumerate(dag.values)
                 if dag.ops[i] is CONST and v is not None}
    # the roots of assignments: a number there is an input (a function's body is not one)
    roots = {s.root: s.name for s in program.statements if s.params is None}
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
    if shape.compiled is not None:
        outcome = shape.compiled.run(values)
        if outcome is None:
            return None
        # every number here is finite (else the outcome is None), and + 0.0: json_number
        k = len(shape.targets)
        result = ShapedResult({
            "line": line,
            "output": shape.output,
            "value": outcome[0],
            "gradients": dict(zip(shape.targets, outcome[1 : k + 1], strict=True)),
            "values": dict(zip(shape.targets, outcome[k + 1 : 2 * k + 1], strict=True)),
            "inputs": dict(zip(shape.input_names, outcome[2 * k + 1 :], strict=True)),
            "warnings": [dict(note) for note in shape.notes],
            "error": None,
        })
        result.shape = shape
        result.numbers = (line, *outcome)
        return result
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
        "warnings": [dict(note) for note in shape.notes],
        "error": None,
    }
