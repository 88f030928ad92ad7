"""Results as text for people and programs. Functions here return strings or Rich renderables;
they never print. Rich is imported only by the functions that draw with it."""

from __future__ import annotations

import copy
import functools
import itertools
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gradcalc.api import Result, Stats
from gradcalc.dag import Dag
from gradcalc.errors import argument
from gradcalc.fmt import Glyphs, format_count, format_number, json_number
from gradcalc.serialize import diagnostic_object, flat, to_json_object
from gradcalc.serialize import names as _names
from gradcalc.serialize import where as _where

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
    from rich.table import Table

    from gradcalc.derivatives import Check, Checks, Matrix

__all__ = ["GRAPH_FORMS", "BatchTable", "GraphTooLarge", "as_text", "batch_plain", "batch_table",
           "graph_view", "layered_table", "to_json", "to_plain", "to_table"]


def gradient_text(result: Result, name: str) -> str:
    """The gradient for ``name`` as printed: its number where known (and not asked to be
    symbolic), its formula otherwise."""
    formula = result.formulas.get(name)
    if formula is not None and (result.symbolic or name not in result.gradients):
        return formula.local
    return format_number(result.gradients[name])


def to_plain(result: Result, value: bool = False) -> str:
    """One line per requested name, ``NAME GRADIENT``: the number, or the formula where an
    input has no value (or with ``--symbolic``); with stats, ``stats.KEY VALUE`` lines follow.
    Numbers are the shortest round-tripping text (``45``, ``0.1``, ``inf``).

    With ``value`` (and always when no gradient was asked for, so that ``2+3`` answers 5), a
    first line ``OUTPUT = VALUE`` (``?`` where the value needs a missing input)."""
    names = _names(result)
    lines = [f"{name} {gradient_text(result, name)}" for name in names]
    where = _where(result)
    if where is not None:
        lines.insert(0, f"where: {where}")
    if value or not names:
        shown = "?" if result.value is None else format_number(result.value)
        lines.insert(0, f"{result.output} = {shown}")
    if result.stats is not None:
        lines.extend(f"stats.{key} {value}" for key, value in _stats_rows(result.stats))
    return "\n".join(lines) + ("\n" if lines else "")


def to_json(result: Result) -> str:
    """One JSON object: ``output``, ``value``, ``gradients``, ``values``, ``inputs``,
    ``warnings`` and, when asked for, ``stats``. Non-finite numbers are the strings
    ``"inf"``, ``"-inf"``, ``"nan"``."""
    return json.dumps(to_json_object(result), ensure_ascii=False) + "\n"


def _stats_rows(s: Stats) -> list[tuple[str, str]]:
    rows = [
        ("nodes", str(s.nodes)),
        ("edges", str(s.edges)),
        ("merged", str(s.merged)),
        ("cone_nodes", str(s.cone_nodes)),
        ("visited_nodes", str(s.visited_nodes)),
        ("visited_edges", str(s.visited_edges)),
    ]
    rows.extend((f"paths.{n}", format_count(p)) for n, p in s.paths.items())
    return rows


def to_table(result: Result, unicode: bool = True) -> RenderableType:
    """A Rich view: the output's value, then name, value and gradient for each requested name,
    then the statistics when asked for. No number, formula or name is ever cut: on a narrow
    console the tables wrap, and where even that cannot keep every number whole they become
    one record per name."""
    from rich.console import Group
    from rich.text import Text

    out, d = result.output, Glyphs(unicode).partial
    shown = "?" if result.value is None else format_number(result.value)
    parts: list[RenderableType] = [Text.assemble((out, "bold"), " = ", (shown, "bold cyan"))]
    names = _names(result)
    if names:
        columns: list[tuple[str, dict[str, Any]]] = [
            ("name", {}), ("value", {"justify": "right"}),
            (f"{d}{out}/{d}name", {"justify": "left" if result.formulas else "right",
                               "style": "green"})]
        if result.formulas:
            columns.append(("= at the given values", {"justify": "right"}))
        rows = []
        for name in names:
            value = result.values.get(name)
            formula = result.formulas.get(name)
            row = [name, "?" if value is None else format_number(value),
                   formula.local if formula is not None else gradient_text(result, name)]
            if result.formulas:
                number = result.gradients.get(name)
                row.append("" if number is None else format_number(number))
            rows.append(row)
        fit = _Fit(fold=frozenset({2}) if result.formulas else frozenset())
        parts.append(Text())
        where = _where(result)
        if where is not None:
            parts.extend([Text.assemble(("where: ", "bold"), where), Text()])
        parts.append(_table(columns, rows, fit, box=None, pad_edge=False, show_edge=False,
                            header_style="bold"))
    if result.stats is not None:
        s = result.stats
        saved = [
            ("nodes / edges", f"{s.nodes} / {s.edges}"),
            ("merged sub-expressions", str(s.merged)),
            (f"nodes {out} depends on", str(s.cone_nodes)),
            ("visited by backward", f"{s.visited_nodes} nodes, {s.visited_edges} edges"),
        ]
        saved.extend((f"paths from {out} to {n}", format_count(p)) for n, p in s.paths.items())
        stats = _table([("", {"style": "dim"}), ("", {"justify": "right"})], saved, _Fit(),
                       box=None, pad_edge=False, show_edge=False, show_header=False)
        parts.extend([Text(), Text("statistics", style="bold"), stats])
    return Group(*parts)


# --- tables that fit the console -------------------------------------------------------------

# A column that may fold its words keeps at least this many cells (the longest number,
# ``-2.2250738585072014e-308``, has 24), so only formulas' long products ever fold there.
_FOLD_WORDS = 24
_UNLIMITED = 1_000_000


@dataclass(frozen=True)
class _Fit:
    """How a table narrows when the console is too narrow for it: ``fold`` lists the columns
    (formulas, messages) whose words longer than :data:`_FOLD_WORDS` may fold; ``narrower``
    builds tables with fewer columns to try next; the last resort lists one record per row,
    headed by the ``key`` column (with its header when ``key_label``)."""

    fold: frozenset[int] = frozenset()
    narrower: tuple[Callable[[], Table], ...] = ()
    key: int = 0
    key_label: bool = False


@functools.cache
def _table_class() -> Callable[..., Table]:
    """The Rich table class that chooses its layout by the width it is given (made on first
    use, so that Rich is imported only when something is drawn with it)."""
    from rich.table import Table

    class FittingTable(Table):
        def __init__(self, fit: _Fit, **options: Any) -> None:
            super().__init__(**options)
            self.fit = fit

        def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
            return _fitted(self, console, options)

    return FittingTable


def _table(columns: Sequence[tuple[str, dict[str, Any]]], rows: Iterable[Sequence[Any]],
           fit: _Fit, **options: Any) -> Table:
    """A table that never cuts a cell: every column folds rather than truncates, and the
    layout is chosen when the width is known (see :func:`_fitted`)."""
    table = _table_class()(fit, **options)
    for header, settings in columns:
        table.add_column(header, overflow="fold", **settings)
    for row in rows:
        table.add_row(*row)
    return table


def _fitted(table: Table, console: Console, options: ConsoleOptions) -> RenderResult:
    """Render ``table`` as it is when it fits; else with column widths that keep every word
    whole; else the first of its narrower tables that fits; else one record per row."""
    from rich.table import Table

    fit: _Fit = getattr(table, "fit", _Fit())
    for candidate in itertools.chain([table], (build() for build in fit.narrower)):
        sized = _sized(candidate, console, options)
        if sized is not None:
            return Table.__rich_console__(sized, console, options)
    return [_records(table, console)]


def _sized(table: Table, console: Console, options: ConsoleOptions) -> Table | None:
    """``table`` itself when it fits ``options.max_width`` as it is, a copy with column widths
    that wrap cells only between words when those fit, ``None`` otherwise."""
    from rich.measure import Measurement

    unlimited = options.update_width(_UNLIMITED)
    if Measurement.get(console, unlimited, table).maximum <= options.max_width:
        return table
    count = len(table.columns)
    # Padding and borders: what a table of one-cell-wide columns takes beyond its cells.
    overhead = Measurement.get(console, unlimited, _with_widths(table, [1] * count)).maximum
    fold: frozenset[int] = getattr(table, "fit", _Fit()).fold
    ranges = [_column_range(_column_texts(table, i), _FOLD_WORDS if i in fold else None)
              for i in range(count)]
    widths = _allocate(ranges, options.max_width - (overhead - count))
    return None if widths is None else _with_widths(table, widths)


def _with_widths(table: Table, widths: list[int]) -> Table:
    """A copy of ``table`` whose columns have these fixed widths (the original is unchanged)."""
    sized = copy.copy(table)
    sized.columns = []
    for column, width in zip(table.columns, widths, strict=True):
        column = copy.copy(column)
        column.width = width
        sized.columns.append(column)
    return sized


def _plain(cell: object) -> str:
    """The text a cell shows (markup applied)."""
    from rich.text import Text

    if isinstance(cell, str):
        return Text.from_markup(cell).plain
    return cell.plain if isinstance(cell, Text) else ""


def _column_texts(table: Table, index: int) -> list[str]:
    column = table.columns[index]
    texts = [_plain(column.header)] if table.show_header else []
    texts.extend(_plain(cell) for cell in column.cells)
    return texts


def _column_range(texts: Iterable[str], fold: int | None = None) -> tuple[int, int]:
    """The narrowest and the widest a column holding ``texts`` may be: its longest word (at most
    ``fold`` when words may fold) and its longest line, in terminal cells."""
    from rich.cells import cell_len

    lines = [line for text in texts for line in text.splitlines()]
    word = max((cell_len(w) for line in lines for w in line.split()), default=0)
    if fold is not None:
        word = min(word, fold)
    longest = max((cell_len(line) for line in lines), default=0)
    return max(word, 1), max(longest, word, 1)


def _allocate(ranges: Sequence[tuple[int, int]], room: int) -> list[int] | None:
    """Column widths within ``room`` cells, each within its range (narrowest, widest): the
    widest when they fit, else the widest columns cut down to a common width, as Rich does, but
    never below their narrowest; ``None`` when even the narrowest do not fit."""
    least = [low for low, _ in ranges]
    if sum(least) > room:
        return None
    most = [high for _, high in ranges]
    if sum(most) <= room:
        return most

    def capped(cap: int) -> list[int]:
        return [min(high, max(low, cap)) for low, high in ranges]

    # The widest common cap that fits, found by bisection (it lies in [0, max(most))).
    low, high = 0, max(most)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if sum(capped(middle)) <= room else (low, middle)
    widths = capped(low)
    spare = room - sum(widths)
    for i, (width, (least_i, most_i)) in enumerate(zip(widths, ranges, strict=True)):
        if spare and width == low and least_i <= low < most_i:
            widths[i] += 1
            spare -= 1
    return widths


def _records(table: Table, console: Console) -> RenderableType:
    """The last resort on a very narrow console: each row as a record, its key on a line of its
    own and every other cell below it, indented, after its column's header; a table without
    headers gives one line per row. Lines wrap between words and fold only words longer than
    the console is wide."""
    from rich.console import Group
    from rich.padding import Padding
    from rich.text import Text

    fit: _Fit = getattr(table, "fit", _Fit())

    def text(cell: object, style: Any = "") -> Text:
        shown = console.render_str(cell) if isinstance(cell, str) else cell
        assert isinstance(shown, Text)
        return Text.assemble(shown, style=style or "", overflow="fold")

    headers = [_plain(column.header) for column in table.columns]
    columns = [list(column.cells) for column in table.columns]
    styles = [column.style for column in table.columns]
    lines: list[RenderableType] = []
    if table.title:
        lines.append(text(table.title, "italic"))
    for row in zip(*columns, strict=True):
        cells = [text(cell, style) for cell, style in zip(row, styles, strict=True)]
        if not table.show_header:
            lines.append(Text("  ", overflow="fold").join(cells))
            continue
        key = cells[fit.key]
        key.stylize("bold")
        label = headers[fit.key] if fit.key_label else ""
        lines.append(Text.assemble((label, "dim"), " ", key, overflow="fold") if label else key)
        for index, cell in enumerate(cells):
            if index == fit.key or not cell.plain:
                continue
            field = (Text.assemble((headers[index], "dim"), " ", cell, overflow="fold")
                     if headers[index] else cell)
            lines.append(Padding(field, (0, 0, 0, 2), expand=False))
    return Group(*lines)


# --- graph views ----------------------------------------------------------------------------

GRAPH_FORMS = ("auto", "full", "compact", "tree", "table")


def graph_view(dag: Dag, output: int, values: list[float], grads: list[float], *,
               form: str = "auto", width: int | None = None, unicode: bool = True
               ) -> str | RenderableType:
    """The picture of the graph in ``form``; ``auto`` tries the full drawing, then the compact
    one, then the tree listing, and ends at the layered table, whichever first fits ``width``
    columns (no limit when ``None``). Forced forms are drawn whatever their width."""
    from gradcalc.listing import TreeTooLarge, tree_lines
    from gradcalc.picture import Style, TooLarge, draw

    style = Style(unicode)
    if form in ("full", "compact"):
        try:
            return draw(dag, output, values, grads, compact=form == "compact", style=style,
                        max_nodes=2000)
        except TooLarge as exc:
            raise GraphTooLarge(f"the graph is too large to draw ({exc}); use "
                                f"{argument('form', 'tree')} or {argument('form', 'table')}"
                                ) from None
    if form == "auto":
        for compact in (False, True):
            try:
                return draw(dag, output, values, grads, compact=compact, style=style,
                            max_width=width)
            except TooLarge:
                continue
    if form in ("auto", "tree"):
        limit = None if form == "tree" else (width or _TREE_WIDTH)
        try:  # a row wider than the limit is reason enough to stop early
            lines = tree_lines(dag, output, values, grads, style, limit)
        except TreeTooLarge as exc:
            if form == "tree":
                raise GraphTooLarge(f"the tree listing is too large ({exc}); use "
                                    f"{argument('form', 'table')}") from None
        else:
            if limit is None or max(map(len, lines)) <= limit:
                return "\n".join(lines) + "\n"
    return layered_table(dag, output, values, grads, unicode)


def as_text(view: RenderableType, unicode: bool = True, width: int = 200) -> str:
    """A Rich renderable as plain text (no colour), e.g. the layered table for JSON."""
    import io

    from rich.console import Console

    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None, legacy_windows=False,
            safe_box=not unicode).print(view)
    lines = [line.rstrip() for line in buffer.getvalue().splitlines()]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines) + "\n"


_TREE_WIDTH = 160  # without a terminal, a tree wider than this becomes the table


class GraphTooLarge(Exception):
    """A forced drawing of a graph too large to lay out."""


#: Beyond this many rows the layered table is laid out here, column widths from the longest
#: cell, not by Rich: Rich measures every cell of every column (about 1 ms a row).
PLAIN_TABLE_ROWS = 2000


def layered_table(dag: Dag, output: int, values: list[float], grads: list[float],
                  unicode: bool = True) -> Table | str:
    """One row per node: layer, node, op, inputs, value, gradient, consumer count. Where the
    console is too narrow for that, the layer and consumer columns go first, then each node
    becomes a record; nothing is cut."""
    from rich import box

    from gradcalc.fmt import Glyphs, short
    from gradcalc.listing import layered_rows

    name = dag.names[output] or "OUT"
    d = Glyphs(unicode).partial
    columns = [("layer", "right"), ("node", "left"), ("op", "left"), ("inputs", "left"),
               ("value", "right"), (f"{d}{name}/{d}node", "right"), ("consumers", "right")]
    rows = [(str(row.layer), row.node, row.op, row.inputs, short(row.value),
             short(row.gradient), str(row.consumers))
            for row in layered_rows(dag, output, values, grads, Glyphs(unicode))]

    if len(rows) > PLAIN_TABLE_ROWS:
        return _text_table(columns, rows)

    def build(keep: Sequence[int], narrower: tuple[Callable[[], Table], ...] = ()) -> Table:
        return _table([(columns[i][0], {"justify": columns[i][1]}) for i in keep],
                      ([row[i] for i in keep] for row in rows),
                      _Fit(narrower=narrower, key=list(keep).index(1)),
                      box=box.SIMPLE_HEAD if unicode else box.ASCII, pad_edge=not unicode)

    return build(range(7), (functools.partial(build, (1, 2, 3, 4, 5)),))


def _text_table(columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[str]]) -> str:
    """Columns of text two spaces apart, each as wide as its longest cell, a rule under the
    header; nothing is cut (a wide table is wider than the terminal)."""
    widths = [max(len(columns[i][0]), *(len(row[i]) for row in rows))
              for i in range(len(columns))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell.rjust(w) if justify == "right" else cell.ljust(w)
                         for cell, w, (_, justify) in zip(cells, widths, columns, strict=True)
                         ).rstrip()

    out = [line([title for title, _ in columns]), "  ".join("-" * w for w in widths)]
    out.extend(line(row) for row in rows)
    return "\n".join(out) + "\n"


# --- batch results ---------------------------------------------------------------------------


class BatchTable:
    """Batch results as delimited text (CSV or TSV), streamed: a header, then one row per
    problem. Columns: ``line, output, value``, one ``d_NAME`` per gradient name, ``other``
    and ``error``. The gradient columns are the ``wrt`` names when given, otherwise the names
    of the first problem that succeeds; gradients of other names go to ``other`` as one JSON
    object (see :func:`_other_cell`), so nothing is dropped. The csv module quotes every cell
    that needs it (formulas hold commas, messages quotes)."""

    # Failures before the first success wait for the columns, but never more than this many.
    _MAX_WAITING = 1000

    def __init__(self, out: Any, delimiter: str, names: list[str] | None = None) -> None:
        import csv

        self.writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
        self.names = names
        self.waiting: list[dict[str, Any]] = []
        self.header_written = False

    def write(self, result: dict[str, Any]) -> None:
        """Add one problem's result (rows come out in the order written)."""
        if self.names is None:
            if result["error"] is not None and len(self.waiting) < self._MAX_WAITING:
                self.waiting.append(result)
                return
            self.names = list(flat(result["gradients"]))
        self._flush()
        self._row(result)

    def close(self) -> None:
        """Write what is still waiting (and the header, even for an empty batch)."""
        if self.names is None:
            self.names = []
        self._flush()

    def _flush(self) -> None:
        if not self.header_written:
            assert self.names is not None
            self.writer.writerow(["line", "output", "value",
                                  *(f"d_{n}" for n in self.names), "other", "error"])
            self.header_written = True
        for result in self.waiting:
            self._row(result)
        self.waiting.clear()

    def _row(self, result: dict[str, Any]) -> None:
        assert self.names is not None
        grads = flat(result["gradients"])
        other = _other_cell({n: g for n, g in grads.items() if n not in self.names})
        error = result["error"]
        self.writer.writerow([
            result["line"], result["output"] or "", _cell(result["value"]),
            *(_cell(grads[n]) if n in grads else "" for n in self.names),
            other, error["message"] if error else "",
        ])


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else format_number(value)


def _other_cell(gradients: dict[str, Any]) -> str:
    """The ``other`` cell of a CSV or TSV row: the gradients outside the columns as one compact
    JSON object, written as in JSON Lines (numbers, ``"inf"``/``"nan"`` strings, formulas as
    strings): ``{"C":1.0,"D":"X1 = cos(X0); sin(X1)"}``; empty when there are none."""
    if not gradients:
        return ""
    return json.dumps(gradients, ensure_ascii=False, separators=(",", ":"))


def _solid(text: str) -> str:
    """``text`` without whitespace: a formula as one word of a whitespace-separated line. The
    grammar ignores blanks and no two tokens the algebra prints side by side merge without
    them (``18*A + 9`` is ``18*A+9``, ``- -A`` is ``--A``)."""
    return "".join(text.split())


def _one_line(text: str) -> str:
    """``text`` with every line break (``\\n``, ``\\r``, form feed, ``\\u2028``, ...) made a
    space."""
    return " ".join(text.splitlines())


def batch_plain(result: dict[str, Any]) -> str:
    """One line per problem: ``LINE OUTPUT VALUE NAME=GRADIENT ...`` or ``LINE error: ...``.
    Split on whitespace, and each ``NAME=GRADIENT`` on its first ``=``, the line gives every
    field back: formulas are written without blanks (:func:`_solid`), messages on one line."""
    error = result["error"]
    if error is not None:
        where = f" (column {error['column']})" if error.get("column") else ""
        return f"{result['line']} error: {_one_line(error['message'])}{where}\n"
    grads = " ".join(f"{n}={_solid(_cell(g))}" for n, g in flat(result["gradients"]).items())
    value = "?" if result["value"] is None else _cell(result["value"])
    return f"{result['line']} {result['output']} {value} {grads}".rstrip() + "\n"


def batch_table(results: list[dict[str, Any]]) -> RenderableType:
    """A block of batch results as a Rich table (the terminal view)."""
    from rich.text import Text

    # Cells are Text, not markup: a message may contain [brackets] of the user's.
    columns = [("line", "right"), ("output", "left"), ("value", "right"),
               ("gradients", "left"), ("error", "left")]
    rows = []
    for result in results:
        error = result["error"]
        grads = "  ".join(f"{n}={_cell(g)}" for n, g in flat(result["gradients"]).items())
        rows.append((Text(str(result["line"])), Text(result["output"] or ""),
                     Text(_cell(result["value"])), Text(grads),
                     Text(error["message"], style="red") if error else ""))
    return _table([(header, {"justify": justify}) for header, justify in columns], rows,
                  _Fit(fold=frozenset({3, 4}), key_label=True),
                  box=None, pad_edge=False, header_style="bold")


def rows_table(header: Sequence[str], rows: Sequence[Sequence[str]], keys: int
               ) -> RenderableType:
    """A block of a sweep's rows as a Rich table: numbers right-aligned, the last two columns
    (warning, error) folded and the error in red; the first ``keys`` columns are the point."""
    from rich.text import Text

    last = len(header) - 1
    columns = [(name, {"justify": "left" if i >= last - 1 else "right",
                       "style": "bold" if i < keys else None})
               for i, name in enumerate(header)]
    cells = [[Text(cell, style="red") if i == last and cell else Text(cell)
              for i, cell in enumerate(row)] for row in rows]
    return _table(columns, cells, _Fit(fold=frozenset({last - 1, last}), key_label=True),
                  box=None, pad_edge=False, header_style="bold")


# --- Jacobians, Hessians, checks ------------------------------------------------------------


def _entry(value: float | str) -> str:
    return value if isinstance(value, str) else format_number(value)


def _json_entry(value: float | str) -> float | str:
    return value if isinstance(value, str) else json_number(value)


def matrix_plain(matrix: Matrix) -> str:
    """One line per entry: ``ROW COLUMN VALUE`` (the value a number or a formula)."""
    return "".join(f"{row} {column} {_entry(matrix.entries[row][column])}\n"
                   for row in matrix.rows for column in matrix.columns)


def matrix_json(matrix: Matrix, key: str) -> dict[str, Any]:
    """``{"hessian": [[...], ...], "wrt": [...]}`` (rows in ``wrt`` order), or
    ``{"jacobian": {output: {name: ...}}, "outputs": [...], "wrt": [...]}``."""
    warnings = [diagnostic_object(w) for w in matrix.warnings]
    if key == "hessian":
        return {"wrt": matrix.columns,
                "hessian": [[_json_entry(matrix.entries[r][c]) for c in matrix.columns]
                            for r in matrix.rows], "warnings": warnings}
    return {"outputs": matrix.rows, "wrt": matrix.columns,
            "jacobian": {r: {c: _json_entry(matrix.entries[r][c]) for c in matrix.columns}
                         for r in matrix.rows}, "warnings": warnings}


def matrix_table(matrix: Matrix, key: str) -> RenderableType:
    columns: list[tuple[str, dict[str, Any]]] = [("", {})]
    columns.extend((column, {"justify": "right"}) for column in matrix.columns)
    rows = [[row, *(_entry(matrix.entries[row][c]) for c in matrix.columns)]
            for row in matrix.rows]
    formulas = any(isinstance(matrix.entries[r][c], str)
                   for r in matrix.rows for c in matrix.columns)
    fold = frozenset(range(1, len(columns))) if formulas else frozenset()
    return _table(columns, rows, _Fit(fold=fold), title=key, box=None, header_style="bold")


def checks_plain(checks: list[Check]) -> str:
    """``NAME GRADIENT FINITE_DIFFERENCE RELATIVE_ERROR ok|FAIL`` per input."""
    return "".join(f"{c.name} {format_number(c.gradient)} {format_number(c.estimate)} "
                   f"{c.relative_error:.2g} {'ok' if c.ok else 'FAIL'}\n" for c in checks)


def checks_json(checks: Checks) -> dict[str, Any]:
    from gradcalc.derivatives import CHECK_TOLERANCE

    return {"tolerance": CHECK_TOLERANCE, "check": [
        {"name": c.name, "gradient": json_number(c.gradient),
         "finite_difference": json_number(c.estimate),
         "relative_error": json_number(c.relative_error), "step": c.step, "ok": c.ok}
        for c in checks], "warnings": [diagnostic_object(w) for w in checks.warnings]}


def checks_table(checks: list[Check]) -> RenderableType:
    from rich.text import Text

    columns = [(column, {"justify": "left" if column == "name" else "right"})
               for column in ("name", "gradient", "finite difference", "relative error", "")]
    rows = [(c.name, format_number(c.gradient), format_number(c.estimate),
             f"{c.relative_error:.2g}", Text("ok", style="green") if c.ok
             else Text("FAIL", style="red")) for c in checks]
    return _table(columns, rows, _Fit(), box=None, header_style="bold")
