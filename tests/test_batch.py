"""Batch mode end to end: ``gradcalc --batch FILE|-`` (one independent problem per line,
streamed, in order, errors kept to their line), :mod:`gradcalc.batch` and the Dask example.

Most cases run in-process through Typer's CliRunner; the ones about real processes (standard
input of the console script, streaming through a pipe, ``--jobs``, a 100,000-line input) run the
installed console script as a subprocess.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import itertools
import json
import math
import multiprocessing
import os
import pickle
import select
import subprocess
import time
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from helpers import console_script, run
from test_render import check_csv, check_plain_line

import gradcalc
from gradcalc.batch import Problem, problems, solve_line, solve_problem
from gradcalc.ops import FUNCTIONS
from gradcalc.status import ExitStatus
from gradcalc.tensor import ARRAY_FUNCTIONS

ROOT = Path(__file__).resolve().parent.parent
KEYS = ["line", "output", "value", "gradients", "values", "inputs", "warnings", "error"]
ERROR_KEYS = ["message", "line", "column", "kind", "hint"]
KNOWN_FUNCTIONS = "known functions: " + ", ".join(sorted({*FUNCTIONS, *ARRAY_FUNCTIONS}))
ASSIGNED_TWICE_HINT = ("it was first assigned at 1:1; every name is assigned once (use a new "
                       "name for a new value)")


# --- helpers ---------------------------------------------------------------------------------


def script(*args: str, stdin: bytes | None = None, cwd: Path | None = None,
           timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    """The installed console script as a real process (bytes in, bytes out)."""
    return subprocess.run([console_script(), *args], input=stdin, capture_output=True,
                          cwd=cwd, env={**os.environ, "NO_COLOR": "1"}, timeout=timeout,
                          check=False)


def ok(line: int, output: str, value: Any, gradients: dict[str, Any], values: dict[str, Any],
       inputs: dict[str, Any], warnings: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"line": line, "output": output, "value": value, "gradients": gradients,
            "values": values, "inputs": inputs, "warnings": warnings or [], "error": None}


def fail(line: int, message: str, eline: int | None, column: int | None, kind: str,
         hint: str | None = None) -> dict[str, Any]:
    return {"line": line, "output": None, "value": None, "gradients": {}, "values": {},
            "inputs": {}, "warnings": [],
            "error": {"message": message, "line": eline, "column": column, "kind": kind,
                      "hint": hint}}


def jsonl(text: str) -> list[dict[str, Any]]:
    """Parse JSON Lines output strictly: every line one JSON object with exactly the documented
    keys, in the documented order, and errors with exactly theirs."""
    assert text == "" or text.endswith("\n"), "the output must end with a newline"
    results = []
    for row in text.splitlines():
        data = json.loads(row)  # raises on two objects on one line ("Extra data")
        assert isinstance(data, dict), row
        assert list(data) == KEYS, row
        if data["error"] is not None:
            assert list(data["error"]) == ERROR_KEYS, row
        results.append(data)
    return results


def seed_line(a: int, k: int, m: int) -> str:
    return f"A = {a}; B = A*{k}; OUT = (B+1)*(B+{m})"


def seed_answer(a: int, k: int, m: int) -> tuple[float, float, float]:
    """value, dOUT/dA, dOUT/dB of :func:`seed_line` (integers: exact as floats)."""
    b = a * k
    return float((b + 1) * (b + m)), float(k * (2 * b + 1 + m)), float(2 * b + 1 + m)


# --- every error kind, exact JSON Lines ---------------------------------------------------------

TEXT_PROBLEMS = (
    "A = 1; A = 2; OUT = A\n"                    # 1  name: assigned twice
    "B = A*3; OUT = (B+1)*(B+2)\n"               # 2  fine
    "\n"                                         # 3  blank
    "# a comment\n"                              # 4  comment
    "OUT = A +* 2\n"                             # 5  syntax
    "OUT = foo(A)\n"                             # 6  name: unknown function
    "pi = 3; OUT = pi*A\n"                       # 7  name: a constant assigned
    "X = Y + 1; Y = X*2; OUT = X + A\n"          # 8  cycle
    "OUT = sin(A, A)\n"                          # 9  arity
    "OUT = A*Z\n"                                # 10 no value for Z: formulas
    "OUT = log(A-3)\n"                           # 11 domain: log(-1)
    "OUT = 1/(A-2)\n"                            # 12 domain: 1/0
    "OUT = exp(A*500)\n"                         # 13 overflow: exp(1000)
    "OUT = A*A + 1\n"                            # 14 fine
)

TEXT_EXPECTED = [
    fail(1, "A is assigned twice", 1, 8, "name", ASSIGNED_TWICE_HINT),
    ok(2, "OUT", 56.0, {"A": 45.0, "B": 15.0}, {"A": 2.0, "B": 6.0}, {"A": 2.0}),
    fail(5, "missing operand before '*'", 5, 10, "syntax",
         "two operators in a row need a value between them"),
    fail(6, "unknown function 'foo'", 6, 7, "name", KNOWN_FUNCTIONS),
    fail(7, "cannot assign to the constant pi", 7, 1, "name", "choose another name"),
    fail(8, "circular definition: X → Y → X", 8, 16, "cycle",
         "each name must be computable from names that do not use it"),
    fail(9, "sin takes 1 argument, got 2", 9, 7, "arity", "write sin(x)"),
    ok(10, "OUT", None, {"A": "Z", "Z": 2.0}, {"A": 2.0}, {"A": 2.0}),
    fail(11, "log(-1) is undefined: log needs a positive argument", 11, 7, "domain",
         "where A-3 = -1"),
    fail(12, "1 / 0 is undefined: division by zero", 12, 7, "domain", "where (A-2) = 0"),
    fail(13, "exp(1000) overflows a 64-bit float", 13, 7, "overflow",
         "where A*500 = 1000; results must stay below about 1.8e308 in magnitude"),
    ok(14, "OUT", 5.0, {"A": 4.0}, {"A": 2.0}, {"A": 2.0}),
]

JSONL_PROBLEMS = "\n".join([
    json.dumps({"program": "OUT = abs(A-2)"}),                                   # 1 warning
    json.dumps({"program": "OUT = A", "at": [1]}),                               # 2 bad "at"
    '{"program": ',                                                              # 3 bad JSON
    json.dumps({"program": "OUT = A*B", "at": {"B": 4}}),                        # 4 fine
    json.dumps({"program": "OUT = log(A)", "at": {"A": -1}}),                    # 5 domain
    json.dumps({"program": "OUT = A*Z"}),                                        # 6 formulas
    json.dumps({"program": "OUT = exp(A)", "at": {"A": 1000}}),                  # 7 overflow
    json.dumps({"program": "A = 1\nA = 2\nOUT = A"}),                            # 8 name
    json.dumps({"program": "OUT = (A+"}),                                        # 9 syntax
    json.dumps({"program": "OUT = A", "at": {"A": "x"}}),                        # 10 bad value
    json.dumps({"program": "U = A*B; V = A+B", "at": {"B": 3}, "of": "U", "wrt": "B"}),  # 11
]) + "\n"

# With JSON Lines input a problem may span several lines, so error (and warning) positions
# point into the "program" string, not into the input file.
JSONL_EXPECTED = [
    ok(1, "OUT", 0.0, {"A": 0.0}, {"A": 2.0}, {"A": 2.0},
       [{"kind": "kink", "message": "abs is not differentiable at abs(0)", "line": 1,
         "column": 7, "hint": "the convention used: abs'(0) = 0"}]),
    fail(2, '"at" must be an object of input values', None, None, "input"),
    fail(3, "the line is not valid JSON (Expecting value at column 13)", None, None, "input"),
    ok(4, "OUT", 8.0, {"A": 4.0, "B": 2.0}, {"A": 2.0, "B": 4.0}, {"A": 2.0, "B": 4.0}),
    fail(5, "log(-1) is undefined: log needs a positive argument", 1, 7, "domain",
         "where A = -1"),
    ok(6, "OUT", None, {"A": "Z", "Z": 2.0}, {"A": 2.0}, {"A": 2.0}),
    fail(7, "exp(1000) overflows a 64-bit float", 1, 7, "overflow",
         "where A = 1000; results must stay below about 1.8e308 in magnitude"),
    fail(8, "A is assigned twice", 2, 1, "name", ASSIGNED_TWICE_HINT),
    fail(9, "the '(' at 1:7 is never closed", 1, 10, "syntax", "add the missing ')'"),
    fail(10, "the value of A must be a number, not 'x'", None, None, "input"),
    ok(11, "U", 6.0, {"B": 2.0}, {"B": 3.0}, {"A": 2.0, "B": 3.0}),
]


def test_every_error_kind_text_input_exact_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "problems.txt"
    path.write_text(TEXT_PROBLEMS, "utf-8")
    # Q is no input of any line: a command-level --at value a line lacks is ignored there,
    # and a value that no line used at all is reported at the end (a typo is never silent).
    r = run("--batch", str(path), "--at", "A=2,Q=9")
    assert r.exit_code == 1
    got = jsonl(r.stdout)
    assert len(got) == len(TEXT_EXPECTED)
    differ = [(want["line"], row, want) for row, want in zip(got, TEXT_EXPECTED, strict=True)
              if row != want]
    assert not differ, "rows differ (line, got, expected):\n" + "\n".join(map(repr, differ))
    assert {row["error"]["kind"] for row in got if row["error"]} == {
        "syntax", "name", "cycle", "arity", "domain", "overflow"}
    # jsonl is a machine format: errors only in the results; the unused --at on stderr.
    assert r.stderr == ("warning: --at Q matched no input of the lines that succeeded\n"
                        "hint: check the spelling; --at applies only to the lines that have "
                        "that input\n")
    # Off a terminal jsonl is the default; asking for it by name changes nothing.
    assert run("--batch", str(path), "--at", "A=2,Q=9", "-F", "jsonl").stdout == r.stdout


def test_every_error_kind_jsonl_input_exact_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "problems.jsonl"
    path.write_text(JSONL_PROBLEMS, "utf-8")
    r = run("--batch", str(path), "--input", "jsonl", "--at", "A=2")
    assert r.exit_code == 1
    got = jsonl(r.stdout)
    assert len(got) == len(JSONL_EXPECTED)
    differ = [(want["line"], row, want) for row, want in zip(got, JSONL_EXPECTED, strict=True)
              if row != want]
    assert not differ, "rows differ (line, got, expected):\n" + "\n".join(map(repr, differ))
    assert {row["error"]["kind"] for row in got if row["error"]} == {
        "syntax", "name", "input", "domain", "overflow"}


def test_solve_line_and_solve_problem_directly() -> None:
    assert solve_line("B = A*3; OUT = (B+1)*(B+2)", at={"A": 2, "Z": 1}, line=4) == ok(
        4, "OUT", 56.0, {"A": 45.0, "B": 15.0}, {"A": 2.0, "B": 6.0}, {"A": 2.0})
    # --wrt names a line lacks are ignored; the rest keep the given order.
    assert solve_line("B = A*3; OUT = (B+1)*(B+2)", at={"A": 2}, wrt=["Q", "B", "A"])[
        "gradients"] == {"B": 15.0, "A": 45.0}
    assert solve_line("OUT = log(A)", at={"A": -1}, line=7) == fail(
        7, "log(-1) is undefined: log needs a positive argument", 7, 7, "domain",
        "where A = -1")
    assert solve_problem(Problem(3, "", error="line is not UTF-8 text (byte 0)")) == fail(
        3, "line is not UTF-8 text (byte 0)", None, None, "input")
    structured = Problem(5, json.dumps({"program": "OUT = A*B", "at": {"B": 3}}), True)
    assert solve_problem(structured, at={"A": 2, "B": 100})["gradients"] == {"A": 3.0,
                                                                              "B": 2.0}


# --- order with --jobs -----------------------------------------------------------------------


def test_order_is_kept_with_two_jobs(tmp_path: Path) -> None:
    n = 5000
    lines = []
    for i in range(1, n + 1):
        if i % 611 == 0:
            lines.append(f"A = {i}; OUT = log(A - {i + 1})")  # a failure now and then
        else:
            lines.append(seed_line(i, i % 13 + 2, i % 7))
    path = tmp_path / "many.txt"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    one = script("--batch", str(path), "--jobs", "1")
    two = script("--batch", str(path), "--jobs", "2")
    assert one.returncode == two.returncode == 1
    assert one.stdout == two.stdout
    got = jsonl(two.stdout.decode("utf-8"))
    assert [row["line"] for row in got] == list(range(1, n + 1))
    for i, row in enumerate(got, 1):
        if i % 611 == 0:
            assert row["error"]["kind"] == "domain" and row["error"]["line"] == i
        else:
            value, d_a, d_b = seed_answer(i, i % 13 + 2, i % 7)
            assert (row["value"], row["gradients"]) == (value, {"A": d_a, "B": d_b}), i
    # the answers differ from line to line, so a mix-up could not go unnoticed
    assert all(a["value"] != b["value"] for a, b in itertools.pairwise(got))
    assert len({(row["value"], row["gradients"].get("A")) for row in got}) > 0.95 * n


# --- standard input --------------------------------------------------------------------------

STDIN_TEXT = "OUT = A*3\nOUT = log(-A)\n\nOUT = A^2\n"
STDIN_EXPECTED = [
    ok(1, "OUT", 6.0, {"A": 3.0}, {"A": 2.0}, {"A": 2.0}),
    fail(2, "log(-2) is undefined: log needs a positive argument", 2, 7, "domain",
         "where -A = -2"),
    ok(4, "OUT", 4.0, {"A": 4.0}, {"A": 2.0}, {"A": 2.0}),
]


def test_stdin_through_the_console_script() -> None:
    r = script("--batch", "-", "--at", "A=2", stdin=STDIN_TEXT.encode())
    assert r.returncode == 1
    assert jsonl(r.stdout.decode()) == STDIN_EXPECTED
    assert r.stderr == b""
    plain = script("--batch", "-", "--at", "A=2", "-F", "plain", stdin=STDIN_TEXT.encode())
    assert plain.returncode == 1
    assert plain.stdout.decode() == (
        "1 OUT 6 A=3\n"
        "2 error: log(-2) is undefined: log needs a positive argument (column 7)\n"
        "4 OUT 4 A=4\n")
    assert plain.stderr.decode() == (
        "error: <stdin>:2:7: log(-2) is undefined: log needs a positive argument\n"
        "hint: where -A = -2\n")


def test_stdin_through_clirunner() -> None:
    r = run("--batch", "-", "--at", "A=2", stdin=STDIN_TEXT)
    assert r.exit_code == 1
    assert jsonl(r.stdout) == STDIN_EXPECTED
    good = run("--batch", "-", "--at", "A=2", stdin="OUT = A*3\n")
    assert good.exit_code == 0 and jsonl(good.stdout) == STDIN_EXPECTED[:1]


# --- awkward input files ---------------------------------------------------------------------

LONG_TERMS = 50_000


def awkward_input() -> bytes:
    long_line = "OUT = " + " + ".join(f"A*{i}" for i in range(1, LONG_TERMS + 1))
    return (b"\xef\xbb\xbfOUT = A*2\r\n"       # 1 byte order mark, CR LF
            b"\r\n"                            # 2 blank (CR LF)
            b"   \t \r\n"                      # 3 whitespace only
            b"# comment\r\n"                   # 4 comment
            b"   # indented comment\n"         # 5 comment
            b"OUT = A*\xff3\n"                 # 6 not UTF-8
            b"OUT = A + 1  \r\n"               # 7 trailing blanks, CR LF
            + long_line.encode() + b"\n"       # 8 a 50,000-term sum
            b"\n"                              # 9 blank
            b"OUT = A*A")                      # 10 no newline at the end


def awkward_expected() -> list[dict[str, Any]]:
    total = LONG_TERMS * (LONG_TERMS + 1) // 2
    return [
        ok(1, "OUT", 6.0, {"A": 2.0}, {"A": 3.0}, {"A": 3.0}),
        fail(6, "line is not UTF-8 text (byte 8)", None, None, "input"),
        ok(7, "OUT", 4.0, {"A": 1.0}, {"A": 3.0}, {"A": 3.0}),
        ok(8, "OUT", 3.0 * total, {"A": float(total)}, {"A": 3.0}, {"A": 3.0}),
        ok(10, "OUT", 9.0, {"A": 6.0}, {"A": 3.0}, {"A": 3.0}),
    ]


def test_awkward_input_file(tmp_path: Path) -> None:
    path = tmp_path / "awkward.txt"
    path.write_bytes(awkward_input())
    r = run("--batch", str(path), "--at", "A=3")
    assert r.exit_code == 1  # the line that is not UTF-8 fails, alone
    assert jsonl(r.stdout) == awkward_expected()


def test_awkward_input_on_stdin_of_the_console_script() -> None:
    r = script("--batch", "-", "--at", "A=3", stdin=awkward_input())
    assert r.returncode == 1
    assert jsonl(r.stdout.decode("utf-8")) == awkward_expected()


def test_problems_reader() -> None:
    lines = [b"\xef\xbb\xbf# bom then comment\n", b"OUT = A\r\n", b" \n", b"\xc3\x28\n",
             b"OUT = B"]
    got = list(problems(iter(lines)))
    assert got == [Problem(2, "OUT = A"),
                   Problem(4, "", False, "line is not UTF-8 text (byte 0)"),
                   Problem(5, "OUT = B")]
    assert list(problems(iter([b'{"program": "OUT = 1"}\n']), structured=True)) == [
        Problem(1, '{"program": "OUT = 1"}', True)]
    # lazy: the reader does not read ahead of what it has handed out
    consumed = []

    def source():
        for raw in (b"OUT = 1\n", b"OUT = 2\n", b"OUT = 3\n"):
            consumed.append(raw)
            yield raw

    first = next(problems(source()))
    assert first.line == 1 and len(consumed) == 1


# --- a big input -----------------------------------------------------------------------------


def test_hundred_thousand_lines_through_the_console_script(tmp_path: Path) -> None:
    n = 100_000
    params = [(i % 97 + 1, i % 13 + 2, i % 7) for i in range(1, n + 1)]
    path = tmp_path / "big.txt"
    path.write_text("".join(seed_line(*p) + "\n" for p in params), "utf-8")
    out_path = tmp_path / "big.jsonl"
    start = time.perf_counter()
    with open(out_path, "wb") as out:
        proc = subprocess.run([console_script(), "--batch", str(path)], stdout=out,
                              stderr=subprocess.PIPE, timeout=600, check=False)
    elapsed = time.perf_counter() - start
    print(f"\n100,000 lines through the console script: {elapsed:.2f} s "
          f"({n / elapsed:,.0f} problems/s)")
    assert proc.returncode == 0 and proc.stderr == b""
    rows = out_path.read_text("utf-8").splitlines()
    assert len(rows) == n
    for i in (1, 2, 97, 1234, 50_000, 77_777, 99_999, n):
        row = json.loads(rows[i - 1])
        value, d_a, d_b = seed_answer(*params[i - 1])
        assert row["line"] == i and row["error"] is None
        assert (row["value"], row["gradients"]) == (value, {"A": d_a, "B": d_b})


# --- exit codes ------------------------------------------------------------------------------


def test_exit_codes(tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text("OUT = A*2\nOUT = A+1\n", "utf-8")
    last_bad = tmp_path / "bad.txt"
    last_bad.write_text("OUT = A*2\nOUT = A+1\nOUT = log(A-1)\n", "utf-8")
    assert run("--batch", str(good), "--at", "A=1").exit_code == 0
    assert run("--batch", str(last_bad), "--at", "A=1").exit_code == 1
    for fmt in ("table", "plain", "jsonl", "csv", "tsv"):
        assert run("--batch", str(good), "--at", "A=1", "-F", fmt).exit_code == 0, fmt
        assert run("--batch", str(last_bad), "--at", "A=1", "-F", fmt).exit_code == 1, fmt

    usage = {
        "missing file": ("--batch", str(tmp_path / "no-such-file.txt")),
        "--format json": ("--batch", str(good), "--format", "json"),
        "PROGRAM and --batch": ("OUT = A", "--batch", str(good)),
        "--graph": ("--batch", str(good), "--graph=tree"),
    }
    for what, args in usage.items():
        r = run(*args)
        assert (r.exit_code, r.stdout) == (2, ""), what
        assert r.stderr.startswith("error: "), what
    # the same through the real console script (a bare --graph is --graph=auto there)
    for args in (("--batch", str(tmp_path / "no-such-file.txt")),
                 ("--batch", str(good), "--graph")):
        r = script(*args)
        assert (r.returncode, r.stdout) == (2, b""), args
    assert script("--batch", str(good), "--at", "A=1").returncode == 0
    assert script("--batch", str(last_bad), "--at", "A=1").returncode == 1


def test_fail_fast_stops_after_the_first_failure(tmp_path: Path) -> None:
    path = tmp_path / "ff.txt"
    path.write_text("OUT = A*2\nOUT = A+1\nOUT = log(A-1)\nOUT = A*5\nOUT = 1/(A-1)\n"
                    "OUT = A*6\n", "utf-8")
    full = run("--batch", str(path), "--at", "A=1")
    assert full.exit_code == 1 and len(jsonl(full.stdout)) == 6
    fast = run("--batch", str(path), "--at", "A=1", "--fail-fast")
    assert fast.exit_code == 1
    rows = jsonl(fast.stdout)
    assert [row["line"] for row in rows] == [1, 2, 3]
    assert rows[-1]["error"]["kind"] == "domain"
    plain = run("--batch", str(path), "--at", "A=1", "--fail-fast", "-F", "plain")
    assert plain.stdout.splitlines()[-1].startswith("3 error: ")
    assert len(plain.stdout.splitlines()) == 3
    two_jobs = script("--batch", str(path), "--at", "A=1", "--fail-fast", "-j", "2")
    assert two_jobs.returncode == 1 and two_jobs.stdout.decode() == fast.stdout
    # nothing fails: --fail-fast changes nothing
    good = tmp_path / "good.txt"
    good.write_text("OUT = A*2\nOUT = A+1\n", "utf-8")
    assert run("--batch", str(good), "--at", "A=1", "--fail-fast").exit_code == 0


# --- csv and tsv -----------------------------------------------------------------------------

CSV_PROBLEMS = (
    "OUT = (A+\n"              # 1 fails before the first success
    "OUT = log(A-10)\n"        # 2 fails before the first success
    "OUT = A*B\n"              # 3 first success: the columns are A, B
    "OUT = A*C + B\n"          # 4 C goes to 'other'
    "OUT = C*0.1 + A/3\n"      # 5 no B; C in 'other'
    "OUT = sqrt(A-1)\n"        # 6 an infinite gradient (a warning, not an error)
    "OUT = A*1e-300*B\n"       # 7 tiny numbers
    "OUT = atan2(A)\n"         # 8 the message has a comma
    "OUT = (A+0.1)*(B+0.2)\n"  # 9 numbers that need all 17 digits
)
A_, B_, C_ = 1.0, 2.0, 3.0


def parse_table(text: str, delimiter: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text), delimiter=delimiter))


def test_csv_columns_from_the_first_success() -> None:
    r = run("--batch", "-", "--at", "A=1,B=2,C=3", "-F", "csv", stdin=CSV_PROBLEMS)
    assert r.exit_code == 1
    rows = parse_table(r.stdout, ",")
    assert rows[0] == ["line", "output", "value", "d_A", "d_B", "other", "error"]
    body = rows[1:]
    assert [row[0] for row in body] == [str(i) for i in range(1, 10)]  # input order
    assert all(len(row) == 7 for row in body)
    by_line = {int(row[0]): row for row in body}
    # failures: empty cells and the message
    assert by_line[1][1:6] == ["", "", "", "", ""]
    assert by_line[1][6] == "the '(' at 1:7 is never closed"
    assert by_line[2][6] == "log(-9) is undefined: log needs a positive argument"
    assert by_line[8][6] == "atan2 takes 2 arguments, got 1"
    assert by_line[8][1:6] == ["", "", "", "", ""]
    # successes: values round-trip exactly
    expected = {
        3: (A_ * B_, {"A": B_, "B": A_}, ""),
        4: (A_ * C_ + B_, {"A": C_, "B": 1.0}, '{"C":1.0}'),
        5: (C_ * 0.1 + A_ / 3, {"A": 1 / 3}, '{"C":0.1}'),
        6: (0.0, {"A": math.inf}, ""),
        7: (A_ * 1e-300 * B_, {"A": 1e-300 * B_, "B": A_ * 1e-300}, ""),
        9: ((A_ + 0.1) * (B_ + 0.2), {"A": B_ + 0.2, "B": A_ + 0.1}, ""),
    }
    for line, (value, grads, other) in expected.items():
        row = by_line[line]
        assert row[1] == "OUT" and row[6] == "", row
        assert float(row[2]) == value, row
        for name, column in (("A", 3), ("B", 4)):
            if name in grads:
                assert float(row[column]) == grads[name], row
            else:
                assert row[column] == "", row
        assert row[5] == other, row
    assert by_line[6][3] == "inf"


def test_csv_other_lists_every_extra_name() -> None:
    r = run("--batch", "-", "--at", "A=1,B=2,C=3,D=4", "-F", "csv",
            stdin="OUT = A*2\nOUT = B*C*D + A\n")
    assert r.exit_code == 0
    assert r.stdout == ("line,output,value,d_A,other,error\n"
                        "1,OUT,2,2,,\n"
                        '2,OUT,25,1,"{""B"":12.0,""C"":8.0,""D"":6.0}",\n')


def test_csv_and_tsv_with_wrt_columns() -> None:
    for fmt, delimiter in (("csv", ","), ("tsv", "\t")):
        r = run("--batch", "-", "--at", "A=1,B=2,C=3", "--wrt", "C,A", "-F", fmt,
                stdin=CSV_PROBLEMS)
        assert r.exit_code == 1
        rows = parse_table(r.stdout, delimiter)
        assert rows[0] == ["line", "output", "value", "d_C", "d_A", "other", "error"], fmt
        assert [row[0] for row in rows[1:]] == [str(i) for i in range(1, 10)]
        by_line = {int(row[0]): row for row in rows[1:]}
        assert by_line[3][3:6] == ["", "2", ""]          # no C in line 3; B not asked for
        assert by_line[4][3:6] == ["1", "3", ""]
        assert float(by_line[5][3]) == 0.1 and float(by_line[5][4]) == 1 / 3
        assert by_line[2][6] == "log(-9) is undefined: log needs a positive argument"
    tsv = run("--batch", "-", "--at", "A=1,B=2", "-F", "tsv", stdin="OUT = A*B\n")
    assert tsv.stdout == "line\toutput\tvalue\td_A\td_B\tother\terror\n1\tOUT\t2\t2\t1\t\t\n"


def test_csv_and_tsv_when_every_line_fails() -> None:
    for fmt, sep in (("csv", ","), ("tsv", "\t")):
        r = run("--batch", "-", "-F", fmt, stdin="OUT = (A+\nOUT = log(-1)\n")
        assert r.exit_code == 1
        assert r.stdout.splitlines()[0] == sep.join(["line", "output", "value", "other",
                                                     "error"])
        rows = parse_table(r.stdout, sep)
        assert [row[0] for row in rows[1:]] == ["1", "2"]
        assert rows[2][-1] == "log(-1) is undefined: log needs a positive argument"
        empty = run("--batch", "-", "-F", fmt, stdin="# nothing but a comment\n")
        assert (empty.exit_code, empty.stdout) == (0, sep.join(["line", "output", "value",
                                                                 "other", "error"]) + "\n")


# --- formulas in the text formats ---------------------------------------------------------------

FORMULA_PROBLEMS = (
    "OUT = sin(A)*B\n"                                                     # 1 columns A, B
    "X1 = sin(X0)+cos(X0); X2 = sin(X1)+cos(X1); X3 = sin(X2)+cos(X2); OUT = X3\n"  # 2 bindings
    "B = A*3; OUT = (B+1)*(B+2)\n"                                         # 3 18*A + 9
    "OUT = max(A, B) + 1e-300*A - -B\n"                                    # 4 commas, 1/10^300
    "OUT = atan2(A)\n"                                                     # 5 a comma in the error
    'OUT = "A"\n'                                                          # 6 a quote in the error
    "A = 2; B = A*3; OUT = (B+1)*(B+2)\n"                                  # 7 numbers
    "OUT = A/3 + sqrt(A-2)*C\n"                                            # 8 a third name
)


@pytest.mark.parametrize("wrt", [None, "A,X0"])
def test_formulas_survive_csv_tsv_and_plain(wrt: str | None) -> None:
    """Gradients that are formulas (no values given) hold ``;``, ``=``, commas and blanks; the
    CSV and TSV rows read back with the csv module, and the plain lines split on whitespace
    (each NAME=GRADIENT on its first ``=``), give every field of the JSON Lines output."""
    extra = ("--wrt", wrt) if wrt else ()
    stdin = FORMULA_PROBLEMS.encode()
    reference = script("--batch", "-", *extra, stdin=stdin)
    assert reference.returncode == 1
    rows = jsonl(reference.stdout.decode())
    assert [row["line"] for row in rows] == list(range(1, 9))
    formulas = [g for row in rows for g in row["gradients"].values() if isinstance(g, str)]
    assert any(";" in f and "=" in f for f in formulas)  # a formula with bindings
    assert any("," in f for f in formulas) and any(" " in f for f in formulas)
    for fmt, delimiter in (("csv", ","), ("tsv", "\t")):
        r = script("--batch", "-", *extra, "-F", fmt, stdin=stdin)
        assert r.returncode == 1
        check_csv(r.stdout.decode(), rows, delimiter)
    plain = script("--batch", "-", *extra, "-F", "plain", stdin=stdin)
    assert plain.returncode == 1
    lines = plain.stdout.decode().splitlines(keepends=True)
    assert len(lines) == len(rows)
    for line, row in zip(lines, rows, strict=True):
        check_plain_line(line, row)
    assert lines[2] == ("3 OUT ? A=18*A+9\n" if wrt else "3 OUT ? A=18*A+9 B=6*A+3\n")


# --- plain and table -------------------------------------------------------------------------


def test_plain_one_line_per_problem_and_errors_on_stderr(tmp_path: Path) -> None:
    path = tmp_path / "p.txt"
    path.write_bytes(b"B = A*3; OUT = (B+1)*(B+2)\n"
                     b"OUT = (A+\n"
                     b"# comment\n"
                     b"OUT = 3\n"
                     b"OUT = A*\xff\n"
                     b"OUT = 1/(A-2)\n"
                     b"OUT = A/3\n")
    r = run("--batch", str(path), "--at", "A=2", "-F", "plain")
    assert r.exit_code == 1
    assert r.stdout == (
        "1 OUT 56 A=45 B=15\n"
        "2 error: the '(' at 2:7 is never closed (column 10)\n"
        "4 OUT 3\n"
        "5 error: line is not UTF-8 text (byte 8)\n"
        "6 error: 1 / 0 is undefined: division by zero (column 7)\n"
        "7 OUT 0.6666666666666666 A=0.3333333333333333\n")
    assert r.stderr == (
        f"error: {path}:2:10: the '(' at 2:7 is never closed\n"
        "hint: add the missing ')'\n"
        f"error: {path}:5: line is not UTF-8 text (byte 8)\n"
        f"error: {path}:6:7: 1 / 0 is undefined: division by zero\n"
        "hint: where (A-2) = 0\n")


def test_table_format(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("B = A*3; OUT = (B+1)*(B+2)\nOUT = log(A-3)\n", "utf-8")
    r = run("--batch", str(path), "--at", "A=2", "-F", "table")
    assert r.exit_code == 1
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["line", "output", "value", "gradients", "error"]
    assert lines[1].split() == ["1", "OUT", "56", "A=45", "B=15"]
    assert lines[2].split()[0] == "2" and "log(-1) is undefined" in r.stdout
    assert r.stderr.startswith(f"error: {path}:2:7: log(-1) is undefined")


# --- JSON Lines input ------------------------------------------------------------------------


def test_jsonl_input_overrides_and_bad_lines(tmp_path: Path) -> None:
    lines = [
        json.dumps({"program": "U = A*B", "at": {"A": 10}}),               # at: A from line
        json.dumps({"program": "U = A*B", "wrt": ["B"]}),                  # wrt from line
        json.dumps({"program": "U = A*B; V = A+B", "of": "V"}),            # of from line
        json.dumps({"at": {"A": 1}}),                                      # no program
        json.dumps(["OUT = A"]),                                           # not an object
        json.dumps("OUT = A"),                                             # not an object
        json.dumps({"program": "OUT = A", "wrt": ["A"], "extra": 1, "x": 2}),  # unknown keys
        json.dumps({"program": 3}),                                        # program not text
        json.dumps({"program": "U = A*B; V = A+B"}),                      # command's everything
    ]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    r = run("--batch", str(path), "--input", "jsonl", "--at", "A=2,B=3", "--wrt", "A",
            "--of", "U")
    assert r.exit_code == 1
    no_program = 'each JSON line must be an object with a "program" string'
    assert jsonl(r.stdout) == [
        ok(1, "U", 30.0, {"A": 3.0}, {"A": 10.0}, {"A": 10.0, "B": 3.0}),
        ok(2, "U", 6.0, {"B": 2.0}, {"B": 3.0}, {"A": 2.0, "B": 3.0}),
        ok(3, "V", 5.0, {"A": 1.0}, {"A": 2.0}, {"A": 2.0, "B": 3.0}),
        fail(4, no_program, None, None, "input"),
        fail(5, no_program, None, None, "input"),
        fail(6, no_program, None, None, "input"),
        fail(7, "unknown keys ['extra', 'x']: the keys are program, at, wrt, of", None, None,
             "input"),
        fail(8, no_program, None, None, "input"),
        ok(9, "U", 6.0, {"A": 3.0}, {"A": 2.0}, {"A": 2.0, "B": 3.0}),
    ]


def test_jsonl_input_bad_values_in_at(tmp_path: Path) -> None:
    lines = [json.dumps({"program": "OUT = A", "at": {"A": True}}),
             '{"program": "OUT = A", "at": {"A": 1e999}}',
             '{"program": "OUT = A", "at": {"A": NaN}}',
             json.dumps({"program": "OUT = A", "at": {"A": None}}),
             json.dumps({"program": "OUT = A", "wrt": 3}),
             json.dumps({"program": "OUT = A", "of": ["OUT"]}),
             json.dumps({"program": "OUT = A", "at": {"A": 4}})]
    r = run("--batch", "-", "--input", "jsonl", "--at", "A=1", stdin="\n".join(lines))
    assert r.exit_code == 1
    rows = jsonl(r.stdout)
    assert [row["error"]["message"] if row["error"] else None for row in rows] == [
        "the value of A must be a number, not True",
        "the value of A must be a finite number, not inf",
        "the value of A must be a finite number, not nan",
        "the value of A must be a number, not None",
        '"wrt" must be a name or a list of names',
        '"of" must be a name',
        None,
    ]
    assert rows[-1]["value"] == 4.0


# --- streaming -------------------------------------------------------------------------------


def _read_line_within(stream: Any, seconds: float) -> bytes:
    ready, _, _ = select.select([stream], [], [], seconds)
    assert ready, f"no result within {seconds} s while standard input is still open"
    return stream.readline()


@pytest.mark.parametrize("fmt", ["jsonl", "plain"])
def test_results_come_out_before_the_input_ends(fmt: str) -> None:
    proc = subprocess.Popen([console_script(), "--batch", "-", "--at", "A=2", "-F", fmt],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "NO_COLOR": "1"})
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(b"OUT = A*3\n")
        proc.stdin.flush()
        first = _read_line_within(proc.stdout, 5)
        proc.stdin.write(b"OUT = A*4\n")
        proc.stdin.flush()
        second = _read_line_within(proc.stdout, 5)
        assert proc.poll() is None  # still running: the input is not finished
        if fmt == "jsonl":
            assert json.loads(first) == ok(1, "OUT", 6.0, {"A": 3.0}, {"A": 2.0}, {"A": 2.0})
            assert json.loads(second)["line"] == 2 and json.loads(second)["value"] == 8.0
        else:
            assert (first, second) == (b"1 OUT 6 A=3\n", b"2 OUT 8 A=4\n")
        proc.stdin.close()
        assert proc.wait(timeout=10) == 0
        assert proc.stdout.read() == b""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --- the library function in other processes -------------------------------------------------


def test_solve_line_is_picklable_and_runs_in_a_pool() -> None:
    data = pickle.dumps(gradcalc.solve_line)
    assert pickle.loads(data) is solve_line
    # the seed lines set A themselves (an --at A would override it); C is only in the last
    texts = [seed_line(a, a % 5 + 2, a % 3) for a in range(1, 41)] + ["OUT = log(C - 5)"]
    solve = partial(gradcalc.solve_line, at={"C": 1})
    pickle.dumps(solve)
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pooled = pool.map(solve, texts)
        numbered = pool.starmap(gradcalc.solve_line,
                                [(t, {"C": 1}, None, None, i) for i, t in enumerate(texts, 1)])
    assert pooled == [solve(t) for t in texts]
    assert [row["line"] for row in numbered] == list(range(1, len(texts) + 1))
    assert numbered[-1]["error"]["kind"] == "domain" and numbered[-1]["error"]["line"] == 41
    for a, row in zip(range(1, 41), pooled[:40], strict=True):
        value, d_a, d_b = seed_answer(a, a % 5 + 2, a % 3)
        assert (row["value"], row["gradients"]) == (value, {"A": d_a, "B": d_b})


# --- the Dask example ------------------------------------------------------------------------


def _load_dask_example() -> Any:
    spec = importlib.util.spec_from_file_location("gradcalc_dask_batch_example",
                                                  ROOT / "examples" / "dask_batch.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dask_example_matches_the_cli(tmp_path: Path) -> None:
    pytest.importorskip("dask.bag")
    example = _load_dask_example()
    path = tmp_path / "dask.txt"
    path.write_text("# problems for Dask\n"
                    + "".join(seed_line(a, a + 1, a % 4) + "\n" for a in range(1, 6))
                    + "\n"
                    "OUT = log(A - 3)\n"
                    "OUT = A +* 2\n"
                    "OUT = 1/(A-2)\n"
                    "OUT = sin(A)*A\n", "utf-8")
    cli_rows = jsonl(run("--batch", str(path), "--at", "A=2").stdout)
    assert len(cli_rows) == 9 and sum(row["error"] is not None for row in cli_rows) == 3
    synchronous = example.solve_file(str(path), at={"A": 2.0}, scheduler="synchronous")
    assert synchronous == cli_rows
    processes = example.solve_file(str(path), at={"A": 2.0}, scheduler="processes")
    assert processes == cli_rows


def test_dask_example_on_a_cluster_writes_partitioned_files_in_order(tmp_path: Path) -> None:
    # The same example against a dask.distributed cluster of 2 worker processes: one
    # partition per input file, each written by the workers as its own JSON Lines file,
    # byte for byte what `gradcalc --batch FILE --format jsonl` writes for that file.
    distributed = pytest.importorskip("dask.distributed")
    example = _load_dask_example()
    parts = tmp_path / "parts"
    parts.mkdir()
    for k in range(3):
        lines = [seed_line(a + k, a + 2, a % 3) for a in range(1, 40)]
        lines[7] = "OUT = A +* 2"
        lines[11] = "# a comment"
        lines[13] = "OUT = log(A - 3)"
        (parts / f"p{k}.txt").write_text("\n".join(lines) + "\n", "utf-8")
    expected = [subprocess.run([console_script(), "--batch", str(parts / f"p{k}.txt"),
                                "--at", "A=2", "--format", "jsonl"], capture_output=True,
                               check=False, timeout=120).stdout for k in range(3)]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        results = example.solve_files(str(parts / "p*.txt"), at={"A": 2.0})
        failed = example.write_files(results, str(tmp_path / "out"))
    assert failed
    written = sorted((tmp_path / "out").iterdir())
    assert [p.name for p in written] == ["part-00000.jsonl", "part-00001.jsonl",
                                         "part-00002.jsonl"]
    assert [p.read_bytes() for p in written] == expected


# --- bugs: each test below fails on the current code (see the report) -----------------------


def test_missing_input_values_give_formulas_in_every_format() -> None:
    """A line whose input has no value (neither in the line nor in --at) is answered as a
    single program is: formulas where the value is missing, numbers elsewhere."""
    text = "OUT = A*2\nOUT = A*Z\n"
    r = run("--batch", "-", "--at", "A=2", stdin=text)
    assert jsonl(r.stdout)[1] == ok(2, "OUT", None, {"A": "Z", "Z": 2.0}, {"A": 2.0},
                                    {"A": 2.0})
    assert r.exit_code == 0
    assert gradcalc.solve_line("OUT = A*Z", at={"A": 2})["gradients"] == {"A": "Z", "Z": 2.0}
    csv_rows = parse_table(run("--batch", "-", "--at", "A=2", "-F", "csv", stdin=text).stdout,
                           ",")
    assert csv_rows[2] == ["2", "OUT", "", "Z", '{"Z":2.0}', ""]
    plain = run("--batch", "-", "--at", "A=2", "-F", "plain", stdin=text)
    assert plain.stdout.splitlines()[1] == "2 OUT ? A=Z Z=2"


def test_jsonl_input_stderr_location_names_the_input_line(tmp_path: Path) -> None:
    """With --input jsonl and a human format, the FILE:LINE on stderr must name the line of
    the input file. It names the line inside the program instead (``in.jsonl:1:7`` for a
    failure on line 3)."""
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join([json.dumps({"program": "OUT = A"}),
                               json.dumps({"program": "OUT = A*2"}),
                               json.dumps({"program": "OUT = log(A)", "at": {"A": -1}})])
                    + "\n", "utf-8")
    r = run("--batch", str(path), "--input", "jsonl", "--at", "A=2", "-F", "plain")
    assert r.exit_code == 1
    assert r.stdout.splitlines()[2] == (
        "3 error: log(-1) is undefined: log needs a positive argument (column 7)")
    first = r.stderr.splitlines()[0]
    assert first == (f"error: {path}:3: program 1:7: log(-1) is undefined: log needs a positive "
                     "argument")


def test_positions_inside_messages_point_into_the_input_file(tmp_path: Path) -> None:
    """For text input the error's line/column are mapped to the input file, but a position
    quoted inside the message or hint is left relative to the one-line program, so the two
    disagree: ``problems.txt:2:10: the '(' at 1:7 is never closed``."""
    path = tmp_path / "problems.txt"
    path.write_text("OUT = A\nOUT = (A+\nA = 1; A = 2; OUT = A\n", "utf-8")
    rows = jsonl(run("--batch", str(path), "--at", "A=2").stdout)
    assert rows[1]["error"]["line"] == 2 and rows[1]["error"]["column"] == 10
    assert rows[1]["error"]["message"] == "the '(' at 2:7 is never closed"
    assert rows[2]["error"]["line"] == 3 and rows[2]["error"]["column"] == 8
    assert rows[2]["error"]["hint"].startswith("it was first assigned at 3:1;")


def test_jsonl_line_at_names_the_program_lacks_are_errors() -> None:
    """A line's own "at" is not the command's --at: a name there that the program lacks (a
    typo) or computes is an error, as it is for one program (``gradcalc 'A = 1; OUT = A*2'
    --at a=5`` exits 2 with "the input 'a' is not a name in the program"). In batch it is
    silently dropped and the line answers with A = 1."""
    lines = [json.dumps({"program": "A = 1; OUT = A*2", "at": {"a": 5}}),
             json.dumps({"program": "A = 1; B = A*3; OUT = B*2", "at": {"B": 5}})]
    rows = jsonl(run("--batch", "-", "--input", "jsonl", stdin="\n".join(lines)).stdout)
    assert [row["error"] is not None and row["error"]["kind"] for row in rows] == [
        "input", "input"], rows


def test_table_shows_messages_with_square_brackets_verbatim() -> None:
    """The table format puts each error message into Rich markup (``[red]...[/red]``) without
    escaping it, so brackets in a message are read as markup: an unknown key ``[/red]`` (or
    ``--of '[/x]'``) crashes the command with exit 70 (MarkupError) and loses the whole block of
    rows; a key ``[bold]x`` is shown as ``x``."""
    lines = [json.dumps({"program": "OUT = A"}),
             json.dumps({"program": "OUT = A", "[bold]x": 1}),
             json.dumps({"program": "OUT = A", "[/red]": 1})]
    r = script("--batch", "-", "--input", "jsonl", "--at", "A=1", "-F", "table",
               stdin="\n".join(lines).encode())
    assert r.returncode == 1, (r.returncode, r.stderr.decode())
    flat = " ".join(r.stdout.decode().split())
    assert "unknown keys ['[bold]x']" in flat and "unknown keys ['[/red]']" in flat, flat


def test_closed_stdout_exits_141_not_1(tmp_path: Path) -> None:
    """README: exit 141 when "standard output was closed early (e.g. piped into head)"; in
    batch mode exit 1 means "a line failed". ``gradcalc --batch FILE | head -1`` on a file of
    good lines exits 1 instead (Click turns the EPIPE into exit 1 before gradcalc's own
    BrokenPipeError handler in ``cli.main`` can see it)."""
    path = tmp_path / "good.txt"
    path.write_text("".join(seed_line(i, 3, 2) + "\n" for i in range(1, 20_001)), "utf-8")
    proc = subprocess.Popen([console_script(), "--batch", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "NO_COLOR": "1"})
    assert proc.stdout is not None and proc.stderr is not None
    first = json.loads(proc.stdout.readline())
    assert first["line"] == 1 and first["error"] is None
    proc.stdout.close()  # the reader goes away, as `head -1` does
    try:
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.stderr.read() == b""
    assert code == ExitStatus.BROKEN_PIPE == 141


# --- several jobs on a regular file: each worker reads, solves and writes its own parts -----


def _serial_texts(path: Path, max_size: int) -> list[str]:
    with path.open("rb") as stream:
        return [json.dumps(r, ensure_ascii=False) + "\n"
                for r in gradcalc.batch.solve_stream(
                    gradcalc.batch.problems(stream, max_size=max_size), max_size=max_size)]


def test_parts_of_a_file_give_what_one_process_gives(tmp_path: Path) -> None:
    # A byte order mark, CR LF, comments, blank lines, failing lines, a line over the size
    # limit, and no newline at the end; parts of 97 bytes cut lines everywhere.
    lines = ["\ufeffA = 1; OUT = A*2", "", "# comment", "OUT = A +* 2\r"]
    lines += [seed_line(a, a + 1, a % 3) + ("\r" if a % 4 == 0 else "") for a in range(1, 60)]
    lines[20] = "OUT = " + "A+" * 200 + "A"  # over the limit of 300 bytes below
    lines[30] = "OUT = log(A - 3); A = 1"
    path = tmp_path / "parts.txt"
    path.write_bytes("\n".join(lines).encode("utf-8"))
    parts = list(gradcalc.batch.solve_parts(str(path), "jsonl", part_size=97, max_size=300))
    assert len(parts) > 10 and all(p.stopped is None for p in parts)
    assert "".join(t for p in parts for t in p.texts) == "".join(_serial_texts(path, 300))
    failures = [f["line"] for p in parts for f in p.failures.values()]
    assert failures == [4, 21, 31]
    assert set().union(*(p.inputs for p in parts)) == {"A"}
    assert sum(p.size for p in parts) == path.stat().st_size


def test_a_binary_part_stops_after_the_lines_before_it(tmp_path: Path) -> None:
    path = tmp_path / "binary.txt"
    path.write_bytes(b"".join(f"A = {a}; OUT = A*3\n".encode() for a in range(40))
                     + b"\0" * 5000 + b"\nOUT = 2\n")
    parts = list(gradcalc.batch.solve_parts(str(path), "jsonl", part_size=200, max_size=1000))
    assert isinstance(parts[-1].stopped, gradcalc.batch.BinaryInput)
    texts = [t for p in parts for t in p.texts]
    assert len(texts) == 41 and '"kind": "limit"' in texts[-1]


@pytest.mark.parametrize("options", [["--format", "jsonl"], ["--format", "plain"],
                                     ["--format", "jsonl", "--fail-fast"],
                                     ["--format", "plain", "--at", "A=2", "--wrt", "A,Q"]])
def test_two_jobs_on_a_file_write_what_one_job_writes(tmp_path: Path, options: list[str]) -> None:
    # Over 1 MiB: the file is cut into parts solved, and written, by the workers.
    lines = [seed_line(a % 97 + 1, a % 13 + 2, a % 5) for a in range(40_000)]
    lines[25_000] = "OUT = A +* 2"
    path = tmp_path / "big.txt"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    assert path.stat().st_size > 1 << 20
    one, two = (subprocess.run([console_script(), "--batch", str(path), "--jobs", jobs,
                                *options], capture_output=True, timeout=300)
                for jobs in ("1", "2"))
    assert (two.returncode, two.stdout, two.stderr) == (one.returncode, one.stdout, one.stderr)
    assert one.returncode == 1


# --- several jobs on standard input: the workers solve and write chunks of lines -------------


def test_chunks_of_a_stream_give_what_one_process_gives(tmp_path: Path) -> None:
    lines = ["\ufeffA = 1; OUT = A*2", "", "# comment", "OUT = A +* 2\r"]
    lines += [seed_line(a, a + 1, a % 3) for a in range(1, 700)]
    lines[20] = "OUT = " + "A+" * 200 + "A"  # over the limit of 300 bytes below
    lines[600] = "OUT = log(A - 3); A = 1"
    path = tmp_path / "chunks.txt"
    path.write_bytes("\n".join(lines).encode("utf-8"))
    with path.open("rb") as stream:
        parts = list(gradcalc.batch.solve_chunks(
            gradcalc.batch.problems(stream, max_size=300), "jsonl", max_size=300))
    assert len(parts) == 3 and all(p.stopped is None for p in parts)  # 256 problems a chunk
    assert "".join(t for p in parts for t in p.texts) == "".join(_serial_texts(path, 300))
    assert [f["line"] for p in parts for f in p.failures.values()] == [4, 21, 601]


def test_a_binary_stream_stops_after_the_chunks_before_it() -> None:
    raw = b"".join(f"A = {a}; OUT = A*3\n".encode() for a in range(300)) + b"\0" * 5000
    parts = list(gradcalc.batch.solve_chunks(
        gradcalc.batch.problems(io.BytesIO(raw + b"\nOUT = 2\n"), max_size=1000), "plain",
        max_size=1000))
    assert isinstance(parts[-1].stopped, gradcalc.batch.BinaryInput)
    assert sum(len(p.texts) for p in parts) == 301  # the lines, then the long one's error


@pytest.mark.parametrize("options", [["--format", "jsonl"], ["--format", "plain"],
                                     ["--format", "jsonl", "--fail-fast"]])
def test_two_jobs_on_a_pipe_write_what_one_job_writes(options: list[str]) -> None:
    lines = [seed_line(a % 97 + 1, a % 13 + 2, a % 5) for a in range(3_000)]
    lines[2_500] = "OUT = A +* 2"
    data = ("\n".join(lines) + "\n").encode("utf-8")
    one, two = (subprocess.run([console_script(), "--batch", "-", "--jobs", jobs, *options],
                               input=data, capture_output=True, timeout=300)
                for jobs in ("1", "2"))
    assert (two.returncode, two.stdout, two.stderr) == (one.returncode, one.stdout, one.stderr)
    assert one.returncode == 1 and one.stdout.count(b"\n") == (2_501 if "--fail-fast" in options
                                                               else 3_000)


def test_the_pipeline_answers_the_lines_before_binary_input() -> None:
    # The lines of the chunk that was being filled when the input turned out binary are
    # answered before the batch stops (they were dropped before).
    raw = b"".join(f"A = {a}; OUT = A*3\n".encode() for a in range(300)) + b"\0" * 5000
    stream = gradcalc.batch.solve_stream(
        gradcalc.batch.problems(io.BytesIO(raw + b"\nOUT = 2\n"), max_size=1000), jobs=2,
        max_size=1000)
    answered = []
    with pytest.raises(gradcalc.batch.BinaryInput):
        for result in stream:
            answered.append(result)
    assert len(answered) == 301 and answered[-1]["error"]["kind"] == "limit"


def test_two_jobs_on_stdin_redirected_from_a_file(tmp_path: Path) -> None:
    # Standard input that is a regular file (`< FILE`) has no name the workers could open:
    # this process reads it (it used to exit 70, opening a file called '-').
    path = tmp_path / "in.txt"
    path.write_text("".join(seed_line(a, 2, 1) + "\n" for a in range(1, 600)), "utf-8")
    runs = []
    for jobs in ("1", "2"):
        with path.open("rb") as stdin:
            runs.append(subprocess.run([console_script(), "--batch", "-", "--jobs", jobs,
                                        "--format", "plain"], stdin=stdin, capture_output=True,
                                       timeout=120))
    one, two = runs
    assert (two.returncode, two.stdout, two.stderr) == (one.returncode, one.stdout, one.stderr)
    assert one.returncode == 0 and one.stdout.count(b"\n") == 599
