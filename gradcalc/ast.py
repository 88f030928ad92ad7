"""The abstract syntax tree: what the parser produces, with a source span on every node.

One generic application node (:class:`Apply`) serves every operator and function, so new ops
never touch this module. Nodes are slotted dataclasses without generated ``__eq__``/``__repr__``:
generated ones recurse, and a 100,000-term expression is a normal input. Everything that walks
an expression here uses an explicit stack.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from gradcalc.errors import Source, Span

__all__ = ["Apply", "Assign", "Expr", "Name", "Num", "Output", "Program", "Statement", "walk"]


@dataclass(slots=True, eq=False, repr=False)
class Num:
    """A number literal; ``text`` is how it was written."""

    value: float
    text: str
    span: Span


@dataclass(slots=True, eq=False, repr=False)
class Name:
    """A reference to a variable or a constant such as ``pi``."""

    id: str
    span: Span


@dataclass(slots=True, eq=False, repr=False)
class Apply:
    """An operator or function application. ``op`` is the registry name for operators and the
    name as written for function calls (``call`` is true; the builder checks the name);
    ``op_span`` locates the operator symbol or the function name."""

    op: str
    args: list[Expr]
    span: Span
    op_span: Span
    call: bool = False


Expr = Num | Name | Apply


@dataclass(slots=True, eq=False, repr=False)
class Assign:
    """``name = expr``."""

    name: str
    name_span: Span
    expr: Expr
    span: Span


@dataclass(slots=True, eq=False, repr=False)
class Output:
    """A bare expression as the last statement: it is the program's output."""

    expr: Expr
    span: Span


Statement = Assign | Output


@dataclass(slots=True, eq=False, repr=False)
class Program:
    """A parsed program: its statements in source order and the source they came from."""

    statements: list[Statement]
    source: Source = field(default_factory=lambda: Source(""))


def walk(expr: Expr) -> Iterator[Expr]:
    """Every node of ``expr``, parents before children, without recursion."""
    stack: list[Expr] = [expr]
    pop, push = stack.pop, stack.extend
    while stack:
        node = pop()
        yield node
        if type(node) is Apply:
            push(reversed(node.args))
