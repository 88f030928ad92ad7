"""Beyond one gradient: Jacobians (several outputs), Hessians (second derivatives) and checks
against finite differences. All of them run the same counted backward pass.

The Hessian is reverse over reverse: the gradient is built as a graph of nodes by the
registry's symbolic rules (:mod:`gradcalc.gradgraph`), and that graph is differentiated again
by the same engine (numbers where the values are known, formulas otherwise). Forward over
reverse would need a second kind of derivative rule (dual numbers) for every op of the
registry; reverse over reverse reuses the rules the registry already has, and gives exact
second-derivative formulas too. Second
derivatives of a twice continuously differentiable function do not depend on the order of
differentiation, so only one triangle is computed and mirrored: the matrix is exactly
symmetric (rounding would otherwise make d/dB(d/dA) and d/dA(d/dB) differ in the last bits).

Every result carries the warnings of the gradient computation behind it (kinks met, where an
infinite or NaN gradient arose), as :attr:`gradcalc.api.Result.warnings` does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from gradcalc import engine
from gradcalc.api import (
    ArrayValue,
    array_shapes,
    compile_program,
    default_targets,
    leaf_values,
    lookup,
    scalar_output,
)
from gradcalc.api import (
    expand as elements,
)
from gradcalc.api import gradients as _gradients
from gradcalc.dag import Dag
from gradcalc.errors import Diagnostic, GradcalcError, InputError
from gradcalc.fmt import format_number
from gradcalc.gcpause import paused_gc
from gradcalc.gradgraph import GradientGraph, gradient_graph
from gradcalc.symbolic import symbolic_gradients

__all__ = ["Check", "Checks", "Matrix", "check_gradients", "hessian", "jacobian"]

#: The kinds of :class:`~gradcalc.errors.Diagnostic` the results here carry: what the
#: computation met. Notes about the question (which output was chosen) are the caller's.
WARNING_KINDS = ("kink", "nonfinite")

#: A gradient passes ``--check`` when its relative difference from the central finite
#: difference is at most this (relative to the larger of the two, or absolute below 1).
CHECK_TOLERANCE = 1e-5


@dataclass(slots=True)
class Matrix:
    """Rows by name, each a mapping column name -> entry: a number, or a formula (text) where
    an input has no value. ``warnings`` lists what the computation met where it ran on numbers
    (:class:`~gradcalc.errors.Diagnostic` of the kinds :data:`WARNING_KINDS`: kinks, where an
    infinite or NaN entry arose), each once; it is empty for formulas."""

    rows: list[str]
    columns: list[str]
    entries: dict[str, dict[str, float | str]] = field(default_factory=dict)
    warnings: list[Diagnostic] = field(default_factory=list)


def _add_warnings(into: list[Diagnostic], found: Iterable[Diagnostic]) -> None:
    """Append the warnings of ``found`` (kinds :data:`WARNING_KINDS`) that ``into`` does not
    hold yet (the same kink seen from two outputs is reported once; equal texts of different
    sources are different)."""
    seen = {(d, d.source.name if d.source else None) for d in into}
    for d in found:
        key = (d, d.source.name if d.source else None)
        if d.kind in WARNING_KINDS and key not in seen:
            seen.add(key)
            into.append(d)


def jacobian(program: str | Dag, outputs: Iterable[str],
             at: Mapping[str, ArrayValue] | None = None,
             wrt: Iterable[str] | None = None, expand: bool = False) -> Matrix:
    """d(output)/d(name) for several outputs: one row per output, one column per requested
    name (default: the inputs any of the outputs depend on); a vector or matrix among the
    outputs or the names stands for its elements. The forward pass runs once; the
    counting pass and the backward pass once per output. With numbers, ``warnings`` holds the
    kinks each backward pass met and where each infinite or NaN entry arose. Formulas are
    multiplied out with ``expand`` (see :func:`gradcalc.gradients`)."""
    with paused_gc():
        dag = compile_program(program, shapes=array_shapes(at or {}))
        names = elements(dag, outputs)
        nodes = [lookup(dag, name, "output") for name in names]
        values = leaf_values(dag, at or {})
        everything = engine.cone(dag, nodes)
        if wrt is None:
            columns = [n for n, i in dag.inputs.items() if everything[i]]
        else:
            columns = elements(dag, wrt)
            for column in columns:
                lookup(dag, column, "gradient")
        targets = {n: dag.named[n] for n in columns}
        matrix = Matrix(names, columns)
        missing = any(values[i] is None for i in dag.inputs.values() if everything[i])
        plans = [engine.plan(dag, node, targets) for node in nodes]
        if missing:
            for name, question in zip(names, plans, strict=True):
                formulas = symbolic_gradients(question, values, expand=expand).formulas
                matrix.entries[name] = {c: f.text if f.value is None else f.value
                                        for c, f in formulas.items()}
            return matrix
        vals = engine.forward(dag, values, everything)
        for name, question in zip(names, plans, strict=True):
            done = engine.run(question, vals)
            matrix.entries[name] = dict(done.target_gradients())
            _add_warnings(matrix.warnings, engine.diagnose(done))
        return matrix


def hessian(program: str | Dag, at: Mapping[str, ArrayValue] | None = None,
            wrt: Iterable[str] | None = None, of: str | None = None,
            expand: bool = False) -> Matrix:
    """Second derivatives d²(output)/d(row)d(column) over the requested names (default: the
    inputs the output depends on): reverse over reverse. The gradient is built as a graph
    (:func:`gradcalc.gradgraph.gradient_graph`: the registry's symbolic rules applied to
    nodes, appended to the program's DAG), and the same engine differentiates that graph
    again: numbers where the entry needs no missing value, formulas otherwise.

    Only the upper triangle is computed (row ``k`` against columns ``k``, ``k+1``, ...) and
    mirrored, numbers and formulas alike, so the matrix is exactly symmetric and half the
    entries are not worked out twice. With numbers, the gradient is first computed at the
    point (so a point where the program is undefined is an ``EvaluationError``, as for
    :func:`gradcalc.gradients`); ``warnings`` holds that computation's warnings and, for each
    infinite or NaN entry, the operation whose derivative made it so. A derivative that is
    infinite at the point (``sqrt'(0)``) gives infinite or NaN entries, not an error.
    Formulas are multiplied out with ``expand`` (see :func:`gradcalc.gradients`)."""
    with paused_gc():
        dag = compile_program(program, shapes=array_shapes(at or {}))
        output_name = scalar_output(dag, of)
        output = lookup(dag, output_name, "output")
        values = leaf_values(dag, at or {})
        within = engine.cone(dag, [output])
        if wrt is None:
            names = [n for n in default_targets(dag, output, within) if n in dag.inputs]
        else:
            names = elements(dag, wrt)
            for name in names:
                if name not in dag.inputs:
                    lookup(dag, name, "gradient")
                    raise InputError(f"the Hessian needs inputs: {name} is computed by the "
                                     "program", hint="differentiate with respect to inputs")
        targets = {n: dag.inputs[n] for n in names}
        matrix = Matrix(names, names)
        question = engine.plan(dag, output, targets, within)
        needed = question.needed
        complete = all(values[i] is not None for i in dag.inputs.values() if needed[i])
        if complete:
            first_order = _gradients(dag, at=at, wrt=names, of=of, symbolic=False)
            _add_warnings(matrix.warnings, first_order.warnings)
        graph = gradient_graph(question)
        gdag = graph.dag
        leaves = list(values) + gdag.values[len(values):]
        if complete:
            vals = engine.forward(gdag, leaves, engine.cone(gdag, graph.gradients.values()),
                                  extended_from=graph.program_size)
        upper: dict[tuple[str, str], float | str] = {}
        for k, row in enumerate(names):
            columns = {c: targets[c] for c in names[k:]}
            node = graph.gradients[row]
            if complete:
                entries: dict[str, float | str] = dict(
                    _second_derivatives(gdag, vals, node, columns))
                row_values: list[float | None] = list(vals)
            else:
                question = engine.plan(gdag, node, columns)
                known = engine.known_gradients(question, leaves,
                                               extended_from=graph.program_size)
                formulas = symbolic_gradients(question, leaves, known.gradients,
                                              expand).formulas
                entries = {c: f.value if f.value is not None else f.text
                           for c, f in formulas.items()}
                row_values = known.values
            for column in columns:
                upper[row, column] = entries[column]
            _add_warnings(matrix.warnings, _nonfinite_entries(
                gdag, row_values, graph, output_name, row, entries))
        for k, row in enumerate(names):
            matrix.entries[row] = {column: upper[(row, column) if j >= k else (column, row)]
                                   for j, column in enumerate(names)}
        return matrix


def _second_derivatives(gdag: Dag, vals: list[float], node: int,
                        columns: dict[str, int]) -> dict[str, float]:
    """d(node)/d(column) for each column: one counted backward pass over the gradient graph."""
    return engine.run(engine.plan(gdag, node, columns), vals).target_gradients()


def _nonfinite_entries(gdag: Dag, vals: list[float | None], graph: GradientGraph,
                       output: str, row: str, entries: dict[str, float | str]
                       ) -> list[Diagnostic]:
    """One warning per infinite or NaN number among ``entries`` (a row of the upper
    triangle), pointing at the operation of the program whose derivative made it: the first
    node of the row's derivative graph (in topological order) that is infinite or NaN at the
    point, or whose own derivative is (``vals``: ``None`` where a value is missing)."""
    bad = [c for c, v in entries.items() if isinstance(v, float) and not math.isfinite(v)]
    if not bad:
        return []
    node = graph.gradients[row]
    within = engine.cone(gdag, [node])
    origin = next((i for i in range(graph.program_size, node + 1)
                   if within[i] and not _finite_at(gdag, vals, i)), None)
    found = []
    for column in bad:
        value = format_number(float(entries[column]))
        second = f"d²{output}/d{row}²" if column == row else f"d²{output}/d{row}d{column}"
        if origin is None:
            found.append(Diagnostic(
                "nonfinite", f"{second} is {value}",
                hint="the derivatives are finite here, but their products or sums exceed "
                "about 1.8e308"))
        else:
            found.append(Diagnostic(
                "nonfinite", f"{second} is {value}", gdag.span(origin), gdag.source,
                hint="the derivative of this operation is not differentiable at the point "
                "(a derivative of it is infinite or undefined there)"))
    return found


def _finite_at(dag: Dag, vals: list[float | None], node: int) -> bool:
    """Whether ``node``'s value and its local derivatives are finite (or unknown)."""
    operands = [vals[j] for j in dag.args[node]]
    value = vals[node]
    if value is None or None in operands:
        return True
    if not math.isfinite(value):
        return False
    return all(map(math.isfinite, dag.ops[node].partials(*operands, value)))


@dataclass(frozen=True, slots=True)
class Check:
    """One gradient against a central finite difference."""

    name: str
    gradient: float
    estimate: float
    relative_error: float
    step: float

    @property
    def ok(self) -> bool:
        return self.relative_error <= CHECK_TOLERANCE


class Checks(list[Check]):
    """What :func:`check_gradients` returns: the list of :class:`Check` (one per input, in the
    order of the gradients), with ``warnings``: the :class:`~gradcalc.errors.Diagnostic` list
    of the gradient computation that was checked (kinks met, where an infinite or NaN gradient
    arose: the warnings of :attr:`gradcalc.api.Result.warnings`, without its notes about the
    question). At a kink a check fails on purpose, and the kink warning says why. ``ok`` is
    true when every check passed."""

    __slots__ = ("warnings",)

    def __init__(self, checks: Iterable[Check] = (),
                 warnings: Iterable[Diagnostic] = ()) -> None:
        super().__init__(checks)
        self.warnings: list[Diagnostic] = list(warnings)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self)

    def __reduce__(self) -> tuple:
        return (Checks, (list(self), self.warnings))


def check_gradients(program: str | Dag, at: Mapping[str, ArrayValue] | None = None,
                    wrt: Iterable[str] | None = None, of: str | None = None) -> Checks:
    """Each requested input's gradient against a central finite difference of the output,
    with a step of about cbrt(machine epsilon) times the input's size (named intermediates
    cannot be perturbed alone, so only inputs are checked). The result is a list of
    :class:`Check` whose ``warnings`` are those of the gradient computation (:class:`Checks`)."""
    with paused_gc():
        dag = compile_program(program, shapes=array_shapes(at or {}))
        if wrt is not None:
            wrt = elements(dag, wrt)
            for name in wrt:
                if name not in dag.inputs:
                    lookup(dag, name, "gradient")  # an unknown name: its own error
                    raise InputError(
                        f"{name} is not an input: only inputs can be checked",
                        hint="a named intermediate cannot be moved alone; check the inputs "
                        "it depends on")
        result = _gradients(dag, at=at, wrt=wrt, of=of, symbolic=False)
        output = dag.named[result.output]
        values = leaf_values(dag, at or {})
        needed = engine.cone(dag, [output])
        checks = Checks(warnings=[w for w in result.warnings if w.kind in WARNING_KINDS])
        for name, gradient in result.gradients.items():
            node = dag.inputs.get(name)
            if node is None:
                continue
            x = values[node]
            assert x is not None
            h = 6e-6 * max(1.0, abs(x))
            up, down = list(values), list(values)
            up[node], down[node] = x + h, x - h
            try:
                f_up = engine.forward(dag, up, needed)[output]
                f_down = engine.forward(dag, down, needed)[output]
            except GradcalcError:
                checks.append(Check(name, gradient, math.nan, math.inf, h))
                continue
            step = (x + h) - (x - h)  # the step actually taken, after rounding
            estimate = (f_up - f_down) / step
            scale = max(abs(gradient), abs(estimate), 1.0)
            checks.append(Check(name, gradient, estimate, abs(gradient - estimate) / scale, h))
        return checks
