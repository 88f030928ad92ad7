"""Results as text for people and programs. Functions here return strings or Rich renderables;
they never print. Rich is imported only by the functions that draw with it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from gradcalc.api import Result, Stats
from gradcalc.errors import Diagnostic
from gradcalc.fmt import format_count, format_number, json_number

if TYPE_CHECKING:
    from rich.console import RenderableType

__all__ = ["to_json", "to_plain", "to_table"]


def to_plain(result: Result) -> str:
    """One line per requested name, ``NAME GRADIENT``; with stats, ``stats.KEY VALUE`` lines
    follow. Numbers are the shortest round-tripping text (``45``, ``0.1``, ``inf``)."""
    lines = [f"{name} {format_number(g)}" for name, g in result.gradients.items()]
    if result.stats is not None:
        lines.extend(f"stats.{key} {value}" for key, value in _stats_rows(result.stats))
    return "\n".join(lines) + ("\n" if lines else "")


def to_json(result: Result) -> str:
    """One JSON object: ``output``, ``value``, ``gradients``, ``values``, ``inputs``,
    ``warnings`` and, when asked for, ``stats``. Non-finite numbers are the strings
    ``"inf"``, ``"-inf"``, ``"nan"``."""
    return json.dumps(to_json_object(result), ensure_ascii=False) + "\n"


def to_json_object(result: Result) -> dict[str, Any]:
    data: dict[str, Any] = {
        "output": result.output,
        "value": json_number(result.value),
        "gradients": {n: json_number(g) for n, g in result.gradients.items()},
        "values": {n: json_number(v) for n, v in result.values.items()},
        "inputs": {n: json_number(v) for n, v in result.inputs.items()},
        "warnings": [_json_diagnostic(w) for w in result.warnings],
    }
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
    parts: list[RenderableType] = [
        Text.assemble((out, "bold"), " = ", (format_number(result.value), "bold cyan")),
    ]
    if result.gradients:
        table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
        table.add_column("name")
        table.add_column("value", justify="right")
        table.add_column(f"∂{out}/∂name", justify="right", style="green")
        for name, g in result.gradients.items():
            table.add_row(name, format_number(result.values[name]), format_number(g))
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
        for key, value in saved:
            stats.add_row(key, value)
        parts.extend([Text(), Text("statistics", style="bold"), stats])
    return Group(*parts)
