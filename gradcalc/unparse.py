"""A DAG back to gradcalc program text, which the grammar reads back to the same graph.

Named nodes become statements (``B = A*3``); unnamed nodes used once are written inline with
the fewest parentheses the grammar needs; unnamed nodes used more than once, or whose text grows
long, get a generated name, so the text grows with the graph, never with the number of paths.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from gradcalc.dag import Dag
from gradcalc.fmt import format_number
from gradcalc.names import fresh
from gradcalc.ops import CONST, IDENTITY, INPUT, Op, Precedence

__all__ = ["apply_text", "program_text"]

# Inline text longer than this becomes a statement of its own: a million-step chain must not
# become one quadratic-time, million-character expression.
_INLINE_LIMIT = 120

_ATOM = Precedence.ATOM  # names, numbers, calls: never need parentheses
_UNARY = Precedence.UNARY  # unary minus and negative numbers (the grammar's `unary` level)


def program_text(dag: Dag, output: int, output_name: str = "OUT") -> str:
    """Program text computing node ``output`` of ``dag``: inputs with known values first
    (``A = 2``), then one statement per named or shared node, the output last."""
    ops, args, names = dag.ops, dag.args, dag.names
    uses, reached = _uses(args, output)
    taken = {n for n in names[: output + 1] if n is not None}
    output_name = _output_name(names[output], output_name, taken)
    new_names = fresh(taken, "T", first="capitals")  # A, B, ..., Z, then T1, T2, ...
    label: dict[int, str] = {}  # node -> its name in the text
    text: dict[int, tuple[str, int]] = {}  # unnamed node -> (inline text, precedence)
    lines: list[str] = []
    for node in range(output + 1):
        if not reached[node]:
            continue
        op = ops[node]
        if op is CONST:
            value = dag.values[node]
            assert value is not None
            shown = dag.labels.get(node) or _literal(value)
            text[node] = (shown, _UNARY if shown.startswith("-") else _ATOM)
            continue
        name = names[node]
        if op is INPUT:
            label[node] = name or next(new_names)
            value = dag.values[node]
            if value is not None:
                lines.append(f"{label[node]} = {_literal(value)}")
            continue
        operands = [(label[a], _ATOM) if a in label else text[a] for a in args[node]]
        expr, precedence = apply_text(op, operands)
        if name is None and node != output and uses[node] == 1 and len(expr) <= _INLINE_LIMIT:
            text[node] = (expr, precedence)
            continue
        label[node] = name or (output_name if node == output else next(new_names))
        lines.append(f"{label[node]} = {expr}")
    if output in text:  # the output is a constant
        lines.append(f"{output_name} = {text[output][0]}")
    elif ops[output] is INPUT:  # the output is an input: say so with an identity
        lines.append(f"{output_name} = {label[output]}" if label[output] != output_name else "")
    return "\n".join(line for line in lines if line) + "\n"


def _uses(args: Sequence[tuple[int, ...]], output: int) -> tuple[list[int], bytearray]:
    """Per node up to ``output``: how often it is an operand of ``output`` or of a node
    ``output`` depends on (``B*B`` uses B twice), and whether it is needed at all (``output``
    itself included)."""
    uses = [0] * (output + 1)
    reached = bytearray(output + 1)
    reached[output] = 1
    for node in range(output, -1, -1):
        if reached[node]:
            for operand in args[node]:
                uses[operand] += 1
                reached[operand] = 1
    return uses, reached


def _output_name(name: str | None, default: str, taken: set[str]) -> str:
    """The output's own name, or else ``default``: OUT, or OUT2, OUT3, ... when another node
    already has that name."""
    if name is not None:
        return name
    return next(fresh(taken, default, first="stem"))


def _literal(x: float) -> str:
    """The number as program text that reads back as the same float, negative zero included
    (the display format prints it as 0)."""
    return "-0" if x == 0 and math.copysign(1.0, x) < 0 else format_number(x)


def apply_text(op: Op, operands: list[tuple[str, int]], pretty: bool = False
               ) -> tuple[str, int]:
    """``op`` applied to operand texts (each with its precedence), parenthesised as the grammar
    needs; returns the text and its precedence. ``pretty`` writes it as pictures show it:
    ``×``, ``−`` and ``÷``, no spaces, and ``sin B`` for a function of a single name."""
    if op is IDENTITY:
        return operands[0]
    if op.symbol and len(operands) == 2:
        (left, lp), (right, rp) = operands
        p = op.precedence
        right_assoc = op.associativity == "right"
        # Left-associative: a - (b - c) needs parentheses on the right; power is the reverse,
        # and a negative number or -x as its base needs them too: (-2)^x.
        if lp < p or (right_assoc and lp <= p) or (right_assoc and lp == _UNARY):
            left = f"({left})"
        if rp < p or (not right_assoc and rp == p):
            right = f"({right})"
        if pretty:
            return f"{left}{op.label}{right}", p
        joiner = f" {op.symbol} " if p == Precedence.SUM else op.symbol
        return f"{left}{joiner}{right}", p
    if op.symbol and len(operands) == 1:
        (inner, ip), p = operands[0], op.precedence
        if ip < p or inner.startswith("-"):
            inner = f"({inner})"
        return f"{op.label if pretty else op.symbol}{inner}", _UNARY
    if pretty and len(operands) == 1 and operands[0][0].isidentifier():
        return f"{op.name} {operands[0][0]}", _UNARY
    return f"{op.name}({', '.join(t for t, _ in operands)})", _ATOM
