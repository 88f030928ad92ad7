"""Left-to-right drawings of a computation graph on a character grid (Sugiyama-style).

1. Visual nodes: named values (``B=6`` with ``∂=15`` beneath), operations as small connectors
   (``(×)``, ``(+)=7``), constants hung under the op that uses them (``▲`` and the number).
   In compact mode an operation is folded into the name it defines (``B=A×3``).
2. Layers by longest path from the inputs; inputs then move right to just before their first
   use; edges spanning several layers are split by dummy nodes.
3. Crossing reduction: operand order first (first operand above), then barycenter sweeps and
   adjacent swaps, kept only when crossings drop; ties broken by index, never by hashing.
4. Rows: each node goes to the median row of its neighbours, overlaps resolved optimally per
   layer (isotonic regression), so chains and skip edges come out straight.
5. Routing: out of the source horizontally, along a vertical track in the gap between layers,
   into the target ending in an arrow. Edges from one source share a track (a fan-out); edges
   into one target from single-edge sources share one (a fan-in); other tracks are separate
   where their rows overlap. Every cell keeps N/E/S/W bits; its glyph comes from one table.

Everything is loops over small lists; the output depends only on the graph.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from gradcalc.dag import Dag
from gradcalc.engine import cone
from gradcalc.ops import CONST, IDENTITY, INPUT, Op
from gradcalc.unparse import apply_text

__all__ = ["Style", "TooLarge", "draw"]

N, E, S, W = 1, 2, 4, 8
_LABEL_LIMIT = 32  # a compact label longer than this is cut with an ellipsis

_UNICODE_LINES = {
    E | W: "─", E: "─", W: "─", N | S: "│", N: "│", S: "│",
    S | E: "┌", S | W: "┐", N | E: "└", N | W: "┘",
    N | S | E: "├", N | S | W: "┤", E | W | S: "┬", E | W | N: "┴", N | E | S | W: "┼",
}
_ASCII_LINES = {mask: ("-" if glyph in "─" else "|" if glyph == "│" else "+")
                for mask, glyph in _UNICODE_LINES.items()}


@dataclass(frozen=True, slots=True)
class Style:
    """The character set of a drawing: Unicode box drawing or plain ASCII."""

    unicode: bool = True

    @property
    def lines(self) -> dict[int, str]:
        return _UNICODE_LINES if self.unicode else _ASCII_LINES

    @property
    def arrow(self) -> str:
        return "▶" if self.unicode else ">"

    @property
    def marker(self) -> str:
        return "▲" if self.unicode else "^"

    @property
    def partial(self) -> str:
        return "∂" if self.unicode else "d"

    def symbol(self, op: Op) -> str:
        if self.unicode:
            return op.label
        return op.symbol or op.name


class TooLarge(Exception):
    """The drawing would not fit: the caller falls back to another representation."""


@dataclass(slots=True, eq=False)
class _Node:
    label: str
    notes: list[str]
    dummy: bool = False
    layer: int = 0
    row: int = 0
    x: int = 0
    preds: list[int] = field(default_factory=list)
    succs: list[int] = field(default_factory=list)

    @property
    def width(self) -> int:
        return max([len(self.label), *map(len, self.notes)]) if not self.dummy else 0

    @property
    def height(self) -> int:
        return 1 + len(self.notes)


def short(x: float) -> str:
    """Three significant digits, as pictures show numbers (``-0.279``, ``7.19``, ``45``)."""
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    text = f"{x:.3g}"
    return "0" if text in ("-0", "0") else text


def draw(dag: Dag, output: int, values: list[float], grads: list[float], *,
         compact: bool = False, style: Style | None = None, max_width: int | None = None,
         max_nodes: int = 400) -> str:
    """The drawing of everything ``output`` depends on, with values and gradients.

    Raises :class:`TooLarge` when the graph has more than ``max_nodes`` visual nodes or the
    drawing would be wider than ``max_width`` columns (checked before the costly steps).
    """
    style = style or Style()
    nodes = _visual_graph(dag, output, values, grads, compact, style)
    if len(nodes) > max_nodes:
        raise TooLarge(f"{len(nodes)} nodes")
    layers = _layers(nodes)
    widths = [max([n.width for n in (nodes[i] for i in layer)] or [1]) for layer in layers]
    if max_width is not None and sum(widths) + 4 * (len(layers) - 1) > max_width:
        raise TooLarge("too wide")
    _order(nodes, layers)
    _rows(nodes, layers)
    return _render(nodes, layers, widths, style, max_width)


# --- 1. visual nodes ---------------------------------------------------------------------------


def _visual_graph(dag: Dag, output: int, values: list[float], grads: list[float],
                  compact: bool, style: Style) -> list[_Node]:
    ops, args, names = dag.ops, dag.args, dag.names
    d = style.partial
    nodes: list[_Node] = []
    out_of: dict[int, int] = {}  # dag node -> visual node its value leaves from
    texts: dict[int, tuple[str, int]] = {}  # dag node -> how compact labels refer to it

    def add(label: str, notes: list[str]) -> int:
        nodes.append(_Node(label, notes))
        return len(nodes) - 1

    def link(source: int, target: int) -> None:
        if source not in nodes[target].preds:  # B*B: one line on the picture
            nodes[target].preds.append(source)
            nodes[source].succs.append(target)

    needed = cone(dag, [output])
    for node in range(output + 1):
        if not needed[node]:
            continue
        op, name = ops[node], names[node]
        value, grad = short(values[node]), short(grads[node]) if node < len(grads) else "0"
        if op is CONST:
            text = dag.labels.get(node) or short(values[node])
            texts[node] = (text, 3 if text.startswith("-") else 9)
            continue
        operands = [a for a in args[node] if ops[a] is not CONST]
        constants = [texts[a][0] for a in args[node] if ops[a] is CONST]
        if op is INPUT or op is IDENTITY:
            label = f"{name}={value}" if not compact else str(name)
            notes = [f"{d}={grad}"] if not compact else [value, f"{d}{grad}"]
            if op is IDENTITY and not operands:  # C = pi
                notes.insert(0, f" {style.marker} {constants[0]}") if not compact else None
            texts[node] = (str(name), 9)
            out_of[node] = add(label, notes)
        elif compact:
            expr, precedence = apply_text(op, [texts[a] for a in args[node]], style.unicode)
            expr = expr if style.unicode else expr.replace(" ", "")
            if len(expr) > _LABEL_LIMIT:
                expr = expr[: _LABEL_LIMIT - 1] + "…"
            label = f"{name}={expr}" if name else expr
            notes = [value, f"{d}{grad}"] if name else [f"{value} {d}{grad}"]
            texts[node] = (str(name), 9) if name else (expr, precedence)
            out_of[node] = add(label, notes)
        else:
            symbol = f"({style.symbol(op)})"
            hang = [f" {style.marker}", " " + ", ".join(constants)] if constants else []
            if name is not None:
                connector = add(symbol, hang)
                texts[node] = (name, 9)
                out_of[node] = add(f"{name}={value}", [f"{d}={grad}"])
                link(connector, out_of[node])
            else:
                notes = ([f" {style.marker} {d}={grad}", hang[1]] if constants
                         else [f"   {d}={grad}"])
                connector = add(f"{symbol}={value}", notes)
                texts[node] = (symbol, 9)
                out_of[node] = connector
            target = connector
        if op is not INPUT and op is not IDENTITY and not compact:
            for a in operands:
                link(out_of[a], target)
        elif operands:
            for a in operands:
                link(out_of[a], out_of[node])
    return nodes


# --- 2. layers -------------------------------------------------------------------------------


def _layers(nodes: list[_Node]) -> list[list[int]]:
    """Longest path from the inputs; inputs moved right to just before their first use; long
    edges split by dummies. Visual nodes are created operands first, so one loop suffices."""
    for node in nodes:
        node.layer = 1 + max((nodes[p].layer for p in node.preds), default=-1)
    for node in nodes:
        if not node.preds and node.succs:
            node.layer = min(nodes[s].layer for s in node.succs) - 1
    for index in range(len(nodes)):  # dummies appended here are not revisited: range is fixed
        node = nodes[index]
        for position, pred in enumerate(node.preds):
            previous = pred
            for layer in range(nodes[pred].layer + 1, node.layer):
                dummy = len(nodes)
                nodes.append(_Node("", [], dummy=True, layer=layer, preds=[previous]))
                succs = nodes[previous].succs
                if previous == pred:
                    succs[succs.index(index)] = dummy
                else:
                    succs.append(dummy)
                previous = dummy
            if previous != pred:
                nodes[previous].succs.append(index)
                node.preds[position] = previous
    layers: list[list[int]] = [[] for _ in range(max(n.layer for n in nodes) + 1)]
    for index, node in enumerate(nodes):
        layers[node.layer].append(index)
    return layers


# --- 3. order within layers --------------------------------------------------------------------


def _order(nodes: list[_Node], layers: list[list[int]]) -> None:
    """Operand order first, then barycenter sweeps with adjacent swaps; the best order seen
    (fewest crossings, earliest on ties) is kept."""
    rank: dict[int, int] = {}
    stack = [i for i, n in enumerate(nodes) if not n.succs]
    stack.reverse()
    while stack:
        v = stack.pop()
        if v in rank:
            continue
        rank[v] = len(rank)
        stack.extend(reversed(nodes[v].preds))
    for layer in layers:
        layer.sort(key=lambda v: (rank.get(v, len(nodes) + v), v))
    position = {v: i for layer in layers for i, v in enumerate(layer)}

    best = [list(layer) for layer in layers]
    best_crossings = _crossings(nodes, layers, position)
    for sweep in range(8):
        down = sweep % 2 == 0
        sequence = range(1, len(layers)) if down else range(len(layers) - 2, -1, -1)
        for index in sequence:
            layer = layers[index]

            def barycenter(v: int, down: bool = down) -> float:
                near = nodes[v].preds if down else nodes[v].succs
                return sum(position[u] for u in near) / len(near) if near else position[v]

            layer.sort(key=lambda v: (barycenter(v), position[v]))
            position.update((v, i) for i, v in enumerate(layer))
        _transpose(nodes, layers, position)
        crossings = _crossings(nodes, layers, position)
        if crossings < best_crossings:
            best, best_crossings = [list(layer) for layer in layers], crossings
        if best_crossings == 0:
            break
    layers[:] = best


def _crossings(nodes: list[_Node], layers: list[list[int]], position: dict[int, int]) -> int:
    total = 0
    for layer in layers[:-1]:
        edges = sorted((position[u], position[v]) for u in layer for v in nodes[u].succs)
        for i, (_, b1) in enumerate(edges):
            for a2, b2 in edges[i + 1:]:
                if b2 < b1 and a2 != edges[i][0]:
                    total += 1
    return total


def _pair_crossings(nodes: list[_Node], upper: int, lower: int, position: dict[int, int]) -> int:
    """Crossings between the edges of ``upper`` and ``lower`` with ``upper`` placed above."""
    count = 0
    for near in ("preds", "succs"):
        for a in getattr(nodes[upper], near):
            for b in getattr(nodes[lower], near):
                if position[a] > position[b]:
                    count += 1
    return count


def _transpose(nodes: list[_Node], layers: list[list[int]], position: dict[int, int]) -> None:
    improved = True
    rounds = 0
    while improved and rounds < 4:
        improved, rounds = False, rounds + 1
        for layer in layers:
            for i in range(len(layer) - 1):
                u, w = layer[i], layer[i + 1]
                if _pair_crossings(nodes, w, u, position) < _pair_crossings(nodes, u, w, position):
                    layer[i], layer[i + 1] = w, u
                    position[u], position[w] = i + 1, i
                    improved = True


# --- 4. rows -----------------------------------------------------------------------------------


def _rows(nodes: list[_Node], layers: list[list[int]]) -> None:
    """Each node at the median row of its neighbours, overlaps in a layer resolved by the
    least-squares placement that keeps the order and a blank row between boxes."""
    for layer in layers:
        row = 0
        for v in layer:
            nodes[v].row = row
            row += nodes[v].height + 1
    for sweep in range(8):
        down = sweep % 2 == 0
        sequence = range(1, len(layers)) if down else range(len(layers) - 2, -1, -1)
        for index in sequence:
            layer = layers[index]
            desired = []
            for v in layer:
                near = nodes[v].preds if down else nodes[v].succs
                # Long edges follow the nodes they join, not the other way round.
                real = [u for u in near if not nodes[u].dummy] if not nodes[v].dummy else near
                near = real or near
                desired.append(_median([nodes[u].row for u in near]) if near else nodes[v].row)
            weights = [3.0 if nodes[v].dummy else 1.0 for v in layer]
            gaps = [nodes[v].height + 1 for v in layer]
            for v, row in zip(layer, _isotonic_place(desired, weights, gaps), strict=True):
                nodes[v].row = row
    # Straighten chains: a node that is the only consumer of its only operand (an op and the
    # name it defines, a dummy chain) goes on its operand's row when the layer allows it.
    for sweep in range(4):
        down = sweep % 2 == 0
        sequence = range(1, len(layers)) if down else range(len(layers) - 2, -1, -1)
        for index in sequence:
            layer = layers[index]
            desired, weights = [], []
            for v in layer:
                near = nodes[v].preds if down else nodes[v].succs
                back = (lambda u: nodes[u].succs) if down else (lambda u: nodes[u].preds)
                linked = len(near) == 1 and len(back(near[0])) == 1
                desired.append(nodes[near[0]].row if linked else nodes[v].row)
                weights.append(10.0 if linked else 1.0)
            gaps = [nodes[v].height + 1 for v in layer]
            for v, row in zip(layer, _isotonic_place(desired, weights, gaps), strict=True):
                nodes[v].row = row
    top = min(n.row for n in nodes)
    for node in nodes:
        node.row -= top


def _median(rows: list[int]) -> float:
    rows = sorted(rows)
    middle = len(rows) // 2
    return rows[middle] if len(rows) % 2 else (rows[middle - 1] + rows[middle]) / 2


def _isotonic_place(desired: list[float], weights: list[float], gaps: list[int]) -> list[int]:
    """Rows p minimising sum w (p - desired)^2 with p[i+1] >= p[i] + gaps[i]: subtract the
    cumulative gaps and it is isotonic regression, solved by pooling adjacent violators."""
    offsets, total = [], 0
    for gap in gaps:
        offsets.append(total)
        total += gap
    blocks: list[list[float]] = []  # [weighted sum, weight, count]
    for d, off, w in zip(desired, offsets, weights, strict=True):
        blocks.append([(d - off) * w, w, 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            last = blocks.pop()
            blocks[-1][0] += last[0]
            blocks[-1][1] += last[1]
            blocks[-1][2] += last[2]
    rows: list[int] = []
    for weighted, weight, count in blocks:
        level = math.floor(weighted / weight + 0.5)
        rows.extend([level] * int(count))
    return [r + off for r, off in zip(rows, offsets, strict=True)]


# --- 5. routing and drawing --------------------------------------------------------------------


@dataclass(slots=True)
class _Group:
    sources: list[int]
    targets: list[int]
    top: int = 0
    bottom: int = 0
    track: int = -1


def _groups(nodes: list[_Node], left: list[int], right: list[int]) -> list[_Group]:
    fan_in: dict[int, _Group] = {}
    taken: set[tuple[int, int]] = set()
    for v in right:
        preds = nodes[v].preds
        if len(preds) > 1 and all(len(nodes[u].succs) == 1 for u in preds):
            fan_in[v] = _Group(list(preds), [v])
            taken.update((u, v) for u in preds)
    groups = list(fan_in.values())
    for u in left:
        targets = [v for v in nodes[u].succs if (u, v) not in taken]
        if targets:
            groups.append(_Group([u], targets))
    for group in groups:
        rows = [nodes[i].row for i in group.sources + group.targets]
        group.top, group.bottom = min(rows), max(rows)
    return groups


def _assign_tracks(nodes: list[_Node], groups: list[_Group]) -> int:
    """Columns for the groups' vertical tracks, left to right.

    A line entering a target must not pass another group's track on its way (it would seem
    to join it), and neither may a line leaving a source; so a group whose track spans one
    of ``g``'s target rows goes left of ``g``, and one spanning a source row of ``g`` goes
    right of it. Groups are placed in an order honouring these constraints (the first one
    dropped when they form a cycle), each in the leftmost track allowed whose other groups'
    rows it does not overlap."""
    vertical = [g for g in groups if g.top != g.bottom or len(g.sources) + len(g.targets) > 2]
    if not vertical:
        return 0
    vertical.sort(key=lambda g: (g.top, g.bottom, g.sources[0]))
    before: dict[int, set[int]] = {i: set() for i in range(len(vertical))}  # i -> must be left
    for i, g in enumerate(vertical):
        target_rows = {nodes[v].row for v in g.targets}
        source_rows = {nodes[u].row for u in g.sources}
        for j, h in enumerate(vertical):
            if i == j:
                continue
            if any(h.top <= r <= h.bottom for r in target_rows):
                before[i].add(j)  # h left of g
            if any(h.top <= r <= h.bottom for r in source_rows):
                before[j].add(i)  # g left of h
    order: list[int] = []
    placed: set[int] = set()
    while len(order) < len(vertical):
        ready = [i for i in range(len(vertical)) if i not in placed and before[i] <= placed]
        pick = ready[0] if ready else min(i for i in range(len(vertical)) if i not in placed)
        order.append(pick)
        placed.add(pick)
    tracks: list[list[_Group]] = []
    for i in order:
        group = vertical[i]
        lowest = 1 + max((vertical[j].track for j in before[i] if j in placed and
                          vertical[j].track >= 0), default=-1)
        for track in range(lowest, len(tracks) + 1):
            if track == len(tracks):
                tracks.append([])
            if all(other.bottom < group.top or other.top > group.bottom
                   for other in tracks[track]):
                tracks[track].append(group)
                group.track = track
                break
    return len(tracks)


def _combine(contributions: list[int]) -> int:
    """The bits a cell shows. Lines of one group, or of groups ending at the same target,
    join; a vertical line of one group crossing a horizontal line of another is drawn as the
    horizontal line alone (the vertical one hops under it), never as a junction."""
    if len(contributions) == 1:
        return contributions[0]
    vertical = [c for c in contributions if not c & (E | W)]
    horizontal = [c for c in contributions if not c & (N | S)]
    if vertical and horizontal and len(vertical) + len(horizontal) == len(contributions):
        return E | W
    combined = 0
    for bits in contributions:
        combined |= bits
    return combined


def _render(nodes: list[_Node], layers: list[list[int]], widths: list[int], style: Style,
            max_width: int | None) -> str:
    gaps: list[list[_Group]] = []
    gap_widths: list[int] = []
    for index in range(len(layers) - 1):
        groups = _groups(nodes, layers[index], layers[index + 1])
        tracks = _assign_tracks(nodes, groups)
        gaps.append(groups)
        gap_widths.append(2 * tracks + 3 if tracks else 4)
    starts, x = [], 0
    for index, width in enumerate(widths):
        starts.append(x)
        x += width + (gap_widths[index] if index < len(gap_widths) else 0)
    total_width = x
    if max_width is not None and total_width > max_width:
        raise TooLarge("too wide")
    for node in nodes:
        node.x = starts[node.layer]
    height = max(n.row + n.height for n in nodes)
    # Each cell keeps the N/E/S/W bits of every line through it, by owner (one owner per
    # group of edges), so a crossing of unrelated lines can be drawn as one.
    cells: dict[tuple[int, int], dict[int, int]] = {}
    special: dict[tuple[int, int], str] = {}

    def mark(row: int, col: int, owner: int, bits: int) -> None:
        owners = cells.setdefault((row, col), {})
        owners[owner] = owners.get(owner, 0) | bits

    def hline(owner: int, row: int, x0: int, x1: int) -> None:
        for col in range(x0, x1 + 1):
            bits = (W if col > x0 else 0) | (E if col < x1 else 0)
            mark(row, col, owner, bits or (E if col == x0 else W))

    def vline(owner: int, col: int, r0: int, r1: int) -> None:
        for row in range(r0, r1 + 1):
            mark(row, col, owner, (N if row > r0 else 0) | (S if row < r1 else 0))

    owner = 0
    for index, groups in enumerate(gaps):
        gap_start = starts[index] + widths[index]
        arrow = starts[index + 1] - 1
        for group in groups:
            owner += 1
            track = gap_start + 1 + 2 * group.track if group.track >= 0 else None
            for u in group.sources:
                start = nodes[u].x + len(nodes[u].label)
                hline(owner, nodes[u].row, start, track if track is not None else arrow)
            for v in group.targets:
                hline(owner, nodes[v].row, track if track is not None else gap_start, arrow)
                if not nodes[v].dummy:
                    special[(nodes[v].row, arrow)] = style.arrow
            if track is not None:
                vline(owner, track, group.top, group.bottom)
                if group.top == group.bottom:  # a fan-out along one row: mark the junction
                    mark(group.top, track, owner, E | W)
    for node in nodes:
        if node.dummy:
            owner += 1
            hline(owner, node.row, node.x, node.x + widths[node.layer] - 1)

    masks = [[0] * total_width for _ in range(height)]
    for (row, col), owners in cells.items():
        masks[row][col] = _combine(list(owners.values()))

    lines = style.lines
    grid = [[lines[m] if m else " " for m in row] for row in masks]
    for (row, col), char in special.items():
        grid[row][col] = char
    for node in nodes:
        if node.dummy:
            continue
        for offset, text in enumerate([node.label, *node.notes]):
            line = grid[node.row + offset]
            for i, char in enumerate(text):
                assert masks[node.row + offset][node.x + i] == 0, "an edge crosses a label"
                line[node.x + i] = char
    return "\n".join("".join(row).rstrip() for row in grid) + "\n"
