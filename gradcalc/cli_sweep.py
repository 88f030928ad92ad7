"""``--at X=-2:2:0.5``: the command line's side of a sweep (:mod:`gradcalc.sweep`): one row per
point in the chosen format, streamed as the points are evaluated, and a summary of the points
that failed or warned on standard error.

Formats: ``csv`` and ``tsv`` (a header ``X,OUT,d_X,warning,error``), ``plain`` (the same columns
separated by spaces, a cell without blanks), ``jsonl`` (one object per point: ``at``, ``output``,
``value``, ``gradients``, ``warnings``, ``error``) and ``table`` (Rich tables in blocks, on a
terminal). A number is written as the shortest text that reads back as the same float.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable
from typing import Any, TextIO

import typer

from gradcalc.cli import Format, _print_diagnostic, _print_rich, _usage
from gradcalc.errors import Diagnostic, GradcalcError
from gradcalc.fmt import format_number, json_number
from gradcalc.serialize import diagnostic_object
from gradcalc.status import ExitStatus
from gradcalc.sweep import Row, Sweep

__all__ = ["print_sweep"]

_TABLE_BLOCK = 200  # rows per Rich table: memory stays flat however long the sweep


def print_sweep(found: Sweep, fmt: Format) -> None:
    """Write every row of ``found`` to standard output in ``fmt``; then, on standard error,
    how many points failed or warned. Exits 1 if any point failed."""
    if fmt in (Format.json, Format.latex):
        raise _usage(f"--format {fmt.value} does not apply to a sweep",
                     "a sweep writes one row per point: use jsonl, csv, tsv, plain or table")
    for note in found.notes:
        _print_diagnostic(note)
    header = [*found.names, found.output, *(f"d_{n}" for n in found.targets), "warning",
              "error"]
    rows = found.rows()
    failed, warned = (_tables(found, header, rows) if fmt is Format.table
                      else _text(found, header, rows, fmt, sys.stdout))
    _summary(found.size, failed, warned)
    if failed:
        raise typer.Exit(ExitStatus.FAILED)


def _counting(rows: Iterable[Row], counts: list[int]) -> Iterable[Row]:
    for row in rows:
        if row.error is not None:
            counts[0] += 1
        elif row.warnings:
            counts[1] += 1
        yield row


def _text(found: Sweep, header: list[str], rows: Iterable[Row], fmt: Format,
          out: TextIO) -> tuple[int, int]:
    counts = [0, 0]
    if fmt is Format.jsonl:
        for row in _counting(rows, counts):
            out.write(json.dumps(_json_row(found, row), ensure_ascii=False) + "\n")
        return counts[0], counts[1]
    if fmt in (Format.csv, Format.tsv):
        writer = csv.writer(out, delimiter="," if fmt is Format.csv else "\t",
                            lineterminator="\n")
        writer.writerow(header)
        for row in _counting(rows, counts):
            writer.writerow(_cells(row, len(found.targets)))
        return counts[0], counts[1]
    out.write(" ".join(header) + "\n")  # plain: cells without blanks, separated by one
    for row in _counting(rows, counts):
        out.write(" ".join(cell.replace(" ", "_") or "-"
                           for cell in _cells(row, len(found.targets))) + "\n")
    return counts[0], counts[1]


def _cells(row: Row, targets: int) -> list[str]:
    point = [format_number(x) for x in row.point]
    if row.error is not None:
        return [*point, "", *([""] * targets), "", row.error.message]
    return [*point, format_number(row.value if row.value is not None else float("nan")),
            *(format_number(g) for g in row.gradients),
            "; ".join(w.message for w in row.warnings), ""]


def _json_row(found: Sweep, row: Row) -> dict[str, Any]:
    error: GradcalcError | None = row.error
    return {
        "at": {n: json_number(x) for n, x in zip(found.names, row.point, strict=True)},
        "output": found.output,
        "value": None if row.value is None else json_number(row.value),
        "gradients": {n: json_number(g) for n, g in zip(found.targets, row.gradients,
                                                          strict=True)},
        "warnings": [diagnostic_object(w) for w in row.warnings],
        "error": None if error is None else {"message": error.message, "kind": error.kind,
                                             "hint": error.hint},
    }


def _tables(found: Sweep, header: list[str], rows: Iterable[Row]) -> tuple[int, int]:
    from gradcalc import render

    counts = [0, 0]
    block: list[list[str]] = []
    for row in _counting(rows, counts):
        block.append(_cells(row, len(found.targets)))
        if len(block) == _TABLE_BLOCK:
            _print_rich(render.rows_table(header, block, len(found.names)))
            block = []
    if block or not found.size:
        _print_rich(render.rows_table(header, block, len(found.names)))
    sys.stdout.flush()
    return counts[0], counts[1]


def _summary(size: int, failed: int, warned: int) -> None:
    if failed:
        _print_diagnostic(GradcalcError(
            f"{failed:,} of {size:,} points could not be evaluated",
            hint="their rows give the error; the other points are complete"))
    if warned:
        _print_diagnostic(Diagnostic(
            "kink", f"{warned:,} of {size:,} points met a non-differentiable point or a "
            "gradient that is not finite", hint="their rows' warning column says which"))
