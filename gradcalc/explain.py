"""The backward pass as a story: what the counting pass counted, then every step in the order
the engine took it, and at the end what the counting pass saved over path-by-path work.

:func:`explain` reads the steps the engine recorded in its :class:`~gradcalc.engine.Pass`, so
the story is the computation, not a re-enactment of it. The result is plain data
(:meth:`Explanation.to_json`), which :func:`explanation_text` turns into text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gradcalc.api import Result
from gradcalc.dag import Dag
from gradcalc.engine import Pass, path_counts, run
from gradcalc.fmt import Glyphs, format_count, json_count, json_number, short
from gradcalc.ops import CONST, INPUT

__all__ = ["Explanation", "explain", "explain_pass", "explanation_text"]

# Paths are listed one by one (with their products) only up to this many in all.
_MAX_LISTED_PATHS = 16
_MAX_LISTED_LENGTH = 40  # ... and only when no path has more nodes than this


@dataclass(slots=True)
class Received:
    source: str
    value: float


@dataclass(slots=True)
class Sent:
    target: str
    local: float
    contribution: float


@dataclass(slots=True)
class StepStory:
    node: str
    gradient: float
    waited_for: int
    received: list[Received] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    is_input: bool = False


@dataclass(slots=True)
class Explanation:
    """The counting pass (``counts``: node, consumer edges it waits for, the consumers), the
    backward steps in processing order, and per requested name the exact number of paths from
    the output against the edges the counting pass visited (each once)."""

    output: str
    counts: list[tuple[str, int, list[str]]]
    steps: list[StepStory]
    paths: dict[str, int]
    edges_visited: int
    path_products: dict[str, list[tuple[list[str], list[float]]]]

    def to_json(self) -> dict[str, Any]:
        """The explanation as JSON-ready data (documented in the README)."""
        return {
            "output": self.output,
            "counts": [{"node": n, "waits_for": c, "consumers": cs} for n, c, cs in self.counts],
            "steps": [
                {
                    "node": s.node,
                    "gradient": json_number(s.gradient),
                    "waited_for": s.waited_for,
                    "received": [{"from": r.source, "value": json_number(r.value)}
                                 for r in s.received],
                    "sends": [{"to": t.target, "local_derivative": json_number(t.local),
                               "contribution": json_number(t.contribution)} for t in s.sent],
                }
                for s in self.steps
            ],
            "paths": {n: json_count(p) for n, p in self.paths.items()},
            "edges_visited": self.edges_visited,
            "path_products": {
                name: [{"path": path, "factors": [json_number(f) for f in factors]}
                       for path, factors in listed]
                for name, listed in self.path_products.items()
            },
        }


def explain(result: Result) -> Explanation:
    """The story of ``result``'s backward pass, read from the steps the engine recorded
    (``gradients(..., record=True)``); a pass that was not recorded is run again, recording."""
    done = result.backward_pass
    if done is None:
        raise ValueError("the result has no backward pass (values were missing): nothing "
                         "to explain")
    if done.steps is None:
        done = run(done.plan, done.values, record=True)
    return explain_pass(done)


def explain_pass(done: Pass) -> Explanation:
    """The explanation of a recorded :class:`~gradcalc.engine.Pass`: d(output)/d(target) for
    each target of its plan."""
    assert done.steps is not None, "explain_pass needs a recorded pass (record=True)"
    question, steps = done.plan, done.steps
    dag, output, targets, counts = question.dag, question.output, question.targets, question.counts
    names = _names(dag, output)

    consumers: dict[int, list[str]] = {}
    for step in steps:
        for operand in step.operands:
            consumers.setdefault(operand, []).append(names[step.node])
    count_rows = [(names[n], counts[n], consumers.get(n, []))
                  for n in sorted(consumers, reverse=True)]

    stories: dict[int, StepStory] = {}
    ordered: list[StepStory] = []
    for step in steps:
        story = stories.get(step.node) or StepStory(names[step.node], step.gradient, 0)
        story.gradient = step.gradient
        story.waited_for = counts[step.node]
        story.is_input = dag.ops[step.node] is INPUT
        ordered.append(story)
        for operand, local in zip(step.operands, step.partials, strict=True):
            contribution = local * step.gradient
            story.sent.append(Sent(names[operand], local, contribution))
            receiver = stories.setdefault(operand, StepStory(names[operand], 0.0, 0))
            receiver.received.append(Received(story.node, contribution))

    paths = path_counts(question)
    requested = {n: paths[i] for n, i in targets.items()}
    products: dict[str, list[tuple[list[str], list[float]]]] = {}
    if sum(requested.values()) <= _MAX_LISTED_PATHS:
        # Each step's counted edges with their local derivatives; an operand used twice
        # (A - A, B/B) is two edges with two derivatives, kept apart.
        edges = {s.node: list(zip(s.operands, s.partials, strict=True)) for s in steps}
        for name, node in targets.items():
            if node <= output and paths[node]:
                products[name] = _enumerate_paths(output, node, edges, names)
    return Explanation(names[output], count_rows, ordered, requested, question.visited_edges,
                       products)


def _names(dag: Dag, output: int) -> dict[int, str]:
    """Names for the story: a node's name, or its source text in parentheses."""
    names = {}
    for node in range(output + 1):
        if dag.ops[node] is CONST:
            continue
        name = dag.names[node]
        names[node] = name if name is not None else _parenthesized(dag.describe(node))
    return names


def _parenthesized(text: str) -> str:
    """``text`` in one pair of parentheses: ``(A*2)``, ``(cos(X0))``; a text that is already
    one parenthesized whole (``(A*2)``, ``(*)``) is kept as it is."""
    depth = 0
    for index, char in enumerate(text):
        depth += (char == "(") - (char == ")")
        if depth == 0 and index < len(text) - 1:
            return f"({text})"  # the first '(' closes before the end: not one whole
    return text if text.startswith("(") and depth == 0 else f"({text})"


def _enumerate_paths(output: int, target: int, edges: dict[int, list[tuple[int, float]]],
                     names: dict[int, str]) -> list[tuple[list[str], list[float]]]:
    found: list[tuple[list[str], list[float]]] = []
    stack: list[tuple[int, list[int], list[float]]] = [(output, [output], [])]
    while stack and len(found) <= _MAX_LISTED_PATHS:
        node, path, factors = stack.pop()
        if len(path) > _MAX_LISTED_LENGTH:
            return []  # a path this long is no reading matter: list none
        if node == target:
            found.append(([names[n] for n in path], factors))
            continue
        for operand, local in reversed(edges.get(node, [])):
            stack.append((operand, [*path, operand], [*factors, local]))
    return found


def explanation_text(story: Explanation, unicode: bool = True) -> str:
    """The explanation as plain text, one block per backward step."""
    g = Glyphs(unicode)
    d, arrow, times = g.partial, g.leads_to, g.times
    out = story.output
    lines = [f"Counting pass: the consumer edges each node waits for on the way to {out}"]
    width = max((len(n) for n, _, _ in story.counts), default=1)
    for name, count, consumers in story.counts:
        lines.append(f"  {name:<{width}}  waits for {count}: {', '.join(consumers)}")
    if not story.counts:
        lines.append(f"  (nothing: {out} depends on none of the names asked for, so no "
                     "gradient flows and every one is 0)")
    lines.append("")
    lines.append(f"Backward pass, in processing order ({d}{out}/{d}{out} = 1 to start)")
    for index, step in enumerate(story.steps, 1):
        head = f"{index:>3}. {step.node}"
        if step.received:
            parts = ", ".join(f"from {r.source}: {short(r.value)}" for r in step.received)
            total = (f"sum {d}{out}/{d}{step.node} = {short(step.gradient)}"
                     if len(step.received) > 1 else f"{d}{out}/{d}{step.node} = "
                     f"{short(step.gradient)}")
            lines.append(f"{head}  received {parts}; {total}; count {step.waited_for} {arrow} 0")
        else:
            lines.append(f"{head}  the output: {d}{out}/{d}{out} = 1")
        for sent in step.sent:
            lines.append(f"       hands {short(step.gradient)} {times} {short(sent.local)} = "
                         f"{short(sent.contribution)} {arrow} {sent.target}")
        if step.is_input:
            lines[-1] += "  (an input: done)" if not step.sent else ""
    lines.append("")
    lines.append("What the counting pass saved")
    for name, count in story.paths.items():
        plural = "path" if count == 1 else "paths"
        lines.append(f"  {name}: {format_count(count)} {plural} from {out}; every edge visited "
                     f"once ({story.edges_visited} edges in all)")
        for path, factors in story.path_products.get(name, []):
            shown = f" {times} ".join(short(f) for f in factors) or "1"
            lines.append(f"    {f' {arrow} '.join(path)}: {shown} = {short(_product(factors))}")
        if story.path_products.get(name):
            over_paths = sum(_product(f) for _, f in story.path_products[name])
            lines.append(f"    sum over paths = {short(over_paths)}")
    return "\n".join(lines) + "\n"


def _product(factors: list[float]) -> float:
    result = 1.0
    for factor in factors:
        result *= factor
    return result
