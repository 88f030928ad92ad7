"""Graph pictures: the layered drawing (full and compact), the tree listing, the layered table,
the ``auto`` fallbacks and the DOT / Mermaid exports.

Golden files live in ``tests/golden/``; ``pytest --update-golden`` rewrites them from the
current output (look at them before committing). The property tests parse the character grid
back and hold it to what a reader sees: every connected line leaves only sources that feed
every target whose arrowhead it enters, and every edge is such a line (see ``check_grid``).
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import HARDER, SEED, property_settings
from helpers import dag_programs as programs
from hypothesis import assume, example, given

import gradcalc
from gradcalc import listing, picture, render
from gradcalc.engine import cone
from gradcalc.errors import EvaluationError
from gradcalc.export import _dot_escape, _mermaid_escape, to_dot, to_mermaid
from gradcalc.fmt import short
from gradcalc.ops import CONST, IDENTITY, INPUT
from gradcalc.picture import Style, TooLarge, draw

GRAPHS = {"seed": SEED, "harder": HARDER}

# A vertical line stopped at two horizontal lines, joining N0 and N2 to each other's targets.
SHARED_TRACK = "A = 0.5; N0 = A + A; N2 = sin(A); N3 = A + N0; OUT = N0 + N2 + N3 + N2"
# A 2-2-1 tanh network: X2's line ran into W21·X1, W21's into W22·X2.
TANH_NETWORK = ("W11 = 0.5; W12 = -0.3; W21 = 0.8; W22 = 0.2; B1 = 0.1; B2 = -0.1; X1 = 1; "
                "X2 = 2; V1 = 1.5; V2 = -0.7; C = 0.05; H1 = tanh(W11*X1 + W12*X2 + B1); "
                "H2 = tanh(W21*X1 + W22*X2 + B2); OUT = V1*H1 + V2*H2 + C")
# Lines that swap rows in one gap: (I1 - I0) leaves on the row where I1's skip edge arrives.
JOG_PROGRAMS = ["I0 = 1.5; I1 = 0.7; N0 = I0; OUT = (I1 - I0) + I1 + I0",
                "I0 = -1; I1 = 1.5; N0 = (I1 * 0.5 + I0); OUT = (I0 + N0) + I1 + I0"]

# A function of three operands whose operands all go elsewhere too: two ports under one
# connector (they shared a column and the drawing failed), and one under hung constants.
THREE_OPERANDS = ["A = 0.5; N0 = (A + A); N1 = (A / 2); OUT = (clamp(A, N0, N1)) + N0 + A",
                  "A = 0.5; N0 = A + A; N1 = A/2; C = clamp(A, N0, N1); OUT = C + N0 + A + N1",
                  "A = 0.5; N0 = A + A; OUT = clamp(A, N0, 2) + N0 + A",
                  "A = 0.5; N0 = A + A; C = clamp(A, N0, 3); OUT = C + N0 + A"]

N, E, S, W = picture.N, picture.E, picture.S, picture.W
OPPOSITE = {N: S, S: N, E: W, W: E}
STEP = {N: (-1, 0), S: (1, 0), E: (0, 1), W: (0, -1)}
# The glyph table read backwards; a lone end ("─" drawn for E or W alone) reads as both.
GLYPH_MASK = {glyph: mask for mask, glyph in picture._UNICODE_LINES.items()
              if mask not in (N, S, E, W)}

# Each example draws a random program four ways and reads every drawing back (~50 ms).
PROPERTY = property_settings(400)


def evaluated(text: str):
    r = gradcalc.gradients(text)
    assert r.dag is not None
    return r.dag, r.dag.named[r.output], r.node_values, r.node_gradients


def view_text(text: str, form: str, unicode: bool, width: int | None = None) -> str:
    view = render.graph_view(*evaluated(text), form=form, width=width, unicode=unicode)
    return view if isinstance(view, str) else render.as_text(view, unicode)


def widest(text: str) -> int:
    return max(map(len, text.splitlines()))


# --- golden files ---------------------------------------------------------------------------
# seed_full_unicode.txt and seed_full_ascii.txt are the mock-ups of shared/GRAPH.md, byte for
# byte: a change to either must be a deliberate change of the target look.


@pytest.mark.parametrize("graph", list(GRAPHS))
@pytest.mark.parametrize("form", ["full", "compact", "tree", "table"])
@pytest.mark.parametrize("unicode", [True, False], ids=["unicode", "ascii"])
def test_golden_views(golden, graph: str, form: str, unicode: bool) -> None:
    text = view_text(GRAPHS[graph], form, unicode)
    golden(f"{graph}_{form}_{'unicode' if unicode else 'ascii'}.txt", text)
    assert text.endswith("\n") and text.strip()


def test_golden_exports_of_the_seed(golden) -> None:
    dot, mermaid = to_dot(*evaluated(SEED)), to_mermaid(*evaluated(SEED))
    golden("seed.dot", dot)
    golden("seed.mmd", mermaid)
    assert dot.startswith("digraph") and mermaid.startswith("flowchart LR")


def test_seed_drawing_shows_the_known_numbers() -> None:
    text = view_text(SEED, "full", True)
    for piece in ("A=2", "∂=45", "B=6", "∂=15", "(+)=7", "∂=8", "(+)=8", "∂=7", "OUT=56", "∂=1"):
        assert piece in text, piece


def test_full_ascii_is_the_unicode_drawing_transliterated() -> None:
    """Full mode labels have the same width in both styles, so the layouts must agree."""
    table = str.maketrans({"─": "-", "│": "|", "▶": ">", "▲": "^", "∂": "d", "×": "*",
                           "−": "-", "÷": "/", **{c: "+" for c in "┌┐└┘├┤┬┴┼"}})
    for text in GRAPHS.values():
        assert view_text(text, "full", True).translate(table) == view_text(text, "full", False)


def test_views_are_identical_across_runs() -> None:
    for text in GRAPHS.values():
        for form in ("full", "compact", "tree", "table"):
            for unicode in (True, False):
                assert view_text(text, form, unicode) == view_text(text, form, unicode)


HASH_SCRIPT = """
import gradcalc
from gradcalc import render, export
r = gradcalc.gradients({program!r})
args = (r.dag, r.dag.named[r.output], r.node_values, r.node_gradients)
parts = []
for form in ("full", "compact", "tree", "table"):
    for unicode in (True, False):
        v = render.graph_view(*args, form=form, unicode=unicode)
        parts.append(v if isinstance(v, str) else render.as_text(v, unicode))
parts += [export.to_dot(*args), export.to_mermaid(*args)]
import sys
sys.stdout.buffer.write("\\x00".join(parts).encode("utf-8"))
"""


def test_views_are_identical_across_hash_seeds() -> None:
    outputs = []
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", HASH_SCRIPT.format(program=HARDER)],
                              capture_output=True, env=env, timeout=60, check=True)
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1] == outputs[2]
    here = [view_text(HARDER, form, u) for form in ("full", "compact", "tree", "table")
            for u in (True, False)]
    here += [to_dot(*evaluated(HARDER)), to_mermaid(*evaluated(HARDER))]
    assert outputs[0].decode("utf-8") == "\x00".join(here)


# --- widths of the harder graph ----------------------------------------------------------------


def test_harder_graph_widths() -> None:
    full, compact = view_text(HARDER, "full", True), view_text(HARDER, "compact", True)
    print(f"\nharder graph: full {widest(full)} columns, compact {widest(compact)} columns")
    assert widest(full) <= 115
    assert widest(compact) <= 90
    assert widest(view_text(HARDER, "compact", False)) <= 90


# --- fallbacks ----------------------------------------------------------------------------------


def test_auto_falls_back_full_compact_tree_table() -> None:
    full = view_text(HARDER, "full", True)
    compact = view_text(HARDER, "compact", True)
    tree = view_text(HARDER, "tree", True)
    table = view_text(HARDER, "table", True)
    wf, wc, wt = widest(full), widest(compact), widest(tree)
    assert wf > wc > wt
    assert view_text(HARDER, "auto", True, width=None) == full
    assert view_text(HARDER, "auto", True, width=500) == full
    assert view_text(HARDER, "auto", True, width=wf) == full
    assert view_text(HARDER, "auto", True, width=wf - 1) == compact
    assert view_text(HARDER, "auto", True, width=wc) == compact
    assert view_text(HARDER, "auto", True, width=wc - 1) == tree
    assert view_text(HARDER, "auto", True, width=wt) == tree
    assert view_text(HARDER, "auto", True, width=wt - 1) == table
    assert view_text(HARDER, "auto", True, width=5) == table
    # The same ladder in ASCII.
    assert view_text(HARDER, "auto", False, width=wc - 1) == view_text(HARDER, "tree", False)


def test_forced_forms_ignore_width() -> None:
    for form in ("full", "compact", "tree", "table"):
        for unicode in (True, False):
            assert view_text(HARDER, form, unicode, width=10) == view_text(HARDER, form, unicode)


def test_forced_drawing_of_a_huge_graph_is_refused() -> None:
    program = chain_program(1200)
    with pytest.raises(render.GraphTooLarge):
        render.graph_view(*evaluated(program), form="full")


def chain_program(levels: int) -> str:
    lines = ["X0 = 0.5"]
    lines += [f"X{i} = sin(X{i - 1}) + X{i - 1}*0.5" for i in range(1, levels + 1)]
    return "\n".join(lines)


def random_dag_program(statements: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    names = ["A", "B", "C"]
    lines = ["A = 0.5", "B = 1.5", "C = -0.7"]
    forms = ["({a} + {b})", "({a} - {b})", "({a} * 0.5 + {b})", "sin({a})", "cos({a}) * {b}",
             "tanh({a} + {b})", "max({a}, {b})", "min({a}, {b}) / 2"]
    for i in range(statements):
        a = names[-1]  # a spine through every statement: the output depends on them all
        b = rng.choice(names)
        names.append(f"N{i}")
        lines.append(f"N{i} = " + rng.choice(forms).format(a=a, b=b))
    return "\n".join(lines)


@pytest.mark.parametrize("program", [chain_program(1000), random_dag_program(1000)],
                         ids=["chain", "random"])
def test_a_thousand_node_dag_reaches_its_fallback(program: str) -> None:
    dag, output, values, grads = evaluated(program)
    assert sum(cone(dag, [output])) >= 1000
    started = time.perf_counter()
    view = render.graph_view(dag, output, values, grads, form="auto", width=100)
    elapsed = time.perf_counter() - started
    # the table is a Rich table, or plain columns past render.PLAIN_TABLE_ROWS rows
    table = not isinstance(view, str) or view.startswith("layer  node")
    print(f"\n1,000-node DAG ({len(dag)} nodes): auto fallback to the "
          f"{'table' if table else 'tree'} in {elapsed:.3f} s")
    if not table:
        assert view == "\n".join(listing.tree_lines(dag, output, values, grads)) + "\n"
        assert widest(view) <= 100
    else:
        from rich.table import Table

        rows = listing.layered_rows(dag, output, values, grads)
        assert len(rows) >= 1000
        if isinstance(view, Table):
            assert view.row_count == len(rows) <= render.PLAIN_TABLE_ROWS
        else:
            assert view.count("\n") == len(rows) + 2 and len(rows) > render.PLAIN_TABLE_ROWS
        # the tree did not fit: too wide, or past the listing's bound
        try:
            tree = listing.tree_lines(dag, output, values, grads)
        except listing.TreeTooLarge:
            return
        assert widest("\n".join(tree)) > 100


# --- tree listing --------------------------------------------------------------------------------

TREE_PREFIX = re.compile(r"^(?:[│ ]   |\|   |    )*(?:├── |└── |\|-- |`-- )?")


def tree_entries(lines: list[str]) -> list[str]:
    """The tree text of each line without its branch prefix and without the gradient column."""
    entries = []
    for line in lines:
        body = line[TREE_PREFIX.match(line).end():]
        entries.append(re.split(r"\s{2,}[∂d] ", body)[0])
    return entries


def check_tree(text: str, unicode: bool = True) -> None:
    dag, output, values, grads = evaluated(text)
    lines = listing.tree_lines(dag, output, values, grads, Style(unicode))
    entries = tree_entries(lines)
    back = "↑ " if unicode else "^ "
    needed = cone(dag, [output])
    uses = [0] * len(dag)
    for node in range(output + 1):
        if needed[node]:
            for a in dag.args[node]:
                uses[a] += 1
    expanded: list[str] = []
    for entry in entries:
        if entry.startswith(back):
            tag = entry[len(back):]
            assert tag in expanded, f"{entry!r} points at nothing expanded before it\n{lines}"
            continue
        match = re.search(r"  \[(\w+)\]$", entry)
        if match:
            assert match.group(1) not in expanded, f"{match.group(1)} expanded twice"
            expanded.append(match.group(1))
    # Every named value the output depends on is expanded exactly once ("NAME = value").
    for node in range(output + 1):
        name = dag.names[node]
        if needed[node] and name is not None and node != output:
            count = sum(1 for e in entries if re.match(rf"{name} = \S+(  \[{name}\])?$", e))
            assert count == 1, f"{name} expanded {count} times\n" + "\n".join(lines)
            refs = sum(1 for e in entries if e == back + name)
            assert refs == max(0, uses[node] - 1) or dag.ops[node] is CONST
            assert (f"[{name}]" in "\n".join(lines)) == (uses[node] > 1)


def test_tree_expands_shared_nodes_once() -> None:
    for text in (SEED, HARDER):
        check_tree(text, True)
        check_tree(text, False)
    lines = listing.tree_lines(*evaluated(HARDER))
    assert [e for e in tree_entries(lines) if e.startswith("↑")] == ["↑ B", "↑ C", "↑ D", "↑ A"]


def test_tree_tags_unnamed_shared_nodes() -> None:
    program = "A = 2; OUT = sin(A+1)*cos(A+1) + (A*5)*exp(A*5)*(A*5)"
    lines = listing.tree_lines(*evaluated(program))
    text = "\n".join(lines)
    entries = tree_entries(lines)
    assert any(e.endswith("  [t1]") for e in entries), text
    assert any(e.endswith("  [t2]") for e in entries), text
    assert entries.count("↑ t1") == 1 and entries.count("↑ t2") == 2, text
    # each back reference comes after the node it names was expanded
    for tag in ("t1", "t2"):
        first = next(i for i, e in enumerate(entries) if e.endswith(f"[{tag}]"))
        assert all(i > first for i, e in enumerate(entries) if e == f"↑ {tag}")


def test_tree_tags_skip_names_taken_by_the_program() -> None:
    program = "A = 2; t1 = A*3; OUT = sin(A+1)*cos(A+1) + t1"
    lines = listing.tree_lines(*evaluated(program))
    entries = tree_entries(lines)
    assert any(e.endswith("  [t2]") for e in entries) and "↑ t2" in entries, lines
    assert not any(e.endswith("  [t1]") and not e.startswith("t1 =") for e in entries)


def diamond_chain(levels: int) -> str:
    lines = ["X0 = 0.3"]
    lines += [f"X{i} = sin(X{i - 1}) + cos(X{i - 1})" for i in range(1, levels + 1)]
    return "\n".join(lines)


def test_tree_is_linear_on_a_diamond_chain() -> None:
    program = diamond_chain(60)
    r = gradcalc.gradients(program, stats=True)
    assert r.stats is not None and r.stats.paths["X0"] == 2**60
    dag, output, values, grads = evaluated(program)
    lines = listing.tree_lines(dag, output, values, grads)
    nodes = sum(cone(dag, [output]))
    assert len(lines) <= 2 * nodes, (len(lines), nodes)
    check_tree(program)
    assert view_text(program, "tree", True) == "\n".join(lines) + "\n"


# --- layered table -------------------------------------------------------------------------------


def check_table(text: str) -> None:
    dag, output, values, grads = evaluated(text)
    rows = listing.layered_rows(dag, output, values, grads)
    needed = cone(dag, [output])
    expected = [n for n in range(output + 1) if needed[n] and dag.ops[n] is not CONST]
    assert len(rows) == len(expected)
    consumers = [0] * (output + 1)
    for node in expected:
        for a in dag.args[node]:
            consumers[a] += 1
    layer_of: dict[str, int] = {}
    for row, node in zip(rows, expected, strict=True):
        if dag.names[node] is not None:
            assert row.node == dag.names[node]
        assert row.node not in layer_of, f"{row.node} listed twice"
        assert row.value == values[node] and row.gradient == grads[node]
        assert row.consumers == consumers[node]
        operands = [a for a in dag.args[node] if dag.ops[a] is not CONST]
        shown = row.inputs.split(", ") if row.inputs else []
        assert len(shown) == len(dag.args[node])
        for a, item in zip(dag.args[node], shown, strict=True):
            if dag.ops[a] is CONST:
                continue
            assert item in layer_of, f"{row.node} uses {item} before its row (not topological)"
            assert row.layer > layer_of[item]
        if operands:
            assert row.layer == 1 + max(layer_of[shown[i]] for i, a in enumerate(dag.args[node])
                                        if dag.ops[a] is not CONST)
        else:
            assert row.layer == 0
        layer_of[row.node] = row.layer
    assert rows[-1].node == dag.names[output] and rows[-1].consumers == 0


def test_table_rows_of_the_known_graphs() -> None:
    check_table(SEED)
    check_table(HARDER)
    rows = listing.layered_rows(*evaluated(HARDER))
    assert [(r.layer, r.node, r.op, r.inputs, r.consumers) for r in rows] == [
        (0, "A", "input", "", 2), (1, "B", "×", "A, 3", 2), (2, "C", "sin", "B", 2),
        (3, "D", "×", "B, C", 2), (4, "t1", "+", "C, D", 1), (4, "t2", "−", "D, A", 1),
        (5, "OUT", "×", "t1, t2", 0)]


def evaluate_or_reject(text: str):
    try:
        return evaluated(text)
    except EvaluationError:
        assume(False)
        raise  # unreachable


# --- reading a drawing back ----------------------------------------------------------------------


def layout(dag, output, values, grads, compact: bool, style: Style):
    """draw()'s steps, keeping the nodes: positions for the checker."""
    nodes = picture._visual_graph(dag, output, values, grads, compact, style)
    real = len(nodes)
    layers = picture._layers(nodes)
    widths = [max([n.width for n in (nodes[i] for i in layer)] or [1]) for layer in layers]
    picture._order(nodes, layers)
    picture._rows(nodes, layers)
    text = picture._render(nodes, layers, widths, style, None)
    return nodes, real, text


def expected_visual_graph(dag, output, compact: bool) -> tuple[int, set[tuple[int, int]], dict]:
    """The visual nodes and edges the DAG calls for, worked out independently: one node per
    input / alias / (compact) operation, an op connector plus a value node per named operation
    in full mode, constants folded away. In compact mode an unnamed operation with a single
    consumer has no node: it is part of its consumer's label, its operands feed the consumer."""
    needed = cone(dag, [output])
    consumers: dict[int, set[int]] = {}
    for node in range(output + 1):
        if needed[node]:
            for a in dag.args[node]:
                consumers.setdefault(a, set()).add(node)
    count, edges = 0, set()
    entry: dict[int, int] = {}
    out_of: dict[int, int] = {}
    feeds: dict[int, set[int]] = {}  # the visual nodes a DAG node's value comes from
    for node in range(output + 1):
        op = dag.ops[node]
        if not needed[node] or op is CONST:
            continue
        operands = {v for a in dag.args[node] if dag.ops[a] is not CONST for v in feeds[a]}
        if (compact and op not in (INPUT, IDENTITY) and dag.names[node] is None
                and len(consumers[node]) == 1):
            feeds[node] = operands
            continue
        if op in (INPUT, IDENTITY) or compact or dag.names[node] is None:
            entry[node] = out_of[node] = count
            count += 1
        else:
            entry[node], out_of[node] = count, count + 1
            edges.add((count, count + 1))
            count += 2
        feeds[node] = {out_of[node]}
        edges.update((v, entry[node]) for v in operands)
    return count, edges, out_of


def visual_edges(nodes) -> set[tuple[int, int]]:
    edges = set()
    for u, node in enumerate(nodes):
        if node.dummy:
            assert len(node.preds) == 1 and len(node.succs) == 1, "a dummy is not a chain link"
            continue
        for v in node.succs:
            while nodes[v].dummy:
                assert nodes[v].layer == nodes[nodes[v].preds[0]].layer + 1
                v = nodes[v].succs[0]
            edges.add((u, v))
    return edges


class Grid:
    def __init__(self, text: str, style: Style) -> None:
        self.text = text
        self.style = style
        self.rows = [list(line) for line in text.split("\n")[:-1]]
        self.width = max((len(r) for r in self.rows), default=0)
        for r in self.rows:
            r.extend(" " * (self.width - len(r)))
        self.height = len(self.rows)

    def char(self, r: int, c: int) -> str:
        if 0 <= r < self.height and 0 <= c < self.width:
            return self.rows[r][c]
        return " "


def check_drawing(dag, output, values, grads, compact: bool, style: Style) -> None:
    """Every check on one drawing (see :func:`check_grid`)."""
    drawn = draw(dag, output, values, grads, compact=compact, style=style, max_nodes=100_000)
    nodes, real, text = layout(dag, output, values, grads, compact, style)
    assert text == drawn, "not deterministic"
    picture_of = f"\n{text}"

    # The visual graph is the DAG's: same nodes, same edges, values and gradients shown.
    count, expected, out_of = expected_visual_graph(dag, output, compact)
    assert real == count, picture_of
    assert visual_edges(nodes) == expected, picture_of
    d = style.partial
    for node, index in out_of.items():
        shown = [nodes[index].label, *nodes[index].notes]
        value, grad = short(values[node]), short(grads[node])
        name = dag.names[node]
        if name is not None:
            assert shown[0] == name or shown[0].startswith(f"{name}="), shown
        if compact:
            assert value in " ".join(shown[1:]).split(), (shown, value)
            assert f"{d}{grad}" in " ".join(shown[1:]).split(), (shown, grad)
        else:
            assert shown[0].endswith(f"={value}"), (shown, value)
            assert f"{d}={grad}" in " ".join(shown[1:]), (shown, grad)

    # (c) fits: the reported width is the widest line, and max_width enforces it.
    width = widest(text)
    assert all(len(line) <= width for line in text.splitlines())
    assert draw(dag, output, values, grads, compact=compact, style=style, max_width=width,
                max_nodes=100_000) == text
    with pytest.raises(TooLarge):
        draw(dag, output, values, grads, compact=compact, style=style, max_width=width - 1,
             max_nodes=100_000)
    check_grid(nodes, text, style, expected)


def check_grid(nodes, text: str, style: Style, expected: set[tuple[int, int]]) -> None:
    """The character grid read back and held to what a reader would see.

    Labels are intact; every line glyph's arms are answered by its neighbours; and, treating
    the line cells as a graph (a cell joins a neighbour only where both glyphs have the joining
    arms; a crossing joins north-south and east-west separately), every connected line leaves
    a set S of source labels and enters the arrowheads of a set T of targets such that every
    source in S feeds every target in T, and every edge of the graph is one such line."""
    picture_of = f"\n{text}"
    grid = Grid(text, style)
    labels = read_labels(nodes, grid, picture_of)
    masks, hops, entries = read_lines(grid, style, labels, picture_of)
    check_arms(grid, masks, hops, entries, labels, picture_of)
    check_wiring(nodes, masks, hops, entries, labels, expected, picture_of)


@dataclass
class Labels:
    owner: dict[tuple[int, int], int]  # every cell of a label or note -> its node
    start: dict[tuple[int, int], int]  # the first cell of a label -> its node
    end: dict[tuple[int, int], int]  # the cell right after a label -> its node


def read_labels(nodes, grid: Grid, picture_of: str) -> Labels:
    """Labels and notes are where the layout put them: no edge cell overwrites them."""
    labels = Labels({}, {}, {})
    for index, node in enumerate(nodes):
        if node.dummy:
            continue
        for offset, line in enumerate([node.label, *node.notes]):
            for i, ch in enumerate(line):
                cell = (node.row + offset, node.x + i)
                assert cell not in labels.owner, f"two labels share {cell}{picture_of}"
                labels.owner[cell] = index
                assert grid.char(*cell) == ch, (
                    f"{node.label!r}: {grid.char(*cell)!r} at {cell} instead of {ch!r}"
                    f"{picture_of}")
        labels.end[(node.row, node.x + len(node.label))] = index
        labels.start[(node.row, node.x)] = index
    return labels


def read_lines(grid: Grid, style: Style, labels: Labels, picture_of: str):
    """The arms of every line cell, the crossings, and the arrowheads lines enter: a ``▶``
    right before a label (entered from the west) or a ``▲`` in a node's notes with a line
    right below it (entered from the south). Returns (masks, hops, entries) where entries
    maps (line cell, direction into the arrowhead) to the node the arrowhead points at."""
    masks: dict[tuple[int, int], int] = {}
    arrows: dict[tuple[int, int], int] = {}
    line_chars = set(style.lines.values())
    for r in range(grid.height):
        for c in range(grid.width):
            ch = grid.rows[r][c]
            if (r, c) in labels.owner or ch == " ":
                continue
            if ch == style.arrow:
                assert (r, c + 1) in labels.start, f"arrow at {(r, c)} before no label{picture_of}"
                arrows[(r, c)] = labels.start[(r, c + 1)]
            else:
                assert ch in line_chars, f"stray {ch!r} at {(r, c)}{picture_of}"
                masks[(r, c)] = GLYPH_MASK[ch] if style.unicode else 0

    def is_marker(cell: tuple[int, int]) -> bool:
        return cell in labels.owner and grid.char(*cell) == style.marker

    if not style.unicode:  # "+" does not say which way it goes: it joins every neighbour
        fits = {N: "|+", S: "|+", E: "-+", W: "-+"}
        for (r, c) in masks:
            ch = grid.rows[r][c]
            if ch == "-":
                masks[(r, c)] = E | W
            elif ch == "|":
                masks[(r, c)] = N | S
            else:
                mask = 0
                for direction, (dr, dc) in STEP.items():
                    other = (r + dr, c + dc)
                    beyond = other
                    while direction in (N, S) and grid.char(*beyond) == "-":
                        beyond = (beyond[0] + dr, c)
                    hop = beyond != other and beyond in masks and grid.char(*beyond) in "|+"
                    if (other in masks and grid.char(*other) in fits[direction]) or (
                            direction == E and other in arrows) or (
                            direction == W and (r, c) in labels.end) or (
                            direction == N and is_marker(other)) or hop:
                        mask |= direction
                assert bin(mask).count("1") >= 2, f"a '+' joining nothing at {(r, c)}{picture_of}"
                masks[(r, c)] = mask

    # A crossing: horizontal lines with a vertical one pointing at them from above and below
    # (the vertical line hops under the horizontal ones; they do not join).
    hops = set()
    for (r, c), mask in masks.items():
        if mask & S and mask != E | W:
            below = r + 1
            while masks.get((below, c)) == E | W:
                below += 1
            if below > r + 1 and masks.get((below, c), 0) & N:
                hops.update((row, c) for row in range(r + 1, below))
    entries: dict[tuple[tuple[int, int], int], int] = {}
    for (r, c), node in arrows.items():
        assert masks.get((r, c - 1), 0) & E, f"arrow {(r, c)} fed by nothing{picture_of}"
        entries[((r, c - 1), E)] = node
    for (r, c), node in labels.owner.items():
        if grid.char(r, c) == style.marker and masks.get((r + 1, c), 0) & N:
            entries[((r + 1, c), N)] = node
    return masks, hops, entries


def check_arms(grid: Grid, masks, hops, entries, labels: Labels, picture_of: str) -> None:
    """Each direction a glyph claims is answered by its neighbour (or is a crossing, an
    arrowhead, or the end of the label the line leaves)."""
    for (r, c), mask in masks.items():
        for direction, (dr, dc) in STEP.items():
            if not mask & direction:
                continue
            other = (r + dr, c + dc)
            if other in masks and masks[other] & OPPOSITE[direction]:
                continue
            if direction in (N, S) and other in hops:
                continue
            if ((r, c), direction) in entries:
                continue
            if direction == W and (r, c) in labels.end:
                continue
            raise AssertionError(f"line cell {(r, c)} {grid.char(r, c)!r} points "
                                 f"{ {N: 'north', S: 'south', E: 'east', W: 'west'}[direction]} "
                                 f"at {grid.char(*other)!r}{picture_of}")


def line_components(masks, hops) -> dict[tuple[int, int, int], tuple[int, int, int]]:
    """Union-find over the line cells: a crossing cell is two parts, its horizontal one
    (axis E) joining east and west and its vertical one (axis N) joining north and south."""
    parent: dict[tuple[int, int, int], tuple[int, int, int]] = {}

    def find(key):
        parent.setdefault(key, key)
        root = key
        while parent[root] != root:
            root = parent[root]
        while parent[key] != root:
            parent[key], key = root, parent[key]
        return root

    for (r, c), mask in masks.items():
        find(part((r, c), E, hops))
        find(part((r, c), N, hops))
        for direction in (E, S):
            other = (r + STEP[direction][0], c + STEP[direction][1])
            if other not in masks:
                continue
            here_arm = (r, c) in hops or mask & direction
            there_arm = other in hops or masks[other] & OPPOSITE[direction]
            if here_arm and there_arm:
                a, b = find(part((r, c), direction, hops)), find(part(other, direction, hops))
                parent[a] = b
    return {key: find(key) for key in list(parent)}


def part(cell: tuple[int, int], direction: int, hops) -> tuple[int, int, int]:
    """The part of ``cell`` a line arriving from or leaving towards ``direction`` uses."""
    if cell not in hops:
        return (*cell, 0)
    return (*cell, E if direction in (E, W) else N)


def check_wiring(nodes, masks, hops, entries, labels: Labels, expected, picture_of: str) -> None:
    """Every line component joins sources to targets completely (each source feeds each
    target it enters) and every edge of the graph is realised by the component of its source."""
    component = line_components(masks, hops)
    sources: dict[tuple, set[int]] = {root: set() for root in component.values()}
    targets: dict[tuple, set[int]] = {root: set() for root in component.values()}
    leaves: dict[int, tuple] = {}
    for cell, u in labels.end.items():
        if cell in masks and masks[cell] & W:
            leaves[u] = component[part(cell, W, hops)]
            sources[leaves[u]].add(u)
    for (cell, direction), v in entries.items():
        targets[component[part(cell, direction, hops)]].add(v)
    name = {i: node.label for i, node in enumerate(nodes)}
    for root in sources:
        s, t = sources[root], targets[root]
        assert s and t, (f"a line from {sorted(name[u] for u in s)} to "
                         f"{sorted(name[v] for v in t)}: it must join sources to targets"
                         f"{picture_of}")
        wrong = sorted((name[u], name[v]) for u in s for v in t if (u, v) not in expected)
        assert not wrong, f"one line joins sources to targets they do not feed: {wrong}{picture_of}"
    for u, v in sorted(expected):
        assert u in leaves, f"no line leaves {name[u]!r}{picture_of}"
        assert v in targets[leaves[u]], f"{name[u]!r} does not reach {name[v]!r}{picture_of}"
    for v in {v for _, v in expected}:
        node = nodes[v]
        assert entries.get(((node.row, node.x - 2), E)) == v, (
            f"{node.label!r} has no arrow{picture_of}")


def test_checker_on_the_known_graphs() -> None:
    for text in GRAPHS.values():
        for compact in (False, True):
            for unicode in (True, False):
                check_drawing(*evaluated(text), compact, Style(unicode))


def test_checker_catches_broken_drawings() -> None:
    """The checker itself: break a drawing in one cell and it must complain."""
    dag, output, values, grads = evaluated(SEED)
    nodes, _, text = layout(dag, output, values, grads, False, Style())
    _, expected, _ = expected_visual_graph(dag, output, False)
    check_grid(nodes, text, Style(), expected)
    for old, new in (("┤", "│"), ("┤", " "), ("┤", "┼"), ("▶", "─"), ("▶(+)=7", "─(+)=7"),
                     ("B=6", "B─6"), ("∂=15", "∂─15"), ("──┐", "── "), ("┘", "┴")):
        broken = text.replace(old, new, 1)
        assert broken != text
        with pytest.raises(AssertionError):
            check_grid(nodes, broken, Style(), expected)


@PROPERTY
@given(programs())
@example(SHARED_TRACK)
@example(TANH_NETWORK)
@example(JOG_PROGRAMS[0])
@example(JOG_PROGRAMS[1])
@example(THREE_OPERANDS[0])
def test_random_drawings_connect_every_edge(text: str) -> None:
    dag, output, values, grads = evaluate_or_reject(text)
    for compact in (False, True):
        for unicode in (True, False):
            check_drawing(dag, output, values, grads, compact, Style(unicode))


@pytest.mark.parametrize("program", THREE_OPERANDS)
def test_three_operands_through_ports(program: str) -> None:
    """Every view of a function of three operands, read back and checked like the random
    programs' (the full drawing puts its ports every other column: ▲ ▲)."""
    dag, output, values, grads = evaluated(program)
    for compact in (False, True):
        for unicode in (True, False):
            check_drawing(dag, output, values, grads, compact, Style(unicode))
    check_tree(program)
    check_table(program)
    check_dot(program)
    check_mermaid(program)
    full = draw(dag, output, values, grads)
    assert "(clamp)" in full
    if "N1" in program:
        assert " ▲ ▲" in full


@property_settings(30)
@given(programs())
def test_random_programs_tree_and_table(text: str) -> None:
    evaluate_or_reject(text)
    check_tree(text)
    check_table(text)
    check_dot(text)
    check_mermaid(text)


# --- DOT and Mermaid ------------------------------------------------------------------------------

DOT_NODE = re.compile(r'^  n(\d+) \[label="((?:[^"\\]|\\.)*)", shape=(box|ellipse|plaintext)'
                      r'(?:, fontsize=10|, style=bold)?\];$')
DOT_EDGE = re.compile(r"^  n(\d+) -> n(\d+);$")


def braces_balanced(text: str) -> bool:
    depth, quoted, escaped = 0, False, False
    for ch in text:
        if quoted:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0 and not quoted


def dot_unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), text)


def check_dot(text: str) -> str:
    dag, output, values, grads = evaluated(text)
    dot = to_dot(dag, output, values, grads)
    lines = dot.splitlines()
    assert lines[0] == "digraph gradcalc {" and lines[-1] == "}"
    assert "  rankdir=LR;" in lines
    assert braces_balanced(dot)
    declared, edges = set(), []
    for line in lines[3:-1]:
        node, edge = DOT_NODE.match(line), DOT_EDGE.match(line)
        assert node or edge, f"unexpected DOT line {line!r}"
        if node:
            assert node.group(1) not in declared
            declared.add(node.group(1))
            label = dot_unescape(node.group(2))
            assert _dot_escape(label) == node.group(2)
            assert "\n" in label or dag.ops[int(node.group(1))] is CONST
        else:
            edges.append((edge.group(1), edge.group(2)))
    assert edges and all(a in declared and b in declared for a, b in edges)
    needed = cone(dag, [output])
    assert declared == {str(n) for n in range(output + 1) if needed[n]}
    assert len(edges) == len(set(edges))
    bold = [line for line in lines if "style=bold" in line]
    assert len(bold) == 1 and bold[0].startswith(f"  n{output} [")
    if shutil.which("dot"):
        done = subprocess.run(["dot", "-Tsvg"], input=dot.encode("utf-8"), capture_output=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr.decode()
        assert b"<svg" in done.stdout
    return dot


def test_dot_structure() -> None:
    for text in GRAPHS.values():
        dot = check_dot(text)
        assert 'n0 [label="A = 2\\n∂ = ' in dot


def test_dot_escape() -> None:
    assert _dot_escape('say "hi"') == 'say \\"hi\\"'
    assert _dot_escape("a\\b") == "a\\\\b"
    assert _dot_escape("two\nlines") == "two\\nlines"
    assert _dot_escape('\\"\n') == '\\\\\\"\\n'
    for text in ('q"uote', "back\\slash\\", 'mix\\"\n"'):
        escaped = _dot_escape(text)
        assert re.fullmatch(r'(?:[^"\\\n]|\\.)*', escaped), escaped
        assert dot_unescape(escaped) == text
        assert braces_balanced(f'{{ "{escaped}" }}')


MERMAID_NODE = re.compile(r'^  n(\d+)(?:\["([^"]*)"\]|>"([^"]*)"\]|\(\["([^"]*)"\]\))$')
MERMAID_EDGE = re.compile(r"^  n(\d+) --> n(\d+)$")


def check_mermaid(text: str) -> str:
    dag, output, values, grads = evaluated(text)
    mermaid = to_mermaid(dag, output, values, grads)
    lines = mermaid.splitlines()
    assert lines[0] == "flowchart LR"
    declared, edges = set(), []
    for line in lines[1:]:
        node, edge = MERMAID_NODE.match(line), MERMAID_EDGE.match(line)
        assert node or edge, f"unexpected Mermaid line {line!r}"
        if node:
            declared.add(node.group(1))
            label = next(g for g in node.groups()[1:] if g is not None)
            assert "\n" not in label and '"' not in label
            assert not re.search(r"<(?!br/>)|(?<!<br/)>", label), label
        else:
            edges.append((edge.group(1), edge.group(2)))
    assert edges and all(a in declared and b in declared for a, b in edges)
    return mermaid


def test_mermaid_structure() -> None:
    for text in GRAPHS.values():
        mermaid = check_mermaid(text)
        assert 'n0["A = 2<br/>∂ = ' in mermaid


def test_mermaid_escape() -> None:
    assert _mermaid_escape('a "b" <c> & d\ne') == "a #quot;b#quot; #lt;c#gt; #amp; d<br/>e"
    assert '"' not in _mermaid_escape('""') and "<" not in _mermaid_escape("<<")


# --- pictures never imply a wrong wiring (issue 9) ---------------------------------------------

@pytest.mark.parametrize("program", [SHARED_TRACK, TANH_NETWORK], ids=["shared", "tanh"])
@pytest.mark.parametrize("compact", [False, True], ids=["full", "compact"])
@pytest.mark.parametrize("unicode", [True, False], ids=["unicode", "ascii"])
def test_reproducers_of_wrong_wiring(program: str, compact: bool, unicode: bool) -> None:
    check_drawing(*evaluated(program), compact, Style(unicode))


def test_checker_catches_a_crossing_drawn_as_a_junction() -> None:
    """Turning a crossing into a junction joins two sources' lines: the checker must see
    sources wired to targets they do not feed."""
    dag, output, values, grads = evaluated(HARDER)
    nodes, _, text = layout(dag, output, values, grads, False, Style())
    _, expected, _ = expected_visual_graph(dag, output, False)
    check_grid(nodes, text, Style(), expected)
    rows = text.split("\n")
    crossings = [(r, c) for r in range(1, len(rows) - 1) for c, ch in enumerate(rows[r])
                 if ch == "─" and c < len(rows[r - 1]) and c < len(rows[r + 1])
                 and rows[r - 1][c] == "│" and rows[r + 1][c] in "│└┘"]
    assert crossings, text
    for r, c in crossings:
        broken = [*rows[:r], rows[r][:c] + "┼" + rows[r][c + 1:], *rows[r + 1:]]
        with pytest.raises(AssertionError, match="do not feed"):
            check_grid(nodes, "\n".join(broken), Style(), expected)


def layers_of(nodes) -> list[list[int]]:
    """The layers of a laid-out drawing, each top to bottom."""
    layers: list[list[int]] = [[] for _ in range(1 + max(node.layer for node in nodes))]
    for index, node in enumerate(nodes):
        layers[node.layer].append(index)
    return [sorted(layer, key=lambda v: nodes[v].row) for layer in layers]


def test_routing_splits_cyclic_track_orders_with_a_jog() -> None:
    """Two lines that swap rows in one gap (each leaves on the row where the other arrives)
    cannot both take one track: one of them takes a jog through a free row."""
    jogs = 0
    for program in (TANH_NETWORK, SHARED_TRACK, HARDER, *JOG_PROGRAMS):
        dag, output, values, grads = evaluated(program)
        for compact in (False, True):
            nodes, _, _ = layout(dag, output, values, grads, compact, Style())
            layers = layers_of(nodes)
            jogs += sum(len(picture._route(nodes, layer).jogs) for layer in layers[:-1])
            check_drawing(dag, output, values, grads, compact, Style())
    assert jogs > 0


# --- compact is narrower; the tree's gradients stand in one column ------------------------------

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.gc"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.stem)
def test_compact_is_narrower_than_full_on_every_example(path: Path) -> None:
    text = path.read_text("utf-8")
    for unicode in (True, False):
        full, compact = view_text(text, "full", unicode), view_text(text, "compact", unicode)
        print(f"\n{path.name}: full {widest(full)} columns, compact {widest(compact)}")
        assert widest(compact) < widest(full)


@pytest.mark.parametrize("program", [SEED, HARDER, TANH_NETWORK, diamond_chain(6)],
                         ids=["seed", "harder", "tanh", "diamond"])
@pytest.mark.parametrize("unicode", [True, False], ids=["unicode", "ascii"])
def test_tree_gradients_stand_in_one_column(program: str, unicode: bool) -> None:
    """Tags (``[X1]``) and deep nesting do not push a gradient out of the column."""
    lines = listing.tree_lines(*evaluated(program), Style(unicode))
    d = "∂" if unicode else "d"
    columns = {line.rindex(f"  {d} ") + 2 for line in lines if f"  {d} " in line}
    assert len(columns) == 1, "\n".join(lines)
    tagged = [line for line in lines if re.search(r"\[\w+\]", line)]
    assert all(f"  {d} " in line for line in tagged), "\n".join(lines)


LONG_FORMULA = ("OUT = sin(alpha_long*beta_long + gamma_long*delta_long + epsilon_long)"
                " + cos(alpha_long*zeta_long*eta_long*theta_long*iota_long*kappa_long)")


def test_compact_labels_are_never_cut() -> None:
    """A folded label is shown whole, or the compact drawing gives way (never an ellipsis)."""
    at = {n: 1.0 for n in ("alpha_long", "beta_long", "gamma_long", "delta_long",
                           "epsilon_long", "zeta_long", "eta_long", "theta_long", "iota_long",
                           "kappa_long")}
    short_one = "OUT = sin(alpha_long*beta_long + gamma_long*delta_long + epsilon_long)"
    inputs = gradcalc.compile_program(short_one).inputs
    text = view_text_at(short_one, {n: v for n, v in at.items() if n in inputs}, "compact")
    assert "…" not in text
    assert "OUT=sin(alpha_long×beta_long+gamma_long×delta_long+epsilon_long)" in text
    with pytest.raises(render.GraphTooLarge, match="never cut"):
        view_text_at(LONG_FORMULA, at, "compact")
    auto = view_text_at(LONG_FORMULA, at, "auto")
    assert "…" not in auto and "(cos)" in auto  # auto drew the full form instead


def view_text_at(text: str, at: dict[str, float], form: str) -> str:
    r = gradcalc.gradients(text, at=at)
    assert r.dag is not None
    view = render.graph_view(r.dag, r.dag.named[r.output], r.node_values, r.node_gradients,
                             form=form)
    return view if isinstance(view, str) else render.as_text(view)
