"""Batch lines by shape: every line answered from a shape must be byte for byte what the full
path answers (values, gradients, warnings, errors with their positions)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import console_script, property_settings
from hypothesis import example, given
from hypothesis import strategies as st

from gradcalc import batch, shapes
from gradcalc.shapes import Shapes, pattern, split_numbers

# Templates: each {k} is a number slot. Kinks, domain errors, folded minus signs, constants
# that merge or not depending on the numbers, named constants, comments, missing inputs.
TEMPLATES = [
    "A = {0}; B = A*{1}; OUT = (B+1)*(B+{2})",
    "OUT = relu(A*{0} - {1})",
    "OUT = abs(A - {0}) + max(A, {1})",
    "OUT = log(A*{0}) + sqrt(A*{1})",
    "OUT = A*{0} + A*{1}",
    "OUT = sin(A*{0}) * cos(A*{1}) + A*{2}",
    "OUT = A*pi + A*{0} + e*{1}",
    "OUT = -{0}*A + {1}",
    "A = -{0}; OUT = A^{1} + A",
    "A = -(-{0}); B = {1}; OUT = A*B - B/A",
    "OUT = {0}^A*A",
    "OUT = A/({0} - {1})",
    "OUT = B*{0} + A",
    "OUT = asin(A*{0}) + acos(A/{1})",
    "OUT = A*{0} # a comment with {1}",
    "X1 = A*{0}; X2 = X1*{1}; OUT = X1 + X2*{2}e{3}",
    "OUT = A*{0}; C = A*{1}",
    "OUT = tanh(A*{0} + {1}) - sigmoid(-A*{2})",
    "OUT = A ** {0} + {1}.{2}",
    "OUT = heaviside(A - {0}) + sign(A - {1}) * A",
    # functions of the program's own: numbers in bodies are constants, never inputs
    "f(x) = x*{0}; OUT = f(A) + f(A*{1})",
    "g(x, y) = x^{0} - y; B = {1}; OUT = g(A, B)",
    "h(x) = {0}; OUT = h(A)*A + {1}",
]
NUMBERS = ["0", "0.0", "1", "2", "2.0", "3", "0.5", ".5", "5.", "1e-3", "123", "1e308", "1e309",
           "3.141592653589793", "2.718281828459045", "007", "1E2", "10000000000000000000000"]
MALFORMED = ["OUT = A*", "OUT = (A", "OUT = foo(A)", "OUT = A*2 2", "", "  # only a comment"]


def full_path() -> Iterator[None]:
    """The full path alone: no line is answered from a shape."""
    original = Shapes.solve
    Shapes.solve = lambda self, text, line: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        Shapes.solve = original  # type: ignore[method-assign]


def answers(lines: list[str], at: dict[str, float], wrt: list[str] | None, of: str | None,
            shaped: bool) -> list[str]:
    batch._cache.clear()
    if shaped:
        return [json.dumps(batch.solve_line(text, at, wrt, of, line=i + 1))
                for i, text in enumerate(lines)]
    context = full_path()
    next(context)
    try:
        return [json.dumps(batch.solve_line(text, at, wrt, of, line=i + 1))
                for i, text in enumerate(lines)]
    finally:
        context.close()


@st.composite
def batches(draw: st.DrawFn) -> list[str]:
    templates = draw(st.lists(st.sampled_from(TEMPLATES), min_size=1, max_size=3))
    lines = []
    for _ in range(draw(st.integers(4, 30))):
        if draw(st.integers(0, 19)) == 0:
            lines.append(draw(st.sampled_from(MALFORMED)))
            continue
        template = draw(st.sampled_from(templates))
        slots = template.count("{")
        lines.append(template.format(*(draw(st.sampled_from(NUMBERS)) for _ in range(slots))))
    return lines


QUESTIONS = [({}, None, None), ({"A": 0.75}, None, None), ({"A": -2.0, "B": 3.0}, None, None),
             ({"A": 1.5}, ["A"], None), ({"A": 2.0}, ["B", "X1"], None),
             ({"A": 0.25}, None, "X1"), ({"A": 1.0}, ["nope"], None), ({}, [], None)]


@given(lines=batches(), question=st.sampled_from(QUESTIONS))
# found by the explore profile: a literal equal to pi, then one equal to e, in one slot
@example(lines=["OUT = A*pi + A*0 + e*0", "OUT = A*pi + A*3.141592653589793 + e*0",
                "OUT = A*pi + A*2.718281828459045 + e*0"], question=({"A": 0.75}, None, None))
@property_settings(200)
def test_every_line_is_answered_as_the_full_path_answers_it(lines, question) -> None:
    at, wrt, of = question
    assert answers(lines, at, wrt, of, shaped=True) == answers(lines, at, wrt, of, shaped=False)


def lines_answered_from_shapes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The numbers of the lines answered from a shape (filled in as the batch goes)."""
    answered: list[int] = []
    original_answer = shapes._answer

    def answering(shape, numbers, line):  # type: ignore[no-untyped-def]
        found = original_answer(shape, numbers, line)
        answered.extend([line] if found is not None else [])
        return found

    monkeypatch.setattr(shapes, "_answer", answering)
    return answered


def test_repeated_shapes_are_answered_from_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[int] = []
    original = Shapes._make

    def counting(self: Shapes, text: str, line: int, numbers: list[float]):  # type: ignore[no-untyped-def]
        made.append(line)
        return original(self, text, line, numbers)

    monkeypatch.setattr(Shapes, "_make", counting)
    answered = lines_answered_from_shapes(monkeypatch)
    lines = [f"A = {i + 10}; B = A*{i + 11}; OUT = (B+1)*(B+{i + 12})" for i in range(1, 50)]
    assert answers(lines, {}, None, None, True) == answers(lines, {}, None, None, False)
    assert made == [2]  # made once, on the second sighting
    assert answered == list(range(2, 50))  # every line from the second on


def test_equal_constants_are_part_of_the_shape() -> None:
    same = split_numbers("OUT = A*2 + A*2")
    different = split_numbers("OUT = A*2 + A*3")
    assert same is not None and different is not None
    assert same[0] == different[0]  # one family
    assert pattern([2.0, 2.0], (0, 1)) != pattern([2.0, 3.0], (0, 1))
    assert pattern([5.0, 5.0], (0, 1)) == pattern([2.0, 2.0], (0, 1))
    assert pattern([0.0, -0.0], (0, 1)) != pattern([0.0, 0.0], (0, 1))
    assert pattern([3.141592653589793], (0,)) != pattern([3.0], (0,))
    assert pattern([3.141592653589793], (0,)) != pattern([2.718281828459045], (0,))
    # numbers that set inputs (A = 2) are not constants: their equalities do not matter
    assert pattern([2.0, 2.0, 7.0], (2,)) == pattern([2.0, 3.0, 7.0], (2,))


def test_names_with_digits_and_comments_are_not_numbers() -> None:
    assert split_numbers("X1 = A2*3.50 # 4 and 5")[1] == ["3.50"]
    assert split_numbers("X1 = 2e3*e2")[1] == ["2e3"]


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shapes, "MAX_SHAPES", 5)
    monkeypatch.setattr(shapes, "MAX_SEEN", 7)
    cache = Shapes({}, None, None, 1 << 20)
    for i in range(40):
        for _ in range(2):
            cache.solve(f"OUT = A{i}*2; A{i} = 3", i + 1)
    assert len(cache.shapes) == 5 and len(cache.families) == 5 and len(cache.seen) <= 7
    assert cache.nodes == sum(len(s.dag) for s in cache.shapes.values())


GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize(("options", "golden"), [
    (["--format", "jsonl"], "batch_mixed.jsonl"),
    (["--format", "csv"], "batch_mixed.csv"),
    (["--format", "plain"], "batch_mixed.plain"),
    (["--format", "jsonl", "--at", "X=0.5", "--wrt", "X,A"], "batch_mixed_wrt.jsonl"),
])
@pytest.mark.parametrize("source", ["file", "stdin"])
def test_a_mixed_file_gives_the_same_bytes_as_before_shapes(options: list[str], golden: str,
                                                             source: str) -> None:
    # The golden files were written by the commit before shapes (55e8145) from 400 lines of
    # 18 shapes, numbers often equal to each other or to pi, kinks, domain errors, malformed
    # lines and comments.
    path = GOLDEN / "batch_mixed.txt"
    if source == "file":
        run = subprocess.run([console_script(), "--batch", str(path), *options],
                             capture_output=True, timeout=120)
    else:
        run = subprocess.run([console_script(), "--batch", "-", *options],
                             input=path.read_bytes(), capture_output=True, timeout=120)
    assert run.returncode == 1  # some lines fail
    assert run.stdout == (GOLDEN / golden).read_bytes()


def test_after_many_new_families_shapes_are_still_found(monkeypatch: pytest.MonkeyPatch) -> None:
    # 1,100 lines of new families make the cache look at one line in 32; a family that then
    # repeats is found all the same, and every answer stays the full path's.
    monkeypatch.setattr(shapes, "COLD_AFTER", 100)
    monkeypatch.setattr(shapes, "SAMPLE", 8)
    answered = lines_answered_from_shapes(monkeypatch)
    lines = [f"A{i} = {i % 7 + 1}; OUT = A{i}*2" for i in range(300)]
    lines += [f"A = {i % 9 + 1}.5; OUT = sin(A)*{i % 5 + 3}" for i in range(200)]
    assert answers(lines, {}, None, None, True) == answers(lines, {}, None, None, False)
    assert len(answered) > 150 and min(answered) > 300


def test_long_lines_are_never_keyed() -> None:
    cache = Shapes({}, None, None, 1 << 20)
    line = "OUT = A*2" + "+A" * 3000 + "; A = 1"
    assert cache.solve(line, 1) is None and cache.solve(line, 2) is None
    assert not cache.seen and not cache.families and not cache.shapes
