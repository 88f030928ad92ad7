"""Results as JSON-ready data: the documented machine format (``--format json``, one JSON
Lines object per batch line, ``solve_line``). Plain data only, no presentation: the batch
layer builds its results here without loading the renderers, and :mod:`gradcalc.render` writes
this data as text."""

from __future__ import annotations

from typing import Any

from gradcalc.api import Result
from gradcalc.errors import Diagnostic
from gradcalc.fmt import json_count, json_number
from gradcalc.tensor import Tensor, element_names

__all__ = ["diagnostic_object", "flat", "grouped", "names", "to_json_object", "where"]


def to_json_object(result: Result, share: bool = True) -> dict[str, Any]:
    """The JSON object of one result (:func:`gradcalc.render.to_json` writes it). With
    ``share`` (the default), statements several formulas need are given once, as
    ``bindings`` (name -> definition, in program order), and left out of the formulas, and
    each formula is given as LaTeX too (``latex``); without it (a batch line) every formula
    is a program of its own."""
    gradients: dict[str, Any] = {}
    for name in names(result):
        formula = result.formulas.get(name)
        if formula is not None and (result.symbolic or name not in result.gradients):
            gradients[name] = formula.local if share else formula.text
        else:
            gradients[name] = json_number(result.gradients[name])
    arrays = result.dag.tensors if result.dag is not None else {}
    data: dict[str, Any] = {
        "output": result.output,
        "value": None if result.value is None else json_number(result.value),
        "gradients": grouped(gradients, arrays),
        "values": grouped({n: json_number(v) for n, v in result.values.items()}, arrays),
        "inputs": grouped({n: json_number(v) for n, v in result.inputs.items()}, arrays),
        "warnings": [diagnostic_object(w) for w in result.warnings],
    }
    if share and where(result) is not None:
        data["bindings"] = dict(result.bindings)
    if result.formulas and share:  # (a single program's JSON: batch lines keep their keys)
        from gradcalc.latex import formula_latex

        data["latex"] = {n: formula_latex(f.text, result.output, n)
                         for n, f in result.formulas.items()}
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
            "paths": {n: json_count(p) for n, p in s.paths.items()},
        }
    return data


def grouped(entries: dict[str, Any], arrays: dict[str, Tensor]) -> dict[str, Any]:
    """``entries`` with every vector or matrix whose elements are all there given as one
    list (of rows), under the array's name, where its first element was: ``{"W[0]": 1,
    "W[1]": 2}`` is ``{"W": [1, 2]}``; an array only partly there keeps its elements' names."""
    if not arrays or not entries:
        return entries
    owner: dict[str, str] = {}
    for name, array in arrays.items():
        elements = element_names(name, array.shape)
        if elements[0] in entries and all(e in entries for e in elements):
            owner.update(dict.fromkeys(elements, name))
    if not owner:
        return entries
    out: dict[str, Any] = {}
    for key, value in entries.items():
        whole = owner.get(key)
        if whole is None:
            out[key] = value
        elif whole not in out:
            array = arrays[whole]
            flat = [entries[e] for e in element_names(whole, array.shape)]
            width = array.shape[-1]
            out[whole] = flat if len(array.shape) == 1 else [
                flat[row * width : (row + 1) * width] for row in range(array.shape[0])]
    return out


def flat(entries: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`grouped`: an array's list (of rows) as one entry per element,
    ``{"W": [1, 2]}`` as ``{"W[0]": 1, "W[1]": 2}``, for the formats with one name a cell."""
    if not any(type(value) is list for value in entries.values()):  # (the usual case)
        return entries
    out: dict[str, Any] = {}
    for key, value in entries.items():
        if type(value) is not list:
            out[key] = value
            continue
        for i, item in enumerate(value):
            if type(item) is list:
                out.update((f"{key}[{i}][{j}]", x) for j, x in enumerate(item))
            else:
                out[f"{key}[{i}]"] = item
    return out


def diagnostic_object(d: Diagnostic) -> dict[str, Any]:
    """A warning or note as JSON-ready data (kind, message, line, column, hint)."""
    return {
        "kind": d.kind,
        "message": d.message,
        "line": d.span.line if d.span else None,
        "column": d.span.column if d.span else None,
        "hint": d.hint,
    }


def where(result: Result) -> str | None:
    """The statements several formulas share, as one program line (printed once, before
    the gradients that use them), or ``None``."""
    if not result.bindings or not _shows_formulas(result):
        return None
    return "; ".join(f"{name} = {text}" for name, text in result.bindings)


def _shows_formulas(result: Result) -> bool:
    return any(result.symbolic or n not in result.gradients for n in result.formulas)


def names(result: Result) -> list[str]:
    return list(result.formulas) if result.formulas else list(result.gradients)


