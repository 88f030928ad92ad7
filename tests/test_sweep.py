"""Sweeps (``--at X=-2:2:0.5``): the points of a range, every row against the one-point answer
of :func:`gradcalc.gradients` (bit for bit: the compiled plan and the full path must agree),
error rows, warnings, the grid's order, and the command line's formats and refusals."""

from __future__ import annotations

import csv
import io
import itertools
import json
import math

import pytest
from helpers import property_settings, reals, run
from hypothesis import given
from hypothesis import strategies as st

import gradcalc
from gradcalc.api import constant_value
from gradcalc.errors import GradcalcError, InputError
from gradcalc.sweep import MAX_POINTS, range_points, sweep


def points(text: str) -> list[float]:
    return range_points("X", text, constant_value)


# --- ranges ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("-2:2:0.5", [-2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2]),
    ("0:1:0.3", [0, 0.3, 0.6, 0.8999999999999999]),  # the stop is not on the grid: not reached
    ("2:-2:-1", [2, 1, 0, -1, -2]),
    ("-2:2/5", [-2, -1, 0, 1, 2]),
    ("1:1/1", [1]),
    ("0:1:2", [0]),
    ("0:0.3:0.1", [0, 0.1, 0.2, 0.30000000000000004]),  # on the grid to 1e-9: included
])
def test_range_points(text: str, expected: list[float]) -> None:
    assert points(text) == expected


def test_range_bounds_are_constant_expressions() -> None:
    assert points("0:pi:pi/4") == [k * math.pi / 4 for k in range(5)]
    assert points("-2^2:2^2/3") == [-4, 0, 4]
    assert points("0:pi/2") == [0, math.pi]  # `/N` at the end counts points: 2 here


def test_a_count_range_ends_exactly_at_its_stop() -> None:
    found = points("0:0.3/4")
    assert found[0] == 0 and found[-1] == 0.3 and len(found) == 4


@pytest.mark.parametrize(("text", "message"), [
    ("0:1", "is not a range"),
    ("0:1:2:3", "is not a range"),
    ("0:1:0", "the step 0 never gets from 0 to 1"),
    ("0:1:-0.5", "the step -0.5 never gets from 0 to 1"),
    ("0:1/0", "a range has 1 to"),
    ("0:1/1", "one point cannot run from 0 to 1"),
    (f"0:1:{1 / MAX_POINTS / 2}", "more than the"),
])
def test_range_errors(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        points(text)


def test_a_range_bound_has_the_program_errors() -> None:
    with pytest.raises(GradcalcError) as caught:
        points("0:(1:0.5")
    assert caught.value.kind == "syntax"


@property_settings(100)
@given(reals(-100, 100), reals(0.01, 50), st.integers(1, 200))
def test_a_step_range_reaches_its_stop_when_the_stop_is_on_the_grid(start: float, step: float,
                                                                    steps: int) -> None:
    found = range_points("X", f"{start!r}:{start + steps * step!r}:{step!r}",
                         constant_value)
    assert len(found) == steps + 1
    assert all(b > a for a, b in itertools.pairwise(found))


# --- rows against the one-point answer ---------------------------------------------------------


PROGRAM = "B = A*3 + sin(A); C = B*B - A*Y; D = tanh(C/10)*exp(-A); OUT = D + C/B"


def test_rows_match_one_point_gradients_bit_for_bit() -> None:
    grid = {"A": points("0.1:3/7"), "Y": [-1.0, 0.5, 2.0]}
    found = sweep(PROGRAM, grid)
    rows = list(found.rows())
    assert len(rows) == found.size == 21
    assert [r.point for r in rows] == [(a, y) for a in grid["A"] for y in grid["Y"]]
    for row in rows:
        one = gradcalc.gradients(PROGRAM, at=dict(zip(["A", "Y"], row.point, strict=True)))
        assert row.value == one.value
        assert dict(zip(found.targets, row.gradients, strict=True)) == one.gradients
        assert row.error is None and not row.warnings


def test_wrt_and_of_choose_the_columns() -> None:
    found = sweep("U = A*B; V = A + B", {"A": [1.0, 2.0]}, at={"B": 5}, wrt=["B"], of="U")
    assert found.output == "U" and found.targets == ["B"]
    assert [(r.value, r.gradients) for r in found.rows()] == [(5.0, (1.0,)), (10.0, (2.0,))]


def test_a_failing_point_is_a_row_with_its_error() -> None:
    rows = list(sweep("OUT = log(X)", {"X": [-1.0, 0.0, 1.0, math.e]}).rows())
    assert [r.error.kind if r.error else None for r in rows] == ["domain", "domain", None, None]
    assert rows[0].error is not None and rows[0].error.message.startswith("log(-1)")
    assert rows[0].value is None and rows[0].gradients == ()
    assert rows[3].gradients == (1 / math.e,)


def test_a_kink_is_a_warning_of_its_row() -> None:
    rows = list(sweep("OUT = relu(X) + abs(X)", {"X": [-1.0, 0.0, 1.0]}).rows())
    assert [len(r.warnings) for r in rows] == [0, 2, 0]
    assert rows[1].gradients == (0.0,)


def test_an_array_element_can_be_swept() -> None:
    rows = list(sweep("W = [1, 2]; OUT = dot(W, W)", {"W[0]": [0.0, 3.0]}).rows())
    assert [(r.value, r.gradients) for r in rows] == [(4.0, (0.0, 4.0)), (13.0, (6.0, 4.0))]


@pytest.mark.parametrize(("program", "ranges", "at", "message"), [
    ("B = A*2; OUT = B", {"B": [1.0]}, None, "B is not an input"),
    ("OUT = A", {"Q": [1.0]}, None, "'Q' is not a name"),
    ("OUT = A*B", {"A": [1.0]}, None, "no value for input B"),
    ("OUT = A*B", {"A": [1.0]}, {"A": 2.0, "B": 1.0}, "A is given a value and a range"),
])
def test_sweep_errors(program: str, ranges: dict[str, list[float]],
                      at: dict[str, float] | None, message: str) -> None:
    with pytest.raises(InputError, match=message):
        list(sweep(program, ranges, at=at).rows())


def test_a_large_graph_runs_through_the_engine() -> None:
    text = "OUT = " + " + ".join(f"sin(A*{i})" for i in range(1, 12_000))
    found = sweep(text, {"A": [0.1, 0.2]})
    assert [r.value for r in found.rows()] == [gradcalc.gradients(text, at={"A": a}).value
                                               for a in (0.1, 0.2)]


# --- the command line ----------------------------------------------------------------------


def test_csv_rows_and_the_exit_code_of_failed_points() -> None:
    r = run("OUT = log(X)*Y", "--at", "X=-1:1:1", "--at", "Y=2", "--format", "csv")
    assert r.exit_code == 1
    rows = list(csv.reader(io.StringIO(r.stdout)))
    assert rows[0] == ["X", "OUT", "d_X", "d_Y", "warning", "error"]
    assert rows[1][:5] == ["-1", "", "", "", ""] and rows[1][5].startswith("log(-1)")
    assert rows[3] == ["1", "0", "2", "0", "", ""]
    assert "error: 2 of 3 points could not be evaluated" in r.stderr


def test_tsv_plain_and_jsonl() -> None:
    args = ("OUT = X^2", "--at", "X=-1:1/3")
    tsv = run(*args, "--format", "tsv")
    assert tsv.stdout.splitlines() == ["X\tOUT\td_X\twarning\terror", "-1\t1\t-2\t\t",
                                       "0\t0\t0\t\t", "1\t1\t2\t\t"]
    plain = run(*args, "--format", "plain")
    assert plain.stdout.splitlines() == ["X OUT d_X warning error", "-1 1 -2 - -", "0 0 0 - -",
                                         "1 1 2 - -"]
    lines = [json.loads(line) for line in run(*args, "--format", "jsonl").stdout.splitlines()]
    assert lines[0] == {"at": {"X": -1.0}, "output": "OUT", "value": 1.0,
                        "gradients": {"X": -2.0}, "warnings": [], "error": None}
    assert all(r.exit_code == 0 for r in (tsv, plain))


def test_a_grid_varies_the_last_range_fastest() -> None:
    r = run("OUT = X*Y", "--at", "X=0:1:1,Y=0:2/2", "--format", "csv")
    assert [row[:2] for row in csv.reader(io.StringIO(r.stdout))][1:] == [
        ["0", "0"], ["0", "2"], ["1", "0"], ["1", "2"]]


def test_the_table_lists_every_point() -> None:
    r = run("OUT = sin(T)", "--at", "T=0:pi:pi/2", "--format", "table")
    assert r.exit_code == 0
    assert "OUT" in r.stdout and "d_T" in r.stdout and "3.141592653589793" in r.stdout


@pytest.mark.parametrize(("args", "message"), [
    (("--graph",), "cannot be combined with --graph"),
    (("--hessian",), "cannot be combined with --hessian"),
    (("--symbolic",), "cannot be combined with --symbolic"),
    (("--stats",), "cannot be combined with --stats"),
    (("--format", "json"), "--format json does not apply to a sweep"),
    (("--of", "OUT", "--of", "B"), "cannot be combined with several --of"),
])
def test_views_of_one_point_are_refused(args: tuple[str, ...], message: str) -> None:
    r = run("B = A*2; OUT = B*A", "--at", "A=0:1/3", *args)
    assert r.exit_code == 2
    assert message in r.stderr


def test_a_bad_range_on_the_command_line() -> None:
    r = run("OUT = A", "--at", "A=0:1:0")
    assert r.exit_code == 2 and "the step 0 never gets from 0 to 1" in r.stderr
    r = run("OUT = A", "--at", "A=0:1:A")
    assert r.exit_code == 2 and "a value cannot use names: A" in r.stderr


def test_ranges_near_the_largest_floats_stay_finite() -> None:
    assert points("-1e308:1e308/3") == [-1e308, 0.0, 1e308]
    found = points("-1e308:1e308:1e307")
    assert len(found) == 21 and all(map(math.isfinite, found))
    with pytest.raises(InputError, match="about 1e\\+300 points"):
        points("0:1:1e-300")
