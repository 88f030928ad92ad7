"""The Rich views of :mod:`gradcalc.render` on narrow consoles, and the batch text formats
(CSV/TSV ``other`` cells, ``plain`` lines) when gradients are formulas.

Task 1: no view ever cuts a number, a formula or a name. Every view is rendered at many widths
and each of its texts must come back whole once the line wrapping is undone (see
:func:`readings`), with no ``…`` anywhere and no line wider than the console.

Task 2: a CSV reader gets every field of a row back, and splitting a ``plain`` line on
whitespace (and each ``NAME=GRADIENT`` on its first ``=``) gets every field back; a formula
written without its blanks is the same formula.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import re
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from helpers import property_settings
from hypothesis import example, given
from hypothesis import strategies as st
from rich.cells import cell_len
from rich.console import Console, RenderableType
from rich.table import Table

import gradcalc
from gradcalc import derivatives, render
from gradcalc.dag import Dag
from gradcalc.errors import GradcalcError
from gradcalc.fmt import format_count, format_number, short
from gradcalc.listing import layered_rows

WIDTHS = (12, 20, 30, 40, 60, 80, 120)

# --- undoing the line wrapping -----------------------------------------------------------------

_BOX = str.maketrans({"│": " ", "|": " ", "┃": " "})
_RULE = set("-+|─━═┼┬┴├┤╇╈┡┩")


def render_text(view: RenderableType, width: int, unicode: bool = True) -> str:
    buffer = io.StringIO()
    Console(width=width, file=buffer, color_system=None, legacy_windows=False,
            safe_box=not unicode).print(view)
    return buffer.getvalue()


def _is_rule(line: str) -> bool:
    """A table's horizontal rule (``───``, ``+---+``, ``|---+---|``): box characters only,
    without a blank inside."""
    stripped = line.strip()
    return len(stripped) >= 3 and set(stripped) <= _RULE and " " not in stripped


def _blocks(text: str, skip: Iterable[str] = ()) -> list[list[str]]:
    """The paragraphs of ``text`` (runs of non-blank lines), rules and the lines in ``skip``
    (a table's title, which spans its columns) left out."""
    skipped = set(skip)
    blocks: list[list[str]] = [[]]
    for line in text.splitlines():
        if not line.strip():
            blocks.append([])
        elif not _is_rule(line) and line.strip() not in skipped:
            blocks[-1].append(line.translate(_BOX))
    return [block for block in blocks if block]


def _columns(block: list[str]) -> list[tuple[int, int]]:
    """The column spans of a block: what lies between vertical bands, two or more cells wide,
    that are blank on every line. (Table columns are two or more blanks apart; a cell's own text
    has single blanks only, and a line of it starts at its column's edge.)"""
    width = max(map(len, block))
    blank = [all(k >= len(line) or line[k] == " " for line in block) for k in range(width)]
    spans: list[tuple[int, int]] = []
    start = 0
    k = 0
    while k < width:
        if blank[k]:
            end = k
            while end < width and blank[end]:
                end += 1
            if end - k >= 2 or k == 0 or end == width:
                if k > start:
                    spans.append((start, k))
                start = end
            k = end
        else:
            k += 1
    if start < width:
        spans.append((start, width))
    return spans


def readings(text: str, skip: Iterable[str] = ()) -> list[str]:
    """Every way to read ``text`` with the wrapping undone, blanks removed: each column of each
    paragraph read top to bottom (a cell folded over several lines of a table column comes back
    in one piece), and each paragraph read line after line (records and wrapped lines). Rich
    may leave a line blank where it wraps a long word, so two paragraphs in a row are read as
    one too, and the whole text line after line."""
    blocks = _blocks(text, skip)
    joined = [a + b for a, b in itertools.pairwise(blocks)]
    found = ["".join(text.split())]
    for block in blocks + joined:
        for start, end in _columns(block):
            found.append("".join("".join(line[start:end].split()) for line in block))
        found.append("".join("".join(line.split()) for line in block))
    return found


def assert_whole(view: RenderableType, texts: Iterable[str], width: int,
                 unicode: bool = True, skip: Iterable[str] = ()) -> str:
    """Render ``view`` at ``width`` and check that nothing is cut: no ``…``, no line wider than
    the console, and every one of ``texts`` whole in one of the :func:`readings`."""
    out = render_text(view, width, unicode)
    assert "…" not in out, out
    widest = max((cell_len(line) for line in out.splitlines()), default=0)
    assert widest <= width, f"a line of {widest} cells on a console of {width}:\n{out}"
    read = readings(out, skip)
    for text in texts:
        solid = "".join(text.split())
        if solid:
            assert any(solid in r for r in read), f"{text!r} is not whole at width {width}:\n{out}"
    return out


# --- the helper itself -------------------------------------------------------------------------


def test_readings_undo_folding_in_columns_and_lines() -> None:
    table = Table(box=None, pad_edge=False)
    table.add_column("name", overflow="fold")
    table.add_column("value", overflow="fold", justify="right")
    table.add_row("A", "0.2676469447282781")
    table.add_row("B", "-1.5e-300")
    out = render_text(table, 12)
    assert "0.2676469447282781" not in out  # it is folded...
    assert any("0.2676469447282781" in r for r in readings(out))  # ...and read back whole
    assert any("-1.5e-300" in r for r in readings(out))
    # a cut number is not whole
    table.columns[1].overflow = "ellipsis"
    out = render_text(table, 12)
    assert not any("0.2676469447282781" in r for r in readings(out))


def test_readings_of_a_boxed_table_skip_rules_and_bars() -> None:
    from rich import box

    table = Table(box=box.ASCII)
    table.add_column("x", overflow="fold")
    table.add_column("y", overflow="fold")
    table.add_row("(-sigmoid(A*B) + 1)*B", "12345678901")
    out = render_text(table, 20, unicode=False)
    assert "(-sigmoid(A*B) + 1)*B" not in out
    assert any("(-sigmoid(A*B)+1)*B" in r for r in readings(out))
    assert any("12345678901" in r for r in readings(out))


# --- examples ----------------------------------------------------------------------------------

SIGMOID = "OUT = sigmoid(A*B) + sin(C)"
DIAMOND = "X1 = sin(X0)+cos(X0); X2 = sin(X1)+cos(X1); X3 = sin(X2)+cos(X2); OUT = X3*X1"
LONG_NAMES = ("learning_rate_of_the_model = 0.001; weight_of_the_first_layer = 0.3; "
              "OUT = sigmoid(learning_rate_of_the_model*weight_of_the_first_layer)^3")
WIDE = "OUT = A*1e-300 + B/3 + sqrt(C)*1e300 + exp(-A)*D"
RESULTS = [
    (SIGMOID, {"A": 0.3, "B": 1.1}, True),
    (SIGMOID, {"A": 0.3, "B": 1.1, "C": 0.7}, None),
    (DIAMOND, {}, None),
    (DIAMOND, {"X0": 0.2}, True),
    (LONG_NAMES, {}, None),
    (WIDE, {"A": 0.1, "B": 0.2, "C": 0.3, "D": -0.4}, None),
    ("B = A*3; OUT = (B+1)*(B+2)", {}, None),
    ("OUT = A*B*C*D*E*F*G*H*J*K*L*M*N*P*Q*R*S*T*U*V*W*X*Y*Z", {}, None),
]


def result_texts(r: gradcalc.Result) -> list[str]:
    """What the results view must show whole: names, values, gradients, formulas, stats."""
    texts = [r.output, "?" if r.value is None else format_number(r.value)]
    # statements several formulas share: once, before them ("where: X1 = ...; X2 = ...")
    texts += [f"{name} = {text}" for name, text in r.bindings]
    for name in (list(r.formulas) or list(r.gradients)):
        texts.append(name)
        if name in r.values:
            texts.append(format_number(r.values[name]))
        if name in r.formulas:
            texts.append(r.formulas[name].local)
        if name in r.gradients:
            texts.append(format_number(r.gradients[name]))
    if r.stats is not None:
        s = r.stats
        texts += [f"{s.nodes} / {s.edges}", str(s.merged), str(s.cone_nodes),
                  f"{s.visited_nodes} nodes, {s.visited_edges} edges"]
        for name, paths in s.paths.items():
            texts += [f"paths from {r.output} to {name}", format_count(paths)]
    return texts


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize(("program", "at", "symbolic"), RESULTS)
def test_results_table_never_cuts(program: str, at: dict[str, float], symbolic: bool | None,
                                  width: int) -> None:
    r = gradcalc.gradients(program, at=at, symbolic=symbolic, stats=True)
    assert_whole(render.to_table(r), result_texts(r), width)


def evaluated(program: str, at: dict[str, float] | None = None
              ) -> tuple[Dag, int, list[float], list[float]]:
    r = gradcalc.gradients(program, at=at)
    assert r.dag is not None
    return r.dag, r.dag.named[r.output], r.node_values, r.node_gradients


def layered_texts(program: str, at: dict[str, float] | None, unicode: bool) -> list[str]:
    """What the graph table must show whole (its layer and consumer columns may go first)."""
    from gradcalc.picture import Style

    texts = []
    for row in layered_rows(*evaluated(program, at), Style(unicode)):
        texts += [row.node, row.op, row.inputs, short(row.value), short(row.gradient)]
    return texts


LAYERED = [
    (SIGMOID, {"A": 0.3, "B": 1.1, "C": 0.7}),
    (DIAMOND, {"X0": 0.2}),
    (LONG_NAMES, None),
    (WIDE, {"A": 0.1, "B": 0.2, "C": 0.3, "D": -0.4}),
    ("OUT = atan2(A*B, C) - A/B", {"A": 1e-7, "B": -3e5, "C": 2}),
]


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("unicode", [True, False])
@pytest.mark.parametrize(("program", "at"), LAYERED)
def test_layered_table_never_cuts(program: str, at: dict[str, float] | None, unicode: bool,
                                  width: int) -> None:
    view = render.layered_table(*evaluated(program, at), unicode)
    assert_whole(view, layered_texts(program, at, unicode), width, unicode)


def test_layered_table_is_still_a_table_of_every_node() -> None:
    """graph_view's callers rely on the table form being a Rich Table with one row a node."""
    dag, output, values, grads = evaluated(SIGMOID, {"A": 0.3, "B": 1.1, "C": 0.7})
    view = render.graph_view(dag, output, values, grads, form="table")
    assert isinstance(view, Table)
    assert view.row_count == len(layered_rows(dag, output, values, grads)) == 7


def test_layered_table_drops_layer_and_consumers_before_it_becomes_records() -> None:
    view = render.layered_table(*evaluated(SIGMOID, {"A": 0.3, "B": 1.1, "C": 0.7}))
    wide = render_text(view, 120)
    assert wide.splitlines()[1].split() == ["layer", "node", "op", "inputs", "value",
                                            "∂OUT/∂node", "consumers"]
    narrower = render_text(view, 60)
    assert narrower.splitlines()[1].split() == ["node", "op", "inputs", "value", "∂OUT/∂node"]
    records = render_text(view, 30)
    lines = [line.rstrip() for line in records.splitlines()]
    assert lines[:7] == ["A", "  layer 0", "  op input", "  value 0.3", "  ∂OUT/∂node 0.268",
                         "  consumers 1", "B"]


def test_wide_consoles_show_the_tables_as_before() -> None:
    """Where a table fits, it is Rich's own layout, unchanged."""
    r = gradcalc.gradients("B = A*3; OUT = (B+1)*(B+2)", at={"A": 2})
    assert [line.rstrip() for line in render_text(render.to_table(r), 80).splitlines()] == [
        "OUT = 56",
        "",
        "name  value  ∂OUT/∂name",
        "A         2          45",
        "B         6          15",
    ]
    checks = derivatives.check_gradients(gradcalc.compile_program("OUT = A*3"), at={"A": 1})
    plain = Table(box=None, header_style="bold")
    for column in ("name", "gradient", "finite difference", "relative error", ""):
        plain.add_column(column, justify="left" if column == "name" else "right")
    for c in checks:
        plain.add_row(c.name, format_number(c.gradient), format_number(c.estimate),
                      f"{c.relative_error:.2g}", "[green]ok[/green]" if c.ok else "FAIL")
    for width in (60, 200):
        assert render_text(render.checks_table(checks), width) == render_text(plain, width)


def test_a_table_too_wide_keeps_its_numbers_whole_by_wrapping_formulas() -> None:
    r = gradcalc.gradients(SIGMOID, at={"A": 0.3, "B": 1.1}, symbolic=True)
    out = render_text(render.to_table(r), 60)
    # the table form (a header line), the numbers on one line each, the formula wrapped
    assert any(line.startswith("name  value") for line in out.splitlines())
    assert "0.2676469447282781" in out and "0.07299462128953038" in out
    assert "(-sigmoid(A*B) + 1)*B*sigmoid(A*B)" not in out
    assert_whole(render.to_table(r), result_texts(r), 60)


def matrix_cases() -> list[tuple[str, derivatives.Matrix]]:
    at = {"A": 0.3, "B": 1.1, "C": 0.7}
    return [
        ("hessian", derivatives.hessian(gradcalc.compile_program(SIGMOID), at=at)),
        ("hessian", derivatives.hessian(gradcalc.compile_program(SIGMOID))),
        ("jacobian", derivatives.jacobian(gradcalc.compile_program(
            "U = A*B*1e-300; V = sigmoid(A)/3 + C; W = U + V"), ["U", "V", "W"], at=at)),
        ("jacobian", derivatives.jacobian(gradcalc.compile_program(
            "U = sin(A)*B; V = max(A, B)"), ["U", "V"])),
    ]


@pytest.mark.parametrize("width", WIDTHS)
def test_matrix_table_never_cuts(width: int) -> None:
    for key, matrix in matrix_cases():
        texts = [*matrix.rows, *matrix.columns]
        for row in matrix.rows:
            for column in matrix.columns:
                entry = matrix.entries[row][column]
                texts.append(entry if isinstance(entry, str) else format_number(entry))
        assert_whole(render.matrix_table(matrix, key), texts, width, skip=[key])


@pytest.mark.parametrize("width", WIDTHS)
def test_checks_table_never_cuts(width: int) -> None:
    dag = gradcalc.compile_program(WIDE)
    checks = derivatives.check_gradients(dag, at={"A": 0.1, "B": 0.2, "C": 0.3, "D": -0.4})
    checks += derivatives.check_gradients(gradcalc.compile_program("OUT = relu(A)"),
                                          at={"A": 0.0})
    texts = []
    for c in checks:
        texts += [c.name, format_number(c.gradient), format_number(c.estimate),
                  f"{c.relative_error:.2g}", "ok" if c.ok else "FAIL"]
    assert "FAIL" in texts and "ok" in texts
    assert_whole(render.checks_table(checks), texts, width)


BATCH = [
    (SIGMOID, {}), (SIGMOID, {"A": 0.3, "B": 1.1, "C": 0.7}), (DIAMOND, {}),
    ("OUT = log(A)", {"A": -1}), ("OUT = atan2(A)", {}), ("OUT = (A+", {}), (WIDE, {}),
    ("OUT = max(A, B)", {}), (LONG_NAMES, {}),
]


def batch_results() -> list[dict[str, Any]]:
    return [gradcalc.solve_line(text, at=at, line=i) for i, (text, at) in enumerate(BATCH, 7)]


@pytest.mark.parametrize("width", WIDTHS)
def test_batch_table_never_cuts(width: int) -> None:
    results = batch_results()
    texts = []
    for row in results:
        texts += [str(row["line"]), row["output"] or ""]
        if row["value"] is not None:
            texts.append(format_number(row["value"]))
        texts += [f"{n}={g if isinstance(g, str) else format_number(g)}"
                  for n, g in row["gradients"].items()]
        if row["error"]:
            texts.append(row["error"]["message"])
    assert_whole(render.batch_table(results), texts, width)


# --- random programs at random widths ----------------------------------------------------------

NAMES = ("A", "B", "C", "rate", "x_long_name_1")
UNARY = ("sin", "cos", "exp", "sigmoid", "tanh", "softplus", "relu", "abs", "sqrt", "log")
BINARY = ("+", "-", "*", "/", "^")


@st.composite
def expressions(draw: Callable[..., Any], depth: int = 3) -> str:
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        if draw(st.booleans()):
            return draw(st.sampled_from(NAMES))
        return draw(st.sampled_from(["2", "0.5", "3", "1e-3", "7.25", "10"]))
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return f"{draw(st.sampled_from(UNARY))}({draw(expressions(depth - 1))})"
    if kind == 1:
        return f"max({draw(expressions(depth - 1))}, {draw(expressions(depth - 1))})"
    if kind == 2:
        return f"-({draw(expressions(depth - 1))})"
    op = draw(st.sampled_from(BINARY))
    right = draw(st.sampled_from(["2", "3", "0.5"])) if op == "^" else draw(
        expressions(depth - 1))
    return f"({draw(expressions(depth - 1))}) {op} ({right})"


@st.composite
def programs(draw: Callable[..., Any]) -> str:
    first = draw(expressions())
    second = draw(expressions())
    return f"T = {first}; OUT = T*({second}) + T"


POINT = {"A": 0.7, "B": 1.3, "C": 0.4, "D": -0.6, "X0": 0.2, "rate": 2.5, "x_long_name_1": 0.9}


def solve(program: str, values: bool, symbolic: bool | None = None
          ) -> gradcalc.Result | None:
    dag = gradcalc.compile_program(program)
    at = {n: v for n, v in POINT.items() if n in dag.inputs} if values else {}
    try:
        return gradcalc.gradients(dag, at=at, symbolic=symbolic, stats=True)
    except GradcalcError:
        return None


@property_settings(60)
@given(program=programs(), width=st.integers(10, 130), values=st.booleans(),
       symbolic=st.sampled_from([None, True]))
def test_random_results_tables_never_cut(program: str, width: int, values: bool,
                                         symbolic: bool | None) -> None:
    r = solve(program, values, symbolic)
    if r is not None:
        assert_whole(render.to_table(r), result_texts(r), width)


@property_settings(40)
@given(program=programs(), width=st.integers(10, 130), unicode=st.booleans())
def test_random_layered_tables_never_cut(program: str, width: int, unicode: bool) -> None:
    at = {n: v for n, v in POINT.items() if re.search(rf"\b{n}\b", program)}
    try:
        view = render.layered_table(*evaluated(program, at), unicode)
    except GradcalcError:
        return
    assert_whole(view, layered_texts(program, at, unicode), width, unicode)


# --- the width allocation ------------------------------------------------------------------------


@property_settings(100)
@given(ranges=st.lists(st.tuples(st.integers(1, 30), st.integers(0, 60)).map(
           lambda t: (t[0], t[0] + t[1])), min_size=1, max_size=8),
       room=st.integers(0, 250))
def test_allocate_keeps_each_column_within_its_range_and_the_room(
        ranges: list[tuple[int, int]], room: int) -> None:
    widths = render._allocate(ranges, room)
    if sum(low for low, _ in ranges) > room:
        assert widths is None
        return
    assert widths is not None
    assert all(low <= w <= high for w, (low, high) in zip(widths, ranges, strict=True))
    if sum(high for _, high in ranges) <= room:
        assert widths == [high for _, high in ranges]
    else:
        assert sum(widths) == room  # no cell is wasted while a column lacks some
        # the widest are cut first: a column below its widest is never narrower than one above
        # its narrowest
        for w, (_, high) in zip(widths, ranges, strict=True):
            if w < high:
                assert all(other <= w + 1 for other, (lo, _) in zip(widths, ranges, strict=True)
                           if other > lo)


def test_column_range() -> None:
    assert render._column_range(["name", "A", "(-sigmoid(A*B) + 1)*B"]) == (14, 21)
    assert render._column_range(["x" * 40 + " y"], fold=24) == (24, 42)
    assert render._column_range([]) == (1, 1)
    assert render._column_range(["∂OUT/∂name"]) == (10, 10)


# --- batch text formats with formulas ------------------------------------------------------------


def evaluate(formula: str, at: dict[str, float]) -> float | str:
    """A printed formula's value (its last statement), or the kind of error it raises."""
    try:
        dag = gradcalc.compile_program(formula, "<formula>")
        given_ = {n: v for n, v in at.items() if n in dag.inputs and n != dag.output}
        value = gradcalc.gradients(dag, at=given_).value
    except GradcalcError as exc:
        return exc.kind
    return "no value" if value is None else value


def same_value(a: float | str, b: float | str) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


def check_plain_line(line: str, row: dict[str, Any]) -> None:
    """``line`` split on whitespace gives ``row`` back (formulas without their blanks)."""
    assert line.endswith("\n") and "\n" not in line[:-1] and len(line.splitlines()) == 1
    fields = line.split()
    assert fields[0] == str(row["line"])
    if row["error"] is not None:
        assert fields[1] == "error:"
        assert " ".join(fields[2:]).startswith(" ".join(row["error"]["message"].split()))
        return
    assert fields[1] == row["output"]
    assert fields[2] == ("?" if row["value"] is None else format_number(row["value"]))
    pairs = [field.split("=", 1) for field in fields[3:]]
    assert [name for name, _ in pairs] == list(row["gradients"])
    at = {**POINT, **row["inputs"]}
    for name, text in pairs:
        want = row["gradients"][name]
        if want in ("nan", "inf", "-inf"):  # a non-finite number, written as JSON writes it
            assert text == want
        elif isinstance(want, str):
            assert text == "".join(want.split())
            assert same_value(evaluate(text, at), evaluate(want, at)), (text, want)
            assert evaluate(want, at) != "no value", want
        else:
            assert float(text) == want or (math.isnan(want) and text == "nan")


def check_csv(text: str, rows: list[dict[str, Any]], delimiter: str) -> None:
    """Read back with the csv module: every cell is the JSON Lines field."""
    table = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    header, body = table[0], table[1:]
    assert header[:3] == ["line", "output", "value"] and header[-2:] == ["other", "error"]
    columns = [h[2:] for h in header[3:-2]]
    assert len(body) == len(rows)
    for cells, row in zip(body, rows, strict=True):
        assert len(cells) == len(header)
        assert cells[0] == str(row["line"]) and cells[1] == (row["output"] or "")
        grads = row["gradients"]
        for name, cell in zip(columns, cells[3:-2], strict=True):
            if name not in grads:
                assert cell == ""
            elif isinstance(grads[name], str):
                assert cell == grads[name]
            else:
                assert float(cell) == grads[name]
        other = json.loads(cells[-2]) if cells[-2] else {}
        assert other == {n: g for n, g in grads.items() if n not in columns}
        assert cells[-1] == (row["error"]["message"] if row["error"] else "")


def test_plain_and_csv_read_back_the_examples() -> None:
    rows = batch_results()
    assert any(isinstance(g, str) and ";" in g and "=" in g
               for row in rows for g in row["gradients"].values())
    for row in rows:
        check_plain_line(render.batch_plain(row), row)
    for delimiter in (",", "\t"):
        for wrt in (None, ["A", "X0"], []):
            out = io.StringIO()
            writer = render.BatchTable(out, delimiter, wrt)
            for row in rows:
                writer.write(row)
            writer.close()
            check_csv(out.getvalue(), rows, delimiter)


def test_other_cell_is_a_json_object_like_jsonl() -> None:
    out = io.StringIO()
    writer = render.BatchTable(out, ",", ["A"])
    writer.write(gradcalc.solve_line("OUT = A*B + sin(C)*D", at={"A": 1, "B": 2, "D": 3}))
    writer.write(gradcalc.solve_line("OUT = A*B", at={"A": 1, "B": 2}))
    writer.close()
    assert out.getvalue() == (
        "line,output,value,d_A,other,error\n"
        '1,OUT,,2,"{""B"":1.0,""C"":""D*cos(C)"",""D"":""sin(C)""}",\n'
        '1,OUT,2,2,"{""B"":1.0}",\n')


def test_plain_error_messages_stay_on_one_line() -> None:
    row: dict[str, Any] = {"line": 3, "output": None, "value": None, "gradients": {}, "values": {},
           "inputs": {}, "warnings": [],
           "error": {"message": "first\nsecond\r\nthird\u2028fourth\x0bfifth", "line": 3,
                     "column": 7, "kind": "input", "hint": None}}
    assert render.batch_plain(row) == "3 error: first second third fourth fifth (column 7)\n"


def test_plain_writes_formulas_without_blanks() -> None:
    row = gradcalc.solve_line("B = A*3; OUT = (B+1)*(B+2)")
    assert render.batch_plain(row) == "1 OUT ? A=18*A+9 B=6*A+3\n"
    row = gradcalc.solve_line("X1 = sin(X0)+cos(X0); OUT = sin(X1)+cos(X1)", wrt=["X0"])
    assert render.batch_plain(row) == (
        "1 OUT ? X0=X1=cos(X0)+sin(X0);(cos(X0)-sin(X0))*(cos(X1)-sin(X1))\n")


@property_settings(60)
@given(program=programs(), values=st.booleans())
@example(
    program='T = 2; OUT = T*((sin((A) - (A))) ^ (0.5)) + T',
    values=True,
)  # a NaN gradient: the string "nan", not a formula
def test_random_batch_lines_read_back(program: str, values: bool) -> None:
    dag = gradcalc.compile_program(program)
    at = {n: v for n, v in POINT.items() if n in dag.inputs} if values else {}
    row = gradcalc.solve_line(program, at=at, line=5)
    check_plain_line(render.batch_plain(row), row)
    for delimiter in (",", "\t"):
        out = io.StringIO()
        writer = render.BatchTable(out, delimiter, ["A"])
        writer.write(row)
        writer.close()
        check_csv(out.getvalue(), [row], delimiter)
