"""Forward evaluation and reverse-mode differentiation over a :class:`~gradcalc.dag.Dag`.

One entry point for the backward pass, in two steps, like a compiled plan and its interpreter:

1. :func:`plan` works out everything that depends on the graph and the question (which output,
   which gradients), not on values: the cone of the output, the *active* nodes (those that lead
   to a requested gradient), and the counting pass, which counts for every node its consumer
   *edges* on the way to the output (``B*B`` counts 2). Constants and dead branches are never
   counted, so never visited.
2. :func:`run` seeds the output with 1 and releases a node to its operands only when its count
   reaches zero, i.e. after every consumer has delivered its contribution. Contributions arriving
   over several paths are summed; each edge's local derivative is evaluated once. The result is
   a :class:`Pass`: every node's gradient and, when asked, each step as it was taken.
   :func:`run_over` runs the same plan over any algebra (formulas, graph nodes).

:func:`forward` evaluates the nodes a plan needs, and :func:`diagnose` turns what a pass met into
warnings: kinks, and for an infinite or NaN gradient the step where it arose
(:func:`nonfinite_origins`), not merely where it travelled.

Nothing here recurses, and nothing knows about any particular operation: the chain rule is
written once, the rules come from :mod:`gradcalc.ops`.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import operator
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import compress, islice
from typing import Any, TypeVar

from gradcalc.dag import Dag
from gradcalc.errors import Diagnostic, EvaluationError
from gradcalc.fmt import format_number
from gradcalc.ops import extended_value

T = TypeVar("T")

__all__ = [
    "KnownPass",
    "Pass",
    "Plan",
    "Step",
    "cone",
    "diagnose",
    "forward",
    "kinks",
    "known_gradients",
    "nonfinite_origins",
    "path_counts",
    "plan",
    "run",
    "run_over",
]


def cone(dag: Dag, roots: Iterable[int]) -> bytearray:
    """Marks (1) on every node that some root depends on, the roots included."""
    marked = bytearray(len(dag))
    roots = list(roots)
    if not roots:
        return marked
    for root in roots:
        marked[root] = 1
    starts, ids = dag.operand_starts, dag.operand_ids
    for node in range(max(roots), -1, -1):
        if marked[node]:
            start, end = starts[node], starts[node + 1]
            if end - start == 2:  # (most nodes: a slice of the array costs more)
                marked[ids[start]] = marked[ids[start + 1]] = 1
            elif end - start == 1:
                marked[ids[start]] = 1
            else:
                for operand in ids[start:end]:
                    marked[operand] = 1
    return marked


@dataclass(frozen=True, slots=True, eq=False)
class Plan:
    """A backward pass worked out before any value is known: the question (``output`` and the
    ``targets``, name to node) and what follows from it on the graph.

    ``within``: the nodes the output depends on; ``needed``: the nodes whose values the results
    need (``within`` and the targets outside it, whose gradient is 0 but whose value is
    reported); ``active``: the nodes of ``within`` that lead to a target; ``counts``: for every
    node up to the output, its consumer edges from active nodes on the way to the output, what
    the pass waits on. Plans are immutable and can be run any number of times."""

    dag: Dag
    output: int
    targets: dict[str, int]
    within: bytearray
    needed: bytearray
    active: bytearray
    counts: tuple[int, ...]

    @property
    def reached(self) -> bool:
        """Whether the output leads to any target (else the pass does nothing)."""
        return bool(self.active[self.output])

    @property
    def visited(self) -> array[int]:
        """The nodes the backward pass processes, in id order: those reached by a counted
        edge, and the output itself (an array: 4 bytes a node)."""
        if not self.reached:
            return array("i")
        # the output has no counted consumer (the counting starts at it), so it comes last
        found = array("i", compress(range(self.output), self.counts))
        found.append(self.output)
        return found

    @property
    def visited_edges(self) -> int:
        return sum(self.counts)


def plan(dag: Dag, output: int, targets: Mapping[str, int],
         within: bytearray | None = None) -> Plan:
    """The :class:`Plan` for the gradients of ``output`` with respect to ``targets`` (name to
    node). ``within`` may pass the output's :func:`cone` when the caller already has it."""
    if within is None:
        within = cone(dag, [output])
    targets = dict(targets)
    outside = [t for t in targets.values() if not within[t]]
    needed = cone(dag, [output, *outside]) if outside else within
    active = _active_nodes(dag, targets.values(), within)
    counts = tuple(_counting_pass(dag, output, active))
    return Plan(dag, output, targets, within, needed, active, counts)


def forward(dag: Dag, values: list[float | None], needed: bytearray,
            extended_from: int | None = None) -> list[float]:
    """Evaluate every op node marked in ``needed``, in topological order, in float64.

    ``values`` holds the leaves (constants and inputs; every needed input must have a value);
    it is filled in place and returned. Raises :class:`EvaluationError` at the node where a
    domain error (``log(-1)``, division by zero) or an overflow to infinity happens. Nodes from
    ``extended_from`` on (a derivative's graph appended to a program's) are evaluated with
    :func:`~gradcalc.ops.extended_value` instead: infinities and NaNs, never an error.
    """
    ops, starts, ids = dag.ops, dag.operand_starts, dag.operand_ids
    vals: list = values
    # the op nodes to evaluate, as an array (8 bytes a node, not a list of int objects)
    has_operands = map(operator.ne, starts, islice(starts, 1, None))
    todo = array("q", compress(range(len(ops)), map(operator.and_, needed, has_operands)))
    if extended_from is not None:
        split = bisect.bisect_left(todo, extended_from)
        todo, extended = todo[:split], todo[split:]
        _forward_known(dag, vals, todo)
        for node in extended:
            vals[node] = extended_value(
                ops[node], *[vals[j] for j in ids[starts[node] : starts[node + 1]]])
        return vals
    _forward_known(dag, vals, todo)
    return vals


def _forward_known(dag: Dag, vals: list, todo: Sequence[int]) -> None:
    """Evaluate the op nodes ``todo`` (ascending ids) into ``vals``; see :func:`forward`."""
    ops, starts, ids = dag.ops, dag.operand_starts, dag.operand_ids
    node = -1
    try:
        for node in todo:
            start = starts[node]
            arity = starts[node + 1] - start
            if arity == 2:
                vals[node] = ops[node].forward(vals[ids[start]], vals[ids[start + 1]])
            elif arity == 1:
                vals[node] = ops[node].forward(vals[ids[start]])
            else:
                vals[node] = ops[node].forward(
                    *[vals[j] for j in ids[start : start + arity]])
    except (ValueError, ZeroDivisionError) as exc:
        raise _domain_error(dag, vals, node) from exc
    except OverflowError as exc:
        raise _overflow_error(dag, vals, node) from exc
    # Inputs are finite, so the first non-finite value in topological order is where an
    # overflow happened. One pass in C over the list instead of a check per node.
    if not all(map(math.isfinite, map(vals.__getitem__, todo))):
        node = next(i for i in todo if not math.isfinite(vals[i]))
        raise _overflow_error(dag, vals, node)


def _active_nodes(dag: Dag, targets: Iterable[int], within: bytearray) -> bytearray:
    """Marks the nodes in ``within`` that depend on one of ``targets`` (the ones a requested
    gradient flows through); everything else is left out of the counting and backward passes."""
    active = bytearray(len(dag))
    targets = [t for t in targets if within[t]]
    if not targets:
        return active
    for t in targets:
        active[t] = 1
    starts, ids = dag.operand_starts, dag.operand_ids
    for node in range(min(targets), len(dag)):
        if within[node] and not active[node]:
            start, end = starts[node], starts[node + 1]
            if end - start == 2:  # (most nodes: a slice of the array costs more)
                if active[ids[start]] or active[ids[start + 1]]:
                    active[node] = 1
                continue
            if end - start == 1:
                active[node] = active[ids[start]]
                continue
            for operand in ids[start:end]:
                if active[operand]:
                    active[node] = 1
                    break
    return active


def _counting_pass(dag: Dag, output: int, active: bytearray) -> list[int]:
    """For every node, the number of edges from active consumers on the way to ``output``.

    The counts are what the backward pass waits on: a node is ready when all of its counted
    consumers have delivered. Nodes with count 0 (other than the output) are never visited.
    """
    pending = [0] * (output + 1)
    if not active[output]:
        return pending
    starts, ids = dag.operand_starts, dag.operand_ids
    for node in range(output, -1, -1):
        if pending[node] or node == output:
            start, end = starts[node], starts[node + 1]
            if end - start == 2:  # (most nodes: a slice of the array costs more)
                x, y = ids[start], ids[start + 1]
                if active[x]:
                    pending[x] += 1
                if active[y]:
                    pending[y] += 1
                continue
            if end - start == 1:
                x = ids[start]
                if active[x]:
                    pending[x] += 1
                continue
            for operand in ids[start:end]:
                if active[operand]:
                    pending[operand] += 1
    return pending


@dataclass(frozen=True, slots=True)
class Step:
    """One node's backward step as the engine took it: the node, its total gradient, and for
    each counted operand (in operand order) the local derivative there. What the step handed
    to ``operands[k]`` is ``gradient * partials[k]``."""

    node: int
    gradient: float
    operands: tuple[int, ...]
    partials: tuple[float, ...]


@dataclass(slots=True, eq=False)
class Pass:
    """One run of a :class:`Plan` on numbers: the node ``values`` it ran at, every node's
    ``gradients`` (0.0 for the nodes the pass did not reach) and, when recorded, its ``steps``
    in processing order."""

    plan: Plan
    values: list[float]
    gradients: list[float]
    steps: list[Step] | None = None

    def target_gradients(self) -> dict[str, float]:
        """The gradient of the output with respect to each target, by name (never ``-0.0``)."""
        grads = self.gradients
        return {name: grads[node] + 0.0 for name, node in self.plan.targets.items()}


def run(plan: Plan, values: list[float], record: bool = False,
        on_step: Callable[[Step], None] | None = None) -> Pass:
    """Run ``plan`` on the node ``values`` (from :func:`forward`): d(output)/d(output) = 1
    propagated back to every active node, each node handing its gradient on exactly once,
    when its count reaches zero. ``record`` keeps every :class:`Step` in the :class:`Pass`;
    ``on_step`` is called with each step as it is taken.

    Two interpreters of the same plan: without steps to report, a loop specialised by arity
    (measured 1.5-2.6x faster than the generic one: ``tests/benchmarks/bench_engine.py``); with
    them, the plain loop that also makes each :class:`Step`."""
    grads = [0.0] * len(plan.dag)
    grads[plan.output] = 1.0  # d(output)/d(output), whether or not anything is requested
    steps: list[Step] | None = [] if record else None
    if steps is not None:
        on_step = _both(steps.append, on_step) if on_step is not None else steps.append
    if plan.reached:
        if on_step is None:
            _fast_pass(plan, values, grads)
        else:
            _stepping_pass(plan, values, grads, on_step)
    return Pass(plan, values, grads, steps)


def _fast_pass(plan: Plan, vals: list[float], grads: list[float]) -> None:
    ops, active = plan.dag.ops, plan.active
    starts, ids = plan.dag.operand_starts, plan.dag.operand_ids
    pending = list(plan.counts)
    ready = [plan.output]
    pop, push = ready.pop, ready.append
    while ready:
        node = pop()
        start = starts[node]
        arity = starts[node + 1] - start
        g = grads[node]
        if arity == 2:
            x = ids[start]
            y = ids[start + 1]
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
        elif arity == 1:
            x = ids[start]
            if active[x]:
                grads[x] += g * ops[node].partials(vals[x], vals[node])[0]
                pending[x] -= 1
                if not pending[x]:
                    push(x)
        elif arity:
            _deliver(plan, vals, grads, pending, node, push)


def _deliver(plan: Plan, vals: list[float], grads: list[float], pending: list[int], node: int,
             push: Callable[[int], None]) -> tuple[float, ...]:
    """``node`` hands its gradient to its active operands; returns its local derivatives."""
    starts, active, g = plan.dag.operand_starts, plan.active, grads[node]
    operands = plan.dag.operand_ids[starts[node] : starts[node + 1]]
    parts: tuple[float, ...] = plan.dag.ops[node].partials(
        *[vals[j] for j in operands], vals[node])
    for operand, partial in zip(operands, parts, strict=True):
        if active[operand]:
            grads[operand] += g * partial
            pending[operand] -= 1
            if not pending[operand]:
                push(operand)
    return parts


def _stepping_pass(plan: Plan, vals: list[float], grads: list[float],
                   on_step: Callable[[Step], None]) -> None:
    starts, ids, active = plan.dag.operand_starts, plan.dag.operand_ids, plan.active
    pending = list(plan.counts)
    ready = [plan.output]
    while ready:
        node = ready.pop()
        operands = ids[starts[node] : starts[node + 1]]
        g = grads[node]  # final: every consumer has delivered
        parts = _deliver(plan, vals, grads, pending, node, ready.append) if operands else ()
        counted = [k for k, j in enumerate(operands) if active[j]]
        on_step(Step(node, g, tuple(operands[k] for k in counted),
                     tuple(parts[k] for k in counted)))


def _both(first: Callable[[Step], None], second: Callable[[Step], None]
          ) -> Callable[[Step], None]:
    def call(step: Step) -> None:
        first(step)
        second(step)

    return call


def run_over(
    plan: Plan,
    local: Callable[[int], Sequence[T]],
    add: Callable[..., T],
    mul: Callable[[T, T], T],
    one: T,
) -> dict[int, T]:
    """:func:`run` over any algebra: the same counting, the same order, the same single
    hand-on per node, with adjoints combined by ``add`` and ``mul`` and seeded with ``one``.
    ``local(node)`` gives the node's local derivatives, one per operand. Returns the adjoint
    of every node the pass reached. A node's contributions are kept until its count reaches
    zero and then summed at once (``add(*contributions)``): in an algebra a sum built one term
    at a time would copy all earlier terms at every step (quadratic in the node's fan-out).
    The symbolic engine runs this with expressions, the gradient graph with nodes."""
    output, active = plan.output, plan.active
    if not active[output]:
        return {}
    adjoints: dict[int, T] = {output: one}
    pending = list(plan.counts)
    arriving: dict[int, list[T]] = {}
    ready = [output]
    starts, ids = plan.dag.operand_starts, plan.dag.operand_ids
    while ready:
        node = ready.pop()
        operands = ids[starts[node] : starts[node + 1]]
        if not operands:
            continue
        gradient = adjoints[node]
        for operand, partial in zip(operands, local(node), strict=True):
            if active[operand]:
                parts = arriving.setdefault(operand, [])
                parts.append(mul(gradient, partial))
                pending[operand] -= 1
                if not pending[operand]:
                    del arriving[operand]
                    adjoints[operand] = parts[0] if len(parts) == 1 else add(*parts)
                    ready.append(operand)
    return adjoints


@dataclass(slots=True)
class KnownPass:
    """What the numeric engine can say when some inputs have no value: ``values`` of the
    nodes that need no missing input (``None`` for the others), and ``gradients`` for the
    targets whose gradient needs no missing value (see :func:`known_gradients`)."""

    values: list[float | None]
    gradients: dict[str, float]


def known_gradients(plan: Plan, values: list[float | None],
                    extended_from: int | None = None) -> KnownPass:
    """The gradients of the plan's output that do not depend on a missing input, computed by
    the numeric engine, never read off a formula (an expanded formula can cancel
    catastrophically).

    ``values`` holds the leaves, ``None`` for a missing input. A node is *unknown* when it
    depends on a missing input. A target's gradient is known when no step of the backward
    pass between the output and the target uses an unknown value: every local derivative on
    the way is either constant (add, sub, neg: :attr:`~gradcalc.ops.Op.linear`) or taken at
    a node whose operands are all known. ``OUT = T - sin(x) + B`` without B still gives
    d/dx. Raises :class:`EvaluationError` where a known part of the program is undefined; a
    known value that overflows a float counts as unknown (the formula has it exactly). Nodes
    from ``extended_from`` on are evaluated as :func:`forward` does with it."""
    size = len(plan.dag)
    vals, unknown = _forward_where_known(plan.dag, values, plan.needed, extended_from)
    known = [None if unknown[i] else vals[i] for i in range(size)]
    tainted = _tainted(plan, unknown)
    for node in range(size):
        if unknown[node]:
            vals[node] = math.nan  # partials never raise; these contributions are discarded
    done = run(plan, vals)
    gradients = {name: done.gradients[node] + 0.0
                 for name, node in plan.targets.items() if not tainted[node]}
    return KnownPass(known, gradients)


def _forward_where_known(dag: Dag, values: list[float | None], needed: bytearray,
                         extended_from: int | None) -> tuple[list, bytearray]:
    """The values of the ``needed`` nodes that need no missing input, and marks on the
    *unknown* nodes: those that need one, or whose value is beyond float range."""
    ops, starts, ids = dag.ops, dag.operand_starts, dag.operand_ids
    end = len(dag) if extended_from is None else extended_from
    unknown = bytearray(len(dag))
    vals: list = list(values)
    for node in range(len(dag)):
        if not needed[node]:
            continue
        operands = ids[starts[node] : starts[node + 1]]
        if not operands:
            unknown[node] = values[node] is None
            continue
        if any(unknown[j] for j in operands):
            unknown[node] = 1
            continue
        at = [vals[j] for j in operands]
        if node >= end:
            vals[node] = extended_value(ops[node], *at)
            continue
        try:
            vals[node] = ops[node].forward(*at)
        except (ValueError, ZeroDivisionError) as exc:
            raise _domain_error(dag, vals, node) from exc
        except OverflowError:
            vals[node] = math.inf
        if not math.isfinite(vals[node]):
            unknown[node] = 1  # beyond float range, but exact in a formula (A*2^1024)
    return vals, unknown


def _tainted(plan: Plan, unknown: bytearray) -> bytearray:
    """Marks the nodes whose adjoint uses an unknown value: a node taints its operands when
    it is tainted itself, or unknown with a local derivative that depends on its operands.
    Reverse id order is a processing order of the backward pass."""
    ops, active, counts = plan.dag.ops, plan.active, plan.counts
    starts, ids = plan.dag.operand_starts, plan.dag.operand_ids
    tainted = bytearray(len(plan.dag))
    for node in range(plan.output, -1, -1):
        if not active[node] or not (counts[node] or node == plan.output):
            continue
        if tainted[node] or (unknown[node] and not ops[node].linear):
            for operand in ids[starts[node] : starts[node + 1]]:
                tainted[operand] = 1
    return tainted


def path_counts(plan: Plan) -> list[int]:
    """For every node, the exact number of distinct paths from the output down to it through
    active nodes (parallel edges count separately). Dynamic programming: one pass, big ints."""
    output, active = plan.output, plan.active
    paths = [0] * len(plan.dag)
    if not active[output]:
        return paths
    paths[output] = 1
    starts, ids = plan.dag.operand_starts, plan.dag.operand_ids
    for node in range(output, -1, -1):
        count = paths[node]
        if count:
            for operand in ids[starts[node] : starts[node + 1]]:
                if active[operand]:
                    paths[operand] += count
    return paths


#: At most this many different non-differentiable points get a warning each; one more
#: warning counts the rest.
MAX_KINKS = 10


def kinks(dag: Dag, vals: Sequence[float], visited: Iterable[int]) -> list[Diagnostic]:
    """Warnings for visited nodes evaluated exactly at a non-differentiable point. The same
    point at the same place (the steps of ``max(V)`` over equal elements, ``relu(V)`` at
    zeros) is one warning that says how many times; past :data:`MAX_KINKS` of them, one
    warning counts the rest."""
    found: dict[tuple[str, int, int], list[Any]] = {}  # -> [diagnostic, times]
    ops, args, starts, ends = dag.ops, dag.args, dag.spans.starts, dag.spans.ends
    for node in visited:  # (only nodes of a kinking operation: few, but an array's many)
        op = ops[node]
        if op.kink is not None and op.kink(*[vals[j] for j in args[node]]):
            shown = op.show([format_number(vals[j]) for j in args[node]])
            message = f"{op.name} is not differentiable at {shown}"
            key = (message, starts[node], ends[node])
            if key in found:
                found[key][1] += 1
            else:
                found[key] = [Diagnostic("kink", message, dag.span(node), dag.source,
                                         hint=f"the convention used: {op.kink_rule}"), 1]
    out = []
    for diagnostic, times in list(found.values())[:MAX_KINKS]:
        if times > 1:
            diagnostic = dataclasses.replace(diagnostic,
                                             message=f"{diagnostic.message} ({times:,} times)")
        out.append(diagnostic)
    if len(found) > MAX_KINKS:
        rest = sum(times for _, times in list(found.values())[MAX_KINKS:])
        out.append(Diagnostic("kink", f"{rest:,} more non-differentiable points met",
                              hint="the conventions used are in the warnings above and the "
                              "README's table"))
    return out


def diagnose(done: Pass) -> list[Diagnostic]:
    """The warnings of one backward pass, in this order: every visited node evaluated exactly
    at a non-differentiable point (:func:`kinks`, in id order), then where each infinite or NaN
    gradient among the targets arose (:func:`nonfinite_origins`); targets the output does not
    depend on are ignored."""
    plan, vals, grads = done.plan, done.values, done.gradients
    dag = plan.dag
    found: list[Diagnostic] = []
    ops = dag.ops
    if any(op.kink is not None for op in set(ops)):
        found = kinks(dag, vals, [i for i in plan.visited if ops[i].kink is not None])
    wanted = [t for t in plan.targets.values() if t <= plan.output]
    if not all(map(math.isfinite, [grads[t] for t in wanted])):
        found.extend(nonfinite_origins(dag, vals, grads, plan.visited, wanted))
    return found


#: At most this many origins of infinite or NaN gradients get a warning each; one more warning
#: counts the rest.
MAX_ORIGINS = 10

# What made a contribution or a sum non-finite (the first element of an origin record).
_LOCAL = "local"  # the local derivative itself is infinite or NaN
_INF_TIMES_ZERO = "inf*0"  # an infinite incoming gradient times a local derivative of 0
_ZERO_TIMES_INF = "0*inf"  # an incoming gradient of 0 times an infinite local derivative
_PRODUCT_OVERFLOW = "overflow"  # two finite factors whose product overflows
_CANCEL = "cancel"  # where paths meet: inf + -inf
_SUM_OVERFLOW = "sum"  # where paths meet: finite contributions adding up beyond the range


def nonfinite_origins(dag: Dag, vals: Sequence[float], grads: Sequence[float],
                      visited: Iterable[int],
                      targets: Iterable[int] | None = None) -> list[Diagnostic]:
    """Where the infinite and NaN gradients of ``targets`` arose: one warning per distinct
    origin, in processing order (at most :data:`MAX_ORIGINS`, then one counting the rest).

    A NaN is traced to the step that made it out of numbers that were not NaN, an infinity to
    the step that made it out of finite numbers; a NaN or an infinity that merely travels on
    (times a finite non-zero local derivative, plus finite numbers) keeps its origin. The
    steps that create one: a local derivative that is itself infinite or NaN (``sqrt'(0)``);
    ``inf × 0``, an infinite gradient reaching an operation whose local derivative is 0
    (``sqrt(A^2)`` at 0: the inf from ``sqrt`` meets ``2*A = 0`` at ``A^2``); ``0 × inf``, a
    gradient of 0 reaching an infinite local derivative; a product that overflows; and, where
    paths meet, ``inf + -inf`` or a sum that overflows. A warning points at the operation (or,
    for a sum, at the node where the paths meet) and its hint names where an infinity it
    consumed arose.

    ``visited`` are the nodes the backward pass processed (:func:`visited_nodes`); ``targets``
    the nodes whose gradients are reported (default: every visited named node but the output;
    finite ones are skipped). The edges are replayed once, in reverse id order (a processing
    order), with the final gradients: a node hands its gradient on only once it is final, so
    each contribution is exactly the one :func:`backward` computed. No recursion."""
    ops, starts, ids = dag.ops, dag.operand_starts, dag.operand_ids
    size = len(grads)
    on = bytearray(size)
    order = sorted({i for i in visited if i < size}, reverse=True)
    for node in order:
        on[node] = 1
    trace = _Origins()
    for node in order:
        g = grads[node]
        if not math.isfinite(g):
            trace.settle(node, g)
        operands = ids[starts[node] : starts[node + 1]]
        if not operands:
            continue
        parts = ops[node].partials(*[vals[j] for j in operands], vals[node])
        for operand, p in zip(operands, parts, strict=True):
            if on[operand] and not math.isfinite(g * p):
                trace.contribution(node, operand, g, p)

    if targets is None:
        output = order[0] if order else -1
        targets = [i for i in order if dag.names[i] is not None and i != output]
    reported = sorted({trace.origin[t] for t in targets if t in trace.origin})
    shown = [_origin_diagnostic(dag, vals, trace.events, i) for i in reported[:MAX_ORIGINS]]
    if len(reported) > MAX_ORIGINS:
        more = len(reported) - MAX_ORIGINS
        shown.append(Diagnostic(
            "nonfinite", f"infinite or NaN gradients arose in {more} more "
            f"place{'s' if more > 1 else ''}", hint=f"the first {MAX_ORIGINS} are shown above"))
    return shown


class _Origins:
    """The replay of :func:`nonfinite_origins`: ``events`` records each step that created a
    non-finite number (its kind first, see the constants above), ``origin[node]`` the event
    where the node's own non-finite gradient arose."""

    def __init__(self) -> None:
        self.origin: dict[int, int] = {}
        self.events: list[tuple] = []
        self.first_nan: dict[int, int] = {}  # node -> event of the first NaN it received
        self.first_inf: tuple[dict[int, tuple[int, int]], dict[int, tuple[int, int]]] = ({}, {})

    def event(self, *record: object) -> int:
        self.events.append(record)
        return len(self.events) - 1

    def settle(self, node: int, g: float) -> None:
        """``node``'s final gradient ``g`` is not finite: where did it arise?"""
        if math.isnan(g):
            found = self.first_nan.get(node)
            if found is None:  # no NaN came in: +inf and -inf (or overflows) met here
                found = self.event(_CANCEL, node, self.first_inf[0].get(node),
                                   self.first_inf[1].get(node))
        else:
            came = self.first_inf[g < 0].get(node)
            found = came[0] if came is not None else self.event(_SUM_OVERFLOW, node, g)
        self.origin[node] = found

    def contribution(self, node: int, operand: int, g: float, p: float) -> None:
        """``node`` hands ``g * p``, which is not finite, to ``operand``."""
        if math.isnan(g * p):
            if math.isnan(g):
                found = self.origin[node]
            elif math.isnan(p):
                found = self.event(_LOCAL, node, operand, g, p)
            elif p == 0:
                found = self.event(_INF_TIMES_ZERO, node, operand, g, p, self.origin[node])
            else:
                found = self.event(_ZERO_TIMES_INF, node, operand, g, p)
            self.first_nan.setdefault(operand, found)
            return
        if math.isinf(g):
            found = self.origin[node]
        elif math.isinf(p):
            found = self.event(_LOCAL, node, operand, g, p)
        else:
            found = self.event(_PRODUCT_OVERFLOW, node, operand, g, p)
        self.first_inf[g * p < 0].setdefault(operand, (found, node))


def _site(dag: Dag, vals: Sequence[float], node: int) -> str:
    """``sqrt(0) at 1:7``: an operation with its operand values, and where it is."""
    text = dag.ops[node].show([format_number(vals[j]) for j in dag.args[node]])
    span = dag.span(node)
    return f"{text} at {span.line}:{span.column}" if span is not None else text


def _rule_used(dag: Dag, vals: Sequence[float], node: int) -> str:
    """`` (sqrt'(0) = inf)`` when the node sits on a non-differentiable point, else nothing."""
    op = dag.ops[node]
    at = [vals[j] for j in dag.args[node]]
    return f" ({op.kink_rule})" if op.kink is not None and op.kink(*at) else ""


def _origin_diagnostic(dag: Dag, vals: Sequence[float], events: list[tuple],
                       index: int) -> Diagnostic:
    """The warning for one origin record of :func:`nonfinite_origins`."""
    kind, node = events[index][0], events[index][1]
    span, fmt = dag.span(node), format_number
    if kind in (_CANCEL, _SUM_OVERFLOW):
        name = dag.describe(node)
        if kind == _SUM_OVERFLOW:
            return Diagnostic(
                "nonfinite", f"the gradient of {name} overflows to {fmt(events[index][2])} "
                "where paths meet", span, dag.source,
                hint=f"each path into {name} carries a finite gradient, but their sum exceeds "
                "about 1.8e308")
        pieces = []
        for sign, entry in (("inf", events[index][2]), ("-inf", events[index][3])):
            if entry is not None:
                cause, consumer = entry
                pieces.append(f"{sign} from {dag.describe(consumer)} (the {sign} arose "
                              f"{_cause(dag, vals, events, cause)})")
        hint = (f"{name} receives " + " and ".join(pieces) if len(pieces) == 2 else
                f"the gradients reaching {name} overflow with opposite signs")
        return Diagnostic("nonfinite", f"the gradient of {name} is nan: inf + -inf where "
                          "paths meet", span, dag.source, hint=hint)
    operand, g, p = events[index][2:5]
    shown = dag.ops[node].show([format_number(vals[j]) for j in dag.args[node]])
    wrt = dag.describe(operand)
    if kind == _LOCAL:
        incoming = f"; the incoming gradient is {fmt(g)}" if g != 1 else ""
        return Diagnostic(
            "nonfinite", f"the gradient through {shown} is {fmt(g * p)}", span, dag.source,
            hint=f"the local derivative with respect to {wrt} is {fmt(p)}"
            f"{_rule_used(dag, vals, node)}{incoming}")
    if kind == _INF_TIMES_ZERO:
        return Diagnostic(
            "nonfinite", f"the gradient through {shown} is nan: {fmt(g)} × 0", span,
            dag.source,
            hint=f"the incoming gradient {fmt(g)} arose "
            f"{_cause(dag, vals, events, events[index][5])}; the local derivative with "
            f"respect to {wrt} is 0{_rule_used(dag, vals, node)}")
    if kind == _ZERO_TIMES_INF:
        return Diagnostic(
            "nonfinite", f"the gradient through {shown} is nan: 0 × {fmt(p)}", span,
            dag.source,
            hint=f"the incoming gradient is 0 and the local derivative with respect to {wrt} "
            f"is {fmt(p)}{_rule_used(dag, vals, node)}")
    return Diagnostic(
        "nonfinite", f"the gradient through {shown} overflows to {fmt(g * p)}: "
        f"{fmt(g)} × {fmt(p)}", span, dag.source,
        hint=f"the incoming gradient times the local derivative with respect to {wrt} "
        "exceeds about 1.8e308")


def _cause(dag: Dag, vals: Sequence[float], events: list[tuple], index: int) -> str:
    """Where an origin record sits, as a phrase: ``in sqrt(0) at 1:7``, ``where paths meet at
    A (1:10)``."""
    kind, node = events[index][0], events[index][1]
    if kind in (_CANCEL, _SUM_OVERFLOW):
        span = dag.span(node)
        where = f" ({span.line}:{span.column})" if span is not None else ""
        return f"where paths meet at {dag.describe(node)}{where}"
    return f"in {_site(dag, vals, node)}"


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
    return EvaluationError(message, dag.span(node), dag.source, where, kind="domain")


def _overflow_error(dag: Dag, vals: list, node: int) -> EvaluationError:
    shown, where = _operands(dag, vals, node)
    hint = "results must stay below about 1.8e308 in magnitude"
    return EvaluationError(f"{shown} overflows a 64-bit float", dag.span(node), dag.source,
                           f"{where}; {hint}" if where else hint, kind="overflow")
