"""Forward evaluation, the counting pass and the backward pass over a :class:`~gradcalc.dag.Dag`.

Reverse-mode differentiation in three loops over the node lists:

1. :func:`forward` evaluates every node the results need, in id (topological) order.
2. :func:`counting_pass` starts at the output and counts, for every node, its consumer *edges*
   on the way to the output (``B*B`` counts 2). Only *active* nodes are counted: those that lead
   to a requested gradient. Constants and dead branches are never counted, so never visited.
3. :func:`backward` seeds the output with 1 and releases a node to its operands only when its
   count reaches zero, i.e. after every consumer has delivered its contribution. Contributions
   arriving over several paths are summed; each edge's local derivative is evaluated once.

Nothing here recurses, and nothing knows about any particular operation: the chain rule is
written once, the rules come from :mod:`gradcalc.ops`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from gradcalc.dag import Dag
from gradcalc.errors import Diagnostic, EvaluationError
from gradcalc.fmt import format_number

T = TypeVar("T")

__all__ = [
    "Step",
    "active_nodes",
    "backward",
    "backward_over",
    "cone",
    "counting_pass",
    "find_nonfinite_origin",
    "forward",
    "kinks",
    "path_counts",
]


def cone(dag: Dag, roots: Iterable[int]) -> bytearray:
    """Marks (1) on every node that some root depends on, the roots included."""
    marked = bytearray(len(dag))
    roots = list(roots)
    if not roots:
        return marked
    for root in roots:
        marked[root] = 1
    args = dag.args
    for node in range(max(roots), -1, -1):
        if marked[node]:
            for operand in args[node]:
                marked[operand] = 1
    return marked


def forward(dag: Dag, values: list[float | None], needed: bytearray) -> list[float]:
    """Evaluate every op node marked in ``needed``, in topological order, in float64.

    ``values`` holds the leaves (constants and inputs; every needed input must have a value);
    it is filled in place and returned. Raises :class:`EvaluationError` at the node where a
    domain error (``log(-1)``, division by zero) or an overflow to infinity happens.
    """
    ops, args = dag.ops, dag.args
    vals: list = values
    node = -1
    todo = [i for i in range(len(ops)) if needed[i] and args[i]]
    try:
        for node in todo:
            a = args[node]
            if len(a) == 2:
                vals[node] = ops[node].forward(vals[a[0]], vals[a[1]])
            elif len(a) == 1:
                vals[node] = ops[node].forward(vals[a[0]])
            else:
                vals[node] = ops[node].forward(*[vals[j] for j in a])
    except (ValueError, ZeroDivisionError) as exc:
        raise _domain_error(dag, vals, node) from exc
    except OverflowError as exc:
        raise _overflow_error(dag, vals, node) from exc
    # Inputs are finite, so the first non-finite value in topological order is where an
    # overflow happened. One pass in C over the list instead of a check per node.
    if not all(map(math.isfinite, [vals[i] for i in todo])):
        node = next(i for i in todo if not math.isfinite(vals[i]))
        raise _overflow_error(dag, vals, node)
    return vals


def active_nodes(dag: Dag, targets: Iterable[int], within: bytearray) -> bytearray:
    """Marks the nodes in ``within`` that depend on one of ``targets`` (the ones a requested
    gradient flows through); everything else is left out of the counting and backward passes."""
    active = bytearray(len(dag))
    targets = [t for t in targets if within[t]]
    if not targets:
        return active
    for t in targets:
        active[t] = 1
    args = dag.args
    for node in range(min(targets), len(dag)):
        if within[node] and not active[node]:
            for operand in args[node]:
                if active[operand]:
                    active[node] = 1
                    break
    return active


def counting_pass(dag: Dag, output: int, active: bytearray) -> list[int]:
    """For every node, the number of edges from active consumers on the way to ``output``.

    The counts are what :func:`backward` waits on: a node is ready when all of its counted
    consumers have delivered. Nodes with count 0 (other than the output) are never visited.
    """
    pending = [0] * (output + 1)
    if not active[output]:
        return pending
    args = dag.args
    for node in range(output, -1, -1):
        if pending[node] or node == output:
            for operand in args[node]:
                if active[operand]:
                    pending[operand] += 1
    return pending


@dataclass(frozen=True, slots=True)
class Step:
    """One node's backward step, for explanations and instrumentation: the node, its total
    gradient, and for each counted operand the local derivative and the contribution handed on."""

    node: int
    gradient: float
    operands: tuple[int, ...]
    partials: tuple[float, ...]


def backward(
    dag: Dag,
    vals: list[float],
    output: int,
    pending: list[int],
    active: bytearray,
    on_step: Callable[[Step], None] | None = None,
) -> list[float]:
    """Propagate d(output)/d(output) = 1 back to every active node; returns the gradients.

    ``pending`` comes from :func:`counting_pass` and is consumed (every count ends at 0).
    A node hands its gradient on exactly once, when its count reaches zero. ``on_step``, if
    given, is called with each node's :class:`Step` in processing order.
    """
    ops, args = dag.ops, dag.args
    grads = [0.0] * (output + 1)
    grads[output] = 1.0  # d(output)/d(output), whether or not anything is requested
    if not active[output]:
        return grads
    ready = [output]
    pop, push = ready.pop, ready.append
    while ready:
        node = pop()
        a = args[node]
        if not a:
            if on_step is not None:
                on_step(Step(node, grads[node], (), ()))
            continue
        g = grads[node]
        if len(a) == 2:
            x, y = a
            dx, dy = ops[node].partials(vals[x], vals[y], vals[node])
            if active[x]:
                grads[x] += g * dx
                pending[x] -= 1
                if not pending[x]:
                    push(x)
            if active[y]:
                grads[y] += g * dy
                pending[y] -= 1
                if not pending[y]:
                    push(y)
            parts: tuple[float, ...] = (dx, dy)
        elif len(a) == 1:
            x = a[0]
            parts = ops[node].partials(vals[x], vals[node])
            if active[x]:
                grads[x] += g * parts[0]
                pending[x] -= 1
                if not pending[x]:
                    push(x)
        else:
            parts = ops[node].partials(*[vals[j] for j in a], vals[node])
            for operand, partial in zip(a, parts, strict=True):
                if active[operand]:
                    grads[operand] += g * partial
                    pending[operand] -= 1
                    if not pending[operand]:
                        push(operand)
        if on_step is not None:
            counted = tuple(i for i, j in enumerate(a) if active[j])
            on_step(Step(node, g, tuple(a[i] for i in counted), tuple(parts[i] for i in counted)))
    return grads


def backward_over(
    dag: Dag,
    output: int,
    pending: list[int],
    active: bytearray,
    local: Callable[[int], Sequence[T]],
    add: Callable[[T, T], T],
    mul: Callable[[T, T], T],
    one: T,
) -> dict[int, T]:
    """:func:`backward` over any algebra: the same counting, the same order, the same single
    hand-on per node, with adjoints combined by ``add`` and ``mul`` and seeded with ``one``.
    ``local(node)`` gives the node's local derivatives, one per operand. The symbolic engine
    runs this with expressions; the numeric one keeps its own loop only for speed."""
    adjoints: dict[int, T] = {output: one}
    if not active[output]:
        return {}
    ready = [output]
    args = dag.args
    while ready:
        node = ready.pop()
        operands = args[node]
        if not operands:
            continue
        gradient = adjoints[node]
        for operand, partial in zip(operands, local(node), strict=True):
            if active[operand]:
                contribution = mul(gradient, partial)
                previous = adjoints.get(operand)
                adjoints[operand] = contribution if previous is None else add(previous,
                                                                             contribution)
                pending[operand] -= 1
                if not pending[operand]:
                    ready.append(operand)
    return adjoints


def path_counts(dag: Dag, output: int, active: bytearray) -> list[int]:
    """For every node, the exact number of distinct paths from ``output`` down to it through
    active nodes (parallel edges count separately). Dynamic programming: one pass, big ints."""
    paths = [0] * (output + 1)
    if not active[output]:
        return paths
    paths[output] = 1
    args = dag.args
    for node in range(output, -1, -1):
        count = paths[node]
        if count:
            for operand in args[node]:
                if active[operand]:
                    paths[operand] += count
    return paths


def kinks(dag: Dag, vals: list[float], visited: Iterable[int]) -> list[Diagnostic]:
    """Warnings for visited nodes evaluated exactly at a non-differentiable point."""
    found = []
    ops, args = dag.ops, dag.args
    for node in visited:
        op = ops[node]
        if op.kink is not None and op.kink(*[vals[j] for j in args[node]]):
            shown = op.show([format_number(vals[j]) for j in args[node]])
            found.append(Diagnostic(
                "kink", f"{op.name} is not differentiable at {shown}",
                dag.spans[node], dag.source, hint=f"the convention used: {op.kink_rule}"))
    return found


def find_nonfinite_origin(dag: Dag, vals: list[float], grads: list[float],
                          visited: Iterable[int]) -> Diagnostic | None:
    """Where the first infinite or NaN gradient came from: the first edge, in processing order,
    whose local derivative or contribution is not finite while its consumer's gradient is."""
    ops, args = dag.ops, dag.args
    for node in sorted(visited, reverse=True):
        if not args[node] or not math.isfinite(grads[node]):
            continue
        parts = ops[node].partials(*[vals[j] for j in args[node]], vals[node])
        for operand, partial in zip(args[node], parts, strict=True):
            if not math.isfinite(partial) or not math.isfinite(partial * grads[node]):
                shown = ops[node].show([format_number(vals[j]) for j in args[node]])
                return Diagnostic(
                    "nonfinite",
                    f"the gradient through {shown} is "
                    f"{format_number(partial * grads[node])}",
                    dag.spans[node], dag.source,
                    hint=f"the local derivative with respect to {dag.describe(operand)} "
                    f"is {format_number(partial)}" + (
                        f" ({ops[node].kink_rule})" if ops[node].kink_rule else ""))
    return None


def _operands(dag: Dag, vals: list, node: int) -> tuple[str, str | None]:
    """The op applied to its operand values, and ``where X = 1`` for operands that are not
    literals (so the user sees which of their values went wrong)."""
    operands = dag.args[node]
    shown = dag.ops[node].show([format_number(vals[j]) for j in operands])
    named = [f"{dag.describe(j)} = {format_number(vals[j])}"
             for j in dict.fromkeys(operands) if j not in dag.labels]
    return shown, ("where " + ", ".join(named)) if named else None


def _domain_error(dag: Dag, vals: list, node: int) -> EvaluationError:
    op = dag.ops[node]
    shown, where = _operands(dag, vals, node)
    message = f"{shown} is undefined: {op.domain or 'outside the domain of ' + op.name}"
    return EvaluationError(message, dag.spans[node], dag.source, where, kind="domain")


def _overflow_error(dag: Dag, vals: list, node: int) -> EvaluationError:
    shown, where = _operands(dag, vals, node)
    hint = "results must stay below about 1.8e308 in magnitude"
    return EvaluationError(f"{shown} overflows a 64-bit float", dag.spans[node], dag.source,
                           f"{where}; {hint}" if where else hint, kind="overflow")
