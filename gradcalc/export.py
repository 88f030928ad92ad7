"""The computation graph for other tools: Graphviz DOT and Mermaid flowcharts, left to right,
with each node's value and gradient in its label and constants as small nodes of their own."""

from __future__ import annotations

from gradcalc.dag import Dag
from gradcalc.engine import cone
from gradcalc.fmt import PARTIAL, short
from gradcalc.ops import CONST, INPUT

__all__ = ["to_dot", "to_mermaid"]


def _parts(dag: Dag, output: int, values: list[float], grads: list[float]
           ) -> tuple[list[tuple[int, str, str]], list[tuple[int, int]]]:
    """Nodes as (id, kind, label lines joined by newlines) and edges (operand, consumer)."""
    needed = cone(dag, [output])
    nodes: list[tuple[int, str, str]] = []
    edges: list[tuple[int, int]] = []
    for node in range(output + 1):
        if not needed[node]:
            continue
        op, name = dag.ops[node], dag.names[node]
        grad = short(grads[node]) if node < len(grads) else "0"
        if op is CONST:
            nodes.append((node, "const", dag.labels.get(node) or short(values[node])))
            continue
        kind = "input" if op is INPUT else ("named" if name is not None else "op")
        if op is INPUT:
            label = f"{name} = {short(values[node])}\n{PARTIAL} = {grad}"
        else:
            title = f"{name} ({op.label})" if name else f"({op.label})"
            label = f"{title}\n= {short(values[node])}\n{PARTIAL} = {grad}"
        nodes.append((node, kind, label))
        edges.extend((operand, node) for operand in dict.fromkeys(dag.args[node]))
    return nodes, edges


def to_dot(dag: Dag, output: int, values: list[float], grads: list[float]) -> str:
    """A Graphviz ``digraph`` (``dot -Tsvg``): inputs as boxes, operations as ellipses,
    constants as small plain labels."""
    nodes, edges = _parts(dag, output, values, grads)
    shapes = {"input": "box", "named": "ellipse", "op": "ellipse", "const": "plaintext"}
    lines = ["digraph gradcalc {", "  rankdir=LR;", '  node [fontname="Helvetica"];']
    for node, kind, label in nodes:
        extra = ", fontsize=10" if kind == "const" else (", style=bold" if node == output else "")
        lines.append(f'  n{node} [label="{_dot_escape(label)}", shape={shapes[kind]}{extra}];')
    lines.extend(f"  n{a} -> n{b};" for a, b in edges)
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_mermaid(dag: Dag, output: int, values: list[float], grads: list[float]) -> str:
    """A Mermaid ``flowchart LR`` for Markdown documents."""
    nodes, edges = _parts(dag, output, values, grads)
    lines = ["flowchart LR"]
    for node, kind, label in nodes:
        text = _mermaid_escape(label)
        if kind == "input":
            lines.append(f'  n{node}["{text}"]')
        elif kind == "const":
            lines.append(f'  n{node}>"{text}"]')
        else:
            lines.append(f'  n{node}(["{text}"])')
    lines.extend(f"  n{a} --> n{b}" for a, b in edges)
    return "\n".join(lines) + "\n"


def _dot_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _mermaid_escape(text: str) -> str:
    return (text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;")
            .replace(">", "#gt;").replace("\n", "<br/>"))
