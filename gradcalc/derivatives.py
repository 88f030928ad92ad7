"""Beyond one gradient: Jacobians (several outputs), Hessians (second derivatives) and checks
against finite differences. All of them run the same counted backward pass.

The Hessian is reverse over reverse: each gradient is first computed symbolically, printed as
a gradcalc program, and that program is differentiated again by the same engine (numbers when
every input has a value, formulas otherwise). Forward over reverse would need a second kind of
derivative rule (dual numbers) for every op of the registry; reverse over reverse reuses the
rules the registry already has, and gives exact second-derivative formulas too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from gradcalc import engine
from gradcalc.api import compile_program, default_targets, leaf_values, lookup, unique
from gradcalc.api import gradients as _gradients
from gradcalc.dag import Dag
from gradcalc.errors import GradcalcError, InputError
from gradcalc.gcpause import paused_gc
from gradcalc.symbolic import symbolic_gradients

__all__ = ["Check", "Jacobian", "Matrix", "check_gradients", "hessian", "jacobian"]

#: A gradient passes ``--check`` when its relative difference from the central finite
#: difference is at most this (relative to the larger of the two, or absolute below 1).
CHECK_TOLERANCE = 1e-5


@dataclass(slots=True)
class Matrix:
    """Rows by name, each a mapping column name -> entry: a number, or a formula (text) where
    an input has no value. ``values`` holds the numbers of formulas where they are known."""

    rows: list[str]
    columns: list[str]
    entries: dict[str, dict[str, float | str]] = field(default_factory=dict)


Jacobian = Matrix


def jacobian(program: str | Dag, outputs: Iterable[str], at: Mapping[str, float] | None = None,
             wrt: Iterable[str] | None = None) -> Matrix:
    """d(output)/d(name) for several outputs: one row per output, one column per requested
    name (default: the inputs any of the outputs depend on). The forward pass runs once; the
    counting pass and the backward pass once per output."""
    with paused_gc():
        dag = compile_program(program)
        names = unique(outputs)
        nodes = [lookup(dag, name, "output") for name in names]
        values = leaf_values(dag, at or {})
        everything = engine.cone(dag, nodes)
        if wrt is None:
            columns = [n for n, i in dag.inputs.items() if everything[i]]
        else:
            columns = unique(wrt)
            for column in columns:
                lookup(dag, column, "gradient")
        targets = {n: dag.named[n] for n in columns}
        matrix = Matrix(names, columns)
        missing = any(values[i] is None for i in dag.inputs.values() if everything[i])
        if missing:
            for name, node in zip(names, nodes, strict=True):
                formulas = symbolic_gradients(dag, node, targets, values).formulas
                matrix.entries[name] = {c: f.text if f.value is None else f.value
                                        for c, f in formulas.items()}
            return matrix
        vals = engine.forward(dag, values, everything)
        for name, node in zip(names, nodes, strict=True):
            within = engine.cone(dag, [node])
            active = engine.active_nodes(dag, targets.values(), within)
            pending = engine.counting_pass(dag, node, active)
            grads = engine.backward(dag, vals, node, pending, active)
            matrix.entries[name] = {c: grads[i] + 0.0 if i <= node else 0.0
                                    for c, i in targets.items()}
        return matrix


def hessian(program: str | Dag, at: Mapping[str, float] | None = None,
            wrt: Iterable[str] | None = None, of: str | None = None) -> Matrix:
    """Second derivatives d²(output)/d(row)d(column) over the requested names (default: the
    inputs the output depends on), by differentiating each gradient's formula again."""
    with paused_gc():
        dag = compile_program(program)
        output = lookup(dag, of if of is not None else dag.output, "output")
        values = leaf_values(dag, at or {})
        if wrt is None:
            within = engine.cone(dag, [output])
            names = [n for n in default_targets(dag, output, within) if n in dag.inputs]
        else:
            names = unique(wrt)
            for name in names:
                if name not in dag.inputs:
                    lookup(dag, name, "gradient")
                    raise InputError(f"--hessian needs inputs: {name} is computed by the "
                                     "program", hint="differentiate with respect to inputs")
        targets = {n: dag.inputs[n] for n in names}
        known = {n: v for n, i in dag.inputs.items() if (v := values[i]) is not None}
        first = symbolic_gradients(dag, output, targets, values).formulas
        matrix = Matrix(names, names)
        for row in names:
            text = first[row].text
            inner = compile_program(text, f"<d/d{row}>")
            present = [n for n in names if n in inner.named]
            if present:
                result = _gradients(inner, at={n: v for n, v in known.items()
                                               if n in inner.inputs}, wrt=present)
            entries: dict[str, float | str] = {}
            for column in names:
                if column not in present:
                    entries[column] = 0.0
                elif column in result.formulas and column not in result.gradients:
                    entries[column] = result.formulas[column].text
                else:
                    entries[column] = result.gradients[column]
            matrix.entries[row] = entries
        return matrix


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


def check_gradients(program: str | Dag, at: Mapping[str, float] | None = None,
                    wrt: Iterable[str] | None = None, of: str | None = None) -> list[Check]:
    """Each requested input's gradient against a central finite difference of the output,
    with a step of about cbrt(machine epsilon) times the input's size (named intermediates
    cannot be perturbed alone, so only inputs are checked)."""
    with paused_gc():
        dag = compile_program(program)
        result = _gradients(dag, at=at, wrt=wrt, of=of, symbolic=False)
        output = dag.named[result.output]
        values = leaf_values(dag, at or {})
        needed = engine.cone(dag, [output])
        checks = []
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
