"""A plan compiled to straight-line Python, for a graph evaluated many times (batch shapes).

:func:`compile_plan` writes one Python function per plan: the forward values of the nodes the
plan needs, in id order, then the backward pass's steps in exactly the order
:func:`gradcalc.engine.run` takes them (worked out once here, by running the same counting on
the plan), so every sum of contributions is added in the same order and the results are the
engine's, bit for bit. Where the engine would raise (a domain error, an overflow) or
:func:`gradcalc.engine.diagnose` would warn (a kink, a gradient that is not finite), the
function returns None instead, and the caller takes the full path.

No text from a program reaches the generated code. Its source is made only of integers (node
numbers, formatted from ``int``), fixed identifiers (``v12``, ``g12``, ``F3``, ``P3``,
``K3``) and fixed keywords; the registry's functions come in through the namespace the code
runs in, and the numbers come in at run time as data (the list ``V``). Names and numbers of the
program never become source text, so nothing a user writes is ever run as code
(``tests/test_codegen.py`` checks this with hostile names and numbers).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gradcalc.engine import Plan

__all__ = ["CompiledPlan", "compile_plan"]

#: The result of a compiled plan, one flat tuple: the output's value, the targets' gradients,
#: the targets' values (both in the plan's target order), then the values of the ``leaves``
#: asked for; each with ``+ 0.0`` (no negative zero). None where the full path must answer.
Outcome = tuple[float, ...] | None


@dataclass(frozen=True, slots=True)
class CompiledPlan:
    """A plan as a Python function of the leaf values: ``run(values) -> Outcome``."""

    plan: Plan
    run: Callable[[Sequence[float | None]], Outcome]
    source: str


def compile_plan(plan: Plan, leaves: Sequence[int] = ()) -> CompiledPlan:
    """The straight-line function of ``plan`` (see the module's docstring); ``leaves`` are
    leaf nodes (inputs) whose values the outcome ends with."""
    dag = plan.dag
    namespace: dict[str, Any] = {"isfinite": math.isfinite}
    lines = ["def run(V):", "    try:"]
    op_nodes: list[int] = []
    for node in range(len(dag)):
        if not plan.needed[node]:
            continue
        operands = dag.args[node]
        if not operands:
            lines.append(f"        v{int(node)} = V[{int(node)}]")
            continue
        namespace[f"F{int(node)}"] = dag.ops[node].forward
        call = ", ".join(f"v{int(a)}" for a in operands)
        lines.append(f"        v{int(node)} = F{int(node)}({call})")
        op_nodes.append(node)
    lines += ["    except (ValueError, ZeroDivisionError, OverflowError):",
              "        return None"]
    if op_nodes:  # one test: a sum of finite numbers is finite, or it overflowed (rare: the
        # full path then answers), and an infinity or a NaN anywhere makes it not finite.
        # sum() of a tuple, not a chain of +: the compiler recurses into nested operators
        lines += [f"    if not isfinite(sum(({_listed('v', op_nodes)}))):", "        return None"]
    lines += _kinks(plan, namespace)
    lines += _backward(plan, namespace)
    targets = list(plan.targets.values())
    if targets:
        lines += [f"    if not isfinite(sum(({_listed('g', targets)}))):", "        return None"]
    outcome = [f"v{int(plan.output)} + 0.0", *(f"g{int(t)} + 0.0" for t in targets),
               *(f"v{int(t)} + 0.0" for t in targets), *(f"V[{int(n)}] + 0.0" for n in leaves)]
    lines.append(f"    return ({', '.join(outcome)},)")
    source = "\n".join(lines) + "\n"
    exec(compile(source, "<gradcalc compiled plan>", "exec"), namespace)
    return CompiledPlan(plan, namespace["run"], source)


def _listed(prefix: str, nodes: Sequence[int]) -> str:
    """``v1, v5, `` (a tuple's elements) for ``prefix`` v and nodes 1, 5."""
    return "".join(f"{prefix}{int(n)}, " for n in nodes)


def _kinks(plan: Plan, namespace: dict[str, Any]) -> list[str]:
    """A kink among the visited nodes is a warning: the full path answers."""
    dag, lines = plan.dag, []
    for node in plan.visited:
        kink = dag.ops[node].kink
        if kink is None:
            continue
        namespace[f"K{int(node)}"] = kink
        call = ", ".join(f"v{int(a)}" for a in dag.args[node])
        lines += [f"    if K{int(node)}({call}):", "        return None"]
    return lines


def _backward(plan: Plan, namespace: dict[str, Any]) -> list[str]:
    """The backward pass's steps in the engine's order (engine._fast_pass and _deliver)."""
    dag, active, output = plan.dag, plan.active, plan.output
    gradients = {t for t in plan.targets.values()}
    lines = [f"    g{int(n)} = 0.0" for n in sorted(gradients | {
        n for n in range(len(dag)) if active[n]}) if n != output]
    lines.append(f"    g{int(output)} = 1.0")
    if not plan.reached:
        return lines
    pending = list(plan.counts)
    ready = [output]
    while ready:
        node = ready.pop()
        operands = dag.args[node]
        counted = [k for k, operand in enumerate(operands) if active[operand]]
        if not counted:
            continue
        namespace[f"P{int(node)}"] = dag.ops[node].partials
        call = ", ".join(f"v{int(a)}" for a in (*operands, node))
        lines.append(f"    d = P{int(node)}({call})")
        for k in counted:
            operand = operands[k]
            lines.append(f"    g{int(operand)} += g{int(node)} * d[{int(k)}]")
            pending[operand] -= 1
            if not pending[operand]:
                ready.append(operand)
    return lines
