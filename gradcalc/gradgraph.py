"""The gradient as a graph: reverse mode that builds nodes instead of numbers.

:func:`gradient_graph` runs the counted backward pass (:func:`gradcalc.engine.run_over`)
with the registry's symbolic rules applied to *nodes*: every local derivative and every
contribution becomes a node appended to a copy of the program's DAG. The result is one DAG
holding the program and its gradient, in topological order, the program's nodes first with
their ids unchanged, so the same engine differentiates it again: that is how Hessians are
computed (reverse over reverse), numbers and formulas alike.

Nothing is printed and read back, so a node made by a derivative rule can never be confused
with a name of the program; nothing is multiplied out, so a product of local derivatives is
evaluated as the product it is (``(1 - tanh(u)^2)*u'`` does not cancel to 0 - 0). The graph is
linear in the size of the program, like the backward pass that built it.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, replace
from fractions import Fraction

from gradcalc.dag import Dag
from gradcalc.engine import Plan, run_over
from gradcalc.errors import Span
from gradcalc.ops import CONST, CONSTANTS, Op, op_named

__all__ = ["GradientGraph", "gradient_graph"]


@dataclass(slots=True)
class GradientGraph:
    """``dag`` holds the program (nodes ``0 .. program_size - 1``, ids unchanged) and the
    nodes of its gradient; ``gradients`` maps each requested name to the node of
    d(output)/d(name). Nodes made by derivative rules have no name and carry the span of the
    program's operation whose rule made them."""

    dag: Dag
    program_size: int
    gradients: dict[str, int]


def gradient_graph(question: Plan) -> GradientGraph:
    """Append the gradient of the plan's output with respect to each of its targets to a copy
    of its graph (see :func:`gradcalc.engine.plan`)."""
    dag = question.dag
    graph = _copy(dag)
    builder = _NodeAlgebra(graph)

    def local(node: int) -> tuple[int, ...]:
        op = dag.ops[node]
        assert op.rule is not None, f"{op.name} has no symbolic rule"
        builder.span = dag.span(node)
        parts: tuple[int, ...] = op.rule(builder, *dag.args[node], node)
        return parts

    adjoints = run_over(question, local, builder.add, builder.mul, builder.one)
    builder.span = None
    gradients = {name: adjoints.get(node, builder.zero)
                 for name, node in question.targets.items()}
    return GradientGraph(graph, len(dag), gradients)


def _copy(dag: Dag) -> Dag:
    return replace(dag, ops=list(dag.ops), operand_starts=array("i", dag.operand_starts),
                   operand_ids=array("i", dag.operand_ids), names=list(dag.names),
                   spans=dag.spans.copy(), values=list(dag.values), labels=dict(dag.labels),
                   inputs=dict(dag.inputs), named=dict(dag.named),
                   name_spans=dict(dag.name_spans), outputs=list(dag.outputs))


class _NodeAlgebra:
    """The interface the registry's symbolic rules are written against
    (:class:`gradcalc.algebra.Algebra`: ``one``, ``zero``, ``number``, ``add``, ``mul``,
    ``pow``, ``call``, ...), building DAG nodes. Only rewrites that hold for every float,
    infinities and NaN included, are made: ``x + 0``, ``x*1``, ``x^1`` and ``--x`` are ``x``,
    and an operation on constants is folded to its value when that value is finite. Identical
    operations on identical operands are one node."""

    def __init__(self, dag: Dag) -> None:
        self.dag = dag
        self.span: Span | None = None
        self.constants: dict[tuple[float, float], int] = {}
        self.shared: dict[tuple[Op, tuple[int, ...]], int] = {
            (op, args): node for node, (op, args, name) in
            enumerate(zip(dag.ops, dag.args, dag.names, strict=True))
            if args and name is None}
        for node, op in enumerate(dag.ops):
            value = dag.values[node]
            if op is CONST and value is not None:
                self.constants.setdefault((value, math.copysign(1.0, value)), node)
        self.zero = self.number(0)
        self.one = self.number(1)
        self._add, self._sub, self._mul = op_named("add"), op_named("sub"), op_named("mul")
        self._div, self._neg, self._pow = op_named("div"), op_named("neg"), op_named("pow")

    def number(self, value: int | float | Fraction) -> int:
        number = float(value)
        key = (number, math.copysign(1.0, number))
        node = self.constants.get(key)
        if node is None:
            node = self.constants[key] = self.dag.add(CONST, (), self.span, value=number)
            label = str(value) if isinstance(value, Fraction | int) else repr(number)
            self.dag.labels[node] = label.removesuffix(".0") if label.endswith(".0") else label
        return node

    def symbol(self, name: str) -> int:
        """A named constant (``pi``, ``e``; the rules' only symbols), as the program's own
        ``pi`` is: a constant node labelled with the name."""
        value = CONSTANTS[name]
        key = (value, 1.0)
        node = self.constants.get(key)
        if node is None:
            node = self.constants[key] = self.dag.add(CONST, (), self.span, value=value)
            self.dag.labels[node] = name
        return node

    def constant_value(self, node: int) -> float | None:
        return self.dag.values[node] if self.dag.ops[node] is CONST else None

    def _is(self, node: int, value: float) -> bool:
        return self.dag.ops[node] is CONST and self.dag.values[node] == value

    def _node(self, op: Op, args: tuple[int, ...]) -> int:
        constants = [self.constant_value(a) for a in args]
        if all(c is not None for c in constants):
            try:
                value = op.forward(*constants)
            except (ValueError, ZeroDivisionError, OverflowError):
                value = math.nan
            if math.isfinite(value):
                return self.number(value)
        key = (op, args)
        node = self.shared.get(key)
        if node is None:
            node = self.shared[key] = self.dag.add(op, args, self.span)
        return node

    def add(self, *exprs: int) -> int:
        total = self.zero
        for expr in exprs:
            if self._is(expr, 0):
                continue
            total = expr if self._is(total, 0) else self._node(self._add, (total, expr))
        return total

    def sub(self, a: int, b: int) -> int:
        if self._is(b, 0):
            return a
        if self._is(a, 0):
            return self.neg(b)
        return self._node(self._sub, (a, b))

    def neg(self, a: int) -> int:
        if self.dag.ops[a] is self._neg:
            return self.dag.args[a][0]
        return self._node(self._neg, (a,))

    def mul(self, a: int, b: int) -> int:
        if self._is(a, 1):
            return b
        if self._is(b, 1):
            return a
        return self._node(self._mul, (a, b))

    def div(self, a: int, b: int) -> int:
        return a if self._is(b, 1) else self._node(self._div, (a, b))

    def pow(self, base: int, exponent: int) -> int:
        return base if self._is(exponent, 1) else self._node(self._pow, (base, exponent))

    def power(self, base: int, n: int | Fraction) -> int:
        return self.pow(base, self.number(n))

    def call(self, name: str, *args: int) -> int:
        return self._node(op_named(name), tuple(args))

    def identity(self, a: int) -> int:
        return a
