"""Graph pictures: the layered drawing (full and compact), the tree listing, the layered table,
the ``auto`` fallbacks and the DOT / Mermaid exports.

Golden files live in ``tests/golden/``; ``pytest --update-golden`` rewrites them from the
current output (look at them before committing). The property tests parse the character grid
back and follow every edge from its source label to the arrow in front of its target.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys
import time
from collections import deque

import pytest
from helpers import property_settings
from hypothesis import assume, given
from hypothesis import strategies as st

import gradcalc
from gradcalc import listing, picture, render
from gradcalc.engine import cone
from gradcalc.errors import EvaluationError
from gradcalc.export import _dot_escape, _mermaid_escape, to_dot, to_mermaid
from gradcalc.ops import CONST, IDENTITY, INPUT
from gradcalc.picture import Style, TooLarge, draw

SEED = "A = 2; B = A*3; OUT = (B+1)*(B+2)"
HARDER = "A = 2; B = A*3; C = sin(B); D = B*C; OUT = (C+D)*(D-A)"
GRAPHS = {"seed": SEED, "harder": HARDER}

N, E, S, W = picture.N, picture.E, picture.S, picture.W
OPPOSITE = {N: S, S: N, E: W, W: E}
STEP = {N: (-1, 0), S: (1, 0), E: (0, 1), W: (0, -1)}
# The glyph table read backwards; a lone end ("─" drawn for E or W alone) reads as both.
GLYPH_MASK = {glyph: mask for mask, glyph in picture._UNICODE_LINES.items()
              if mask not in (N, S, E, W)}

PROPERTY = property_settings(80)


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
    kind = "tree" if isinstance(view, str) else "table"
    print(f"\n1,000-node DAG ({len(dag)} nodes): auto fallback to the {kind} in {elapsed:.3f} s")
    if isinstance(view, str):
        assert view == "\n".join(listing.tree_lines(dag, output, values, grads)) + "\n"
        assert widest(view) <= 100
    else:
        from rich.table import Table

        assert isinstance(view, Table)
        assert view.row_count == len(listing.layered_rows(dag, output, values, grads)) >= 1000
        assert widest("\n".join(listing.tree_lines(dag, output, values, grads))) > 100


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


# --- random programs ------------------------------------------------------------------------------

INPUT_NAMES = ["A", "B", "C"]


@st.composite
def programs(draw, min_statements: int = 3, max_statements: int = 25) -> str:
    """Random DAG programs: a few inputs, then statements over earlier names (reused freely),
    each an expression of depth up to two."""
    count = draw(st.integers(min_statements, max_statements))
    names = INPUT_NAMES[: draw(st.integers(1, 3))]
    lines = [f"{n} = {draw(st.sampled_from(['0.5', '1.5', '2', '-1', '0.7']))}" for n in names]

    def operand(depth: int) -> str:
        pick = draw(st.integers(0, 9))
        if depth > 0 and pick >= 7:
            return expression(depth - 1)
        if pick >= 3:  # mostly recent names: deep graphs
            return names[-1 - draw(st.integers(0, min(2, len(names) - 1)))]
        return draw(st.sampled_from(names))

    def expression(depth: int) -> str:
        kind = draw(st.sampled_from(["add", "sub", "mul", "divc", "addc", "mulc", "sin", "cos",
                                     "tanh", "exp", "max", "min", "alias"]))
        a = operand(depth)
        if kind in ("add", "sub", "mul", "max", "min"):
            b = operand(depth)
            sign = {"add": "+", "sub": "-", "mul": "*"}.get(kind)
            return f"({a} {sign} {b})" if sign else f"{kind}({a}, {b})"
        if kind in ("divc", "addc", "mulc"):
            c = draw(st.sampled_from(["2", "3", "0.5"]))
            return f"({a} {dict(divc='/', addc='+', mulc='*')[kind]} {c})"
        if kind == "exp":
            return f"exp(tanh({a}))"
        if kind == "alias":
            return a
        return f"{kind}({a})"

    for index in range(count):
        name = "OUT" if index == count - 1 else f"N{index}"
        body = expression(2)
        if index == count - 1:  # let the output depend on several earlier names
            extra = [names[-1 - k] for k in range(1, min(3, len(names)))]
            body = " + ".join([f"({body})", *extra])
        lines.append(f"{name} = {body}")
        names.append(name)
    return "\n".join(lines)


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
    in full mode, constants folded away."""
    needed = cone(dag, [output])
    count, edges = 0, set()
    entry: dict[int, int] = {}
    out_of: dict[int, int] = {}
    for node in range(output + 1):
        op = dag.ops[node]
        if not needed[node] or op is CONST:
            continue
        if op in (INPUT, IDENTITY) or compact or dag.names[node] is None:
            entry[node] = out_of[node] = count
            count += 1
        else:
            entry[node], out_of[node] = count, count + 1
            edges.add((count, count + 1))
            count += 2
        for a in dag.args[node]:
            if dag.ops[a] is not CONST:
                edges.add((out_of[a], entry[node]))
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


def check_drawing(dag, output, values, grads, compact: bool, style: Style) -> dict:
    """Every check on one drawing (see :func:`check_grid`); returns what the edges reach
    beyond their targets."""
    drawn = draw(dag, output, values, grads, compact=compact, style=style, max_nodes=100_000)
    assert drawn == draw(dag, output, values, grads, compact=compact, style=style,
                         max_nodes=100_000), "not deterministic"
    nodes, real, text = layout(dag, output, values, grads, compact, style)
    assert text == drawn
    picture_of = f"\n{text}"

    # The visual graph is the DAG's: same nodes, same edges, values and gradients shown.
    count, expected, out_of = expected_visual_graph(dag, output, compact)
    assert real == count, picture_of
    assert visual_edges(nodes) == expected, picture_of
    d = style.partial
    for node, index in out_of.items():
        shown = [nodes[index].label, *nodes[index].notes]
        value, grad = picture.short(values[node]), picture.short(grads[node])
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
    return check_grid(nodes, text, style, expected)


def check_grid(nodes, text: str, style: Style, expected: set[tuple[int, int]]) -> dict:
    """The character grid read back: labels intact, lines consistent, every edge a path from
    its source label to the arrow in front of its target, read left to right (a line is
    followed east, north and south, never back west). Returns, per source label, the labels its
    lines also lead to (junctions shared with other edges)."""
    picture_of = f"\n{text}"
    grid = Grid(text, style)
    lines = style.lines
    arrow = style.arrow
    line_chars = set(lines.values())

    # Labels and notes are intact: no edge cell overwrites them.
    owner: dict[tuple[int, int], int] = {}
    label_end: dict[tuple[int, int], int] = {}  # the cell right after a label -> its node
    label_start: dict[tuple[int, int], int] = {}
    for index, node in enumerate(nodes):
        if node.dummy:
            continue
        for offset, line in enumerate([node.label, *node.notes]):
            for i, ch in enumerate(line):
                cell = (node.row + offset, node.x + i)
                assert cell not in owner, f"two labels share {cell}{picture_of}"
                owner[cell] = index
                assert grid.char(*cell) == ch, (
                    f"{node.label!r}: {grid.char(*cell)!r} at {cell} instead of {ch!r}"
                    f"{picture_of}")
        label_end[(node.row, node.x + len(node.label))] = index
        label_start[(node.row, node.x)] = index

    # Every other cell is blank, a line or an arrow; arrows stand right before a label.
    masks: dict[tuple[int, int], int] = {}
    arrows: dict[tuple[int, int], int] = {}
    for r in range(grid.height):
        for c in range(grid.width):
            ch = grid.rows[r][c]
            if (r, c) in owner or ch == " ":
                continue
            if ch == arrow:
                assert (r, c + 1) in label_start, f"arrow at {(r, c)} before no label{picture_of}"
                arrows[(r, c)] = label_start[(r, c + 1)]
            else:
                assert ch in line_chars, f"stray {ch!r} at {(r, c)}{picture_of}"
                masks[(r, c)] = GLYPH_MASK[ch] if style.unicode else 0
    if not style.unicode:  # "+" does not say which way it goes: ask the neighbours
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
                    beyond = (r + 2 * dr, c + 2 * dc)
                    hop = (direction in (N, S) and grid.char(*other) == "-"
                           and beyond in masks and grid.char(*beyond) in "|+")
                    if (other in masks and grid.char(*other) in fits[direction]) or (
                            direction == E and other in arrows) or (
                            direction == W and (r, c) in label_end) or hop:
                        mask |= direction
                assert bin(mask).count("1") >= 2, f"a '+' joining nothing at {(r, c)}{picture_of}"
                masks[(r, c)] = mask

    # A crossing: a horizontal line with a vertical one pointing at it from above and below
    # (the vertical line hops under the horizontal one; they do not join).
    hops = {(r, c) for (r, c), mask in masks.items()
            if mask == E | W and masks.get((r - 1, c), 0) & S and masks.get((r + 1, c), 0) & N}

    # (a) Consistent connections: each direction a glyph claims is answered by its neighbour.
    for (r, c), mask in masks.items():
        for direction, (dr, dc) in STEP.items():
            if not mask & direction:
                continue
            other = (r + dr, c + dc)
            if other in masks and masks[other] & OPPOSITE[direction]:
                continue
            if direction in (N, S) and other in hops:
                continue
            if direction == E and other in arrows:
                continue
            if direction == W and (r, c) in label_end:
                continue
            raise AssertionError(f"line cell {(r, c)} {grid.char(r, c)!r} points "
                        f"{ {N: 'north', S: 'south', E: 'east', W: 'west'}[direction]} at "
                        f"{grid.char(*other)!r}{picture_of}")
    # An arrow is fed from its left by a line.
    for (r, c) in arrows:
        assert (r, c - 1) in masks and masks[(r, c - 1)] & E, f"arrow {(r, c)} fed by nothing"

    # (b) Every edge is one connected path from its source label to an arrow at its target.
    targets: dict[int, set[int]] = {}
    for u, v in expected:
        targets.setdefault(u, set()).add(v)
    spurious = {}
    for u, wanted in targets.items():
        node = nodes[u]
        start = (node.row, node.x + len(node.label))
        assert start in masks, f"no line leaves {node.label!r}{picture_of}"
        seen, queue, reached = {start}, deque([start]), set()
        while queue:
            r, c = queue.popleft()
            mask = masks[(r, c)]
            for direction, (dr, dc) in STEP.items():
                if not mask & direction or direction == W:
                    continue
                other = (r + dr, c + dc)
                while direction in (N, S) and other in hops:  # pass under the crossing line
                    other = (other[0] + dr, other[1])
                if direction == E and other in arrows:
                    reached.add(arrows[other])
                elif other in masks and masks[other] & OPPOSITE[direction] and other not in seen:
                    seen.add(other)
                    queue.append(other)
        missing = wanted - reached
        assert not missing, (f"{node.label!r} does not reach "
                             f"{[nodes[v].label for v in missing]}{picture_of}")
        if reached - wanted:
            spurious[node.label] = sorted(nodes[v].label for v in reached - wanted)
    # Every node with operands has an arrow right in front of its label.
    for v in {v for _, v in expected}:
        assert (nodes[v].row, nodes[v].x - 1) in arrows, f"{nodes[v].label!r} has no arrow"
    return spurious


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
    assert check_grid(nodes, text, Style(), expected) == {}
    for old, new in (("┤", "│"), ("┤", " "), ("┤", "┼"), ("▶", "─"), ("▶(+)=7", "─(+)=7"),
                     ("B=6", "B─6"), ("∂=15", "∂─15"), ("──┐", "── "), ("┘", "┴")):
        broken = text.replace(old, new, 1)
        assert broken != text
        with pytest.raises(AssertionError):
            check_grid(nodes, broken, Style(), expected)


@PROPERTY
@given(programs())
def test_random_drawings_connect_every_edge(text: str) -> None:
    dag, output, values, grads = evaluate_or_reject(text)
    for compact in (False, True):
        for unicode in (True, False):
            check_drawing(dag, output, values, grads, compact, Style(unicode))


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
