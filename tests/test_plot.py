"""Plots of sweeps (:mod:`gradcalc.plot`): terminal pictures against golden files (Unicode,
ASCII, colour markup; curves with kinks and failures, a heat map), their shape for any data
(exactly ``height`` plot rows, no line wider than ``width``, whatever None, inf and NaN come),
the arrows' directions, the ticks, the SVG's structure and the PNG's header.

Golden files live in ``tests/golden/plot/``; ``pytest --update-golden`` rewrites them.
"""

from __future__ import annotations

import math
import re
import struct
import sys
import xml.etree.ElementTree as ET

import pytest
from helpers import property_settings
from hypothesis import example, given
from hypothesis import strategies as st

from gradcalc import plot
from gradcalc.errors import InputError
from gradcalc.sweep import sweep

SVG = "{http://www.w3.org/2000/svg}"
PROPERTY = property_settings(100)


def grid(lo: float, hi: float, n: int) -> list[float]:
    return [lo + (hi - lo) * k / (n - 1) for k in range(n)]


def line(program: str, lo: float = -3, hi: float = 3, n: int = 61, **options) -> plot.LineData:
    return plot.line_data(sweep(program, {"X": grid(lo, hi, n)}, **options))


def heat(program: str, n: int = 21) -> plot.GridData:
    points = grid(-2, 2, n)
    return plot.grid_data(sweep(program, {"X": points, "Y": points}))


CUBIC = "OUT = X^3 - 2*X"
# Fails below -2 (sqrt of a negative), kinks at 0 (abs) and -2 (sqrt at 0), where the slope is
# infinite: every mark and a note.
KINKS = "OUT = abs(X) * sqrt(X + 2)"
# Fails at the origin only (log 0).
SADDLE = "OUT = sin(X) * cos(Y) + 0.5*log(X^2 + Y^2)"


def structure(text: str, width: int, height: int) -> list[str]:
    """Check the layout every terminal picture has and return its lines: ``height`` plot rows
    between the left axis and the right one, then the x axis, all within ``width``."""
    lines = text.split("\n")
    assert len(lines) >= height + 3
    assert all(len(line) <= width for line in lines), max(map(len, lines))
    axis = lines[height]
    found = re.fullmatch(r"( *)([└+])([─┬×+x-]*)([┘+])", axis)
    assert found, axis
    left, right = len(found[1]), len(axis) - 1
    for row in lines[:height]:
        assert row[left] in "┤│+|", row
        assert row[left - 1 : left] in ("", " ")
        assert row[right] in "├│+|", row
    return lines


# --- golden pictures -----------------------------------------------------------------------------


@pytest.mark.parametrize("ascii", [False, True], ids=["unicode", "ascii"])
@pytest.mark.parametrize(("name", "program", "n"), [("cubic", CUBIC, 121), ("kinks", KINKS, 61)])
def test_line_golden(golden, name: str, program: str, n: int, ascii: bool) -> None:
    text = plot.line_plot(*line(program, n=n), width=72, height=14, ascii=ascii)
    structure(text, 72, 14)
    golden(f"plot/line_{name}_{'ascii' if ascii else 'unicode'}.txt", text + "\n")


@pytest.mark.parametrize("ascii", [False, True], ids=["unicode", "ascii"])
def test_heat_golden(golden, ascii: bool) -> None:
    text = plot.heat_map(*heat(SADDLE), width=72, height=18, ascii=ascii)
    structure(text, 72, 18)
    golden(f"plot/heat_saddle_{'ascii' if ascii else 'unicode'}.txt", text + "\n")


def test_color_golden(golden) -> None:
    from rich.text import Text

    data = line(KINKS)
    text = plot.line_plot(*data, width=72, height=10, color=True)
    assert Text.from_markup(text).plain == plot.line_plot(*data, width=72, height=10)
    golden("plot/line_kinks_color.txt", text + "\n")


def test_color_escapes_names() -> None:
    """Names are text, never markup: an array element's brackets survive."""
    from rich.text import Text

    xs = grid(-1, 1, 9)
    args = ("W[0]", "[bold]", xs, [x * x for x in xs], [2 * x for x in xs], [False] * 9)
    text = plot.line_plot(*args, width=60, height=8, color=True)
    assert Text.from_markup(text).plain == plot.line_plot(*args, width=60, height=8)
    assert "∂[bold]/∂W[0]" in Text.from_markup(text).plain
    field = ("W[0]", "W[1]", "[red]", xs, xs, [[1.0] * 9] * 9, [[(0.0, 1.0)] * 9] * 9)
    text = plot.heat_map(*field, width=60, height=8, color=True)
    assert Text.from_markup(text).plain == plot.heat_map(*field, width=60, height=8)


def test_edge_golden(golden) -> None:
    """No point defined, and a constant: notes, no axis labels where there is nothing."""
    failed = plot.line_plot(*line("OUT = log(X)", -3, -1, 5), width=40, height=5, ascii=True)
    constant = plot.line_plot(*line("OUT = 2 + 0*X", -1, 1, 5), width=40, height=5,
                              ascii=True)
    golden("plot/line_edges_ascii.txt", failed + "\n\n" + constant + "\n")
    assert "OUT could not be evaluated at any of the 5 points" in failed.replace("\n", " ")
    assert "x failed (5)" in failed


# --- what the pictures show --------------------------------------------------------------------


def test_marks() -> None:
    data = line(KINKS)
    text = plot.line_plot(*data, width=72, height=14)
    lines = structure(text, 72, 14)
    failed = sum(v is None for v in data.values)
    assert failed == 10 and sum(data.kinks) == 2
    assert sum(row.count("◆") for row in lines[:14]) == 2
    assert lines[14].count("×") == failed  # one column each at this width
    legend = "\n".join(lines[17:])
    for item in ("⠒⠒ OUT (left axis)", "·· ∂OUT/∂X (right axis)", "◆ kink (2)",
                 "× failed (10)", "∂OUT/∂X is infinite at 1 point: not drawn"):
        assert item in legend
    ascii = plot.line_plot(*data, width=72, height=14, ascii=True)
    assert ascii.isascii()
    assert "k kink (2)" in ascii and "x failed (10)" in ascii


def test_two_axes() -> None:
    """The value on the left, the slope on the right, each on its own round ticks."""
    lines = plot.line_plot(*line(CUBIC, n=121), width=72, height=14).split("\n")
    left = [row.split("┤")[0].strip() for row in lines[:14] if "┤" in row]
    right = [row.split("├")[1].strip() for row in lines[:14] if "├" in row]
    assert left == ["25", "0", "-25"]  # the value reaches ±21
    assert right == ["30", "20", "10", "0", "-10"]  # the slope runs from -2 to 25
    assert lines[16].split() == ["OUT", "X", "∂OUT/∂X"]
    ticks = lines[15].split()
    assert ticks == ["-3", "-2", "-1", "0", "1", "2", "3"]


@pytest.mark.parametrize(("program", "arrow"), [
    ("OUT = X + 0*Y", "→"), ("OUT = Y + 0*X", "↑"), ("OUT = -X - Y", "↙"),
    ("OUT = X - Y", "↘"), ("OUT = -X + Y", "↖"), ("OUT = 0*X + 0*Y", "∘")])
def test_arrow_directions(program: str, arrow: str) -> None:
    text = plot.heat_map(*heat(program, 9), width=60, height=18)
    rows = text.split("\n")[:18]
    found = {c for row in rows for c in row if c in "→↗↑↖←↙↓↘∘"}
    assert found == {arrow}


def test_arrows_follow_the_axes() -> None:
    """The gradient (1, 1) is drawn in the plot's axes: with y ten times x's range it leans
    toward x (as quiver(angles='xy') draws it)."""
    data = plot.grid_data(sweep("OUT = X + Y", {"X": grid(-1, 1, 5), "Y": grid(-10, 10, 5)}))
    rows = plot.heat_map(*data, width=60, height=20).split("\n")[:20]
    assert {c for row in rows for c in row if c in "→↗↑↖←↙↓↘"} == {"→"}
    ascii = plot.heat_map(*heat("OUT = -X - Y", 9), width=60, height=18, ascii=True)
    assert ascii.isascii()
    assert {c for row in ascii.split("\n")[:18] for c in row[3:-1] if c in "></^\\v"} == {"/"}


def test_failed_points_never_sampled_away() -> None:
    """A grid denser than the picture still shows each failed point."""
    data = heat("OUT = log(X^2 + Y^2)", 81)  # 81 x 81 points, the origin fails
    text = plot.heat_map(*data, width=40, height=10)
    rows = text.split("\n")[:10]
    assert sum(row.count("×") for row in rows) == 1
    assert "× failed (1)" in text


def test_line_data_and_grid_data() -> None:
    data = line("OUT = relu(X)", -1, 1, 5)
    assert data.xs == [-1, -0.5, 0, 0.5, 1]
    assert data.values == [0, 0, 0, 0.5, 1] and data.slopes == [0, 0, 0, 1, 1]
    assert data.kinks == [False, False, True, False, False]
    points = plot.grid_data(sweep("OUT = 10*X + Y", {"X": [1, 2, 3], "Y": [0.5, 0.25]}))
    assert points.values == [[10.5, 10.25], [20.5, 20.25], [30.5, 30.25]]
    assert points.gradients == [[(10, 1)] * 2] * 3
    assert (points.x_name, points.y_name, points.output) == ("X", "Y", "OUT")
    with pytest.raises(InputError, match="takes 1 range, not 2"):
        plot.line_data(sweep("OUT = X*Y", {"X": [1, 2], "Y": [1, 2]}))
    with pytest.raises(InputError, match="with respect to X"):
        plot.line_data(sweep("OUT = X*Y", {"X": [1, 2]}, at={"Y": 1}, wrt=["Y"]))


def test_sizes_are_clamped() -> None:
    data = line(CUBIC, n=11)
    small = plot.line_plot(*data, width=3, height=1)
    structure(small, plot.MIN_WIDTH, plot.MIN_HEIGHT)
    big = plot.line_plot(*data, width=10_000, height=10_000, ascii=True)
    lines = structure(big, plot.MAX_WIDTH, plot.MAX_HEIGHT)
    assert len(lines[0]) == plot.MAX_WIDTH
    structure(plot.heat_map(*heat(CUBIC + " + Y", 5), width=3, height=1), plot.MIN_WIDTH,
              plot.MIN_HEIGHT)


def test_deterministic_and_fast_enough_for_many_points() -> None:
    """10,000 points of a curve that oscillates: every one joined, same text twice."""
    xs = grid(-3, 3, 10_000)
    values = [math.sin(1000 * x) for x in xs]
    slopes = [1000 * math.cos(1000 * x) for x in xs]
    first = plot.line_plot("X", "OUT", xs, values, slopes, [False] * len(xs), width=120,
                           height=30)
    again = plot.line_plot("X", "OUT", xs, values, slopes, [False] * len(xs), width=120,
                           height=30)
    assert first == again
    structure(first, 120, 30)


# --- any data --------------------------------------------------------------------------------

NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-10, 10),
    st.sampled_from([0.0, -0.0, 1.0, 1e300, -1e300, 1e308, 5e-324, math.inf, math.nan]))
POINTS = st.lists(st.tuples(NUMBERS, st.none() | NUMBERS, st.none() | NUMBERS, st.booleans()),
                  max_size=40)


@PROPERTY
@given(points=POINTS, width=st.integers(plot.MIN_WIDTH, 160),
       height=st.integers(plot.MIN_HEIGHT, 40), ascii=st.booleans())
@example(points=[], width=24, height=5, ascii=False)
@example(points=[(1.0, 2.0, 3.0, True)], width=24, height=5, ascii=False)
@example(points=[(x, 5.0, 0.0, False) for x in range(5)], width=30, height=5, ascii=True)
@example(points=[(0.0, None, None, False)] * 3, width=24, height=5, ascii=True)
@example(points=[(0.0, 1e300, -1e300, False), (1.0, -1e300, 1e300, True)], width=24,
         height=5, ascii=False)
@example(points=[(-1e300, 1.0, 1.0, False), (1e300, 2.0, 2.0, False)], width=24, height=5,
         ascii=True)
def test_any_curves(points, width: int, height: int, ascii: bool) -> None:
    from rich.text import Text

    xs = [p[0] for p in points]
    values = [p[1] for p in points]
    slopes = [p[2] for p in points]
    kinks = [p[3] for p in points]
    text = plot.line_plot("X", "OUT", xs, values, slopes, kinks, width=width, height=height,
                          ascii=ascii)
    structure(text, width, height)
    assert text.isascii() or not ascii
    colored = plot.line_plot("X", "OUT", xs, values, slopes, kinks, width=width,
                             height=height, ascii=ascii, color=True)
    assert Text.from_markup(colored).plain == text
    if values and all(v is None for v in values):
        assert f"could not be evaluated at any of the {len(values)}" in text.replace("\n", " ")


CELLS = st.one_of(st.none(), NUMBERS)
GRADIENTS = st.one_of(st.none(), st.tuples(NUMBERS, NUMBERS))


@st.composite
def fields(draw: st.DrawFn) -> tuple[list[float], list[float], list[list], list[list]]:
    xs = draw(st.lists(NUMBERS, max_size=12))
    ys = draw(st.lists(NUMBERS, max_size=12))
    values = [[draw(CELLS) for _ in ys] for _ in xs]
    gradients = [[draw(GRADIENTS) for _ in ys] for _ in xs]
    return xs, ys, values, gradients


@PROPERTY
@given(field=fields(), width=st.integers(plot.MIN_WIDTH, 160),
       height=st.integers(plot.MIN_HEIGHT, 40), ascii=st.booleans())
@example(field=([], [], [], []), width=24, height=5, ascii=False)
@example(field=([1.0], [2.0], [[3.0]], [[(0.0, 0.0)]]), width=24, height=5, ascii=False)
@example(field=([0.0, 1.0], [0.0], [[None], [math.inf]], [[None], [(math.nan, 1.0)]]),
         width=24, height=5, ascii=True)
def test_any_heat_map(field, width: int, height: int, ascii: bool) -> None:
    from rich.text import Text

    text = plot.heat_map("X", "Y", "OUT", *field, width=width, height=height, ascii=ascii)
    structure(text, width, height)
    assert text.isascii() or not ascii
    colored = plot.heat_map("X", "Y", "OUT", *field, width=width, height=height, ascii=ascii,
                            color=True)
    assert Text.from_markup(colored).plain == text
    svg = plot.svg_heat_map("X", "Y", "OUT", *field, width=400, height=300)
    ET.fromstring(svg)


@PROPERTY
@given(lo=st.floats(-1e300, 1e300), width=st.floats(0, 1e300), most=st.integers(3, 11))
@example(lo=0.3, width=0.6, most=3)
@example(lo=1.0, width=1e-13, most=5)
@example(lo=-21.0, width=42.0, most=6)
@example(lo=-1.0, width=500000002.0, most=3)
def test_axis_ticks(lo: float, width: float, most: int) -> None:
    """Snapped axes cover the data and end on ticks; every label reads back as its tick, and
    no two labels are the same."""
    hi = min(1e300, lo + width)
    axis = plot._axis((lo, hi), most, 40)
    step = axis.ticks[1] - axis.ticks[0]
    # (a billionth of a step over is rounding: 0.3 / 0.1 is 2.9999999999999996)
    assert axis.lo <= lo + step * 1e-9 and axis.hi >= hi - step * 1e-9
    assert axis.ticks[0] == axis.lo and axis.ticks[-1] == axis.hi
    assert 2 <= len(axis.ticks) <= most
    assert len(set(axis.labels)) == len(axis.labels)
    for tick, label in zip(axis.ticks, axis.labels, strict=True):
        assert abs(float(label) - tick) <= step * 1e-3


# --- files -------------------------------------------------------------------------------------


def svg_texts(root: ET.Element, cls: str) -> list[str]:
    return [e.text or "" for e in root.iter(f"{SVG}text") if e.get("class") == cls]


def test_svg_line_plot() -> None:
    data = line(KINKS)
    svg = plot.svg_line_plot(*data, width=640, height=400)
    assert svg == plot.svg_line_plot(*data, width=640, height=400)
    root = ET.fromstring(svg)
    assert (root.get("width"), root.get("height")) == ("640", "400")
    paths = {e.get("class"): e.get("d") or "" for e in root.iter(f"{SVG}path")}
    assert paths["value"].startswith("M") and paths["value"].count("M") >= 1
    assert paths["slope"].startswith("M") and paths["slope"].count("M") >= 2  # broken at kinks
    assert paths["kinks"].count("z") == 2 and paths["failed"].count("M") == 10
    assert svg_texts(root, "x-tick") == ["-3", "-2", "-1", "0", "1", "2", "3"]
    assert svg_texts(root, "left-tick") and svg_texts(root, "right-tick")
    assert svg_texts(root, "x-name") == ["X"]
    assert svg_texts(root, "left-name") == ["OUT"]
    assert svg_texts(root, "right-name") == ["∂OUT/∂X"]
    assert svg_texts(root, "legend") == ["OUT (left axis)", "∂OUT/∂X (right axis)",
                                         "kink (2)", "failed (10)"]
    assert svg_texts(root, "note") == ["∂OUT/∂X is infinite at 1 point: not drawn"]
    assert not re.search(r'"[^"]*(nan|inf)[^"]*"', svg.split("<title>")[0] + "".join(
        re.findall(r'<[^>]*>', svg)))


def test_svg_heat_map() -> None:
    data = heat(SADDLE)
    svg = plot.svg_heat_map(*data)
    assert svg == plot.svg_heat_map(*data)
    root = ET.fromstring(svg)
    rects = [e for e in root.iter(f"{SVG}rect") if e.get("class") in ("cell", "failed")]
    assert len(rects) == 21 * 21
    assert [e.get("fill") for e in rects if e.get("class") == "failed"] == ["#9e9e9e"]
    arrows = next(e for e in root.iter(f"{SVG}path") if e.get("class") == "arrows")
    assert (arrows.get("d") or "").count("M") >= 2 * 20
    assert svg_texts(root, "x-name") == ["X"] and svg_texts(root, "y-name") == ["Y"]
    assert svg_texts(root, "colorbar-name") == ["OUT"]
    assert "failed (1)" in " ".join(svg_texts(root, "legend"))
    big = plot.svg_heat_map("X", "Y", "OUT", grid(0, 1, 150), [0.0, 1.0],
                            [[1.0, 2.0]] * 150, [[(1.0, 0.0)] * 2] * 150)
    cells = [e for e in ET.fromstring(big).iter(f"{SVG}rect") if e.get("class") == "cell"]
    assert len(cells) == plot.SVG_CELLS * 2


def test_svg_without_data() -> None:
    for svg in (plot.svg_line_plot("X", "OUT", [], [], [], []),
                plot.svg_line_plot("X", "OUT", [0.0, 1.0], [None, None], [None, None],
                                   [False, False]),
                plot.svg_heat_map("X", "Y", "OUT", [], [], [], [])):
        root = ET.fromstring(svg)
        assert svg_texts(root, "note")


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_png() -> None:
    data = line(KINKS)
    first = plot.png_line_plot(*data, width=640, height=400)
    assert png_size(first) == (640, 400)
    assert first == plot.png_line_plot(*data, width=640, height=400)
    assert b"Software" not in first
    points = heat(SADDLE, 11)
    assert png_size(plot.png_heat_map(*points, width=500, height=420)) == (500, 420)
    assert png_size(plot.png_line_plot("X", "OUT", [], [], [], [])) == (plot.FILE_WIDTH,
                                                                          plot.FILE_HEIGHT)


def test_matplotlib_only_for_png() -> None:
    import subprocess

    code = ("import sys, gradcalc.plot as p; p.line_plot('X', 'OUT', [0.0], [1.0], [1.0], "
            "[False], width=40, height=5); p.svg_line_plot('X', 'OUT', [0.0], [1.0], [1.0], "
            "[False]); assert 'matplotlib' not in sys.modules and 'rich' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_png_without_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(InputError, match=re.escape("pip install 'gradcalc[plot]'")):
        plot.png_line_plot(*line(CUBIC, n=5))
    with pytest.raises(InputError, match="writing PNG needs matplotlib"):
        plot.png_heat_map(*heat(SADDLE, 3))
