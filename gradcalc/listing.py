"""Graph views for graphs too big to draw: an indented tree and a layered table.

The tree is rooted at the output with operands indented; a node used more than once is
expanded once, tagged with its name (unnamed ones get ``t1``, ``t2``, ...), and every later use
points back to it (``↑ B``), so the listing grows with the graph, never with its paths.
"""

from __future__ import annotations

from dataclasses import dataclass

from gradcalc.dag import Dag
from gradcalc.engine import cone
from gradcalc.fmt import Glyphs, short
from gradcalc.names import fresh
from gradcalc.ops import CONST, INPUT

__all__ = ["TableRow", "layered_rows", "tree_lines"]


def _consumers(dag: Dag, output: int) -> tuple[bytearray, list[int]]:
    needed = cone(dag, [output])
    uses = [0] * (output + 1)
    for node in range(output + 1):
        if needed[node]:
            for operand in dag.args[node]:
                uses[operand] += 1
    return needed, uses


def _tags(dag: Dag, output: int, uses: list[int], needed: bytearray, every: bool = False
          ) -> dict[int, str]:
    """Names for shared nodes (for ``every`` node): their own name, or t1, t2, ... for
    unnamed operations."""
    names = fresh(set(dag.named), "t")
    tags: dict[int, str] = {}
    for node in range(output + 1):
        if not needed[node] or dag.ops[node] is CONST:
            continue
        name = dag.names[node]
        if name is not None:
            tags[node] = name
        elif uses[node] > 1 or every:
            tags[node] = next(names)
    return tags


#: The largest tree listing made, in characters. A chain indents every level one step further,
#: so its listing grows with the square of its depth (a 16,000-deep chain would be 3 GB).
TREE_LIMIT = 4_000_000


class TreeTooLarge(Exception):
    """The tree listing would be wider than asked, or longer than :data:`TREE_LIMIT`."""


def tree_lines(dag: Dag, output: int, values: list[float], grads: list[float],
               style: Glyphs | None = None, max_width: int | None = None) -> list[str]:
    """The tree listing as lines of text, gradients aligned in a column on the right (in the
    signs of ``style``: a :class:`~gradcalc.picture.Style` will do). Raises
    :class:`TreeTooLarge` as soon as a line is wider than ``max_width`` or the text passes
    :data:`TREE_LIMIT` characters."""
    style = style or Glyphs()
    rows = _tree_rows(dag, output, values, grads, style, max_width)
    # Gradients line up in one column, two spaces after the longest text that has one: a
    # cap would push the deepest lines (and their tags) out of line.
    width = max((len(text) for text, grad in rows if grad), default=0) + 2
    return [f"{text:<{width}}{grad}" if grad else text for text, grad in rows]


class _Rows(list[tuple[str, str]]):
    """The listing's rows (tree text, gradient text), counting their size as they come."""

    def __init__(self, max_width: int | None) -> None:
        super().__init__()
        self.max_width, self.size = max_width, 0

    def append(self, row: tuple[str, str]) -> None:
        width = len(row[0]) + len(row[1])
        self.size += width + 2
        if self.max_width is not None and width > self.max_width:
            raise TreeTooLarge(f"a line would be {width} characters wide")
        if self.size > TREE_LIMIT:
            raise TreeTooLarge(f"the listing would be over {TREE_LIMIT:,} characters (each "
                               "level of a deep chain is indented further)")
        super().append(row)


def _tree_rows(dag: Dag, output: int, values: list[float], grads: list[float],
               style: Glyphs, max_width: int | None) -> list[tuple[str, str]]:
    needed, uses = _consumers(dag, output)
    tags = _tags(dag, output, uses, needed)
    branch, last, pipe = ("├── ", "└── ", "│   ") if style.unicode else ("|-- ", "`-- ", "|   ")
    back, d = style.back, style.partial
    rows = _Rows(max_width)
    expanded: set[int] = set()
    # Stack items: (node, prefix for the line, prefix for children, as-op-of-named)
    stack: list[tuple[int, str, str, bool]] = [(output, "", "", False)]
    while stack:
        node, lead, child_lead, op_level = stack.pop()
        op, name = dag.ops[node], dag.names[node]
        children: list[int] = []
        grad = f"{d} {short(grads[node])}" if node < len(grads) else ""
        if op is CONST:
            rows.append((lead + (dag.labels.get(node) or short(values[node])), ""))
        elif not op_level and node in expanded:
            rows.append((f"{lead}{back} {tags[node]}", ""))
        elif name is not None and not op_level:
            expanded.add(node)
            tag = f"  [{name}]" if uses[node] > 1 else ""
            rows.append((f"{lead}{name} = {short(values[node])}{tag}", grad))
            if op is not INPUT:
                stack.append((node, child_lead + last, child_lead + "    ", True))
            continue
        else:
            expanded.add(node)
            label = style.symbol(op) if op.symbol else op.name
            label = f"({label})" if op.symbol else label
            if op_level:
                rows.append((lead + label, ""))
            else:
                tag = f"  [{tags[node]}]" if node in tags else ""
                rows.append((f"{lead}{label} {short(values[node])}{tag}", grad))
            children = list(dag.args[node])
        for index in range(len(children) - 1, -1, -1):
            is_last = index == len(children) - 1
            stack.append((children[index], child_lead + (last if is_last else branch),
                          child_lead + ("    " if is_last else pipe), False))
    return rows


@dataclass(frozen=True, slots=True)
class TableRow:
    """One node of the layered table."""

    layer: int
    node: str
    op: str
    inputs: str
    value: float
    gradient: float
    consumers: int


def layered_rows(dag: Dag, output: int, values: list[float], grads: list[float],
                 style: Glyphs | None = None) -> list[TableRow]:
    """One row per node the output depends on (constants appear among the inputs), in
    topological order, with its layer (longest path from the inputs)."""
    style = style or Glyphs()
    needed, uses = _consumers(dag, output)
    tags = _tags(dag, output, uses, needed, every=True)
    layer = [0] * (output + 1)
    rows = []
    for node in range(output + 1):
        op = dag.ops[node]
        if not needed[node] or op is CONST:
            continue
        operands = dag.args[node]
        layer[node] = 1 + max((layer[a] for a in operands if dag.ops[a] is not CONST),
                              default=-1)
        name = dag.names[node] or tags.get(node) or f"#{node}"
        shown = [dag.labels.get(a) or short(values[a]) if dag.ops[a] is CONST
                 else dag.names[a] or tags.get(a) or f"#{a}" for a in operands]
        rows.append(TableRow(layer[node], name, style.symbol(op) if op is not INPUT else "input",
                             ", ".join(shown), values[node],
                             grads[node] if node < len(grads) else 0.0, uses[node]))
    return rows
