"""A generated corpus of hostile programs and flag combinations through the command line.

The requirement: at least 2,000 mutated programs and 200 random flag combinations through the
CLI under the derandomized ``ci`` Hypothesis profile, with no traceback, no exit 70 (internal
error), no run over 10 s, and ``--format json`` (and ``jsonl``) output always valid JSON.

The programs start from seeds (``examples/*.gc``, the README's examples, one program per
function of the ops registry and one per syntax feature) and are mutated by Hypothesis:
characters and tokens deleted, inserted, replaced, duplicated and swapped; operators, parens,
unicode, control characters and NUL inserted; huge numbers, deep nesting, cycles, repeated and
very long names added.

Generated valid programs join the seeds, so that the engines and every view are reached
too, and a third property runs one program in ``plain``, ``json`` and ``table``, which must
agree. Flag combinations are drawn from the real option set, good values and bad.

Starting the console script costs about 120 ms, so the corpus runs ``gradcalc.cli.main()`` in
this process, with ``sys.argv`` and the standard streams replaced (stdout is not a terminal,
so the defaults are ``plain`` and ``jsonl`` as in a pipe; sometimes the streams' encoding is
not UTF-8, as under ``PYTHONIOENCODING=ascii``). A fixed sample of 30 cases also runs through
the real console script, and must give the same exit code and output there.

What the corpus found is pinned below (``FOUND``, ``SLOW_FOUND``) and tried first by the
properties; those tests fail until gradcalc is fixed.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import itertools
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import console_script, property_settings
from hypothesis import example, given
from hypothesis import strategies as st

from gradcalc import cli
from gradcalc.ops import CONSTANTS, FUNCTIONS
from gradcalc.serialize import flat

ROOT = Path(__file__).resolve().parent.parent

# --- the limits ------------------------------------------------------------------------------

# The documented exit codes a run may end with here: 0 success, 1 evaluation failed, 2 bad
# invocation or bad program. 74 (output not writable), 130 (Ctrl-C) and 141 (reader gone) need
# a failing output or a signal, which the in-process runs never have: there they are bugs too.
# 70 (internal error) is never allowed anywhere.
EXIT_CODES = {0, 1, 2}
SUBPROCESS_EXIT_CODES = {0, 1, 2}
EXIT_INTERNAL = 70
TRACEBACK = "Traceback (most recent call last)"

# The watchdog is a hang detector, not a benchmark: a typical run here takes a few
# milliseconds and the slowest corpus cases (thousands of nested parentheses, formula swell)
# well under a second, so 10 s (the bound) is generous even on a slow, loaded CI
# machine; only a hang or a runaway computation reaches it.
RUN_SECONDS = 10.0

# The environment of every run: no styles, a fixed terminal width for the graph views.
RUN_ENV = {"NO_COLOR": "1", "COLUMNS": "80"}
RUN_ENV_REMOVED = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "PYTHONUNBUFFERED")


# --- running the command line in this process ------------------------------------------------


@dataclass(frozen=True, slots=True)
class Run:
    """One finished run: what was given and what came back."""

    args: tuple[str, ...]
    stdin: bytes
    code: int
    stdout: str
    stderr: str
    seconds: float
    encoding: str = "utf-8"

    def reproducer(self) -> str:
        """The command line (and standard input) that reproduces this run, exactly."""
        try:
            shell = "gradcalc " + shlex.join(self.args)
        except (TypeError, ValueError):
            shell = "gradcalc (see argv)"
        if self.encoding != "utf-8":
            shell = f"PYTHONIOENCODING={self.encoding} {shell}"
        text = f"{shell}\n  argv={list(self.args)!r}"
        if self.stdin:
            text += f"\n  stdin={self.stdin!r}"
        return text

    def context(self) -> str:
        return (f"{self.reproducer()}\n  exit {self.code} after {self.seconds:.2f} s\n"
                f"  stdout={self.stdout[:600]!r}\n  stderr={self.stderr[:600]!r}")


class RunTimedOut(BaseException):
    """Raised by the watchdog's SIGALRM handler. A BaseException, so that gradcalc's own
    ``except Exception`` (which turns a bug into exit 70) cannot swallow it."""


def _on_alarm(signum: int, frame: object) -> None:
    raise RunTimedOut


@contextlib.contextmanager
def _environment(workdir: Path) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in (*RUN_ENV, *RUN_ENV_REMOVED)}
    cwd = os.getcwd()
    os.environ.update(RUN_ENV)
    for name in RUN_ENV_REMOVED:
        os.environ.pop(name, None)
    os.chdir(workdir)  # a program text that happens to name a file finds none of the repo's
    try:
        yield
    finally:
        os.chdir(cwd)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_in_process(args: Sequence[str], stdin: bytes = b"", workdir: Path | None = None,
                   encoding: str = "utf-8") -> Run:
    """``gradcalc ARGS < STDIN`` through ``gradcalc.cli.main()`` in this process.

    The streams are text wrappers over byte buffers with the encoding and errors handlers of a
    real process (stdin surrogateescape, stdout strict, stderr backslashreplace; ``encoding``
    is what ``PYTHONIOENCODING`` or a non-UTF-8 locale would give), so a character that a real
    process could not print fails here too. A SIGALRM watchdog stops a run at ``RUN_SECONDS``
    and fails the test with the reproducer instead of hanging the suite.
    """
    stdout_bytes, stderr_bytes = io.BytesIO(), io.BytesIO()
    fake_stdin = io.TextIOWrapper(io.BytesIO(stdin), encoding=encoding, errors="surrogateescape")
    fake_stdout = io.TextIOWrapper(stdout_bytes, encoding=encoding, errors="strict",
                                   write_through=True)
    fake_stderr = io.TextIOWrapper(stderr_bytes, encoding=encoding, errors="backslashreplace",
                                   write_through=True)
    saved_streams = sys.argv, sys.stdin, sys.stdout, sys.stderr
    saved_sigint = signal.getsignal(signal.SIGINT)  # main() installs its own Ctrl-C handler
    saved_alarm = signal.signal(signal.SIGALRM, _on_alarm)
    saved_fd1 = os.dup(1)  # a closed-pipe path would point file descriptor 1 at /dev/null
    sys.argv = ["gradcalc", *args]
    sys.stdin, sys.stdout, sys.stderr = fake_stdin, fake_stdout, fake_stderr
    code: int | None = None
    timed_out = False
    started = time.perf_counter()
    try:
        with _environment(workdir or Path(tempfile.gettempdir())):
            signal.setitimer(signal.ITIMER_REAL, RUN_SECONDS)
            try:
                cli.main()
                code = 0
            except SystemExit as exc:
                # click and sys.exit: None is 0, an integer (or IntEnum) is the code, and
                # anything else (a message) is 1.
                code = (0 if exc.code is None else int(exc.code) if isinstance(exc.code, int)
                        else 1)
            except RunTimedOut:
                timed_out = True
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        seconds = time.perf_counter() - started
        signal.signal(signal.SIGALRM, saved_alarm)
        signal.signal(signal.SIGINT, saved_sigint)
        os.dup2(saved_fd1, 1)
        os.close(saved_fd1)
        with contextlib.suppress(ValueError):
            fake_stdout.flush()
            fake_stderr.flush()
        sys.argv, sys.stdin, sys.stdout, sys.stderr = saved_streams
    run = Run(tuple(args), stdin, -1 if code is None else code,
              stdout_bytes.getvalue().decode(encoding, "replace"),
              stderr_bytes.getvalue().decode(encoding, "replace"), seconds, encoding)
    if timed_out:
        raise AssertionError(f"run stopped by the {RUN_SECONDS:.0f} s watchdog (a hang?):\n"
                             f"{run.context()}")
    return run


# --- what every run must satisfy -------------------------------------------------------------


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON (the README: non-finite numbers are strings)")


def strict_json(text: str) -> object:
    """``json.loads`` that also refuses ``NaN`` and ``Infinity``, which are not JSON."""
    return json.loads(text, parse_constant=_reject_constant)


def assert_sane(run: Run, allowed: set[int] = EXIT_CODES) -> None:
    """No traceback, no internal error, a documented exit code, within the time bound, and
    something said whenever the run fails."""
    context = run.context()
    assert run.code != EXIT_INTERNAL, f"internal error (exit 70):\n{context}"
    # The exact texts (a program may contain the words, and errors quote the program).
    assert TRACEBACK not in run.stderr and TRACEBACK not in run.stdout, context
    assert "gradcalc: internal error" not in run.stderr, context
    assert run.code in allowed, f"undocumented exit code {run.code}:\n{context}"
    assert run.seconds < RUN_SECONDS, f"run over {RUN_SECONDS:.0f} s:\n{context}"
    if run.code == 2:
        assert "error" in run.stderr, f"exit 2 without an error message:\n{context}"
    if run.code == 1:
        assert run.stdout or run.stderr, f"exit 1 without a word:\n{context}"


def assert_json_output(run: Run) -> None:
    """``--format json``: one valid JSON object whenever there is output; exit 0 has one."""
    if run.code == 0:
        assert run.stdout.strip(), f"exit 0 with --format json but no output:\n{run.context()}"
    if run.code in (0, 1) and run.stdout:
        try:
            data = strict_json(run.stdout)
        except ValueError as exc:
            raise AssertionError(f"invalid JSON ({exc}):\n{run.context()}") from None
        assert isinstance(data, dict), run.context()
        assert run.stdout.endswith("\n") and run.stdout.count("\n") == 1, run.context()
        # Every view's object holds its results (results, Hessian, Jacobian, checks, story)
        # and its warnings as objects with a kind and a message.
        assert data.keys() & {"gradients", "hessian", "jacobian", "check", "steps"}, \
            run.context()
        warnings = data.get("warnings", [])
        assert isinstance(warnings, list), run.context()
        assert all({"kind", "message"} <= w.keys() for w in warnings), run.context()


def _balanced(label: str) -> bool:
    depth = 0
    for char in label:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def assert_explain_labels(run: Run) -> None:
    """``--explain --format json``: every node is named by its name or by its expression in
    parentheses (``(B+1)``), a label with balanced parentheses that a reader can match."""
    data = strict_json(run.stdout)
    assert isinstance(data, dict), run.context()
    labels = [count["node"] for count in data["counts"]]
    labels += [consumer for count in data["counts"] for consumer in count["consumers"]]
    labels += [step["node"] for step in data["steps"]]
    bad = sorted({label for label in labels if not _balanced(label)})
    assert not bad, f"--explain labels with unbalanced parentheses {bad[:5]}:\n{run.context()}"


def batch_problem_lines(content: bytes, max_size: int | None) -> list[int]:
    """The line numbers of the problems in a batch input as the README counts them: every line
    that is not blank and not a ``#`` comment. A line that is not UTF-8 is a problem too, with
    its own error, and so is a line over ``--max-size`` bytes, which is not read at all."""
    numbers = []
    for number, raw in enumerate(content.split(b"\n"), 1):
        if max_size is not None and len(raw.rstrip(b"\r")) > max_size:
            numbers.append(number)
            continue
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            text = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            numbers.append(number)
            continue
        if text and not text.startswith("#"):
            numbers.append(number)
    return numbers


def assert_batch_output(run: Run, fmt: str, content: bytes, fail_fast: bool,
                        max_size: int | None = None) -> None:
    """A batch run's results, whatever the exit code: each valid in its format, in input
    order and numbered with the problem's line; one per problem when the batch ran to the
    end (exit 0 or 1 without --fail-fast), else the first ones (--fail-fast after a failure,
    exit 2 after an input that stops the batch); with jsonl, exit 1 exactly when a problem
    failed."""
    context = run.context()
    expected = batch_problem_lines(content, max_size)
    lines = run.stdout.split("\n")
    assert lines.pop() == "", f"batch output does not end with a newline:\n{context}"
    if fmt == "jsonl":
        results = []
        for line in lines:
            try:
                results.append(strict_json(line))
            except ValueError as exc:
                raise AssertionError(f"invalid JSON line ({exc}): {line[:300]!r}\n{context}"
                                     ) from None
        assert all(isinstance(r, dict) and {"line", "output", "gradients", "error"} <= r.keys()
                   for r in results), context
        numbers = [r["line"] for r in results]
        failed = [r for r in results if r["error"] is not None]
        if run.code in (0, 1):
            assert bool(failed) == (run.code == 1), f"exit code and errors disagree:\n{context}"
    elif fmt in ("csv", "tsv"):
        rows = list(csv.reader(io.StringIO(run.stdout, newline=""),
                               delimiter="," if fmt == "csv" else "\t"))
        if not rows:
            assert not expected or run.code not in (0, 1), f"no {fmt} header:\n{context}"
            return
        header, *body = rows
        assert header[:3] == ["line", "output", "value"], context
        assert header[-2:] == ["other", "error"], context
        assert all(len(row) == len(header) for row in body), \
            f"{fmt} rows and header differ in length:\n{context}"
        numbers = [int(row[0]) for row in body]
    elif fmt == "plain":
        assert all(re.match(r"[0-9]+ ", line) for line in lines), \
            f"a plain batch line without its line number (one line per problem):\n{context}"
        numbers = [int(line.split(" ", 1)[0]) for line in lines]
    else:
        return
    if run.code not in (0, 1) or (fail_fast and run.code == 1):
        assert numbers == expected[:len(numbers)], f"results out of order:\n{context}"
    else:
        assert numbers == expected, \
            f"results for lines {numbers[:20]}, problems on lines {expected[:20]}:\n{context}"


def test_the_checks_catch_an_internal_error_a_hang_and_bad_json(
        workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The harness itself: an exception inside gradcalc (exit 70), a hang (the watchdog) and
    output that is not JSON all fail, so a green corpus means something."""
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(cli, "gradients", broken)
    crashed = run_in_process(["OUT = A*2", "--at", "A=1"], workdir=workdir)
    assert crashed.code == EXIT_INTERNAL
    with pytest.raises(AssertionError, match="internal error"):
        assert_sane(crashed)

    def hanging(*args: object, **kwargs: object) -> None:
        while True:
            time.sleep(0.01)

    monkeypatch.setattr(cli, "gradients", hanging)
    monkeypatch.setattr(sys.modules[__name__], "RUN_SECONDS", 0.2)
    with pytest.raises(AssertionError, match="watchdog"):
        run_in_process(["OUT = A*2", "--at", "A=1"], workdir=workdir)
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)  # the alarm is off again

    not_json = Run(("OUT = A", "--format", "json"), b"", 0, '{"gradients": NaN}\n', "", 0.0)
    with pytest.raises(AssertionError, match="invalid JSON"):
        assert_json_output(not_json)


# --- the seeds -------------------------------------------------------------------------------


def _readme_programs() -> list[str]:
    readme = (ROOT / "README.md").read_text("utf-8")
    found = re.findall(r'gradcalc "([^"]+)"', readme) + re.findall(r"gradcalc '([^']+)'", readme)
    return sorted({p for p in found if "$" not in p and not p.startswith("-")})


_TWO_ARGUMENTS = {"max": "max(A, B)", "min": "min(A, B)", "atan2": "atan2(Y, X)",
                  "pow": "pow(A, B)", "heaviside": "heaviside(A, 0.5)"}
FUNCTION_PROGRAMS = [f"OUT = {_TWO_ARGUMENTS.get(name, f'{name}(A)')} * A + B"
                     for name in sorted(FUNCTIONS)]

SYNTAX_PROGRAMS = [
    "A = 2\nB = A*3\nOUT = (B+1)*(B+2)\n",
    "A = 2; B = A*3; OUT = (B+1)*(B+2)",
    "# a comment\nX = 1e-3   # trailing comment\n\nOUT = -X^2 + 2^-1 + 2^3^2\n",
    "OUT = A ** 2 ** B - -A + +B",
    "OUT = A × B ÷ C − D · E",
    "OUT = .5*A + 2.5E+4*B - 2.*C",
    "OUT = A + \\\n    B*2",
    "sin(A)*A + cos(B)",
    "U = A*B; V = A+B",
    "OUT = pi*A + e^B",
    "learning_rate = 0.1; w_1 = 2; OUT = learning_rate*w_1^2",
    "OUT = B*2; B = A*3",
    "A = -0.5; OUT = A/3",
    "2+3",
    "OUT = sqrt(A^2)",
    "OUT = acos(B/B)",
    "OUT = log(A - 3) + 1/(A - 2)",
    "OUT = relu(A) + abs(B) + max(A, B) + sign(A) + heaviside(B, 1)",
    "X1 = sin(X0) + cos(X0); X2 = sin(X1) + cos(X1); X3 = sin(X2) + cos(X2)",
    "W = 0.5; B = -1; OUT = sigmoid(W*X + B)",
    "OUT = A ^ 0.5 + pow(3, 10000000) + 1e-4000",
    "OUT = exp(A)*exp(A)*exp(A) + softplus(A*1000)",
    "OUT = (A + B)^8",
    "OUT = A/0",
    "",
]

HOSTILE_PROGRAMS = [
    "A = B; B = A",
    "X = X",
    "A = 1; A = 2; OUT = A",
    "pi = 3; OUT = pi*A",
    "sin = 2; OUT = sin(A)",
    "OUT = foo(A)",
    "OUT = max(A)",
    "OUT = sin(A, B)",
    "OUT = (A+ * 2",
    "OUT = " + "(" * 3000 + "A" + ")" * 3000,
    "OUT = " + "-" * 1000 + "A",
    "OUT = " + "sin(" * 500 + "A" + ")" * 500,
    "OUT = " + "+".join(["A"] * 2000),
    "OUT = A*" + "9" * 400,
    "OUT = 1e309*A",
    ("N" * 5000) + " = A*2; OUT = " + ("N" * 5000) + " + 1",
    "OUT = A\x00*2",
    "\ufeffOUT = A*2",
    "OUT = A\r\nB = OUT*2",
    ";;;;\n\n;",
    "#",
    "=",
    "OUT =",
]


def _example_programs() -> list[str]:
    return [path.read_text("utf-8") for path in sorted((ROOT / "examples").glob("*.gc"))]


SEEDS = [*_example_programs(), *_readme_programs(), *FUNCTION_PROGRAMS, *SYNTAX_PROGRAMS,
         *HOSTILE_PROGRAMS]


def test_the_seeds_cover_every_function_and_the_examples() -> None:
    text = "\n".join(SEEDS)
    assert all(f"{name}(" in text for name in FUNCTIONS)
    assert all(name in text for name in CONSTANTS)
    assert len(_example_programs()) >= 5 and len(_readme_programs()) >= 5


# --- mutations -------------------------------------------------------------------------------

NUMBERS = ["0", "1", "2.5", ".5", "1e-3", "2.5E+4", "1e309", "-1e309", "1e-4000", "9" * 400,
           "1" + "0" * 400, "0." + "0" * 400 + "1", "1e99999999999", "5e-324",
           "1.7976931348623157e308", "00", "1.", "1e", "1e+", "0x10", "1_000", "١٢"]
NAMES = ["A", "B", "X", "OUT", "OUT2", "X0", "_", "a_1", "N" * 5000, "é", "ﬁ", "\uff21", "Ⅻ",
         *sorted(CONSTANTS), *sorted(FUNCTIONS), "foo", "Sin", "nan", "inf"]
OPERATORS = ["+", "-", "*", "/", "^", "**", "×", "·", "÷", "−", "=", ";", ",", "(", ")", "()",
             "(,)", "#", "\\\n", "\\", "\n", "--", "+-", "^-", ".", "e", "**-", "==", "'", '"']
ODD_CHARS = ["\x00", "\x07", "\x1b", "\t", "\r", "\x0b", "\x0c", "\x1c", "\x85", "\u2028",
             "\u200b", "\ufeff", "\udcff", "²", "√", "∂", "😀", "\u0301", "\u202e", "\uff0a", "\\"]
TOKENS = [*NUMBERS, *NAMES, *OPERATORS, *ODD_CHARS]
STATEMENTS = ["A = B; B = A", "X = X", "A = 1", "A = 2", "OUT = 1", "OUT2 = OUT*2", "pi = 1",
              "OUT = A", "B = A*3", "C = D; D = E; E = C", "Z = " + "+".join(["A"] * 2000),
              "Q = " + "(" * 200 + "A" + ")" * 200, ("L" * 3000) + " = 1"]

_TOKEN = re.compile(r"[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+|\w+|\*\*|\s+|.", re.S)


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def _position(draw: st.DrawFn, text: str) -> int:
    return draw(st.integers(0, len(text)))


def delete_chars(draw: st.DrawFn, text: str) -> str:
    start = _position(draw, text)
    return text[:start] + text[start + draw(st.integers(1, 8)):]


def insert_chars(draw: st.DrawFn, text: str) -> str:
    start = _position(draw, text)
    inserted = "".join(draw(st.lists(st.sampled_from(OPERATORS + ODD_CHARS), min_size=1,
                                     max_size=4)))
    return text[:start] + inserted + text[start:]


def insert_text(draw: st.DrawFn, text: str) -> str:
    """Arbitrary unicode text, control characters included."""
    start = _position(draw, text)
    return text[:start] + draw(st.text(max_size=6)) + text[start:]


def replace_char(draw: st.DrawFn, text: str) -> str:
    if not text:
        return text
    start = draw(st.integers(0, len(text) - 1))
    return text[:start] + draw(st.sampled_from(TOKENS)) + text[start + 1:]


def duplicate_slice(draw: st.DrawFn, text: str) -> str:
    start = _position(draw, text)
    end = min(len(text), start + draw(st.integers(1, 40)))
    return text[:end] + text[start:end] * draw(st.integers(1, 3)) + text[end:]


def delete_token(draw: st.DrawFn, text: str) -> str:
    tokens = _tokens(text)
    if tokens:
        del tokens[draw(st.integers(0, len(tokens) - 1))]
    return "".join(tokens)


def insert_token(draw: st.DrawFn, text: str) -> str:
    tokens = _tokens(text)
    tokens.insert(draw(st.integers(0, len(tokens))), draw(st.sampled_from(TOKENS)))
    return "".join(tokens)


def replace_token(draw: st.DrawFn, text: str) -> str:
    tokens = _tokens(text)
    if tokens:
        tokens[draw(st.integers(0, len(tokens) - 1))] = draw(st.sampled_from(TOKENS))
    return "".join(tokens)


def duplicate_token(draw: st.DrawFn, text: str) -> str:
    tokens = _tokens(text)
    if tokens:
        index = draw(st.integers(0, len(tokens) - 1))
        tokens.insert(index, tokens[index] * draw(st.integers(1, 3)))
    return "".join(tokens)


def swap_tokens(draw: st.DrawFn, text: str) -> str:
    tokens = _tokens(text)
    if len(tokens) >= 2:
        i = draw(st.integers(0, len(tokens) - 1))
        j = draw(st.integers(0, len(tokens) - 1))
        tokens[i], tokens[j] = tokens[j], tokens[i]
    return "".join(tokens)


def rename_everywhere(draw: st.DrawFn, text: str) -> str:
    """Every use of one name becomes another: very long names, constants, functions, repeats."""
    names = sorted(set(re.findall(r"[A-Za-z_]\w*", text)))
    if not names:
        return text
    old = draw(st.sampled_from(names))
    return re.sub(rf"\b{re.escape(old)}\b", draw(st.sampled_from(NAMES)), text)


def nest_deeply(draw: st.DrawFn, text: str) -> str:
    """Thousands of parentheses, balanced or not, or a thousand nested operations, around the
    text or a part of it. (Nested operations make graph nodes, and the drawings of a chain
    of thousands take seconds: a thousand keeps every run well inside the watchdog.)"""
    opening, closing = draw(st.sampled_from([("(", ")"), ("(", ""), ("", ")"), ("sin(", ")"),
                                             ("-", ""), ("2^", ""), ("abs(", ")")]))
    depth = draw(st.sampled_from([2, 50, 400, 3000 if opening in ("(", "") else 1000]))
    if draw(st.booleans()) and "=" in text:  # around the last statement's expression
        head, _, tail = text.rpartition("=")
        return f"{head}= {opening * depth}{tail}{closing * depth}"
    return opening * depth + text + closing * depth


_NUMBER = re.compile(r"(?<![\w.])(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def replace_number(draw: st.DrawFn, text: str) -> str:
    """One number becomes another, mostly still a valid one: 0, huge, tiny, subnormal."""
    found = list(_NUMBER.finditer(text))
    if not found:
        return text
    match = draw(st.sampled_from(found))
    return text[:match.start()] + draw(st.sampled_from(NUMBERS)) + text[match.end():]


def replace_function(draw: st.DrawFn, text: str) -> str:
    """One function becomes another (of the same or another arity)."""
    found = [m for m in re.finditer(r"\b[a-z][a-z0-9]*(?=\()", text)]
    if not found:
        return text
    match = draw(st.sampled_from(found))
    return text[:match.start()] + draw(st.sampled_from(sorted(FUNCTIONS))) + text[match.end():]


def replace_operator(draw: st.DrawFn, text: str) -> str:
    found = [m for m in re.finditer(r"\*\*|[-+*/^×·÷−]", text)]
    if not found:
        return text
    match = draw(st.sampled_from(found))
    operator = draw(st.sampled_from(["+", "-", "*", "/", "^", "**", "×", "·", "÷", "−"]))
    return text[:match.start()] + operator + text[match.end():]


def add_statement(draw: st.DrawFn, text: str) -> str:
    statement = draw(st.sampled_from(STATEMENTS))
    separator = draw(st.sampled_from([";", "\n", "; ", "\r\n", " "]))
    return text + separator + statement if draw(st.booleans()) else statement + separator + text


def replace_all(draw: st.DrawFn, text: str) -> str:
    return draw(st.sampled_from(["", " ", "\n", "#", ";", "\\", "=", "OUT =", "()", "\x00",
                                 "\ufeff", "-", "--", "- A", "A", "1e309", "\t\n \r"]))


MUTATIONS = [delete_chars, insert_chars, insert_text, replace_char, duplicate_slice,
             delete_token, insert_token, replace_token, duplicate_token, swap_tokens,
             rename_everywhere, nest_deeply, add_statement, replace_all, replace_number,
             replace_function, replace_operator]

# --- generated programs: valid ones, so the engines, views and formats are reached too ------

_UNARY = sorted(name for name in FUNCTIONS if name not in _TWO_ARGUMENTS)
_BINARY_OPERATORS = ["+", "-", "*", "/", "^", "**", "×", "·", "÷", "−"]
_LEAVES = ["A", "B", "C", "X0", "pi", "e", "0", "1", "2", "0.5", "1e-3", "3", "1e300", "-1"]


@functools.cache  # a strategy is built (and validated) once per tuple of names
def _expressions(names: tuple[str, ...]) -> st.SearchStrategy[str]:
    leaves = st.sampled_from([*_LEAVES, *names])

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        operation = st.tuples(inner, st.sampled_from(_BINARY_OPERATORS), inner, st.booleans())
        return st.one_of(
            operation.map(lambda t: f"({t[0]} {t[1]} {t[2]})" if t[3] else f"{t[0]}{t[1]}{t[2]}"),
            st.tuples(st.sampled_from(_UNARY), inner).map(lambda t: f"{t[0]}({t[1]})"),
            st.tuples(st.sampled_from(sorted(_TWO_ARGUMENTS)), inner, inner).map(
                lambda t: f"{t[0]}({t[1]}, {t[2]})"),
            inner.map(lambda x: f"-{x}"),
        )

    return st.recursive(leaves, extend, max_leaves=10)


@st.composite
def generated_programs(draw: st.DrawFn) -> str:
    """Valid programs: statements over a few names, each using the ones before it (chains,
    shared intermediates), sometimes a bare last expression; every function and operator."""
    names = draw(st.lists(st.sampled_from(["B", "C", "D", "U", "V", "OUT"]), min_size=1,
                          max_size=4, unique=True))
    statements = [f"{name} = {draw(_expressions(tuple(names[:i])))}"
                  for i, name in enumerate(names)]
    if draw(st.integers(0, 5)) == 0:
        statements.append(draw(_expressions(tuple(names))))
    return draw(st.sampled_from(["; ", "\n", ";"])).join(statements)


@st.composite
def mutated_programs(draw: st.DrawFn) -> str:
    """A seed or a generated program with up to four mutations (mostly one or none, so that
    many programs still run deep: none at all means the seed or valid program itself)."""
    text = draw(st.one_of(st.sampled_from(SEEDS), generated_programs()))
    count = draw(st.sampled_from([0, 0, 1, 1, 1, 2, 2, 3, 4]))
    for _ in range(count):
        text = draw(st.sampled_from(MUTATIONS))(draw, text)
    return text


# --- running one program ---------------------------------------------------------------------

# Extra options for a mutated program, mostly the default results views (json weighted up:
# its validity is the point), some views. Each tuple is complete: no option lacks its value.
PROGRAM_MODES: list[tuple[str, ...]] = [
    (), (), (), ("--format", "json"), ("--format", "json"), ("--format", "json"),
    ("-F", "json", "--stats"), ("--format", "json", "--symbolic"), ("--value",),
    ("--symbolic",), ("--stats",), ("--format", "table"), ("--format", "table", "--stats"),
    ("--hessian",), ("--hessian", "--format", "json"), ("--check",),
    ("--check", "--format", "json"), ("--explain",), ("--explain", "--ascii"),
    ("--explain", "--format", "json"), ("--graph=tree",), ("--graph=table",),
    ("--graph=full",), ("--graph=auto", "--format", "json"), ("--graph=compact", "--ascii"),
    ("--dot",), ("--mermaid",), ("--batch", "-"), ("--batch", "-", "--format", "csv"),
    ("--batch", "-", "--format", "tsv"), ("--batch", "-", "--format", "plain"),
    ("--batch", "-", "--format", "table"), ("--max-size", "64"),
    ("--batch", "-", "--max-size", "64"),
]
# The --max-size values the corpus uses that are valid sizes, in bytes.
SIZES = {"20": 20, "64": 64, "1K": 1 << 10, "1M": 1 << 20, "1G": 1 << 30}
VALUES = ["2", "-1", "0", "0.5", "1e-3", "-0", "1e308", "5e-324", "3", "-2.5"]
_NOT_INPUTS = set(FUNCTIONS) | set(CONSTANTS)


def _value_of(options: Sequence[str], *flags: str) -> str | None:
    """The value the options give one of ``flags`` (click: the last one given wins)."""
    found = None
    for flag, value in itertools.pairwise(options):
        if flag in flags:
            found = value
    return found


def _format_of(options: Sequence[str]) -> str | None:
    fmt = _value_of(options, "--format", "-F")
    return None if fmt is None else fmt.lower()


@dataclass(frozen=True, slots=True)
class Invocation:
    """One command line to run, with what it reads and what the checks need to know."""

    args: tuple[str, ...]
    stdin: bytes = b""
    batch_input: bytes | None = None  # the content a --batch run reads
    fail_fast: bool = False
    max_size: int | None = None  # the --max-size in force, where the corpus can reach it
    files: tuple[tuple[str, bytes], ...] = ()  # written into the working folder first
    encoding: str = "utf-8"  # of the standard streams (PYTHONIOENCODING)


@st.composite
def name_options(draw: st.DrawFn, text: str) -> list[str]:
    """``--at`` values, ``--wrt`` and ``--of`` names for a program, from the names in it:
    values mostly for the free inputs (names never assigned), sometimes for any name."""
    names = sorted({n for n in re.findall(r"\b[A-Za-z_]\w{0,30}\b", text)} - _NOT_INPUTS)
    assigned = set(re.findall(r"(?m)(?:^|;)\s*([A-Za-z_]\w*)\s*=", text))
    free = [name for name in names if name not in assigned]
    pool = names if draw(st.integers(0, 4)) == 0 else free
    given_names = draw(st.lists(st.sampled_from(pool), max_size=3, unique=True)) if pool else []
    at = [f"{name}={draw(st.sampled_from(VALUES))}" for name in given_names]
    options = ["--at", ",".join(at)] if at else []
    if names and draw(st.integers(0, 3)) == 0:
        options += ["--wrt", ",".join(draw(st.lists(st.sampled_from(names), min_size=1,
                                                     max_size=3)))]
    if names and draw(st.integers(0, 4)) == 0:
        options += [token for name in draw(st.lists(st.sampled_from(names), min_size=1,
                                                    max_size=3))
                    for token in ("--of", name)]
    return options


# The encodings of the standard streams: mostly UTF-8, sometimes what PYTHONIOENCODING, a
# Windows console redirected to a file or a legacy locale gives.
ENCODINGS = ["utf-8"] * 9 + ["ascii", "latin-1", "cp1252"]


@st.composite
def program_invocations(draw: st.DrawFn) -> Invocation:
    """A mutated program, delivered as argument text, after ``--``, on standard input (with
    ``-`` or from a pipeline), as a file or as a batch, with one mode, values for some of its
    names, and an encoding of the standard streams."""
    text = draw(mutated_programs())
    mode = draw(st.sampled_from(PROGRAM_MODES))
    options = (*mode, *draw(name_options(text)))
    data = text.encode("utf-8", "surrogateescape")
    encoding = draw(st.sampled_from(ENCODINGS))
    if "--batch" in mode:
        return Invocation(options, stdin=data, batch_input=data, encoding=encoding,
                          max_size=SIZES.get(_value_of(mode, "--max-size") or ""))
    # A real command line cannot carry NUL: such programs come through stdin or a file.
    deliveries = ["dashdash", "stdin", "pipeline", "file"] + ([] if "\x00" in text else ["argv"])
    delivery = draw(st.sampled_from(deliveries))
    if delivery == "argv" and not text.startswith("-"):
        return Invocation((text, *options), encoding=encoding)
    if delivery in ("argv", "dashdash"):
        return Invocation((*options, "--", text), encoding=encoding)
    if delivery == "stdin":
        return Invocation(("-", *options), stdin=data, encoding=encoding)
    if delivery == "pipeline":
        return Invocation(options, stdin=data, encoding=encoding)
    return Invocation(("mutated.gc", *options), files=(("mutated.gc", data),),
                      encoding=encoding)


def check_invocation(invocation: Invocation, workdir: Path) -> Run:
    """Run the invocation in this process and check everything the corpus promises."""
    for name, content in invocation.files:
        (workdir / name).write_bytes(content)
    run = run_in_process(invocation.args, invocation.stdin, workdir, invocation.encoding)
    options = invocation.args[:invocation.args.index("--")] if "--" in invocation.args \
        else invocation.args
    # Where the output encoding cannot take a character, "cannot write the results" (74) is
    # a fair answer too; exit 70 never is.
    assert_sane(run, EXIT_CODES if run.encoding == "utf-8" else {*EXIT_CODES, 74})
    informational = {"--help", "-h", "--version"} & set(options)
    fmt = _format_of(options)
    if run.code == 2 and "--batch" not in options:
        # A bad invocation or a bad program gives no results (a batch may have answered the
        # lines before a problem that stops it).
        assert run.stdout == "", f"exit 2 but results on stdout:\n{run.context()}"
    if invocation.batch_input is not None and not informational:
        assert_batch_output(run, fmt or "jsonl", invocation.batch_input, invocation.fail_fast,
                            invocation.max_size)
    elif fmt == "json" and not informational:
        assert_json_output(run)
        if run.code == 0 and "--explain" in options:
            assert_explain_labels(run)
    elif run.code == 0 and not informational:
        # Every single-program view prints something on success (plain prints the value when
        # there is nothing to differentiate).
        assert run.stdout.strip(), f"exit 0 without output:\n{run.context()}"
    return run


# --- what the corpus found, pinned --------------------------------------------------------
# Each case is a minimal reproducer of a bug the corpus found (shrunk by Hypothesis, or cut
# down by hand), kept as a named test so that it stays visible, and fixed, whatever the
# generated corpus draws next. They fail until gradcalc is fixed: fix gradcalc, not them.

FOUND: dict[str, Invocation] = {
    # The Jacobian view (several --of) of outputs that depend on no input prints nothing at
    # all, on stdout or stderr, and exits 0; --hessian and --check answer such a program with
    # its value and a "nothing to differentiate" note. (The table format prints an empty
    # matrix whose title is squeezed to three letters a line: "jac", "obi", "an".)
    "jacobian-of-constants-prints-nothing": Invocation(
        ("--of", "U", "--of", "V", "--", "U = pi*2; V = e")),
    "jacobian-of-one-constant-twice-prints-nothing": Invocation(
        ("-", "--of", "B", "--of", "B", "--format", "plain"), stdin=b"B = C; C = pi+pi"),
    # Standard output in an encoding without "∂", "─" or "é" (PYTHONIOENCODING=ascii, a
    # Windows console code page, a Latin-1 locale): the table format, every --graph form,
    # --explain, --dot, --mermaid and --graph with JSON (written with ensure_ascii=False)
    # end in exit 70, "internal error (UnicodeEncodeError: ...)", and so does a batch whose
    # results quote a character of the input.
    "table-on-an-ascii-stdout": Invocation(
        ("OUT = A*2", "--at", "A=1", "--format", "table"), encoding="ascii"),
    "graph-tree-on-a-cp1252-stdout": Invocation(
        ("OUT = A*2", "--at", "A=1", "--graph=tree"), encoding="cp1252"),
    "explain-on-a-latin-1-stdout": Invocation(
        ("OUT = A*2", "--at", "A=1", "--explain"), encoding="latin-1"),
    "graph-json-on-an-ascii-stdout": Invocation(
        ("OUT = A*2", "--at", "A=1", "--graph", "--format", "json"), encoding="ascii"),
    "batch-error-quoting-input-on-an-ascii-stdout": Invocation(
        ("--batch", "-"), stdin="OUT = é\n".encode(), batch_input="OUT = é\n".encode(),
        encoding="ascii"),
    # --explain names an unnamed function call "(cos(X0)" (the closing parenthesis of the
    # call is stripped, then the label is wrapped), in the text and in JSON.
    "explain-labels-of-calls-are-unbalanced": Invocation(
        ("--explain", "--format", "json", "X0 = 0.5; X1 = sin(X0) + cos(X0)")),
}


@pytest.mark.parametrize("invocation", FOUND.values(), ids=FOUND.keys())
def test_what_the_corpus_found(workdir: Path, invocation: Invocation) -> None:
    check_invocation(invocation, workdir)


def _chain(length: int) -> bytes:
    """``X0 = 0.5`` then ``Xi = sin(X<i-1>)``: a valid program, 20 bytes a statement."""
    return ("X0 = 0.5\n" + "".join(f"X{i + 1} = sin(X{i})\n" for i in range(length))).encode()


def test_what_the_corpus_found_a_deep_tree_is_refused_at_its_bound(workdir: Path) -> None:
    """--graph=tree indents every level of a chain one step further, so its text grows with
    the square of the chain's length: a 16,000-statement chain (``X0 = 0.5`` then
    ``Xi = sin(X<i-1>)``, 313 KB) took 74 s, 22 GB of memory and wrote 3 GB. The listing is
    now bounded (``listing.TREE_LIMIT`` characters): a forced tree past it is a clear usage
    error at once, and ``auto`` goes on to the layered table."""
    chain = _chain(16_000)
    forced = check_invocation(Invocation(("-", "--graph=tree"), stdin=chain), workdir)
    assert forced.code == 2 and "the tree listing is too large" in forced.stderr, forced.context()
    auto = check_invocation(Invocation(("-", "--graph", "--format", "json"), stdin=chain),
                            workdir)
    assert auto.code == 0, auto.context()
    assert json.loads(auto.stdout)["graph"].startswith("layer  node"), auto.context()


def with_found_examples(test: Callable[..., None]) -> Callable[..., None]:
    """The found cases as explicit examples of the corpus test too (the project's rule for
    what an exploring run finds): ``ci`` tries them first, every time."""
    for invocation in FOUND.values():
        test = example(invocation=invocation)(test)
    return test


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile-corpus")


@given(invocation=program_invocations())
@with_found_examples
@property_settings(2000)
def test_mutated_programs(workdir: Path, invocation: Invocation) -> None:
    """2,000 mutated programs (under ``ci``): a documented exit code, no traceback, no exit 70,
    no run over 10 s, valid JSON in every JSON format, one batch result per problem."""
    check_invocation(invocation, workdir)


AGREEING_VIEWS: list[tuple[str, ...]] = [
    (), (), ("--stats",), ("--symbolic",), ("--hessian",), ("--check",), ("--explain",),
    ("--graph=tree",), ("--graph=table",),
]


@st.composite
def agreeing_cases(draw: st.DrawFn) -> tuple[str, tuple[str, ...]]:
    """A mutated program and the options of one view, to run in every format."""
    text = draw(mutated_programs())
    return text, (*draw(st.sampled_from(AGREEING_VIEWS)), *draw(name_options(text)))


@given(case=agreeing_cases())
@example(case=("B = C; C = pi+pi", ("--of", "B", "--of", "B")))  # see FOUND
@example(case=("X0 = 0.5; X1 = sin(X0) + cos(X0)", ("--explain",)))  # see FOUND
@property_settings(300)
def test_the_formats_agree(workdir: Path, case: tuple[str, tuple[str, ...]]) -> None:
    """One program and view in ``plain``, ``json`` and ``table``: the same exit code and the
    same diagnostics (the format changes how results look, never whether they exist), and
    on success the same names in plain and JSON."""
    text, options = case
    stdin = text.encode("utf-8", "surrogateescape")
    runs = {fmt: check_invocation(Invocation(("-", *options, "--format", fmt), stdin=stdin),
                                  workdir)
            for fmt in ("plain", "json", "table")}
    plain, as_json, table = runs["plain"], runs["json"], runs["table"]
    assert plain.code == as_json.code == table.code, \
        f"the formats disagree on the exit code:\n{plain.context()}\n{as_json.context()}"
    assert plain.stderr == as_json.stderr == table.stderr, \
        f"the formats disagree on the diagnostics:\n{plain.context()}\n{as_json.context()}"
    data = strict_json(as_json.stdout) if as_json.code == 0 else None
    views = ("--stats", "--hessian", "--check", "--explain", "--graph")
    default_view = not any(option.startswith(views) for option in options)
    if default_view and isinstance(data, dict) and "gradients" in data:
        plain_names = {line.split(" ", 1)[0] for line in plain.stdout.splitlines()
                       if not line.startswith("where: ")}
        # (JSON groups an array's elements as a list under its name; plain names each)
        assert set(flat(data["gradients"])) <= plain_names, \
            f"plain and JSON name different gradients:\n{plain.context()}\n{as_json.context()}"


# --- flag combinations -----------------------------------------------------------------------

FLAG_PROGRAMS = [
    "B = A*3; OUT = (B+1)*(B+2)", "U = A*B; V = A+B", "OUT = sin(A)*B", "OUT = log(A)",
    "OUT = relu(A) + abs(B) + max(A, B)", "2+3", "OUT = A/B", "OUT = sqrt(A)*B",
    "OUT = A^B", "OUT = (A+ * 2", "-A*2", "A = B; B = A", "OUT = exp(A*1000)",
    "X1 = sin(X0) + cos(X0); X2 = sin(X1) + cos(X1)", "OUT = foo(A)", "OUT = 1e309",
    "program.gc", "missing.gc", "batch.txt", ".", "",
]
BATCH_TEXT = (b"# one problem per line\n"
              b"A = 2; B = A*3; OUT = (B+1)*(B+2)\n"
              b"OUT = sin(X)*X\n"
              b"\n"
              b"OUT = log(A - 3)\n"
              b"OUT = (A+ * 2\n"
              b"OUT = sqrt(X^2 + Y^2)\r\n"
              b"A = B; B = A\n"
              b"OUT = A\x00*2\n"
              b"U = A*B; V = A+B\n"
              b"OUT = A\xff*2\n"  # not UTF-8
              b"\xef\xbb\xbfOUT = A*2")  # a byte order mark not on line 1, no last newline
BATCH_JSONL = b"\n".join([
    json.dumps({"program": "B = A*3; OUT = (B+1)*(B+2)", "at": {"A": 2}}).encode(),
    json.dumps({"program": "OUT = sin(X)*X", "at": {"X": 0.5}, "wrt": ["X"]}).encode(),
    json.dumps({"program": "U = A*B; V = A+B", "at": {"A": 2, "B": 3}, "of": "U"}).encode(),
    json.dumps({"program": "OUT = log(A)", "at": {"A": -1}}).encode(),
    json.dumps({"program": "OUT = A*2", "at": {"Q": 1}}).encode(),
    json.dumps({"program": "OUT = A*2", "at": {"A": "x"}, "wrt": "A", "of": 3}).encode(),
    json.dumps({"program": ["OUT = A"]}).encode(),
    b'{"program": "OUT = A*2", "at": {"A": 1e999}}',
    b'{"program": "OUT = A*2", "at": {"A": NaN}}',
    b'{"program": "OUT = A*2", "at": {"A": 1' + b"0" * 5000 + b"}}",
    b"[" * 3000,
    b"not json",
    b"[]",
    b"null",
    b"# a comment",
]) + b"\n"
FILES = {"program.gc": SYNTAX_PROGRAMS[0].encode(), "batch.txt": BATCH_TEXT,
         "batch.jsonl": BATCH_JSONL, "empty.txt": b""}

OPTIONS: list[tuple[str, ...]] = [
    ("--at", "A=2"), ("--at", "A=1,B=-0.5"), ("--at", "X=1e-3,Y=4"), ("--at", "A=0,B=0"),
    ("--at", "A=nan"), ("--at", "A=inf"), ("--at", "A=1e309"), ("--at", "A"), ("--at", "=2"),
    ("--at", ""), ("--at", "A=2,,B=1"), ("--at", "A=0x10"), ("--at", "A=٣"),
    ("--at", "Q=1"), ("--at", "A=1", "--at", "A=2"),
    ("--wrt", "A"), ("--wrt", "B,A"), ("--wrt", "Q"), ("--wrt", ""), ("--wrt", "OUT"),
    ("--of", "OUT"), ("--of", "U"), ("--of", "U", "--of", "V"), ("--of", "U,V"),
    ("--of", "Nope"), ("--of", ""),
    ("--symbolic",), ("--hessian",), ("--check",), ("--value",), ("--stats",),
    ("--format", "table"), ("--format", "plain"), ("--format", "json"), ("--format", "json"),
    ("--format", "json"), ("-F", "JSON"), ("--format", "jsonl"), ("--format", "csv"),
    ("--format", "tsv"), ("--format", "xml"),
    ("--graph",), ("--graph=auto",), ("--graph=full",), ("--graph=compact",),
    ("--graph=tree",), ("--graph=table",), ("--graph=bogus",), ("--graph", "tree"),
    ("--ascii",), ("--explain",), ("--dot",), ("--mermaid",),
    ("--batch", "-"), ("--batch", "batch.txt"), ("--batch", "batch.jsonl"),
    ("--batch", "empty.txt"), ("--batch", "missing.txt"), ("--batch", "."),
    ("--input", "jsonl"), ("--input", "text"), ("--input", "yaml"),
    ("--jobs", "1"), ("-j", "1"), ("--jobs", "0"), ("--jobs", "x"), ("--fail-fast",),
    ("--version",), ("--help",), ("-h",), ("--wtr", "A"), ("--bogus",), ("-x",),
    ("--format=json",), ("--at=A=3",),
    ("--max-size", "20"), ("--max-size", "1K"), ("--max-size", "1M"), ("--max-size", "1G"),
    ("--max-size", "0"), ("--max-size", "-5"), ("--max-size", "1.5M"), ("--max-size", "2G"),
    ("--max-size", "k"), ("--max-size", "9" * 30),
]
STDIN_CHOICES = [b"", BATCH_TEXT, BATCH_JSONL, b"OUT = A*2\n", b"OUT = A\xff*2", b"\x00"]


@st.composite
def flag_invocations(draw: st.DrawFn) -> Invocation:
    """Up to six option groups in any order, a program in one of its places, and stdin."""
    groups = draw(st.lists(st.sampled_from(OPTIONS), min_size=1, max_size=6))
    program = draw(st.one_of(st.sampled_from(FLAG_PROGRAMS), mutated_programs()))
    if "\x00" in program:  # a command line cannot carry NUL
        program = program.replace("\x00", "")
    placement = draw(st.sampled_from(["none", "first", "last", "middle", "dashdash", "stdin"]))
    options = [token for group in groups for token in group]
    if placement == "none":
        args = options
    elif placement == "dashdash" or program.startswith("-"):
        args = [*options, "--", program]
    elif placement == "stdin":
        args = ["-", *options]
    else:
        index = {"first": 0, "last": len(groups), "middle": len(groups) // 2}[placement]
        args = [token for group in (*groups[:index], (program,), *groups[index:])
                for token in group]
    stdin = (program.encode("utf-8", "surrogateescape") if placement == "stdin"
             else draw(st.sampled_from(STDIN_CHOICES)))
    parsed = args[:args.index("--")] if "--" in args else args
    source = _value_of(parsed, "--batch")
    batch_input = None if source is None else stdin if source == "-" else FILES.get(source)
    return Invocation(tuple(args), stdin, batch_input, "--fail-fast" in parsed,
                      SIZES.get(_value_of(parsed, "--max-size") or ""), tuple(FILES.items()))


@given(invocation=flag_invocations())
@with_found_examples
@property_settings(200)
def test_flag_combinations(workdir: Path, invocation: Invocation) -> None:
    """200 flag combinations (under ``ci``) drawn from the real option set, good and bad."""
    check_invocation(invocation, workdir)


# --- known hostile cases, pinned ----------------------------------------------------------


PINNED: list[Invocation] = [
    Invocation(("--at", "A=2", "--", "OUT = " + "(" * 3000 + "A" + ")" * 3000)),
    Invocation(("OUT = A\udcff*2", "--format", "json")),
    Invocation(("-", "--format", "json"), stdin=b"OUT = A\x00*2"),
    Invocation(("A = B; B = A", "--format", "json")),
    Invocation(("OUT = " + "9" * 400 + "*A", "--format", "json")),
    Invocation(("--batch", "-"), stdin=BATCH_TEXT, batch_input=BATCH_TEXT),
    Invocation(("--batch", "-", "--input", "jsonl"), stdin=BATCH_JSONL, batch_input=BATCH_JSONL),
    Invocation(("--batch", "-", "--format", "csv"), stdin=BATCH_TEXT, batch_input=BATCH_TEXT),
    Invocation(("--batch", "-", "--format", "plain"), stdin=BATCH_TEXT, batch_input=BATCH_TEXT),
    # Over the default size limit (1 MiB): refused at once, through stdin, a file and a batch.
    Invocation(("-", "--format", "json"), stdin=b"OUT = A*2" + b" " * (1 << 20)),
    Invocation(("big.gc", "--format", "json"),
               files=(("big.gc", b"# " + b"x" * (1 << 20) + b"\nOUT = A*2\n"),)),
    Invocation(("--batch", "-"), stdin=b"OUT = A*2\n" + b" " * (1 << 20) + b"A\nOUT = A*3\n",
               batch_input=b"OUT = A*2\n" + b" " * (1 << 20) + b"A\nOUT = A*3\n",
               max_size=1 << 20),
    # A binary batch input (a long line with NUL bytes) stops the batch after the lines
    # before it: those are answered, the rest is refused.
    Invocation(("--batch", "-", "--max-size", "1K"), stdin=b"OUT = A*2\n" + b"\0" * 5000),
]


@pytest.mark.parametrize("invocation", PINNED, ids=lambda inv: shlex.join(inv.args)[:40])
def test_pinned_hostile_cases(workdir: Path, invocation: Invocation) -> None:
    check_invocation(invocation, workdir)


# --- the real console script -----------------------------------------------------------------


def _subprocess_sample() -> list[Invocation]:
    """30 fixed cases: the hostile classes (NUL, bytes that are not UTF-8, deep nesting, huge
    numbers, cycles, bad options, batches, --help, --version), then every fifth seed."""
    picked = [Invocation((seed, "--format", "json")) for seed in SEEDS[::5]
              if "\x00" not in seed and not seed.startswith("-")]
    hostile = [
        Invocation(("OUT = A*2", "--at", "A=2")),
        Invocation(("--at", "A=2", "--", "-A*2")),
        Invocation(("-", "--format", "json"), stdin=b"OUT = A\x00*2"),
        Invocation(("-", "--format", "json"), stdin=b"OUT = A\xff*2"),
        Invocation(("--at", "A=2", "--format", "json", "--",
                    "OUT = " + "(" * 3000 + "A" + ")" * 3000)),
        Invocation(("OUT = 1e309*A",)),
        Invocation(("A = B; B = A", "--format", "json")),
        Invocation(("OUT = log(A)", "--at", "A=-1", "--format", "json")),
        Invocation(("OUT = sqrt(A)*B", "--at", "A=0,B=1", "--hessian", "--format", "json")),
        Invocation(("OUT = A*2", "--wtr", "A")),
        Invocation(("OUT = A*2", "--graph", "tree")),
        Invocation(("--version",)),
        Invocation(("--help",)),
        Invocation(("--batch", "-"), stdin=BATCH_TEXT, batch_input=BATCH_TEXT),
        Invocation(("--batch", "-", "--input", "jsonl", "--format", "csv"), stdin=BATCH_JSONL,
                   batch_input=BATCH_JSONL),
        Invocation(("--batch", "-", "--fail-fast", "--format", "plain"), stdin=BATCH_TEXT,
                   batch_input=BATCH_TEXT, fail_fast=True),
        Invocation(("--at", "A=2"), stdin=b"OUT = A^3\n"),
        Invocation(("OUT = A*2", "--format", "json", "--format", "plain", "--at", "A=1")),
        Invocation(("OUT = A*2", "--at", "A=1", "--format", "json"), encoding="ascii"),
        Invocation(("OUT = é*2",), encoding="ascii"),
    ]
    return [*hostile, *picked][:30]


SUBPROCESS_SAMPLE = _subprocess_sample()


def run_subprocess(args: Sequence[str | bytes], stdin: bytes, workdir: Path,
                   encoding: str = "utf-8") -> Run:
    env = {**os.environ, **RUN_ENV, "PYTHONIOENCODING": encoding}
    for name in RUN_ENV_REMOVED:
        env.pop(name, None)
    started = time.perf_counter()
    try:
        done = subprocess.run([console_script(), *args], input=stdin, capture_output=True,
                              cwd=workdir, env=env, timeout=RUN_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"killed after {RUN_SECONDS:.0f} s (a hang?): gradcalc "
                             f"{args!r} stdin={stdin[:200]!r}") from None
    text_args = tuple(a if isinstance(a, str) else os.fsdecode(a) for a in args)
    return Run(text_args, stdin, done.returncode, done.stdout.decode(encoding, "replace"),
               done.stderr.decode(encoding, "replace"), time.perf_counter() - started, encoding)


def test_the_subprocess_sample_has_thirty_cases() -> None:
    assert len(SUBPROCESS_SAMPLE) == 30


@pytest.mark.parametrize("invocation", SUBPROCESS_SAMPLE,
                         ids=lambda inv: shlex.join(inv.args)[:40])
def test_console_script_agrees_with_the_in_process_run(workdir: Path,
                                                       invocation: Invocation) -> None:
    """The real process: documented exit code, no traceback, and the same exit code and
    standard output as the in-process run (which validates the harness the corpus uses)."""
    for name, content in invocation.files:
        (workdir / name).write_bytes(content)
    real = run_subprocess(invocation.args, invocation.stdin, workdir, invocation.encoding)
    assert_sane(real, SUBPROCESS_EXIT_CODES)
    in_process = check_invocation(invocation, workdir)
    assert (real.code, real.stdout) == (in_process.code, in_process.stdout), real.context()
    assert real.stderr == in_process.stderr, real.context()


def test_console_script_real_process_only_cases(workdir: Path) -> None:
    """What only a real process has: bytes that are not UTF-8 in argv, worker processes."""
    bad_bytes = run_subprocess([b"OUT = A\xff*2", "--format", "json"], b"", workdir)
    assert_sane(bad_bytes, SUBPROCESS_EXIT_CODES)
    assert bad_bytes.code == 2 and "unexpected character" in bad_bytes.stderr
    jobs = run_subprocess(["--batch", "-", "--jobs", "2"], BATCH_TEXT, workdir)
    assert_sane(jobs, SUBPROCESS_EXIT_CODES)
    assert_batch_output(jobs, "jsonl", BATCH_TEXT, fail_fast=False)
    assert jobs.code == 1  # some lines of BATCH_TEXT fail on purpose


# --- what the corpus found: runs over 10 s -------------------------------------------------
# Runs over 10 s on programs far under the size limit, found by probing the corpus's biggest
# shapes: each runs as a real process (its memory is its own) and fails at the watchdog.
SLOW_FOUND: dict[str, Invocation] = {
    # --graph=table took about 1 ms a row (Rich measures every cell): a 40,000-statement
    # chain (800 KB) ran over 15 s. Past 2,000 rows the table is now laid out as plain text.
    "graph-table-of-a-chain": Invocation(
        ("chain.gc", "--graph=table"), files=(("chain.gc", _chain(40000)),)),
}


@pytest.mark.parametrize("invocation", SLOW_FOUND.values(), ids=SLOW_FOUND.keys())
def test_what_the_corpus_found_runs_over_ten_seconds(workdir: Path,
                                                     invocation: Invocation) -> None:
    for name, content in invocation.files:
        (workdir / name).write_bytes(content)
    assert_sane(run_subprocess(invocation.args, invocation.stdin, workdir))
