"""Results as text for people and programs. Functions here return strings or Rich renderables;
they never print. Rich is imported only by the functions that draw with it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from gradcalc.api import Result, Stats
from gradcalc.dag import Dag
from gradcalc.errors import Diagnostic
from gradcalc.fmt import format_count, format_number, json_number

if TYPE_CHECKING:
    from rich.console import RenderableType

    from gradcalc.derivatives import Check, Matrix

__all__ = ["GRAPH_FORMS", "BatchTable", "GraphTooLarge", "as_text", "batch_plain", "batch_table",
           "graph_view", "layered_table", "to_json", "to_plain", "to_table"]


def gradient_text(result: Result, name: str) -> str:
    """The gradient for ``name`` as printed: its number where known (and not asked to be
    symbolic), its formula otherwise."""
    formula = result.formulas.get(name)
    if formula is not None and (result.symbolic or name not in result.gradients):
        return formula.text
    return format_number(result.gradients[name])


def _names(result: Result) -> list[str]:
    return list(result.formulas) if result.formulas else list(result.gradients)


def to_plain(result: Result, value: bool = False) -> str:
    """One line per requested name, ``NAME GRADIENT``: the number, or the formula where an
    input has no value (or with ``--symbolic``); with stats, ``stats.KEY VALUE`` lines follow.
    Numbers are the shortest round-tripping text (``45``, ``0.1``, ``inf``).

    With ``value`` (and always when no gradient was asked for, so that ``2+3`` answers 5), a
    first line ``OUTPUT = VALUE`` (``?`` where the value needs a missing input)."""
    names = _names(result)
    lines = [f"{name} {gradient_text(result, name)}" for name in names]
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


def to_json_object(result: Result) -> dict[str, Any]:
    gradients: dict[str, Any] = {}
    for name in _names(result):
        formula = result.formulas.get(name)
        if formula is not None and (result.symbolic or name not in result.gradients):
            gradients[name] = formula.text
        else:
            gradients[name] = json_number(result.gradients[name])
    data: dict[str, Any] = {
        "output": result.output,
        "value": None if result.value is None else json_number(result.value),
        "gradients": gradients,
        "values": {n: json_number(v) for n, v in result.values.items()},
        "inputs": {n: json_number(v) for n, v in result.inputs.items()},
        "warnings": [_json_diagnostic(w) for w in result.warnings],
    }
    if result.symbolic:
        # The engine's numbers where it ran (they follow the conventions at kinks exactly),
        # else the formulas' values where every name in them has a value.
        data["gradient_values"] = {
            n: json_number(result.gradients[n]) if n in result.gradients
            else None if f.value is None else json_number(f.value)
            for n, f in result.formulas.items()}
    if result.stats is not None:
        s = result.stats
        data["stats"] = {
            "nodes": s.nodes,
            "edges": s.edges,
            "merged": s.merged,
            "cone_nodes": s.cone_nodes,
            "visited_nodes": s.visited_nodes,
            "visited_edges": s.visited_edges,
            # Exact when it fits a JSON-safe integer, the compact text otherwise.
            "paths": {n: p if p < 2**53 else format_count(p) for n, p in s.paths.items()},
        }
    return data


def _json_diagnostic(d: Diagnostic) -> dict[str, Any]:
    return {
        "kind": d.kind,
        "message": d.message,
        "line": d.span.line if d.span else None,
        "column": d.span.column if d.span else None,
        "hint": d.hint,
    }


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


def to_table(result: Result) -> RenderableType:
    """A Rich view: the output's value, then name, value and gradient for each requested name,
    then the statistics when asked for."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    out = result.output
    shown = "?" if result.value is None else format_number(result.value)
    parts: list[RenderableType] = [Text.assemble((out, "bold"), " = ", (shown, "bold cyan"))]
    names = _names(result)
    if names:
        table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
        table.add_column("name")
        table.add_column("value", justify="right")
        table.add_column(f"∂{out}/∂name", justify="left" if result.formulas else "right",
                         style="green")
        if result.formulas:
            table.add_column("= at the given values", justify="right")
        for name in names:
            value = result.values.get(name)
            formula = result.formulas.get(name)
            row = [name, "?" if value is None else format_number(value),
                   formula.text if formula is not None else gradient_text(result, name)]
            if result.formulas:
                number = result.gradients.get(name)
                row.append("" if number is None else format_number(number))
            table.add_row(*row)
        parts.append(Text())
        parts.append(table)
    if result.stats is not None:
        s = result.stats
        stats = Table(box=None, pad_edge=False, show_edge=False, show_header=False)
        stats.add_column(style="dim")
        stats.add_column(justify="right")
        saved = [
            ("nodes / edges", f"{s.nodes} / {s.edges}"),
            ("merged sub-expressions", str(s.merged)),
            (f"nodes {out} depends on", str(s.cone_nodes)),
            ("visited by backward", f"{s.visited_nodes} nodes, {s.visited_edges} edges"),
        ]
        saved.extend((f"paths from {out} to {n}", format_count(p)) for n, p in s.paths.items())
        for key, text in saved:
            stats.add_row(key, text)
        parts.extend([Text(), Text("statistics", style="bold"), stats])
    return Group(*parts)


# --- graph views ----------------------------------------------------------------------------

GRAPH_FORMS = ("auto", "full", "compact", "tree", "table")


def graph_view(dag: Dag, output: int, values: list[float], grads: list[float], *,
               form: str = "auto", width: int | None = None, unicode: bool = True
               ) -> str | RenderableType:
    """The picture of the graph in ``form``; ``auto`` tries the full drawing, then the compact
    one, then the tree listing, and ends at the layered table, whichever first fits ``width``
    columns (no limit when ``None``). Forced forms are drawn whatever their width."""
    from gradcalc.listing import tree_lines
    from gradcalc.picture import Style, TooLarge, draw

    style = Style(unicode)
    if form in ("full", "compact"):
        try:
            return draw(dag, output, values, grads, compact=form == "compact", style=style,
                        max_nodes=2000)
        except TooLarge as exc:
            raise GraphTooLarge(f"the graph is too large to draw ({exc}); "
                                "use --graph=tree or --graph=table") from None
    if form == "auto":
        for compact in (False, True):
            try:
                return draw(dag, output, values, grads, compact=compact, style=style,
                            max_width=width)
            except TooLarge:
                continue
    if form in ("auto", "tree"):
        lines = tree_lines(dag, output, values, grads, style)
        if form == "tree" or max(map(len, lines)) <= (width or _TREE_WIDTH):
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


def layered_table(dag: Dag, output: int, values: list[float], grads: list[float],
                  unicode: bool = True) -> RenderableType:
    """One row per node: layer, node, op, inputs, value, gradient, consumer count."""
    from rich import box
    from rich.table import Table

    from gradcalc.listing import layered_rows
    from gradcalc.picture import Style, short

    name = dag.names[output] or "OUT"
    d = "∂" if unicode else "d"
    table = Table(box=box.SIMPLE_HEAD if unicode else box.ASCII, pad_edge=not unicode)
    for column, justify in (("layer", "right"), ("node", "left"), ("op", "left"),
                            ("inputs", "left"), ("value", "right"),
                            (f"{d}{name}/{d}node", "right"), ("consumers", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in layered_rows(dag, output, values, grads, Style(unicode)):
        table.add_row(str(row.layer), row.node, row.op, row.inputs, short(row.value),
                      short(row.gradient), str(row.consumers))
    return table


# --- batch results ---------------------------------------------------------------------------


class BatchTable:
    """Batch results as delimited text (CSV or TSV), streamed: a header, then one row per
    problem. Columns: ``line, output, value``, one ``d_NAME`` per gradient name, ``other``
    and ``error``. The gradient columns are the ``wrt`` names when given, otherwise the names
    of the first problem that succeeds; gradients of other names go to ``other`` as
    ``NAME=VALUE`` pairs separated by ``;``, so nothing is dropped."""

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
            self.names = list(result["gradients"])
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
        grads = result["gradients"]
        other = ";".join(f"{n}={_cell(g)}" for n, g in grads.items() if n not in self.names)
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


def batch_plain(result: dict[str, Any]) -> str:
    """One line per problem: ``LINE OUTPUT VALUE NAME=GRADIENT ...`` or ``LINE error: ...``."""
    error = result["error"]
    if error is not None:
        where = f" (column {error['column']})" if error.get("column") else ""
        return f"{result['line']} error: {error['message']}{where}\n"
    grads = " ".join(f"{n}={_cell(g)}" for n, g in result["gradients"].items())
    value = "?" if result["value"] is None else _cell(result["value"])
    return f"{result['line']} {result['output']} {value} {grads}".rstrip() + "\n"


def batch_table(results: list[dict[str, Any]]) -> RenderableType:
    """A block of batch results as a Rich table (the terminal view)."""
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, header_style="bold")
    # Cells are Text, not markup: a message may contain [brackets] of the user's.
    for column, justify in (("line", "right"), ("output", "left"), ("value", "right"),
                            ("gradients", "left"), ("error", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for result in results:
        error = result["error"]
        grads = "  ".join(f"{n}={_cell(g)}" for n, g in result["gradients"].items())
        table.add_row(Text(str(result["line"])), Text(result["output"] or ""),
                      Text(_cell(result["value"])),
                      Text(grads), Text(error["message"], style="red") if error else "")
    return table


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
    if key == "hessian":
        return {"wrt": matrix.columns,
                "hessian": [[_json_entry(matrix.entries[r][c]) for c in matrix.columns]
                            for r in matrix.rows]}
    return {"outputs": matrix.rows, "wrt": matrix.columns,
            "jacobian": {r: {c: _json_entry(matrix.entries[r][c]) for c in matrix.columns}
                         for r in matrix.rows}}


def matrix_table(matrix: Matrix, key: str) -> RenderableType:
    from rich.table import Table

    table = Table(title=key, box=None, header_style="bold")
    table.add_column("")
    for column in matrix.columns:
        table.add_column(column, justify="right")
    for row in matrix.rows:
        table.add_row(row, *(_entry(matrix.entries[row][c]) for c in matrix.columns))
    return table


def checks_plain(checks: list[Check]) -> str:
    """``NAME GRADIENT FINITE_DIFFERENCE RELATIVE_ERROR ok|FAIL`` per input."""
    return "".join(f"{c.name} {format_number(c.gradient)} {format_number(c.estimate)} "
                   f"{c.relative_error:.2g} {'ok' if c.ok else 'FAIL'}\n" for c in checks)


def checks_json(checks: list[Check]) -> dict[str, Any]:
    from gradcalc.derivatives import CHECK_TOLERANCE

    return {"tolerance": CHECK_TOLERANCE, "check": [
        {"name": c.name, "gradient": json_number(c.gradient),
         "finite_difference": json_number(c.estimate),
         "relative_error": json_number(c.relative_error), "step": c.step, "ok": c.ok}
        for c in checks]}


def checks_table(checks: list[Check]) -> RenderableType:
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in ("name", "gradient", "finite difference", "relative error", ""):
        table.add_column(column, justify="left" if column == "name" else "right")
    for c in checks:
        table.add_row(c.name, format_number(c.gradient), format_number(c.estimate),
                      f"{c.relative_error:.2g}",
                      "[green]ok[/green]" if c.ok else "[red]FAIL[/red]")
    return table
