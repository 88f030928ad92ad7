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
from gradcalc.errors import EvaluationError, GradcalcError
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
                       values: list[float | None],
                       numbers: dict[str, float] | None = None) -> SymbolicGradients:
    """d(output)/d(target) as formulas, for each target name; ``values`` holds the known
    input values (``None`` where unknown). A formula's number is taken from ``numbers`` (the
    numeric engine's gradients) where given, else the formula is evaluated where every name
    it uses has a value.

    Raises :class:`~gradcalc.errors.EvaluationError` where the program is undefined for every
    value (``A/(A - A)``), at that operation's position."""
    X = Algebra()
    graph = _Expressions(X, dag)
    within = cone(dag, [output])
    active = active_nodes(dag, targets.values(), within)
    pending = counting_pass(dag, output, active)

    def local(node: int) -> tuple[int, ...]:
        op = dag.ops[node]
        assert op.rule is not None, f"{op.name} has no symbolic rule"
        if op.linear:  # add, sub, neg, id: no need to build the operands
            return op.rule(X, *([X.zero] * len(dag.args[node])), X.zero)
        operands = [graph.expression(a) for a in dag.args[node]]
        result = graph.expression(node)
        if dag.names[node] is not None:  # a name is a symbol: is its definition defined?
            with graph.at(node):
                _build(X, op, operands)
        with graph.at(node, derivative=True):
            return op.rule(X, *operands, result)

    with graph.at(output):
        adjoints = backward_over(dag, output, pending, active, local, X.add, X.mul, X.one)
    formulas, final = {}, {}
    known: dict[str, float] | None = None
    for name, node in targets.items():
        try:
            expr = graph.inline(adjoints.get(node, X.zero))
        except EvaluationError:
            raise _infinite_derivative(dag, graph, targets, output, active) from None
        needed = graph.bindings_for(expr)
        if known is None:
            known = _known_values(X, dag, values, [])
        for bound, definition in needed:
            if bound not in known:
                value = _value(X, definition, known)
                if value is not None:
                    known[bound] = value
        final[name] = expr
        number = numbers[name] if numbers is not None and name in numbers else \
            _value(X, expr, known)
        formulas[name] = Formula(X.program(expr, needed), number,
                                 not X.symbols(expr), tuple(n for n, _ in needed))
    return SymbolicGradients(X, formulas, final)


class _Expressions:
    """Expressions of the DAG's nodes, built only when asked for: a named value is its
    symbol, an unnamed operation the expression of its operands; a name's definition, and
    whether it is small enough to substitute, are worked out only when a formula uses it.
    (A 10,000-term sum would otherwise intern all its 10,000 partial sums.)"""

    def __init__(self, X: Algebra, dag: Dag) -> None:
        self.X, self.dag = X, dag
        self.memo: dict[int, int] = {}
        self.definitions: dict[str, int] = {}  # name -> definition, smaller names substituted
        self.inlined: dict[str, int] = {}  # names substituted into formulas
        self.node: int | None = None  # where an algebra error is reported

    def at(self, node: int, derivative: bool = False) -> _Where:
        return _Where(self, node, derivative)

    def expression(self, node: int) -> int:
        """The expression of ``node``, built iteratively from its unnamed ancestors."""
        memo, dag, X = self.memo, self.dag, self.X
        stack = [node]
        while stack:
            n = stack[-1]
            if n in memo:
                stack.pop()
                continue
            op, name = dag.ops[n], dag.names[n]
            if op is INPUT or name is not None:
                memo[n] = X.symbol(str(name))
            elif op is CONST:
                memo[n] = _constant(X, dag, n)
            else:
                missing = [a for a in dag.args[n] if a not in memo]
                if missing:
                    stack.extend(missing)
                    continue
                with self.at(n):
                    memo[n] = _build(X, op, [memo[a] for a in dag.args[n]])
            stack.pop()
        return memo[node]

    def _definition(self, name: str) -> int:
        """The definition of the named node ``name``, with substitutable names substituted
        (their definitions resolved first, in dependency order, without recursion)."""
        dag, X = self.dag, self.X
        order: list[str] = []
        seen: set[str] = set()
        stack: list[tuple[str, bool]] = [(name, False)]
        while stack:
            current, done = stack.pop()
            if done:
                order.append(current)
                continue
            if current in seen or current in self.definitions:
                continue
            seen.add(current)
            stack.append((current, True))
            stack.extend((s, False) for s in X.symbols(self._raw(current))
                         if s in dag.named and dag.ops[dag.named[s]] is not INPUT)
        for current in order:
            if current in self.definitions:
                continue
            raw = self._raw(current)
            with self.at(dag.named[current]):
                resolved = X.substitute(raw, {s: self.inlined[s] for s in X.symbols(raw)
                                              if s in self.inlined})
            self.definitions[current] = resolved
            if X.is_plain(resolved) and X.term_count(resolved) <= _INLINE_TERMS:
                self.inlined[current] = resolved
        return self.definitions[name]

    def _raw(self, name: str) -> int:
        node = self.dag.named[name]
        op = self.dag.ops[node]
        operands = [self.expression(a) for a in self.dag.args[node]]
        with self.at(node):
            return _build(self.X, op, operands)

    def _named_symbols(self, expr: int) -> list[str]:
        dag = self.dag
        return [s for s in sorted(self.X.symbols(expr))
                if s in dag.named and dag.ops[dag.named[s]] is not INPUT]

    def inline(self, expr: int) -> int:
        """``expr`` with the names defined by small polynomials substituted."""
        for name in self._named_symbols(expr):
            self._definition(name)
        replacements = {s: self.inlined[s] for s in self.X.symbols(expr) if s in self.inlined}
        with self.at(self.node if self.node is not None else 0):
            return self.X.substitute(expr, replacements)

    def bindings_for(self, expr: int) -> list[tuple[str, int]]:
        """The kept bindings ``expr`` uses, directly or through other bindings, in program
        order (a name's definition before its uses)."""
        needed: set[str] = set()
        stack = self._named_symbols(expr)
        while stack:
            name = stack.pop()
            if name in needed or name in self.inlined:
                continue
            needed.add(name)
            stack.extend(self._named_symbols(self._definition(name)))
        ordered = sorted(needed, key=lambda n: self.dag.named[n])
        return [(n, self.definitions[n]) for n in ordered]


class _Where:
    """Reports an algebra failure (``1/0`` met while building) at a node's position: the
    node's own expression (``A/(A - A)``: undefined for every value), or with ``derivative``
    its local derivative (``acos(B/B)``: acos'(1) is infinite for every B)."""

    __slots__ = ("derivative", "graph", "node", "previous")

    def __init__(self, graph: _Expressions, node: int, derivative: bool = False) -> None:
        self.graph, self.node, self.derivative = graph, node, derivative

    def __enter__(self) -> None:
        self.previous, self.graph.node = self.graph.node, self.node

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: object) -> None:
        self.graph.node = self.previous
        if isinstance(error, (ZeroDivisionError, ValueError)) and \
                not isinstance(error, GradcalcError):
            dag = self.graph.dag
            if self.derivative:
                raise _derivative_error(dag, self.node, error) from error
            raise EvaluationError(
                f"{dag.describe(self.node)} is undefined for every value: {error}",
                dag.spans[self.node], dag.source,
                hint="an expression here is identically zero where it divides, or takes the "
                "log or a negative power of zero", kind="domain") from error


def _derivative_error(dag: Dag, node: int, error: BaseException) -> EvaluationError:
    op, span = dag.ops[node], dag.spans[node]
    text = dag.source.text[span.start:span.end] if span is not None else ""
    shown = text if text and len(text) <= 40 and "\n" not in text else dag.describe(node)
    return EvaluationError(
        f"the derivative of {shown} is infinite or undefined for every value, so no formula "
        f"can be written: {error}", span, dag.source,
        hint=f"its operands are identically at a point where {op.name}'s derivative is "
        "infinite (like asin'(1) or sqrt'(0)); with values (--at) the gradient is a number, "
        "inf or nan with a warning", kind="domain")


def _infinite_derivative(dag: Dag, graph: _Expressions, targets: dict[str, int], output: int,
                         active: bytearray) -> EvaluationError:
    """A formula failed only once named values were substituted into it (``T = 2 - 1;
    OUT = asin(T)``): find the operation whose local derivative is the culprit, with every
    operand's definition substituted, and report the error there."""
    X = graph.X
    for node in range(output, -1, -1):
        op = dag.ops[node]
        if not active[node] or not dag.args[node] or op.linear:
            continue
        try:
            operands = [graph.inline(graph.expression(a)) for a in dag.args[node]]
            assert op.rule is not None
            op.rule(X, *operands, graph.inline(graph.expression(node)))
        except (ZeroDivisionError, ValueError, EvaluationError) as error:
            return _derivative_error(dag, node, error)
    name = next(iter(targets))
    return EvaluationError(
        "a gradient is infinite or undefined for every value, so no formula can be written",
        dag.name_spans.get(name), dag.source,
        hint="with values (--at) the gradient is a number, inf or nan with a warning",
        kind="domain")


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


def _known_values(X: Algebra, dag: Dag, values: list[float | None],
                  kept: list[tuple[str, int]]) -> dict[str, float]:
    """Input values (and constants), then the values of ``kept`` bindings where computable."""
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
