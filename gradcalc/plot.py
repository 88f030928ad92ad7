"""Plots of a sweep (``--plot``): along one range, the output and its derivative as two curves;
over the grid of two ranges, the output as a heat map with its gradient as arrows. Drawn as
text for the terminal (gradcalc's own canvas: no dependency), as SVG written by hand, or as
PNG through matplotlib (an optional extra, imported only when a PNG is asked for).

Every function is pure: it returns the picture and prints nothing. The same data gives the
same bytes: no timestamps, fixed number formatting, no randomness.

Terminal pictures are ``width`` characters wide at most and their first ``height`` lines are
the plot rows (``width`` is clamped to 24..400, ``height`` to 5..200); then come the x axis,
its tick labels, the axis names, the legend and notes (what could not be drawn, and why).
With ``ascii=True`` the marks and words are printable ASCII. With ``color=True`` the text is
Rich console markup (names escaped; print it with ``Console.print(text, highlight=False)`` or
``rich.text.Text.from_markup(text)``) whose plain text is exactly the picture drawn without
colour: colour repeats what the marks say, never more.

Line plots. The output (``OUT``) is drawn in braille dots (2 x 4 dots a character) and its
derivative (``∂OUT/∂X``) in ``·`` (ASCII: ``*`` and ``o``), so the curves read apart without
colour; where they cross, the output is on top. A kink is ``◆`` (``k``) on the output's curve
and a point that could not be evaluated is ``×`` (``x``) on the x axis. The two curves have
one y axis each, the output on the left and its derivative on the right: a value and its slope
are in different units and often of very different sizes (``sin(100*X)`` stays within ±1
while its slope reaches ±100), and one shared axis would flatten one of them. Axes end on
round ticks (1, 2, 2.5 or 5 times a power of ten), the tightest that cover the data. Points are
joined in the order of x. The derivative's curve breaks at each kink (its value there is a
convention, PyTorch's: ``abs'(0) = 0``, drawn as a lone dot) and wherever it is undefined;
values that are infinite, NaN or beyond ±1e300 are not drawn and a note says how many. A
(nearly) constant curve, with a spread under 1e-12 of its size, is drawn flat across the middle
of an axis around it.

Heat maps. Each point of the grid owns an equal band of columns and rows (the points of a
sweep's range are evenly spaced), shaded `` ░▒▓█`` from the lowest value to the highest
(ASCII `` .:~=*#%@``). On a coarser grid, no denser than the points, arrows ``→ ↗ ↑ ↖ ← ↙ ↓
↘`` (ASCII ``> / ^ \\ < / v \\``: the diagonals share two signs) point along the gradient,
the direction of steepest ascent, drawn in the plot's axes (as ``quiver(angles='xy')`` draws
it: a character cell is taken as twice as tall as wide). ``∘`` (``o``) is a zero gradient,
``×`` (``x``) a point that failed and ``?`` a value or gradient that is not finite; a point
that failed or is not finite is marked even where the grid is denser than the picture.
"""

from __future__ import annotations

import html
import importlib
import io
import math
import textwrap
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from gradcalc.errors import InputError
from gradcalc.fmt import short

if TYPE_CHECKING:
    from gradcalc.sweep import Sweep

__all__ = [
    "LIMIT",
    "MAX_HEIGHT",
    "MAX_WIDTH",
    "MIN_HEIGHT",
    "MIN_WIDTH",
    "GridData",
    "LineData",
    "grid_data",
    "heat_map",
    "line_data",
    "line_plot",
    "png_heat_map",
    "png_line_plot",
    "svg_heat_map",
    "svg_line_plot",
]

#: Terminal pictures are clamped to these sizes (characters wide, plot rows high).
MIN_WIDTH, MAX_WIDTH = 24, 400
MIN_HEIGHT, MAX_HEIGHT = 5, 200
#: Values beyond this size are not drawn (noted): axes and their ticks stay finite floats.
LIMIT = 1e300
#: A spread under this fraction of a curve's size is drawn as a constant (rounding noise).
FLAT = 1e-12
#: Files: default size in pixels, and at most this many cells a side in an SVG heat map.
FILE_WIDTH, FILE_HEIGHT = 800, 500
SVG_CELLS = 100

Grid = Sequence[Sequence[Any]]


# --- the sweep's data --------------------------------------------------------------------------


class LineData(NamedTuple):
    """A sweep along one range, in :func:`line_plot`'s argument order:
    ``line_plot(*data, width=..., height=...)``."""

    x_name: str
    output: str
    xs: list[float]
    values: list[float | None]
    slopes: list[float | None]
    kinks: list[bool]


class GridData(NamedTuple):
    """A sweep over the grid of two ranges, in :func:`heat_map`'s argument order;
    ``values[i][j]`` is the output at ``(xs[i], ys[j])``."""

    x_name: str
    y_name: str
    output: str
    xs: list[float]
    ys: list[float]
    values: list[list[float | None]]
    gradients: list[list[tuple[float, float] | None]]


def _plotted(found: Sweep, count: int) -> list[int]:
    """The columns of the swept names' gradients; ``InputError`` if one is not computed."""
    if len(found.names) != count:
        raise InputError(f"this plot takes {count} range{'s' * (count > 1)}, not "
                         f"{len(found.names)}",
                         hint="one range draws curves, two draw a heat map")
    missing = [n for n in found.names if n not in found.targets]
    if missing:
        raise InputError(f"the plot needs the gradient with respect to {missing[0]}",
                         hint=f"leave --wrt out, or include {missing[0]} in it")
    return [found.targets.index(n) for n in found.names]


def line_data(found: Sweep) -> LineData:
    """Run the sweep ``found`` (one range) and gather what :func:`line_plot` draws: a point
    that failed has value and slope ``None``; a kink is a point with a ``kink`` warning."""
    (column,) = _plotted(found, 1)
    data = LineData(found.names[0], found.output, [], [], [], [])
    for row in found.rows():
        data.xs.append(row.point[0])
        data.values.append(row.value)
        data.slopes.append(row.gradients[column] if row.error is None else None)
        data.kinks.append(any(w.kind == "kink" for w in row.warnings))
    return data


def grid_data(found: Sweep) -> GridData:
    """Run the sweep ``found`` (two ranges) and gather what :func:`heat_map` draws."""
    gx, gy = _plotted(found, 2)
    xs, ys = found.points
    data = GridData(found.names[0], found.names[1], found.output, list(xs), list(ys), [], [])
    rows = found.rows()  # the last range varies fastest: one column of the grid at a time
    for _ in xs:
        values: list[float | None] = []
        gradients: list[tuple[float, float] | None] = []
        for _, row in zip(ys, rows, strict=False):
            values.append(row.value)
            gradients.append((row.gradients[gx], row.gradients[gy])
                             if row.error is None else None)
        data.values.append(values)
        data.gradients.append(gradients)
    return data


# --- marks -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Marks:
    vbar: str
    tick_left: str  # a y tick on the left axis
    tick_right: str
    hbar: str
    tick_down: str
    corner_left: str
    corner_right: str
    partial: str
    value: str  # the value curve in the legend (the curve itself: braille or `value_dot`)
    value_dot: str
    slope: str
    kink: str
    failed: str
    shades: str
    arrows: str  # east, then counter-clockwise
    zero: str
    unknown: str
    ellipsis: str


_UNICODE = _Marks("│", "┤", "├", "─", "┬", "└", "┘", "∂", "⠒⠒", "", "·", "◆", "×", " ░▒▓█",
                  "→↗↑↖←↙↓↘", "∘", "?", "…")
_ASCII = _Marks("|", "+", "+", "-", "+", "+", "+", "d", "**", "*", "o", "k", "x", " .:~=*#%@",
                ">/^\\</v\\", "o", "?", "...")

_STYLES = {"value": "cyan", "slope": "magenta", "kink": "bold yellow", "failed": "bold red",
           "unknown": "bold red", "arrow": "bold"}

# Viridis at nine stops, for the shades in colour and in files.
_VIRIDIS = ((68, 1, 84), (71, 45, 123), (59, 82, 139), (44, 114, 142), (33, 145, 140),
            (40, 174, 128), (94, 201, 98), (173, 220, 48), (253, 231, 37))


def _viridis(t: float) -> str:
    """The colour at ``t`` in 0..1 as ``#rrggbb``."""
    t = min(1.0, max(0.0, t)) * (len(_VIRIDIS) - 1)
    i = min(int(t), len(_VIRIDIS) - 2)
    f = t - i
    a, b = _VIRIDIS[i], _VIRIDIS[i + 1]
    return "#" + "".join(f"{round(p + (q - p) * f):02x}" for p, q in zip(a, b, strict=True))


# --- numbers and axes ------------------------------------------------------------------------


def _drawable(v: float | None) -> float | None:
    """``v`` as a float if it can be drawn: finite and within ±:data:`LIMIT`."""
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) and -LIMIT <= v <= LIMIT else None


def _extent(lo: float, hi: float) -> tuple[float, float]:
    """``lo..hi`` widened around its middle where it is (nearly) one value."""
    middle = lo / 2 + hi / 2
    if hi - lo > max(abs(middle) * FLAT, 1e-250):
        return lo, hi
    pad = abs(middle) * 0.1 if abs(middle) > 1e-249 else 1.0
    return middle - pad, middle + pad


def _steps(span: float) -> list[float]:
    """Round steps from above ``span`` down to under a hundredth of it, largest first."""
    top = math.floor(math.log10(span)) + 1
    return [m * 10.0 ** e for e in range(top, top - 4, -1) for m in (5.0, 2.5, 2.0, 1.0)]


@dataclass(slots=True)
class _Axis:
    """A scale from ``lo`` to ``hi`` (``lo < hi``) with its ticks and their labels."""

    lo: float
    hi: float
    ticks: list[float] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)

    def frac(self, v: float) -> float:
        return min(1.0, max(0.0, (v - self.lo) / (self.hi - self.lo)))

    @property
    def widest(self) -> int:
        return max(map(len, self.labels), default=0)


_EMPTY = (0.0, 1.0)  # the scale of an axis with nothing on it (no ticks, no labels)


def _snapped(lo: float, hi: float, most: int) -> tuple[float, list[float]]:
    """The step and ticks of the finest round step giving at most ``most`` ticks that cover
    ``lo..hi`` (the first and last tick are the axis' ends)."""
    found: tuple[int, int, float] | None = None  # the first and last tick (in steps), step
    for step in _steps(hi - lo):
        first = math.floor(lo / step + 1e-9)
        last = math.ceil(hi / step - 1e-9)
        if last - first + 1 > most and found is not None:
            break
        # The tightest axis wins (-25..25 over -40..40 for -21..21), then the most ticks.
        if found is None or (last - first) * step <= (found[1] - found[0]) * found[2] * (
                1 + 1e-9):
            found = first, last, step
    assert found is not None
    first, last, step = found
    return step, [k * step for k in range(first, last + 1)]


def _inner(lo: float, hi: float, most: int) -> tuple[float, list[float]]:
    """The step and ticks of the finest round step giving 2 to ``most`` ticks inside
    ``lo..hi``; else ``lo`` and ``hi`` themselves."""
    found: tuple[float, list[float]] = (hi - lo, [lo, hi])
    for step in _steps(hi - lo):
        first = math.ceil(lo / step - 1e-9)
        last = math.floor(hi / step + 1e-9)
        if last - first + 1 > most:
            break
        if last > first:
            found = step, [k * step for k in range(first, last + 1)]
    return found


def _compact(text: str) -> str:
    """``1.5e+300`` as ``1.5e300``, ``2e-05`` as ``2e-5``."""
    mantissa, _, exponent = text.partition("e")
    return f"{mantissa}e{int(exponent)}" if exponent else text


def _labels(ticks: Sequence[float], step: float) -> list[str]:
    """The shortest labels, all with the same number of decimals, that tell the ticks apart
    and read back within a thousandth of a step."""
    ticks = [0.0 if abs(t) < step * 1e-9 else t for t in ticks]
    big = max(abs(t) for t in ticks)
    fixed = big < 1e6 and (step >= 1e-4 or big >= 1e-3)  # else 2e-5, not 0.00002
    labels: list[str] = []
    for digits in range(17):
        labels = [f"{t:.{digits}f}" if fixed else _compact(f"{t:.{digits}e}") if t else "0"
                  for t in ticks]
        if all(abs(float(s) - t) <= step * 1e-3 for s, t in zip(labels, ticks, strict=True)) \
                and len(set(labels)) == len(labels):
            break
    return labels


def _axis(span: tuple[float, float] | None, most: int, budget: int, snap: bool = True) -> _Axis:
    """An axis over ``span`` (``None``: nothing to show) with at most ``most`` ticks (at least
    3 if snapped) whose labels are at most ``budget`` characters (at least 7) wide, fewer
    ticks or coarser labels where they would be wider."""
    if span is None:
        return _Axis(*_EMPTY)
    lo, hi = _extent(*span)
    for count in range(max(most, 3), 2, -1):
        step, ticks = _snapped(lo, hi, count) if snap else _inner(lo, hi, count)
        labels = _labels(ticks, step)
        if max(map(len, labels)) <= budget:
            break
    else:  # too narrow for exact labels: one significant digit
        labels = [_compact(f"{t:.0e}") if t else "0" for t in ticks]
    return _Axis(ticks[0] if snap else lo, ticks[-1] if snap else hi, ticks, labels)


def _lost(name: str, values: Iterable[float | None]) -> str | None:
    """The note for the values that cannot be drawn, by kind: ``OUT is infinite or nan at 3
    points: not drawn``."""
    kinds: dict[str, int] = {}
    for v in values:
        if _drawable(v) is None:
            kind = ("undefined" if v is None else "nan" if math.isnan(v) else "infinite"
                    if math.isinf(v) else "over 1e300 in size")
            kinds[kind] = kinds.get(kind, 0) + 1
    if not kinds:
        return None
    return f"{name} is {' or '.join(kinds)} at {_count(sum(kinds.values()), 'point')}: not drawn"


def _count(n: int, word: str) -> str:
    return f"{n:,} {word}{'s' * (n != 1)}"


def _clamp(n: int, lo: int, hi: int) -> int:
    return min(hi, max(lo, int(n)))


# --- text with styles --------------------------------------------------------------------------

_Line = list[tuple[str, str]]  # (text, Rich style or "")


def _plain(line: _Line) -> str:
    return "".join(text for text, _ in line)


def _markup(lines: Iterable[_Line], color: bool) -> str:
    if not color:
        return "\n".join(_plain(line).rstrip() for line in lines)
    from rich.markup import escape

    out = []
    for line in lines:
        parts = []
        size = len(_plain(line).rstrip())
        for text, style in line:
            text, size = text[: max(0, size)], size - len(text)
            if text:
                parts.append(f"[{style}]{escape(text)}[/]" if style else escape(text))
        out.append("".join(parts))
    return "\n".join(out)


def _styled(chars: list[str], styles: list[str]) -> _Line:
    """Runs of one style."""
    line: _Line = []
    start = 0
    for i in range(1, len(chars) + 1):
        if i == len(chars) or styles[i] != styles[start]:
            line.append(("".join(chars[start:i]), styles[start]))
            start = i
    return line


def _cut(text: str, width: int, marks: _Marks) -> str:
    return text if len(text) <= width else text[: max(0, width - len(marks.ellipsis))] + \
        marks.ellipsis


def _legend(items: Sequence[tuple[_Line, str]], width: int, marks: _Marks) -> list[_Line]:
    """Legend items (a mark, styled, and its text) three spaces apart, wrapped to ``width``."""
    lines: list[_Line] = []
    line: _Line = []
    used = 0
    for mark, text in items:
        size = len(_plain(mark)) + 1
        text = _cut(text, width - size, marks)
        size += len(text)
        if line and used + 3 + size > width:
            lines.append(line)
            line, used = [], 0
        if line:
            line.append(("   ", ""))
            used += 3
        line += [*mark, (" " + text, "")]
        used += size
    if line:
        lines.append(line)
    return lines


def _notes(notes: Sequence[str], width: int) -> list[_Line]:
    return [[(text, "")] for note in notes for text in textwrap.wrap(note, width)]


def _tick_labels(width: int, offset: int, placed: Sequence[tuple[int, str]]) -> str | None:
    """Labels centred on their columns (``offset`` + column), at least one space apart, within
    ``width``; ``None`` if they do not all fit."""
    chars = [" "] * width
    free = 0
    for column, label in placed:
        start = min(max(0, offset + column - (len(label) - 1) // 2), width - len(label))
        if start < free or start < 0:
            return None
        chars[start : start + len(label)] = label
        free = start + len(label) + 1
    return "".join(chars).rstrip()


def _x_axis(span: tuple[float, float] | None, columns: int, sub: int, width: int,
            offset: int, snap: bool) -> tuple[_Axis, list[int], str]:
    """The x axis over ``columns`` (``sub`` dots a column): the most ticks whose labels fit
    side by side; their columns and the line of labels."""
    most = max(3, min(11, columns // 4))
    axis, at, text = _Axis(*_EMPTY), [], None
    for count in range(most, 2, -1):
        axis = _axis(span, count, columns, snap)
        at = [_x_column(axis, t, columns, sub, snap) for t in axis.ticks]
        text = _tick_labels(width, offset, list(zip(at, axis.labels, strict=True)))
        if text is not None:
            break
    if text is None:  # not even two: the ends alone, shortened
        axis.labels = [_compact(f"{t:.0e}") if t else "0" for t in axis.ticks]
        ends = [(at[0], axis.labels[0])] if at else []
        text = _tick_labels(width, offset, ends) or ""
    return axis, at, text


def _x_column(axis: _Axis, x: float, columns: int, sub: int, snap: bool) -> int:
    f = axis.frac(x)
    if snap:  # dots at both ends of the axis
        return round(f * (columns * sub - 1)) // sub
    return min(columns - 1, int(f * columns))  # bands: each column covers 1/columns


def _names_line(width: int, left: str, middle: str, middle_at: int, right: str,
                marks: _Marks) -> str:
    """``left`` at the start, ``middle`` centred on column ``middle_at``, ``right`` at the end;
    run together (two spaces apart, cut to ``width``) where they would not fit."""
    start = middle_at - len(middle) // 2
    end = start + len(middle)
    if start >= len(left) + 2 and end + 2 <= width - len(right):
        line = left.ljust(start) + middle
        return (line.ljust(width - len(right)) + right).rstrip()
    return _cut("  ".join(p for p in (left, middle, right) if p), width, marks)


def _frame_bottom(offset: int, columns: int, ticks: Iterable[int], marks: _Marks,
                  failed: Iterable[int] = ()) -> _Line:
    chars = [marks.hbar] * columns
    styles = [""] * columns
    for c in ticks:
        chars[c] = marks.tick_down
    for c in failed:
        chars[c], styles[c] = marks.failed, _STYLES["failed"]
    return [(" " * offset + marks.corner_left, ""), *_styled(chars, styles),
            (marks.corner_right, "")]


# --- line plots: the data --------------------------------------------------------------------


@dataclass(slots=True)
class _Curves:
    """What a line plot draws, each point's parts ``None`` where they are not drawn."""

    x: list[float | None]
    v: list[float | None]
    s: list[float | None]
    kink: list[bool]
    failed: list[bool]
    notes: list[str]
    x_span: tuple[float, float] | None
    v_span: tuple[float, float] | None
    s_span: tuple[float, float] | None

    @property
    def kinks(self) -> int:
        return sum(1 for x, v, k in zip(self.x, self.v, self.kink, strict=True)
                   if k and x is not None and v is not None)

    @property
    def failures(self) -> int:
        return sum(1 for x, f in zip(self.x, self.failed, strict=True) if f and x is not None)


def _span(values: Iterable[float | None]) -> tuple[float, float] | None:
    shown = [v for v in values if v is not None]
    return (min(shown), max(shown)) if shown else None


def _curves(output: str, slope_name: str, xs: Sequence[float], values: Sequence[float | None],
            slopes: Sequence[float | None], kinks: Sequence[bool]) -> _Curves:
    n = len(xs)
    if not len(values) == len(slopes) == len(kinks) == n:
        raise ValueError("xs, values, slopes and kinks differ in length")
    # Joined in the order of x (a sweep's points already are, one way or the other): a curve
    # of y over x, and no scribble across the picture costing a line per point.
    shown = [_drawable(p) for p in xs]
    order = sorted(range(n), key=lambda i: (shown[i] is None, shown[i] or 0.0))
    x = [shown[i] for i in order]
    values, slopes = [values[i] for i in order], [slopes[i] for i in order]
    kinks = [kinks[i] for i in order]
    failed = [v is None for v in values]
    v = [_drawable(a) if p is not None else None for p, a in zip(x, values, strict=True)]
    s = [_drawable(a) if p is not None else None for p, a in zip(x, slopes, strict=True)]
    notes = []
    if n == 0:
        notes.append("no points to draw")
    elif all(failed):
        notes.append(f"{output} could not be evaluated at any of the {_count(n, 'point')}")
    elif all(a is None for a in v):
        notes.append(f"{output} has no finite value to draw")
    lost_x = sum(1 for p in x if p is None)
    if lost_x:
        notes.append(f"{_count(lost_x, 'point')} not drawn: x is not finite")
    for name, given in ((output, values), (slope_name, slopes)):
        note = _lost(name, [g for p, g, f in zip(x, given, failed, strict=True)
                            if p is not None and not f])
        notes += [note] if note else []
    return _Curves(x, v, s, [bool(k) for k in kinks], failed, notes, _span(x),
                   _span(a for p, a in zip(x, v, strict=True) if p is not None), _span(s))


# --- line plots: the terminal ----------------------------------------------------------------

# Braille dots by (row, column) in a cell: 1-2-3-7 down the left column, 4-5-6-8 down the right.
_BRAILLE = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))


class _Raster:
    """Cells of ``sx`` x ``sy`` dots each (braille: 2 x 4), dots set one by one or in lines."""

    __slots__ = ("cells", "cols", "rows", "sx", "sy")

    def __init__(self, cols: int, rows: int, sx: int, sy: int) -> None:
        self.cols, self.rows, self.sx, self.sy = cols, rows, sx, sy
        self.cells = [0] * (cols * rows)

    def dot(self, x: int, y: int) -> None:
        cx, dx = divmod(x, self.sx)
        cy, dy = divmod(y, self.sy)
        self.cells[cy * self.cols + cx] |= _BRAILLE[dy][dx]

    def segment(self, x0: int, y0: int, x1: int, y1: int) -> None:
        """The dots from ``(x0, y0)`` (left out) to ``(x1, y1)``."""
        n = max(abs(x1 - x0), abs(y1 - y0))
        for i in range(1, n + 1):
            self.dot(x0 + round((x1 - x0) * i / n), y0 + round((y1 - y0) * i / n))

    def trace(self, points: Iterable[tuple[int, int] | None]) -> None:
        """A curve through ``points`` (dot coordinates), broken at each ``None``. The points
        falling in one column of dots are drawn as one vertical run: 10,000 points of a
        curve that oscillates cost no more than the runs."""
        run: list[int] = []  # column, lowest, highest, last
        for point in points:
            if point is None or (run and point[0] != run[0]):
                for y in range(run[1], run[2] + 1) if run else ():
                    self.dot(run[0], y)
                if point is not None and run:
                    self.segment(run[0], run[3], *point)
                run = []
            if point is None:
                continue
            x, y = point
            run = [x, min(run[1], y), max(run[2], y), y] if run else [x, y, y, y]
        for y in range(run[1], run[2] + 1) if run else ():
            self.dot(run[0], y)


def _dots(raster: _Raster, axis: _Axis, fx: Sequence[float | None],
          ys: Sequence[float | None], breaks: Sequence[bool]) -> list[tuple[int, int] | None]:
    """The points as dot coordinates; ``None`` where a curve is undefined, and around each
    point of ``breaks`` (drawn alone)."""
    width, height = raster.cols * raster.sx - 1, raster.rows * raster.sy - 1
    out: list[tuple[int, int] | None] = []
    for f, y, cut in zip(fx, ys, breaks, strict=True):
        if f is None or y is None:
            out.append(None)
            continue
        point = (round(f * width), round((1.0 - axis.frac(y)) * height))
        out += [None, point, None] if cut else [point]
    return out


def _tick_rows(axis: _Axis, rows: int, sub: int) -> dict[int, str]:
    at: dict[int, str] = {}
    for tick, label in zip(axis.ticks, axis.labels, strict=True):
        at.setdefault(round((1.0 - axis.frac(tick)) * (rows * sub - 1)) // sub, label)
    return at


def line_plot(x_name: str, output: str, xs: Sequence[float], values: Sequence[float | None],
              slopes: Sequence[float | None], kinks: Sequence[bool], *, width: int,
              height: int, ascii: bool = False, color: bool = False) -> str:
    """The output ``output`` and its derivative with respect to ``x_name`` at the points
    ``xs``, drawn in ``width`` characters (24..400) with ``height`` plot rows (5..200).

    ``values`` and ``slopes`` are ``None`` where the point failed (marked on the x axis);
    ``kinks`` marks the points at a kink. Infinite and NaN values are gaps, with a note.
    See the module's documentation for the layout and marks; ``color=True`` gives Rich markup.
    """
    marks = _ASCII if ascii else _UNICODE
    width, height = _clamp(width, MIN_WIDTH, MAX_WIDTH), _clamp(height, MIN_HEIGHT, MAX_HEIGHT)
    slope_name = f"{marks.partial}{output}/{marks.partial}{x_name}"
    data = _curves(output, slope_name, xs, values, slopes, kinks)
    budget = max(7, (width - 10) // 2)
    most = min(11, (height - 1) // 3 + 1)
    left, right = _axis(data.v_span, most, budget), _axis(data.s_span, most, budget)
    lw, rw = max(1, left.widest), right.widest
    columns = width - lw - rw - 4
    sx, sy = (1, 1) if ascii else (2, 4)
    x_axis, x_ticks, x_labels = _x_axis(data.x_span, columns, sx, width, lw + 2, True)
    fx = [None if x is None else x_axis.frac(x) for x in data.x]
    value = _Raster(columns, height, sx, sy)
    value.trace(_dots(value, left, fx, data.v, [False] * len(fx)))
    slope = _Raster(columns, height, sx, 1)
    slope.trace(_dots(slope, right, fx, data.s, data.kink))
    chars = [" "] * (columns * height)
    styles = [""] * (columns * height)
    _paint(chars, styles, slope.cells, lambda _: marks.slope, _STYLES["slope"])
    dot = (lambda _: marks.value_dot) if ascii else (lambda bits: chr(0x2800 + bits))
    _paint(chars, styles, value.cells, dot, _STYLES["value"])
    failed: list[int] = []
    for f, v, kink, fail in zip(fx, data.v, data.kink, data.failed, strict=True):
        if f is None:
            continue
        column = round(f * (columns * sx - 1)) // sx
        if fail:
            failed.append(column)
        elif kink and v is not None:
            row = round((1.0 - left.frac(v)) * (height * sy - 1)) // sy
            chars[row * columns + column] = marks.kink
            styles[row * columns + column] = _STYLES["kink"]
    lines = _rows(chars, styles, columns, _tick_rows(left, height, sy),
                  _tick_rows(right, height, 1), lw, marks)
    lines.append(_frame_bottom(lw + 1, columns, x_ticks, marks, failed))
    lines.append([(x_labels, "")])
    lines.append([(_names_line(width, output, x_name, lw + 2 + columns // 2, slope_name,
                               marks), "")])
    lines += _legend(_line_legend(output, slope_name, data, marks), width, marks)
    lines += _notes(data.notes, width)
    return _markup(lines, color)


def _paint(chars: list[str], styles: list[str], cells: Sequence[int],
           glyph: Callable[[int], str], style: str) -> None:
    for i, bits in enumerate(cells):
        if bits:
            chars[i], styles[i] = glyph(bits), style


def _rows(chars: list[str], styles: list[str], columns: int, left: dict[int, str],
          right: dict[int, str] | None, lw: int, marks: _Marks) -> list[_Line]:
    """The plot rows: left labels and axis, the canvas, the right axis and its labels."""
    lines: list[_Line] = []
    for row in range(len(chars) // columns):
        cells = slice(row * columns, (row + 1) * columns)
        label = left.get(row)
        line: _Line = [(f"{label or '':>{lw}} " + (marks.tick_left if label else marks.vbar),
                        "")]
        line += _styled(chars[cells], styles[cells])
        if right is None:
            line.append((marks.vbar, ""))
        else:
            label = right.get(row)
            line.append((marks.tick_right + " " + label if label else marks.vbar, ""))
        lines.append(line)
    return lines


def _line_legend(output: str, slope_name: str, data: _Curves,
                 marks: _Marks) -> list[tuple[_Line, str]]:
    items = [([(marks.value, _STYLES["value"])], f"{output} (left axis)"),
             ([(marks.slope * 2, _STYLES["slope"])], f"{slope_name} (right axis)")]
    if data.kinks:
        items.append(([(marks.kink, _STYLES["kink"])], f"kink ({data.kinks:,})"))
    if data.failures:
        items.append(([(marks.failed, _STYLES["failed"])], f"failed ({data.failures:,})"))
    return items


# --- heat maps: the data ---------------------------------------------------------------------


@dataclass(slots=True)
class _Field:
    """What a heat map draws: the points in order along each axis (``order``: index by rank;
    ``rank``: rank by index), their extents (each point owns a band), the range of the
    values, the points that failed or are not finite (``(i, j, failed)``) and the notes."""

    x_order: list[int]
    y_order: list[int]
    x_rank: list[int]
    y_rank: list[int]
    x_extent: tuple[float, float] | None
    y_extent: tuple[float, float] | None
    v_span: tuple[float, float] | None
    bad: list[tuple[int, int, bool]]
    notes: list[str]

    @property
    def failed(self) -> int:
        return sum(1 for _, _, failed in self.bad if failed)

    @property
    def unknown(self) -> int:
        return sum(1 for _, _, failed in self.bad if not failed)

    def point(self, row: int, column: int, rows: int, columns: int) -> tuple[int, int]:
        """The grid point ``(i, j)`` drawn in a cell of a picture ``rows`` x ``columns``."""
        i = self.x_order[_rank((column + 0.5) / columns, len(self.x_order))]
        j = self.y_order[_rank(1.0 - (row + 0.5) / rows, len(self.y_order))]
        return i, j

    def bad_cells(self, rows: int, columns: int) -> dict[int, bool]:
        """The cells (``row * columns + column``) holding a point that failed (``True``) or
        is not finite (``False``): a mark is never lost to sampling a grid denser than the
        picture."""
        nx, ny = len(self.x_order), len(self.y_order)
        cells: dict[int, bool] = {}
        for i, j, failed in self.bad:
            column = min(columns - 1, int((self.x_rank[i] + 0.5) * columns / nx))
            row = rows - 1 - min(rows - 1, int((self.y_rank[j] + 0.5) * rows / ny))
            k = row * columns + column
            cells[k] = cells.get(k, False) or failed
        return cells


def _order(points: Sequence[float]) -> tuple[list[int], list[int],
                                             tuple[float, float] | None]:
    """Indices by value (points that are not finite last), ranks by index, and the extent of
    the finite points' bands."""
    shown = [_drawable(p) for p in points]
    order = sorted(range(len(points)), key=lambda i: (shown[i] is None, shown[i] or 0.0))
    rank = [0] * len(order)
    for k, i in enumerate(order):
        rank[i] = k
    span = _span(shown)
    if span is None:
        return order, rank, None
    count = sum(1 for p in shown if p is not None)
    half = (span[1] - span[0]) / (count - 1) / 2 if count > 1 else 0.0
    return order, rank, _extent(span[0] - half, span[1] + half)


def _field(output: str, xs: Sequence[float], ys: Sequence[float], values: Grid,
           gradients: Grid) -> _Field:
    if len(values) != len(xs) or len(gradients) != len(xs) or any(
            len(column) != len(ys) for column in (*values, *gradients)):
        raise ValueError("values and gradients must be grids of len(xs) x len(ys)")
    x_order, x_rank, x_extent = _order(xs)
    y_order, y_rank, y_extent = _order(ys)
    lo, hi = math.inf, -math.inf
    bad = []
    for i, column in enumerate(values):
        for j, v in enumerate(column):
            shown = _drawable(v)
            if shown is None:
                bad.append((i, j, v is None))
            else:
                lo, hi = min(lo, shown), max(hi, shown)
    data = _Field(x_order, y_order, x_rank, y_rank, x_extent, y_extent,
                  (lo, hi) if lo <= hi else None, bad, [])
    size = len(xs) * len(ys)
    if size == 0:
        data.notes.append("no points to draw")
    elif data.failed == size:
        data.notes.append(f"{output} could not be evaluated at any of the "
                          f"{_count(size, 'point')}")
    elif data.v_span is None:
        data.notes.append(f"{output} has no finite value to draw")
    note = _lost(output, (values[i][j] for i, j, failed in bad if not failed))
    data.notes += [note] if note else []
    return data


def _rank(position: float, count: int) -> int:
    """The point whose band holds ``position`` (0..1) among ``count`` bands."""
    return min(count - 1, max(0, int(position * count)))


def _level(v: float, span: tuple[float, float], levels: int) -> int:
    lo, hi = span
    if hi - lo <= max(abs(lo), abs(hi)) * FLAT:
        return levels // 2
    return min(levels - 1, int((v - lo) / (hi - lo) * levels))


def _direction(g: tuple[float, float], across: float, up: float) -> int | None:
    """The eighth of the circle (0: east, counter-clockwise) the gradient ``g`` points to on a
    picture ``across`` wide and ``up`` high per unit of x and y; ``None`` for zero, -1 for a
    gradient that is not finite."""
    gx, gy = float(g[0]), float(g[1])
    if math.isnan(gx) or math.isnan(gy):
        return -1
    if gx == 0 and gy == 0:
        return None
    return round(math.atan2(gy * up, gx * across) / (math.pi / 4)) % 8


def _arrow_spots(columns: int, rows: int, nx: int, ny: int, wide: float = 6,
                 high: float = 3) -> list[tuple[int, int]]:
    """Where arrows go: one every ``wide`` columns and ``high`` rows at most, and no more
    than one per point across and down."""
    across = max(1, min(nx, int(columns / wide)))
    down = max(1, min(ny, int(rows / high)))
    return [(int((j + 0.5) * rows / down), int((i + 0.5) * columns / across))
            for j in range(down) for i in range(across)]


def _scale(extent: tuple[float, float] | None) -> float:
    """Units of picture per unit along an axis of this extent (1 across it)."""
    if extent is None:
        return 1.0
    return 1.0 / (extent[1] - extent[0])


# --- heat maps: the terminal -----------------------------------------------------------------


def heat_map(x_name: str, y_name: str, output: str, xs: Sequence[float], ys: Sequence[float],
             values: Grid, gradients: Grid, *, width: int, height: int, ascii: bool = False,
             color: bool = False) -> str:
    """The output ``output`` over the grid ``xs`` x ``ys`` (``values[i][j]`` at ``xs[i]``,
    ``ys[j]``; ``None`` where the point failed) as shades, with the gradients
    (``gradients[i][j] = (d/dx, d/dy)``, ``None`` where failed) as arrows on a coarser grid, in
    ``width`` characters (24..400) with ``height`` plot rows (5..200). See the module's
    documentation; ``color=True`` gives Rich markup."""
    marks = _ASCII if ascii else _UNICODE
    width, height = _clamp(width, MIN_WIDTH, MAX_WIDTH), _clamp(height, MIN_HEIGHT, MAX_HEIGHT)
    data = _field(output, xs, ys, values, gradients)
    left = _axis(data.y_extent, min(11, (height - 1) // 3 + 1), max(7, width // 3), snap=False)
    lw = max(1, left.widest)
    columns = width - lw - 3
    _, x_ticks, x_labels = _x_axis(data.x_extent, columns, 1, width, lw + 2, False)
    chars = [" "] * (columns * height)
    styles = [""] * (columns * height)
    zero = False
    if data.x_order and data.y_order:
        _shade(chars, styles, data, values, columns, marks, color)
        zero = _arrows(chars, styles, data, values, gradients, columns, marks, color)
        for k, failed in data.bad_cells(height, columns).items():
            chars[k], styles[k] = ((marks.failed, _STYLES["failed"]) if failed
                                   else (marks.unknown, _STYLES["unknown"]))
    y_rows = {min(height - 1, int((1.0 - left.frac(t)) * height)): label
              for t, label in zip(left.ticks, left.labels, strict=True)}
    lines = _rows(chars, styles, columns, y_rows, None, lw, marks)
    lines.append(_frame_bottom(lw + 1, columns, x_ticks, marks))
    lines.append([(x_labels, "")])
    lines.append([(_names_line(width, y_name, x_name, lw + 2 + columns // 2, "", marks), "")])
    lines += _legend(_heat_legend(output, data, zero, marks, color), width, marks)
    lines += _notes(data.notes, width)
    return _markup(lines, color)


def _shade_style(level: int, levels: int, color: bool) -> str:
    return f"on {_viridis(level / (levels - 1))}" if color else ""


def _shade(chars: list[str], styles: list[str], data: _Field, values: Grid, columns: int,
           marks: _Marks, color: bool) -> None:
    rows = len(chars) // columns
    levels = len(marks.shades)
    span = data.v_span or _EMPTY
    for row in range(rows):
        for column in range(columns):
            i, j = data.point(row, column, rows, columns)
            v = values[i][j]
            shown = _drawable(v)
            k = row * columns + column
            if shown is not None:
                level = _level(shown, span, levels)
                chars[k], styles[k] = marks.shades[level], _shade_style(level, levels, color)
            elif v is None:
                chars[k], styles[k] = marks.failed, _STYLES["failed"]
            else:
                chars[k], styles[k] = marks.unknown, _STYLES["unknown"]


def _arrows(chars: list[str], styles: list[str], data: _Field, values: Grid, gradients: Grid,
            columns: int, marks: _Marks, color: bool) -> bool:
    """Draw the arrows; whether one of them is a zero gradient."""
    rows = len(chars) // columns
    across = columns * _scale(data.x_extent)
    up = 2 * rows * _scale(data.y_extent)
    zero = False
    for row, column in _arrow_spots(columns, rows, len(data.x_order), len(data.y_order)):
        i, j = data.point(row, column, rows, columns)
        if _drawable(values[i][j]) is None:
            continue  # failed or not finite: its mark stays
        g = gradients[i][j]
        way = -1 if g is None else _direction(g, across, up)
        k = row * columns + column
        if way == -1:
            chars[k], styles[k] = marks.unknown, _STYLES["unknown"]
            continue
        zero = zero or way is None
        chars[k] = marks.zero if way is None else marks.arrows[way]
        styles[k] = f"{_STYLES['arrow']} {styles[k]}".strip() if color else ""
    return zero


def _heat_legend(output: str, data: _Field, zero: bool, marks: _Marks,
                 color: bool) -> list[tuple[_Line, str]]:
    levels = len(marks.shades)
    items: list[tuple[_Line, str]] = []
    if data.v_span is not None:
        lo, hi = data.v_span
        if _level(lo, data.v_span, levels) == levels // 2 == _level(hi, data.v_span, levels):
            middle = marks.shades[levels // 2]
            items.append(([("[", ""), (middle, _shade_style(levels // 2, levels, color)),
                           ("]", "")], f"{output} = {short(lo)} everywhere"))
        else:
            ramp = [(shade, _shade_style(k, levels, color)) for k, shade in enumerate(marks.shades)]
            items.append(([("[", ""), *ramp, ("]", "")],
                          f"{output} from {short(lo)} to {short(hi)}"))
    items.append(([(marks.arrows[1], _STYLES["arrow"])], "gradient: steepest ascent"))
    if zero:
        items.append(([(marks.zero, _STYLES["arrow"])], "zero gradient"))
    if data.failed:
        items.append(([(marks.failed, _STYLES["failed"])], f"failed ({data.failed:,})"))
    if data.unknown:
        items.append(([(marks.unknown, _STYLES["unknown"])], f"not finite ({data.unknown:,})"))
    return items


# --- SVG ---------------------------------------------------------------------------------------


def _n(v: float) -> str:
    return f"{v:.2f}"


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _svg(width: int, height: int, title: str, body: list[str]) -> str:
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Arial, sans-serif" '
            f'font-size="12">')
    return "\n".join([head, f"<title>{_e(title)}</title>",
                      f'<rect class="background" x="0" y="0" width="{width}" '
                      f'height="{height}" fill="#ffffff"/>', *body, "</svg>"]) + "\n"


def _text(x: float, y: float, text: str, cls: str, anchor: str = "middle",
          extra: str = "") -> str:
    return (f'<text class="{cls}" x="{_n(x)}" y="{_n(y)}" text-anchor="{anchor}"{extra}>'
            f"{_e(text)}</text>")


@dataclass(slots=True)
class _Box:
    """The plot area of a file, in pixels."""

    left: float
    top: float
    right: float
    bottom: float
    inset: float = 0.0  # curves keep this far from the top and bottom (off the frame)

    def x(self, f: float) -> float:
        return self.left + f * (self.right - self.left)

    def y(self, f: float) -> float:
        return self.bottom - self.inset - f * (self.bottom - self.top - 2 * self.inset)


def _svg_axes(box: _Box, x: _Axis, left: _Axis, right: _Axis | None) -> list[str]:
    out = ['<g class="axes" stroke="#000000" fill="none">',
           f'<rect x="{_n(box.left)}" y="{_n(box.top)}" width="{_n(box.right - box.left)}" '
           f'height="{_n(box.bottom - box.top)}"/>']
    ticks = [f"M{_n(box.x(x.frac(t)))} {_n(box.bottom)}v5" for t in x.ticks]
    ticks += [f"M{_n(box.left)} {_n(box.y(left.frac(t)))}h-5" for t in left.ticks]
    ticks += [f"M{_n(box.right)} {_n(box.y(right.frac(t)))}h5" for t in right.ticks] \
        if right else []
    out += [f'<path class="ticks" d="{"".join(ticks)}"/>', "</g>",
            '<g class="tick-labels" fill="#000000">']
    out += [_text(box.x(x.frac(t)), box.bottom + 18, s, "x-tick")
            for t, s in zip(x.ticks, x.labels, strict=True)]
    out += [_text(box.left - 8, box.y(left.frac(t)) + 4, s, "left-tick", "end")
            for t, s in zip(left.ticks, left.labels, strict=True)]
    out += [_text(box.right + 8, box.y(right.frac(t)) + 4, s, "right-tick", "start")
            for t, s in zip(right.ticks, right.labels, strict=True)] if right else []
    out.append("</g>")
    return out


def _path(points: Iterable[tuple[float, float] | None]) -> str:
    """Path data through ``points``, broken at each ``None``; a point alone is a dot (``h0``
    with round caps)."""
    parts: list[str] = []
    piece = 0  # points in the current piece
    for point in points:
        if point is None:
            parts += ["h0"] if piece == 1 else []
            piece = 0
            continue
        parts.append(f"{'L' if piece else 'M'}{_n(point[0])} {_n(point[1])}")
        piece += 1
    parts += ["h0"] if piece == 1 else []
    return "".join(parts)


def _file_size(width: int, height: int) -> tuple[int, int]:
    return _clamp(width, 320, 8000), _clamp(height, 240, 8000)


def svg_line_plot(x_name: str, output: str, xs: Sequence[float],
                  values: Sequence[float | None], slopes: Sequence[float | None],
                  kinks: Sequence[bool], *, width: int = FILE_WIDTH,
                  height: int = FILE_HEIGHT) -> str:
    """:func:`line_plot` as an SVG document of ``width`` x ``height`` pixels (320..8000 x
    240..8000): the value as a solid path (class ``value``), the derivative dashed (class
    ``slope``) on its own axis on the right, kinks as diamonds, failed points as crosses on
    the x axis, tick labels, axis names, a legend and the notes as text."""
    width, height = _file_size(width, height)
    slope_name = f"∂{output}/∂{x_name}"
    data = _curves(output, slope_name, xs, values, slopes, kinks)
    box = _Box(80, 40, width - 80, height - 56 - 16 * len(data.notes), 8)
    most_y = max(3, min(11, int(box.bottom - box.top) // 40))
    left, right = _axis(data.v_span, most_y, 16), _axis(data.s_span, most_y, 16)
    x = _axis(data.x_span, max(3, min(11, int(box.right - box.left) // 55)), 16)
    fx = [None if p is None else box.x(x.frac(p)) for p in data.x]
    value = _path(None if a is None or v is None else (a, box.y(left.frac(v)))
                  for a, v in zip(fx, data.v, strict=True))
    slope = _path(point for a, s, k in zip(fx, data.s, data.kink, strict=True)
                  for point in _slope_points(a, s, k, box, right))
    body = _svg_axes(box, x, left, right)
    body += [_text(box.x(0.5), box.bottom + 38, x_name, "x-name"),
             _text(box.left - 8, box.top - 12, output, "left-name", "end"),
             _text(box.right + 8, box.top - 12, slope_name, "right-name", "start"),
             f'<path class="value" d="{value}" fill="none" stroke="#1f77b4" '
             f'stroke-width="1.5" stroke-linecap="round"/>',
             f'<path class="slope" d="{slope}" fill="none" stroke="#d62728" '
             f'stroke-width="1.5" stroke-dasharray="6 3" stroke-linecap="round"/>']
    kinks_at = [f"M{_n(a)} {_n(box.y(left.frac(v)) - 5)}l5 5l-5 5l-5 -5z"
                for a, v, k, f in zip(fx, data.v, data.kink, data.failed, strict=True)
                if k and a is not None and v is not None and not f]
    failed_at = [f"M{_n(a - 4)} {_n(box.bottom - 4)}l8 8m0 -8l-8 8"
                 for a, f in zip(fx, data.failed, strict=True) if f and a is not None]
    body += [f'<path class="kinks" d="{"".join(kinks_at)}" fill="#ff7f0e" stroke="#000000" '
             f'stroke-width="0.5"/>',
             f'<path class="failed" d="{"".join(failed_at)}" stroke="#d00000" '
             f'stroke-width="2"/>']
    body += _svg_line_legend(box, output, slope_name, data)
    body += [_text(box.left, box.bottom + 58 + 16 * k, note, "note", "start")
             for k, note in enumerate(data.notes)]
    return _svg(width, height, f"{output} and {slope_name} over {x_name}", body)


def _slope_points(a: float | None, s: float | None, kink: bool, box: _Box,
                  axis: _Axis) -> list[tuple[float, float] | None]:
    if a is None or s is None:
        return [None]
    point = (a, box.y(axis.frac(s)))
    return [None, point, None] if kink else [point]


def _svg_line_legend(box: _Box, output: str, slope_name: str, data: _Curves) -> list[str]:
    x, y = box.left, 20.0
    out = ['<g class="legend">',
           f'<path d="M{_n(x)} {_n(y - 4)}h24" stroke="#1f77b4" stroke-width="1.5"/>',
           _text(x + 30, y, f"{output} (left axis)", "legend", "start")]
    x += 60 + 7 * len(output) + 70
    out += [f'<path d="M{_n(x)} {_n(y - 4)}h24" stroke="#d62728" stroke-width="1.5" '
            f'stroke-dasharray="6 3"/>',
            _text(x + 30, y, f"{slope_name} (right axis)", "legend", "start")]
    x += 60 + 7 * len(slope_name) + 80
    if data.kinks:
        out += [f'<path d="M{_n(x + 5)} {_n(y - 9)}l5 5l-5 5l-5 -5z" fill="#ff7f0e" '
                f'stroke="#000000" stroke-width="0.5"/>',
                _text(x + 16, y, f"kink ({data.kinks:,})", "legend", "start")]
        x += 90
    if data.failures:
        out += [f'<path d="M{_n(x + 1)} {_n(y - 8)}l8 8m0 -8l-8 8" stroke="#d00000" '
                f'stroke-width="2"/>',
                _text(x + 16, y, f"failed ({data.failures:,})", "legend", "start")]
    out.append("</g>")
    return out


def svg_heat_map(x_name: str, y_name: str, output: str, xs: Sequence[float],
                 ys: Sequence[float], values: Grid, gradients: Grid, *,
                 width: int = FILE_WIDTH, height: int = FILE_HEIGHT) -> str:
    """:func:`heat_map` as an SVG document of ``width`` x ``height`` pixels: one rectangle a
    point (at most 100 a side: larger grids are sampled), shaded in viridis, failed points
    grey, values that are not finite white; arrows of one length along the gradient on a
    coarser grid; axes, a colour bar with the value range, the legend and the notes."""
    width, height = _file_size(width, height)
    data = _field(output, xs, ys, values, gradients)
    box = _Box(70, 40, width - 130, height - 56 - 16 * len(data.notes))
    x = _axis(data.x_extent, max(3, min(11, int(box.right - box.left) // 55)), 16, snap=False)
    y = _axis(data.y_extent, max(3, min(11, int(box.bottom - box.top) // 40)), 16, snap=False)
    body = _svg_cells(box, data, values)
    body += _svg_arrows(box, data, values, gradients)
    body += _svg_axes(box, x, y, None)
    body += [_text(box.x(0.5), box.bottom + 38, x_name, "x-name"),
             _text(box.left - 8, box.top - 12, y_name, "y-name", "end")]
    body += _svg_colorbar(box, output, data)
    items = ["arrows: gradient, steepest ascent"]
    if any(line.startswith("<circle") for line in body):
        items.append("∘ zero gradient")
    if data.failed:
        items.append(f"grey: failed ({data.failed:,})")
    if data.unknown:
        items.append(f"white: not finite ({data.unknown:,})")
    body.append('<g class="legend">')
    at = box.left
    for item in items:
        body.append(_text(at, 20, item, "legend", "start"))
        at += 7 * len(item) + 24
    body.append("</g>")
    body += [_text(box.left, box.bottom + 58 + 16 * k, note, "note", "start")
             for k, note in enumerate(data.notes)]
    return _svg(width, height, f"{output} over {x_name} and {y_name}", body)


def _svg_cells(box: _Box, data: _Field, values: Grid) -> list[str]:
    nx, ny = len(data.x_order), len(data.y_order)
    across, down = min(nx, SVG_CELLS), min(ny, SVG_CELLS)
    w, h = (box.right - box.left) / max(1, across), (box.bottom - box.top) / max(1, down)
    bad = data.bad_cells(down, across) if nx and ny else {}
    span = data.v_span or _EMPTY
    out = ['<g class="cells" shape-rendering="crispEdges">']
    for r in range(down):
        for c in range(across):
            failed = bad.get(r * across + c)
            if failed is None:
                i, j = data.point(r, c, down, across)
                shown = _drawable(values[i][j])
                fill, cls = _viridis(_level(shown or 0.0, span, 1001) / 1000), "cell"
            else:
                fill, cls = ("#9e9e9e", "failed") if failed else ("#ffffff", "unknown")
            out.append(f'<rect class="{cls}" x="{_n(box.left + c * w)}" '
                       f'y="{_n(box.top + r * h)}" width="{_n(w)}" height="{_n(h)}" '
                       f'fill="{fill}"/>')
    out.append("</g>")
    return out


def _svg_arrows(box: _Box, data: _Field, values: Grid, gradients: Grid) -> list[str]:
    nx, ny = len(data.x_order), len(data.y_order)
    if not nx or not ny:
        return ['<path class="arrows" d=""/>']
    pw, ph = box.right - box.left, box.bottom - box.top
    across, up = pw * _scale(data.x_extent), ph * _scale(data.y_extent)
    spots = _arrow_spots(round(pw), round(ph), nx, ny, 40, 40)
    length = 0.4 * min(pw / max(1, min(nx, round(pw) // 40)),
                       ph / max(1, min(ny, round(ph) // 40)), 40)
    arrows, zeros = [], []
    for row, column in spots:
        i, j = data.point(row, column, round(ph), round(pw))
        g = gradients[i][j]
        if g is None or _drawable(values[i][j]) is None:
            continue
        cx, cy = box.left + column + 0.5, box.top + row + 0.5
        gx, gy = float(g[0]) * across, float(g[1]) * up
        size = math.hypot(gx, gy) if math.isfinite(gx) and math.isfinite(gy) else math.nan
        if size == 0:
            zeros.append(f'<circle cx="{_n(cx)}" cy="{_n(cy)}" r="2"/>')
        elif math.isfinite(size):
            arrows.append(_svg_arrow(cx, cy, gx / size, -gy / size, length))
    return [f'<path class="arrows" d="{"".join(arrows)}" stroke="#ffffff" '
            f'stroke-width="1.5" fill="none"/>',
            '<g class="zeros" fill="#ffffff">', *zeros, "</g>"]


def _svg_arrow(cx: float, cy: float, ux: float, uy: float, length: float) -> str:
    """An arrow of ``length`` centred on ``(cx, cy)`` along the unit vector ``(ux, uy)``."""
    x0, y0 = cx - ux * length / 2, cy - uy * length / 2
    x1, y1 = cx + ux * length / 2, cy + uy * length / 2
    head = length / 3
    hx1, hy1 = x1 - head * (ux * 0.87 - uy * 0.5), y1 - head * (uy * 0.87 + ux * 0.5)
    hx2, hy2 = x1 - head * (ux * 0.87 + uy * 0.5), y1 - head * (uy * 0.87 - ux * 0.5)
    return (f"M{_n(x0)} {_n(y0)}L{_n(x1)} {_n(y1)}M{_n(hx1)} {_n(hy1)}L{_n(x1)} {_n(y1)}"
            f"L{_n(hx2)} {_n(hy2)}")


def _svg_colorbar(box: _Box, output: str, data: _Field) -> list[str]:
    left, steps = box.right + 30, 50
    h = (box.bottom - box.top) / steps
    out = ['<g class="colorbar" shape-rendering="crispEdges">']
    out += [f'<rect x="{_n(left)}" y="{_n(box.bottom - (k + 1) * h)}" width="16" '
            f'height="{_n(h)}" fill="{_viridis(k / (steps - 1))}"/>' for k in range(steps)]
    out.append(_text(left, box.top - 12, output, "colorbar-name", "start"))
    if data.v_span is not None:
        axis = _axis(data.v_span, 6, 16, snap=False)
        out += [_text(left + 22, box.y(axis.frac(t)) + 4, s, "colorbar-tick", "start")
                for t, s in zip(axis.ticks, axis.labels, strict=True)]
    out.append("</g>")
    return out


# --- PNG (matplotlib) ----------------------------------------------------------------------------


def _matplotlib() -> tuple[Any, Any, Any]:
    """matplotlib's Figure, its Agg canvas and numpy, imported on first use."""
    try:
        figure = importlib.import_module("matplotlib.figure")
        agg = importlib.import_module("matplotlib.backends.backend_agg")
        numpy = importlib.import_module("numpy")
    except ImportError:
        raise InputError("writing PNG needs matplotlib: pip install 'gradcalc[plot]'",
                         hint="or write SVG: --output plot.svg") from None
    return figure.Figure, agg.FigureCanvasAgg, numpy


def _png(figure: Any) -> bytes:
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=100, metadata={"Software": None})
    return out.getvalue()


def _figure(width: int, height: int, box: tuple[float, float, float, float]) -> Any:
    figure_class, canvas, _ = _matplotlib()
    figure = figure_class(figsize=(width / 100, height / 100), dpi=100)
    canvas(figure)
    figure.subplots_adjust(left=box[0], bottom=box[1], right=box[2], top=box[3])
    return figure


def _mpl_ticks(ax: Any, which: str, axis: _Axis, pad: float = 0.0) -> None:
    """The axis' range (widened by ``pad`` of it on both sides), ticks and labels."""
    margin = (axis.hi - axis.lo) * pad
    getattr(ax, f"set_{which}lim")(axis.lo - margin, axis.hi + margin)
    getattr(ax, f"set_{which}ticks")(axis.ticks, axis.labels)


def png_line_plot(x_name: str, output: str, xs: Sequence[float],
                  values: Sequence[float | None], slopes: Sequence[float | None],
                  kinks: Sequence[bool], *, width: int = FILE_WIDTH,
                  height: int = FILE_HEIGHT) -> bytes:
    """:func:`svg_line_plot`'s picture as PNG bytes, drawn by matplotlib (Agg, no metadata
    that changes between runs). ``InputError`` if matplotlib is not installed."""
    width, height = _file_size(width, height)
    slope_name = f"∂{output}/∂{x_name}"
    data = _curves(output, slope_name, xs, values, slopes, kinks)
    _, _, np = _matplotlib()
    figure = _figure(width, height, (0.11, 0.2 + 0.03 * len(data.notes), 0.89, 0.88))
    ax = figure.add_subplot()
    twin = ax.twinx()
    nan = math.nan
    x = [nan if p is None else p for p in data.x]
    v = [nan if a is None else a for a in data.v]
    s = [nan if a is None or k else a for a, k in zip(data.s, data.kink, strict=True)]
    ax.plot(x, v, color="#1f77b4", linewidth=1.5, label=f"{output} (left axis)")
    twin.plot(x, s, color="#d62728", linewidth=1.5, linestyle="--",
              label=f"{slope_name} (right axis)")
    lone = [(p, a) for p, a, k in zip(x, data.s, data.kink, strict=True) if k and a is not None]
    twin.plot([p for p, _ in lone], [a for _, a in lone], ".", color="#d62728")
    handles = [*ax.get_lines(), twin.get_lines()[0]]
    kink_x = [p for p, a, k in zip(x, data.v, data.kink, strict=True) if k and a is not None]
    if kink_x:
        handles.append(ax.plot(kink_x, [a for a, k in zip(data.v, data.kink, strict=True)
                                        if k and a is not None], "D", color="#ff7f0e",
                               markeredgecolor="#000000", label=f"kink ({data.kinks:,})")[0])
    fail_x = [p for p, f in zip(x, data.failed, strict=True) if f and not math.isnan(p)]
    if fail_x:
        handles.append(ax.plot(fail_x, np.zeros(len(fail_x)), "x", color="#d00000",
                               markersize=8, clip_on=False, transform=ax.get_xaxis_transform(),
                               label=f"failed ({data.failures:,})")[0])
    most = 7
    _mpl_ticks(ax, "x", _axis(data.x_span, 9, 16))
    _mpl_ticks(ax, "y", _axis(data.v_span, most, 16), 0.02)
    _mpl_ticks(twin, "y", _axis(data.s_span, most, 16), 0.02)
    ax.set_xlabel(x_name)
    ax.set_ylabel(output)
    twin.set_ylabel(slope_name)
    figure.legend(handles=handles, loc="upper center", ncol=len(handles), frameon=False)
    for k, note in enumerate(data.notes):
        figure.text(0.11, 0.02 + 0.03 * (len(data.notes) - 1 - k), note)
    return _png(figure)


def png_heat_map(x_name: str, y_name: str, output: str, xs: Sequence[float],
                 ys: Sequence[float], values: Grid, gradients: Grid, *,
                 width: int = FILE_WIDTH, height: int = FILE_HEIGHT) -> bytes:
    """:func:`svg_heat_map`'s picture as PNG bytes, drawn by matplotlib (viridis, failed points
    grey, values that are not finite white, arrows of one length along the gradient on a
    coarser grid, a colour bar). ``InputError`` if matplotlib is not installed."""
    width, height = _file_size(width, height)
    data = _field(output, xs, ys, values, gradients)
    _, _, np = _matplotlib()
    box = (0.1, 0.14 + 0.03 * len(data.notes), 0.9, 0.9)
    figure = _figure(width, height, box)
    ax = figure.add_subplot()
    nx, ny = len(data.x_order), len(data.y_order)
    grid = np.full((max(1, ny), max(1, nx)), np.nan)
    unknown = np.zeros((max(1, ny), max(1, nx), 4))  # white where not finite, else clear
    for c, i in enumerate(data.x_order):
        for r, j in enumerate(data.y_order):
            shown = _drawable(values[i][j])
            grid[r, c] = np.nan if shown is None else shown
            if shown is None and values[i][j] is not None:
                unknown[r, c] = 1.0
    cmap = importlib.import_module("matplotlib").colormaps["viridis"].with_extremes(
        bad="#9e9e9e")
    extent = (*(data.x_extent or _EMPTY), *(data.y_extent or _EMPTY))
    lo, hi = _extent(*data.v_span) if data.v_span else _EMPTY
    image = ax.imshow(np.ma.masked_invalid(grid), origin="lower", aspect="auto", cmap=cmap,
                      vmin=lo, vmax=hi, interpolation="nearest", extent=extent)
    ax.imshow(unknown, origin="lower", aspect="auto", interpolation="nearest", extent=extent)
    figure.colorbar(image, ax=ax, label=output)
    if nx and ny:
        _png_arrows(ax, data, xs, ys, values, gradients, width, height)
    _mpl_ticks(ax, "x", _axis(data.x_extent, 9, 16, snap=False))
    _mpl_ticks(ax, "y", _axis(data.y_extent, 7, 16, snap=False))
    ax.set_xlabel(x_name)
    ax.set_ylabel(y_name)
    legend = "arrows: gradient, steepest ascent"
    if data.failed:
        legend += f"   grey: failed ({data.failed:,})"
    if data.unknown:
        legend += f"   white: not finite ({data.unknown:,})"
    figure.text(box[0], 0.95, legend)
    for k, note in enumerate(data.notes):
        figure.text(box[0], 0.02 + 0.03 * (len(data.notes) - 1 - k), note)
    return _png(figure)


def _png_arrows(ax: Any, data: _Field, xs: Sequence[float], ys: Sequence[float],
                values: Grid, gradients: Grid, width: int, height: int) -> None:
    """Arrows of one length on the screen (``angles='uv'``) along the gradient as drawn on
    the axes (each component scaled by the axis' pixels per unit)."""
    place = ax.get_position()  # after the colour bar took its share
    pw, ph = round(place.width * width), round(place.height * height)
    across, up = pw * _scale(data.x_extent), ph * _scale(data.y_extent)
    points = []
    for row, column in _arrow_spots(pw, ph, len(data.x_order), len(data.y_order), 40, 40):
        i, j = data.point(row, column, ph, pw)
        g = gradients[i][j]
        x, y = _drawable(xs[i]), _drawable(ys[j])
        if g is None or x is None or y is None or _drawable(values[i][j]) is None:
            continue
        gx, gy = float(g[0]) * across, float(g[1]) * up
        size = math.hypot(gx, gy)
        if math.isfinite(size) and size > 0:
            points.append((x, y, gx / size, gy / size))
    if points:
        px, py, u, v = zip(*points, strict=True)
        ax.quiver(px, py, u, v, angles="uv", pivot="middle", color="#ffffff", scale=30,
                  width=0.004)
