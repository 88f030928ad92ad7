"""Symbolic reverse mode: the same counting pass and backward pass, with expressions as adjoints.

Every node of the DAG gets an expression of the :class:`~gradcalc.algebra.Algebra`: inputs and
named values are symbols, unnamed operations are built from their operands. The backward pass
(:func:`gradcalc.engine.backward_over`) then combines the registry's symbolic rules exactly as
the numeric pass combines numbers. A gradient comes out in terms of the program's own names;
names defined by small polynomials (``B = 3*A``) are substituted, the others stay as bindings
printed before the formula (``X1 = cos(X0) + sin(X0); ...``), so a diamond chain of n levels
gives a formula of size O(n), never O(2^n).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from gradcalc.algebra import Algebra
from gradcalc.dag import Dag
from gradcalc.engine import active_nodes, backward_over, cone, counting_pass
from gradcalc.ops import CONST, CONSTANTS, FUNCTIONS, INPUT, Op

__all__ = ["Formula", "SymbolicGradients", "symbolic_gradients"]

# A named value is substituted into the formulas when its definition is a polynomial of
# symbols with at most this many terms; anything bigger or with functions stays a binding.
_INLINE_TERMS = 8

_FUNCTIONS = {name: op.forward for name, op in FUNCTIONS.items()}


@dataclass(frozen=True, slots=True)
class Formula:
    """A symbolic gradient: ``text`` is gradcalc syntax (an expression, or a program of
    bindings whose last statement is the gradient), ``value`` its number where every name it
    uses has a value, and ``constant`` true when it uses no names at all."""

    text: str
    value: float | None
    constant: bool
    bindings: tuple[str, ...]


@dataclass(slots=True)
class SymbolicGradients:
    """The formulas of one output, keyed by requested name, and the algebra they live in."""

    algebra: Algebra
    formulas: dict[str, Formula]
    expressions: dict[str, int]


def symbolic_gradients(dag: Dag, output: int, targets: dict[str, int],
                       values: list[float | None]) -> SymbolicGradients:
    """d(output)/d(target) as formulas, for each target name; ``values`` holds the known
    input values (``None`` where unknown) for the formulas' numbers."""
    X = Algebra()
    within = cone(dag, [output])
    expressions: dict[int, int] = {}
    bindings: list[tuple[str, int]] = []
    results: dict[int, int] = {}  # the `y` the rules see: a name's symbol, or the expression
    for node in range(output + 1):
        if not within[node]:
            continue
        op, name = dag.ops[node], dag.names[node]
        if op is INPUT:
            expressions[node] = results[node] = X.symbol(str(name))
            continue
        if op is CONST:
            expressions[node] = results[node] = _constant(X, dag, node)
            continue
        built = _build(X, op, [expressions[a] for a in dag.args[node]])
        if name is None:
            expressions[node] = results[node] = built
        else:
            bindings.append((name, built))
            expressions[node] = results[node] = X.symbol(name)

    active = active_nodes(dag, targets.values(), within)
    pending = counting_pass(dag, output, active)

    def local(node: int) -> tuple[int, ...]:
        op = dag.ops[node]
        assert op.rule is not None, f"{op.name} has no symbolic rule"
        return op.rule(X, *(expressions[a] for a in dag.args[node]), results[node])

    adjoints = backward_over(dag, output, pending, active, local, X.add, X.mul, X.one)
    gradients = {name: adjoints.get(node, X.zero) for name, node in targets.items()}

    inlined, kept = _split_bindings(X, bindings)
    known = _known_values(X, dag, values, kept)
    formulas, final = {}, {}
    for name, expr in gradients.items():
        expr = X.substitute(expr, inlined)
        final[name] = expr
        needed = _needed_bindings(X, expr, kept)
        text = X.program(expr, needed)
        symbols = X.symbols(expr)
        value = _value(X, expr, known)
        formulas[name] = Formula(text, value, not symbols, tuple(n for n, _ in needed))
    return SymbolicGradients(X, formulas, final)


def _constant(X: Algebra, dag: Dag, node: int) -> int:
    label = dag.labels.get(node)
    if label in CONSTANTS:
        return X.symbol(label)
    value = dag.values[node]
    assert value is not None
    try:
        return X.number(Fraction(label if label is not None else repr(value)))
    except ValueError:
        return X.number(Fraction(repr(value)))


def _build(X: Algebra, op: Op, operands: list[int]) -> int:
    if op.algebra is not None:
        built: int = getattr(X, op.algebra)(*operands)
        return built
    return X.call(op.name, *operands)


def _split_bindings(X: Algebra, bindings: list[tuple[str, int]]
                    ) -> tuple[dict[str, int], list[tuple[str, int]]]:
    """Which named values to substitute (small polynomials of symbols) and which to keep as
    bindings; kept definitions get the substituted ones written out."""
    inlined: dict[str, int] = {}
    kept: list[tuple[str, int]] = []
    for name, expr in bindings:
        expr = X.substitute(expr, inlined)
        if X.is_plain(expr) and X.term_count(expr) <= _INLINE_TERMS:
            inlined[name] = expr
        else:
            kept.append((name, expr))
    return inlined, kept


def _needed_bindings(X: Algebra, expr: int, kept: list[tuple[str, int]]
                     ) -> list[tuple[str, int]]:
    """The kept bindings ``expr`` uses, directly or through other bindings, in order."""
    definitions = dict(kept)
    needed: set[str] = set()
    stack = [s for s in X.symbols(expr) if s in definitions]
    while stack:
        name = stack.pop()
        if name in needed:
            continue
        needed.add(name)
        stack.extend(s for s in X.symbols(definitions[name]) if s in definitions)
    return [(n, e) for n, e in kept if n in needed]


def _known_values(X: Algebra, dag: Dag, values: list[float | None],
                  kept: list[tuple[str, int]]) -> dict[str, float]:
    known = {name: float(v) for name, node in dag.inputs.items()
             if (v := values[node]) is not None}
    known.update(CONSTANTS)
    for name, expr in kept:
        value = _value(X, expr, known)
        if value is not None:
            known[name] = value
    return known


def _value(X: Algebra, expr: int, known: dict[str, float]) -> float | None:
    try:
        value = X.evaluate(expr, known, _FUNCTIONS)
    except (KeyError, ValueError, ZeroDivisionError, OverflowError):
        return None
    return value if math.isfinite(value) else None
