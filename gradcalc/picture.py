"""Left-to-right drawings of a computation graph on a character grid (Sugiyama-style).

1. Visual nodes: named values (``B=6`` with ``∂=15`` beneath), operations as small connectors
   (``(×)``, ``(+)=7``), constants hung under the op that uses them (``▲`` and the number).
   In compact mode every operation is folded into the name it defines (``B=A×3``); only an
   unnamed operation used by several others keeps a node of its own.
2. Layers by longest path from the inputs; inputs then move right to just before their first
   use; edges spanning several layers are split by dummy nodes.
3. Crossing reduction: operand order first (first operand above), then barycenter sweeps and
   adjacent swaps, kept only when crossings drop; ties broken by index, never by hashing.
4. Rows: each node goes to the median row of its neighbours, overlaps resolved optimally per
   layer (isotonic regression), so chains and skip edges come out straight.
5. Routing: out of the source horizontally, along a vertical track in the gap between layers,
   into the target ending in an arrow. A reader following a line must reach exactly the
   targets its source feeds, so a line belongs to one source (a fan-out) or to sources that
   feed nothing but one common arrow (a fan-in). A target whose operands cannot share an
   arrow takes the others through ports: a ``▲`` under the label, entered from below.
   Tracks are ordered so that no two lines share a cell except at a crossing; where the order
   is cyclic a line takes a jog through a free row. Every cell keeps N/E/S/W bits; its glyph
   comes from one table.

Everything is loops over small lists; the output depends only on the graph.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from gradcalc.dag import Dag
from gradcalc.engine import cone
from gradcalc.errors import argument
from gradcalc.fmt import Glyphs, short
from gradcalc.ops import CONST, IDENTITY, INPUT, Precedence
from gradcalc.unparse import apply_text

__all__ = ["Style", "TooLarge", "draw"]

N, E, S, W = 1, 2, 4, 8
# A compact label is never cut: one longer than this makes the compact drawing give way
# (``auto`` falls back to the tree), which also keeps folded texts from growing with the graph.
_LABEL_LIMIT = 64
_LEFT = -1  # the entry of an edge into the arrow before its target's label
_GAP = 4  # columns between two layers joined by straight lines only
_FIRST_GAP = 5  # the inputs' lines are one longer (the seed mock-up)

_UNICODE_LINES = {
    E | W: "─", E: "─", W: "─", N | S: "│", N: "│", S: "│",
    S | E: "┌", S | W: "┐", N | E: "└", N | W: "┘",
    N | S | E: "├", N | S | W: "┤", E | W | S: "┬", E | W | N: "┴", N | E | S | W: "┼",
}
_ASCII_LINES = {mask: ("-" if glyph in "─" else "|" if glyph == "│" else "+")
                for mask, glyph in _UNICODE_LINES.items()}


@dataclass(frozen=True, slots=True)
class Style(Glyphs):
    """The character set of a drawing: Unicode box drawing or plain ASCII, and the signs
    every text view shares (:class:`gradcalc.fmt.Glyphs`: ``partial``, ``symbol(op)``...)."""

    @property
    def lines(self) -> dict[int, str]:
        return _UNICODE_LINES if self.unicode else _ASCII_LINES

    @property
    def arrow(self) -> str:
        return "▶" if self.unicode else ">"

    @property
    def marker(self) -> str:
        return "▲" if self.unicode else "^"


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
    ref: str = ""  # how compact labels name this node (a port goes under it)
    entry: list[int] = field(default_factory=list)  # per pred: _LEFT or the port it enters
    ports: list[int] = field(default_factory=list)  # the column of each port's ▲ in the label

    @property
    def width(self) -> int:
        return max([len(self.label), *map(len, self.notes)]) if not self.dummy else 0

    @property
    def height(self) -> int:
        """Rows the node takes: its label, its notes, then one row per port's line."""
        return 1 + len(self.notes) + len(self.ports)

    def arrival_row(self, port: int) -> int:
        """The row on which lines into the arrow (``_LEFT``) or into a port arrive."""
        return self.row if port == _LEFT else self.row + 1 + len(self.notes) + port

    def entry_row(self, position: int) -> int:
        """The row on which the line from ``preds[position]`` arrives."""
        return self.arrival_row(self.entry[position])


def draw(dag: Dag, output: int, values: list[float], grads: list[float], *,
         compact: bool = False, style: Style | None = None, max_width: int | None = None,
         max_nodes: int = 400) -> str:
    """The drawing of everything ``output`` depends on, with values and gradients.

    Raises :class:`TooLarge` when the graph has more than ``max_nodes`` visual nodes or the
    drawing would be wider than ``max_width`` columns (checked before the costly steps).
    """
    style = style or Style()
    if _fewest_nodes(dag, output, compact) > max_nodes:  # before building thousands of labels
        raise TooLarge("too many nodes")
    nodes = _visual_graph(dag, output, values, grads, compact, style, max_nodes)
    layers = _layers(nodes)
    widths = [max([n.width for n in (nodes[i] for i in layer)] or [1]) for layer in layers]
    if max_width is not None and sum(widths) + _GAP * (len(layers) - 1) > max_width:
        raise TooLarge("too wide")
    _order(nodes, layers)
    _rows(nodes, layers)
    return _render(nodes, layers, widths, style, max_width)


# --- 1. visual nodes ---------------------------------------------------------------------------


def _fewest_nodes(dag: Dag, output: int, compact: bool) -> int:
    """A lower bound on the visual nodes: one per operation in full mode, one per name (at
    least) in compact mode."""
    needed = cone(dag, [output])
    ops, names = dag.ops, dag.names
    return sum(1 for node in range(output + 1) if needed[node] and ops[node] is not CONST
               and (not compact or names[node] is not None))


def _distinct_consumers(dag: Dag, needed: bytearray, output: int) -> list[int]:
    counts = [0] * (output + 1)
    for node in range(output + 1):
        if needed[node]:
            for a in set(dag.args[node]):
                counts[a] += 1
    return counts


def _unique(items: list[int]) -> list[int]:
    return list(dict.fromkeys(items))


def _uncut(expr: str) -> str:
    """``expr`` as a compact label, or :class:`TooLarge` when it is too long to show whole."""
    if len(expr) > _LABEL_LIMIT:
        raise TooLarge(f"a compact label would be {len(expr)} characters long and labels are "
                       f"never cut; {argument('form', 'full')} shows the operations one by one")
    return expr


def _visual_graph(dag: Dag, output: int, values: list[float], grads: list[float],
                  compact: bool, style: Style, max_nodes: int | None = None) -> list[_Node]:
    """The nodes to draw and their edges; raises :class:`TooLarge` as soon as there are more
    than ``max_nodes`` (a compact label's operand list grows with the nodes before it)."""
    ops, args, names = dag.ops, dag.args, dag.names
    d = style.partial
    nodes: list[_Node] = []
    feeds: dict[int, list[int]] = {}  # dag node -> the visual nodes its value comes from
    texts: dict[int, tuple[str, int]] = {}  # dag node -> how compact labels refer to it

    def add(label: str, notes: list[str], ref: str = "") -> int:
        if max_nodes is not None and len(nodes) >= max_nodes:
            raise TooLarge(f"more than {max_nodes} nodes")
        nodes.append(_Node(label, notes, ref=ref))
        return len(nodes) - 1

    needed = cone(dag, [output])
    consumers = _distinct_consumers(dag, needed, output) if compact else []
    for node in range(output + 1):
        if not needed[node]:
            continue
        op, name = ops[node], names[node]
        value, grad = short(values[node]), short(grads[node]) if node < len(grads) else "0"
        if op is CONST:
            text = dag.labels.get(node) or short(values[node])
            texts[node] = (text, Precedence.UNARY if text.startswith("-") else Precedence.ATOM)
            continue
        operands = [a for a in args[node] if ops[a] is not CONST]
        sources = _unique([v for a in operands for v in feeds[a]])
        constants = [texts[a][0] for a in args[node] if ops[a] is CONST]
        if op is INPUT or op is IDENTITY:
            label = f"{name}={value}" if not compact else str(name)
            notes = [f"{d}={grad}"] if not compact else [value, f"{d}{grad}"]
            if op is IDENTITY and not operands and not compact:  # C = pi
                notes.insert(0, f" {style.marker} {constants[0]}")
            texts[node] = (str(name), Precedence.ATOM)
            target = add(label, notes, str(name))
            feeds[node] = [target]
        elif compact:
            expr, precedence = apply_text(op, [texts[a] for a in args[node]], style.unicode)
            expr = _uncut(expr if style.unicode else expr.replace(" ", ""))
            if name is None and consumers[node] == 1:  # folded into its consumer's label
                texts[node] = (expr, precedence)
                feeds[node] = sources
                continue
            label = f"{name}={expr}" if name else expr
            notes = [value, f"{d}{grad}"] if name else [f"{value} {d}{grad}"]
            texts[node] = (str(name), Precedence.ATOM) if name else (expr, precedence)
            target = add(label, notes, texts[node][0])
            feeds[node] = [target]
        else:
            symbol = f"({style.symbol(op)})"
            hang = [f" {style.marker}", " " + ", ".join(constants)] if constants else []
            if name is not None:
                target = add(symbol, hang)
                texts[node] = (name, Precedence.ATOM)
                feeds[node] = [add(f"{name}={value}", [f"{d}={grad}"])]
                _link(nodes, target, feeds[node][0])
            else:
                notes = ([f" {style.marker} {d}={grad}", hang[1]] if constants
                         else [f"   {d}={grad}"])
                target = add(f"{symbol}={value}", notes)
                texts[node] = (symbol, Precedence.ATOM)
                feeds[node] = [target]
        for source in sources:
            _link(nodes, source, target)
    _add_ports(nodes, compact, style)
    return nodes


def _link(nodes: list[_Node], source: int, target: int) -> None:
    """An edge from visual node ``source`` into ``target``, once: ``B*B`` is one line."""
    if source not in nodes[target].preds:
        nodes[target].preds.append(source)
        nodes[target].entry.append(_LEFT)
        nodes[source].succs.append(target)


def _add_ports(nodes: list[_Node], compact: bool, style: Style) -> None:
    """Operands that may share their target's arrow: those whose line goes nowhere else (a
    fan-in of them cannot lead a reader to a wrong target), or a single operand. Every other
    operand enters through a port of its own: a ▲ under the label (under the operand's name
    in a compact label, under the op's symbol in a connector: every other column from the
    second, for a function of three operands) with its line coming from below. Ports are
    ordered left to right; the leftmost one's line runs highest. A connector's only port goes
    into its gradient's line (``   ∂=8`` becomes `` ▲ ∂=8``); several ports, or one under
    constants (``clamp(A, B, 2)``), go on a line of their own below the notes."""
    for node in nodes:
        if len(node.preds) < 2:
            continue
        alone = [p for p, u in enumerate(node.preds) if len(nodes[u].succs) == 1]
        groups = [[p] for p in range(len(node.preds)) if p not in alone]
        if alone:
            groups.insert(sum(1 for g in groups if g[0] < alone[0]), alone)
        if len(groups) < 2:
            continue
        connector = not compact  # full mode: only op connectors have several operands
        columns: list[int] = []
        for group in groups[1:]:
            ref = nodes[node.preds[group[0]]].ref
            columns.append(1 + 2 * len(columns) if connector
                           else _port_column(node.label, ref, columns))
        order = sorted(range(len(columns)), key=lambda i: (columns[i], i))
        for port, i in enumerate(order):
            for position in groups[1 + i]:
                node.entry[position] = port
        node.ports = [columns[i] for i in order]
        marks = [" "] * (max(node.ports) + 1)
        for column in node.ports:
            marks[column] = style.marker
        if connector and len(node.notes) == 1 and len(node.ports) == 1:
            # an unnamed connector without constants: "   ∂=8" becomes " ▲ ∂=8"
            assert node.notes[0][1] == " ", node.notes
            node.notes[0] = node.notes[0][:1] + style.marker + node.notes[0][2:]
        else:
            node.notes.append("".join(marks))


def _port_column(label: str, ref: str, taken: list[int]) -> int:
    """Where an operand's port goes: under the first free place its name stands in the label
    (after the ``=``), else the first free column."""
    start = label.find("=") + 1
    at = label.find(ref, start) if ref else -1
    while at >= 0:
        before = label[at - 1] if at > 0 else " "
        after = label[at + len(ref)] if at + len(ref) < len(label) else " "
        whole = not (before.isalnum() or before == "_" or after.isalnum() or after == "_")
        if whole and at not in taken:
            return at
        at = label.find(ref, at + 1)
    column = start
    while column in taken:
        column += 1
    return column


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
                nodes.append(_Node("", [], dummy=True, layer=layer, preds=[previous],
                                   entry=[_LEFT]))
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
            desired = [_desired_row(nodes, v, down) for v in layer]
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


def _desired_row(nodes: list[_Node], v: int, down: bool) -> float:
    """The median of the rows that would make the lines between ``v`` and its operands
    (``down``) or its consumers straight; lines into a port arrive below the label."""
    node = nodes[v]
    if down:
        near = [(u, nodes[u].row - node.entry_row(p) + node.row)
                for p, u in enumerate(node.preds)]
    else:
        near = [(s, nodes[s].entry_row(nodes[s].preds.index(v))) for s in node.succs]
    # Long edges follow the nodes they join, not the other way round.
    real = [row for u, row in near if not nodes[u].dummy] if not node.dummy else []
    rows = real or [row for _, row in near]
    return _median(rows) if rows else node.row


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


# --- 5. routing ----------------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class _Net:
    """Lines that may join: one source's fan-out, or sources that feed one arrow and nothing
    else (a fan-in). Lines of different nets never share a cell except to cross."""

    sources: list[int]
    targets: list[tuple[int, int]]  # (node, _LEFT or port) in the right-hand layer


@dataclass(slots=True, eq=False)
class _Piece:
    """The vertical line of a net on one track; a net split by a jog has two pieces, one
    holding its sources, one its targets, joined by a horizontal line on a free row."""

    net: int
    sources: list[int]  # rows of the sources it takes
    targets: list[int]  # rows of the targets it feeds
    top: int
    bottom: int
    track: int = -1


@dataclass(slots=True)
class _Gap:
    nets: list[_Net]
    pieces: list[_Piece]
    jogs: list[tuple[int, int, int]]  # (row, source piece, target piece)
    tracks: int


def _nets(nodes: list[_Node], left: list[int]) -> list[_Net]:
    """One net per source, except that sources entering the same arrow share one (they feed
    that arrow alone: see :func:`_add_ports`)."""
    nets: list[_Net] = []
    net_of: dict[tuple[int, int], int] = {}
    for u in left:
        succs = nodes[u].succs
        targets = [(v, nodes[v].entry[nodes[v].preds.index(u)]) for v in succs]
        known = sorted({net_of[t] for t in targets if t in net_of})
        assert len(known) <= 1 and (not known or len(targets) == 1), "a fan-in that fans out"
        if known:
            nets[known[0]].sources.append(u)
            continue
        for target in targets:
            net_of[target] = len(nets)
        if targets:
            nets.append(_Net([u], targets))
    return nets


def _route(nodes: list[_Node], left: list[int]) -> _Gap:
    """Tracks for the lines between ``left`` and the next layer.

    On a row where a source of one net leaves and a target of another arrives, the source's
    track must stand left of the target's, or the two lines would overlap. These constraints
    form a graph; where it has a cycle, a net is split into a source piece and a target piece
    joined on a free row (a jog), which takes it off every cycle. The pieces then go on tracks
    from the left, each on the first track after all the pieces it must follow, sharing a
    track only with pieces well apart from it."""
    nets = _nets(nodes, left)
    pieces: list[_Piece] = []
    for index, net in enumerate(nets):
        sources = [nodes[u].row for u in net.sources]
        targets = [nodes[t[0]].arrival_row(t[1]) for t in net.targets]
        rows = sources + targets
        if len(rows) > 2 or rows[0] != rows[-1]:
            pieces.append(_Piece(index, sources, targets, min(rows), max(rows)))
    occupied = {r for p in pieces for r in p.sources + p.targets}
    occupied.update(nodes[u].row for net in nets for u in net.sources)
    jogs: list[tuple[int, int, int]] = []
    while True:
        edges = _constraints(pieces)
        core = _cyclic_core(len(pieces), edges)
        if not core:
            break
        inside = set(core)
        degree = {p: (sum(1 for a, b in edges if a == p and b in inside)
                      * sum(1 for a, b in edges if b == p and a in inside)) for p in core}
        pick = max(core, key=lambda p: (degree[p], -p))
        row = _free_row(pieces[pick], occupied)
        occupied.add(row)
        whole = pieces[pick]
        source_rows, target_rows = [*whole.sources, row], [*whole.targets, row]
        pieces[pick] = _Piece(whole.net, whole.sources, [], min(source_rows), max(source_rows))
        pieces.append(_Piece(whole.net, [], whole.targets, min(target_rows), max(target_rows)))
        jogs.append((row, pick, len(pieces) - 1))
    tracks = _assign_tracks(pieces, edges, occupied)
    return _Gap(nets, pieces, jogs, tracks)


def _constraints(pieces: list[_Piece]) -> list[tuple[int, int]]:
    """(a, b): piece ``a`` takes a source on a row where piece ``b`` of another net delivers
    to a target, so ``a``'s track must stand left of ``b``'s."""
    leaving = {row: p for p, piece in enumerate(pieces) for row in piece.sources}
    edges = []
    for b, piece in enumerate(pieces):
        for row in piece.targets:
            a = leaving.get(row)
            if a is not None and pieces[a].net != piece.net:
                edges.append((a, b))
    return sorted(set(edges))


def _cyclic_core(count: int, edges: list[tuple[int, int]]) -> list[int]:
    """The pieces left after peeling off, again and again, those with no constraint in or
    none out: empty exactly when the constraints have no cycle."""
    succs: list[set[int]] = [set() for _ in range(count)]
    preds: list[set[int]] = [set() for _ in range(count)]
    for a, b in edges:
        succs[a].add(b)
        preds[b].add(a)
    alive = set(range(count))
    queue = [p for p in range(count) if not succs[p] or not preds[p]]
    while queue:
        p = queue.pop()
        if p not in alive:
            continue
        alive.discard(p)
        for q in sorted(succs[p] | preds[p]):
            if q in alive and (not succs[q] & alive or not preds[q] & alive):
                queue.append(q)
    return sorted(alive)


def _free_row(piece: _Piece, occupied: set[int]) -> int:
    """The row for a jog: one no other line of the gap runs on, keeping the two pieces short
    (nearest the sources on ties, then the upper one)."""

    def cost(row: int) -> tuple[int, int, int]:
        sources, targets = [*piece.sources, row], [*piece.targets, row]
        length = max(sources) - min(sources) + max(targets) - min(targets)
        return length, abs(row - piece.sources[0]), row

    candidates = [r for r in range(max(occupied) + 2) if r not in occupied]
    return min(candidates, key=cost)


def _assign_tracks(pieces: list[_Piece], edges: list[tuple[int, int]], occupied: set[int]
                   ) -> int:
    """Tracks from the left; on each, the pieces whose predecessors all stand on earlier
    tracks, top to bottom. Two pieces share a track only with a free row between them (no
    line of the gap on it): otherwise, in ASCII at least, ``+``, crossing lines and ``+``
    would read as one line hopping over them."""
    preds: list[list[int]] = [[] for _ in pieces]
    for a, b in edges:
        preds[b].append(a)
    free_before = [0]  # free_before[r]: free rows above row r
    for row in range(max(occupied, default=0) + 2):
        free_before.append(free_before[-1] + (row not in occupied))

    def apart(bottom: int, top: int) -> bool:
        return top > len(free_before) - 1 or free_before[top] > free_before[bottom + 1]

    track, left = 0, len(pieces)
    while left:
        ready = [p for p, piece in enumerate(pieces) if piece.track < 0
                 and all(0 <= pieces[q].track < track for q in preds[p])]
        ready.sort(key=lambda p: (pieces[p].top, pieces[p].bottom, p))
        bottom: int | None = None
        for p in ready:
            if bottom is None or (pieces[p].top > bottom and apart(bottom, pieces[p].top)):
                pieces[p].track, bottom, left = track, pieces[p].bottom, left - 1
        track += 1
    return track


# --- 6. drawing ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Canvas:
    """Line cells, each with the N/E/S/W bits of every line through it, by owner (a net or a
    dummy's stretch), so a crossing of two owners can be told from a junction of one."""

    cells: dict[tuple[int, int], dict[int, int]] = field(default_factory=dict)
    heads: dict[tuple[int, int], str] = field(default_factory=dict)

    def mark(self, owner: int, row: int, col: int, bits: int) -> None:
        owners = self.cells.setdefault((row, col), {})
        owners[owner] = owners.get(owner, 0) | bits

    def hline(self, owner: int, row: int, x0: int, x1: int) -> None:
        for col in range(x0, x1 + 1):
            self.mark(owner, row, col, (W if col > x0 else E) | (E if col < x1 else W))

    def vline(self, owner: int, col: int, r0: int, r1: int) -> None:
        for row in range(r0, r1 + 1):
            self.mark(owner, row, col, (N if row > r0 else 0) | (S if row < r1 else 0))

    def mask(self, cell: tuple[int, int]) -> int:
        """The bits a cell shows: one owner's as they are; a vertical line of one owner and a
        horizontal line of another as the horizontal one (a crossing, never a junction)."""
        bits = list(self.cells[cell].values())
        if len(bits) == 1:
            return bits[0]
        assert sorted(bits) == [N | S, E | W], f"two lines share the cell {cell}"
        return E | W


def _arrive(canvas: _Canvas, nodes: list[_Node], owner: int, target: tuple[int, int],
            start: int, arrow: int, style: Style) -> None:
    """The line into ``target`` from column ``start``: into the arrow before its label, into a
    dummy's stretch, or under the label and up into a port's ▲."""
    v, port = target
    node = nodes[v]
    row = node.arrival_row(port)
    if port == _LEFT:
        canvas.hline(owner, row, start, arrow if node.dummy else arrow - 1)
        if not node.dummy:
            canvas.heads[(row, arrow)] = style.arrow
        return
    col = node.x + node.ports[port]
    canvas.hline(owner, row, start, col)
    canvas.vline(owner, col, node.row + len(node.notes) + 1, row)
    canvas.mark(owner, node.row + len(node.notes) + 1, col, N)


def _render(nodes: list[_Node], layers: list[list[int]], widths: list[int], style: Style,
            max_width: int | None) -> str:
    gaps = [_route(nodes, layers[index]) for index in range(len(layers) - 1)]
    starts, total_width = _columns(widths, gaps)
    if max_width is not None and total_width > max_width:
        raise TooLarge("too wide")
    for node in nodes:
        node.x = starts[node.layer]
    canvas, owner = _Canvas(), 0
    for index, gap in enumerate(gaps):
        owner = _draw_gap(canvas, nodes, gap, starts[index] + widths[index],
                          starts[index + 1] - 1, owner, style)
    for node in nodes:
        if node.dummy:
            owner += 1
            canvas.hline(owner, node.row, node.x, node.x + widths[node.layer] - 1)
    height = max([n.row + n.height for n in nodes]
                 + [row + 1 for gap in gaps for row, _, _ in gap.jogs])
    return _paint(canvas, nodes, height, total_width, style)


def _columns(widths: list[int], gaps: list[_Gap]) -> tuple[list[int], int]:
    """The first column of each layer, and the width of the drawing: a gap holds its tracks
    two columns apart, plus room for the arrow."""
    starts, x = [], 0
    for index, width in enumerate(widths):
        starts.append(x)
        x += width
        if index < len(gaps):
            tracks = gaps[index].tracks
            x += 2 * tracks + 3 if tracks else _FIRST_GAP if index == 0 else _GAP
    return starts, x


def _draw_gap(canvas: _Canvas, nodes: list[_Node], gap: _Gap, gap_start: int, arrow: int,
              owner: int, style: Style) -> int:
    """The lines of one gap, each net under an owner of its own; returns the last owner."""

    def column(piece: _Piece) -> int:
        return gap_start + 1 + 2 * piece.track

    first = owner + 1
    for number, net in enumerate(gap.nets):
        mine = [p for p in gap.pieces if p.net == number]
        starts_of = {u: gap_start if nodes[u].dummy else nodes[u].x + len(nodes[u].label)
                     for u in net.sources}
        if not mine:  # one source and one target on one row: a straight line
            _arrive(canvas, nodes, first + number, net.targets[0], starts_of[net.sources[0]],
                    arrow, style)
            continue
        giving = next(p for p in mine if p.sources)
        taking = next(p for p in mine if p.targets)
        for piece in mine:
            canvas.vline(first + number, column(piece), piece.top, piece.bottom)
        for u in net.sources:
            canvas.hline(first + number, nodes[u].row, starts_of[u], column(giving))
        for target in net.targets:
            _arrive(canvas, nodes, first + number, target, column(taking), arrow, style)
    for row, a, b in gap.jogs:
        ends = sorted((column(gap.pieces[a]), column(gap.pieces[b])))
        canvas.hline(first + gap.pieces[a].net, row, ends[0], ends[1])
    return first + len(gap.nets)


def _paint(canvas: _Canvas, nodes: list[_Node], height: int, width: int, style: Style) -> str:
    lines = style.lines
    grid = [[" "] * width for _ in range(height)]
    for cell in canvas.cells:
        grid[cell[0]][cell[1]] = lines[canvas.mask(cell)]
    for (row, col), char in canvas.heads.items():
        grid[row][col] = char
    for node in nodes:
        if node.dummy:
            continue
        for offset, text in enumerate([node.label, *node.notes]):
            line = grid[node.row + offset]
            for i, char in enumerate(text):
                assert (node.row + offset, node.x + i) not in canvas.cells, (
                    "an edge crosses a label")
                line[node.x + i] = char
    return "\n".join("".join(row).rstrip() for row in grid) + "\n"
