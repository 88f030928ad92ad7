"""Statement shapes (gradcalc.replay, parse._run_shaped): replayed statements are parsed ones.

The contract: ``parse`` gives the same program, array for array (kinds, payloads, arities,
spans, operator spans, words in order, numbers bit for bit, statements), and the same error
(message, position, hint) whether statements are replayed or not. Programs are made of the
parser's differential generators (``test_parse_differential``), repeated with other names and
numbers of other lengths, so that most statements are of a shape seen before.
"""

from __future__ import annotations

import ast as python_ast
import importlib
import math
import random
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from helpers import property_settings
from hypothesis import example, given
from hypothesis import strategies as st
from test_parse_differential import broken_text, hypothesis_chooser, valid_text

from gradcalc import replay
from gradcalc.ast import INDEX, VECTOR, Program
from gradcalc.errors import GradcalcError
from gradcalc.parse import _machine, _run, _run_shaped, parse

parse_module = importlib.import_module("gradcalc.parse")  # (gradcalc.parse is the function)
_SLOTS = replay._slots()


def vary(text: str, copy: int) -> str:
    """``text`` with every name and number changed (lengths too) the same way: same shapes."""
    if copy == 0:
        return text
    parts = _SLOTS.split(text)
    for index in range(1, len(parts), 2):
        slot = parts[index]
        parts[index] = slot + "_" * copy if slot.isidentifier() else str(copy) * copy + slot
    return "".join(parts)


def repeated(text: str, copies: int, separator: str = "\n") -> str:
    return separator.join(vary(text, copy % 4) for copy in range(copies))


def arrays(program: Program) -> tuple[Any, ...]:
    nodes = program.nodes
    numbers = [(value, math.copysign(1.0, value)) for value in nodes.numbers]
    return (bytes(nodes.kinds), list(nodes.payloads), list(nodes.arities), list(nodes.starts),
            list(nodes.ends), list(nodes.marks), list(nodes.mark_ends), nodes.words, numbers,
            nodes.number_texts,
            [(s.name, s.name_start, s.root) for s in program.statements])


def outcome(text: str, shaped: bool) -> Any:
    """What ``parse`` gives, with statement shapes on (for any size) or off."""
    saved = parse_module.SHAPED_FROM
    parse_module.SHAPED_FROM = 0 if shaped else 1 << 62
    try:
        return arrays(parse(text, max_size=1 << 26))
    except GradcalcError as exc:
        return type(exc).__name__, str(exc), exc.span, exc.hint
    finally:
        parse_module.SHAPED_FROM = saved


@contextmanager
def counting() -> Iterator[list[int]]:
    """Counts the statements replayed (not parsed) while it is open."""
    counts = [0]
    original = replay.StatementShapes.replay

    def spy(self: replay.StatementShapes, text: str, pos: int, end: int) -> Any:
        statement = original(self, text, pos, end)
        counts[0] += statement is not None
        return statement

    replay.StatementShapes.replay = spy  # type: ignore[method-assign]
    try:
        yield counts
    finally:
        replay.StatementShapes.replay = original  # type: ignore[method-assign]


def check_same(text: str) -> int:
    """Shapes on and off give the same; the number of statements replayed."""
    with counting() as replayed:
        shaped = outcome(text, shaped=True)
    assert shaped == outcome(text, shaped=False)
    return replayed[0]


@st.composite
def repeated_valid(draw: Callable[[st.SearchStrategy[Any]], Any]) -> str:
    text = valid_text(hypothesis_chooser(draw))
    separator = draw(st.sampled_from(["\n", ";", "\r\n", "\n# between\n", " ; \n"]))
    return repeated(text, draw(st.integers(2, 9)), separator)


@st.composite
def repeated_broken(draw: Callable[[st.SearchStrategy[Any]], Any]) -> str:
    chooser = hypothesis_chooser(draw)
    good, bad = valid_text(chooser), broken_text(chooser)
    copies = draw(st.integers(2, 6))
    return repeated(good, copies) + "\n" + bad + "\n" + repeated(good, 2)


@property_settings(500)
@given(repeated_valid())
@example(repeated("X1 = sin(X0)*2.5 + -3 - --0", 5))
@example(repeated("A = -0\nB = +A ** -.5e3 \u00d7 (A)\nB", 3))
@example(repeated("M = [[1, -2], [X0, 3.5]]\nV = [M[0, -1], -M[1][0], [X0][0]] @ M\n"
                  "W = (V)[2] + sin(M)[1, 1] ** f(V)[-3]", 12))
def test_repeated_programs_parse_the_same_replayed(text: str) -> None:
    check_same(text)


@property_settings(500)
@given(repeated_broken())
@example("A = 1\nB = 2\nC = 3\nD = 1e999\n")
@example("A = 1\nB = 2\nC\nD = 3\n")  # a bare expression before the last statement
@example("A = 1\nB = 2\nC = 3 \\\n + 1\nD = 4\n")  # a line continuation
@example("A = 1\nB = 2\nC = 3 \r+ 1\nD = 4\n")  # a carriage return inside a statement
@example("A = 1\nB = 2\nC = 3 $\nD = 4\n")
def test_broken_programs_fail_the_same_replayed(text: str) -> None:
    check_same(text)


def test_most_statements_of_a_repeated_program_are_replayed() -> None:
    rng = random.Random(7)
    line = "X{0} = sin(X{1})*{2} + cos(X{1}) / -{3} # step {0}"
    lines = [line.format(i, i - 1, rng.uniform(0, 9), rng.randint(1, 10 ** rng.randint(1, 6)))
             for i in range(1, 400)]
    text = "X0 = 0.5\n" + "\n".join(lines) + "\nOUT = X399\n"
    replayed = check_same(text)
    # seen LEARN_AT - 1 times, learned from the next one, replayed from then on
    assert replayed == len(lines) - replay.LEARN_AT


@contextmanager
def shapes_made() -> Iterator[list[replay.StatementShapes]]:
    """The StatementShapes made while it is open (one per program parsed with shapes)."""
    made: list[replay.StatementShapes] = []
    original = replay.StatementShapes.__init__

    def spy(self: replay.StatementShapes, nodes: Any) -> None:
        original(self, nodes)
        made.append(self)

    replay.StatementShapes.__init__ = spy  # type: ignore[method-assign]
    try:
        yield made
    finally:
        replay.StatementShapes.__init__ = original  # type: ignore[method-assign]


@pytest.mark.parametrize("line", [
    "V{i} = W[{k}] * X{i}",
    "V{i} = W[-{k}] * X{i} # {k}",
    "V{i} = M[{k}, {j}] + M[{j}][{k}] * X{i}",
    "V{i} = [X{i}, {k}][{j}] @ W[1]",  # (the same index in every statement: still refused)
])
def test_statements_with_an_index_are_parsed_not_replayed(line: str) -> None:
    # The shape of `W[3]` is the shape of `W[5]` (a number is a slot), but an index is no
    # number node: its payload comes from text no template holds, so such a shape is never
    # learned, and every statement gets its own indices.
    rng = random.Random(11)
    indices = [(rng.randint(0, 40), rng.randint(0, 9)) for _ in range(3 * replay.LEARN_AT)]
    text = "".join(line.format(i=i, k=k, j=j) + "\n" for i, (k, j) in enumerate(indices))
    with shapes_made() as made:
        assert check_same(text) == 0
    (shapes,) = made
    assert shapes.replayed == 0
    assert shapes._templates and all(template is None for template in shapes._templates.values())
    # every statement's own indices, in order (`M[k, j]` is `M[k][j]`: k first)
    nodes = parse(text).nodes
    written = [nodes.payloads[node] for node in range(len(nodes)) if nodes.kinds[node] == INDEX]
    expected = [int(number) for groups in re.findall(r"\[(-?\d+)\]|\[(-?\d+), (-?\d+)\]", text)
                for number in groups if number]
    assert written == expected


@pytest.mark.parametrize("line", [
    "V{i} = [X{i}, {k}] @ [[1, 2], [-3, {k}]] + W{i}",
    "V{i} = [[X{i}], [-{k}.5]] @ [X{i}, sin([{k}, X{i}])] # {k}",
    "V{i} = ([X{i}, {k}]) @ M",
])
def test_statements_with_vectors_and_matmul_are_replayed(line: str) -> None:
    rng = random.Random(12)
    count = 3 * replay.LEARN_AT
    text = "".join(line.format(i=i, k=rng.randint(0, 10 ** rng.randint(1, 5))) + "\n"
                   for i in range(count))
    with shapes_made() as made:
        replayed = check_same(text)
    (shapes,) = made
    # seen LEARN_AT - 1 times, learned from the next one, replayed from then on
    assert replayed == shapes.replayed == count - replay.LEARN_AT
    kinds = parse(text).nodes.kinds
    assert VECTOR in kinds and INDEX not in kinds


def test_a_number_too_large_in_a_replayed_statement_is_reported_where_it_is() -> None:
    text = "".join(f"X{i} = X{i - 1}*2 + 1\n" for i in range(1, 50)) + "Y = X49*2 + 1e999\n"
    shaped = outcome(text, shaped=True)
    assert shaped == outcome(text, shaped=False)
    assert shaped[0] == "ParseError" and "1e999" in shaped[1]
    assert shaped[2].line == 50


def test_statements_that_all_differ_are_parsed_in_one_run_after_a_window() -> None:
    # Every statement a new shape: after a window of them the rest is parsed in one run.
    statements = [f"X{i} = X{i - 1}" + " + 1" * (i % 7) + "*2" * (i // 7) for i in range(1, 1500)]
    text = "X0 = 1\n" + "\n".join(statements) + "\n"
    runs: list[int] = []
    original = parse_module._run

    def spy(*args: Any, **kwargs: Any) -> Program:
        runs.append(1)
        return original(*args, **kwargs)

    parse_module._run = spy  # type: ignore[assignment]
    try:
        assert check_same(text) == 0
    finally:
        parse_module._run = original  # type: ignore[assignment]
    # one run per statement of the first window but its last (which goes with the rest), one
    # for the rest, then the unshaped run
    assert len(runs) == (replay.WINDOW - 1) + 1 + 1


def test_a_statement_longer_than_the_longest_piece_is_parsed() -> None:
    long = "Y{0} = " + " + ".join(["A*2"] * (replay.MAX_PIECE // 5)) + "\n"
    text = "".join(long.format(i) for i in range(5)) + "Z = A\n"
    assert check_same(text) == 0


def test_bounds_of_the_shapes_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    # 40 shapes, each 12 times, interleaved; at most 5 counted and 3 learned: the rest parsed.
    monkeypatch.setattr(replay, "MAX_SEEN", 5)
    monkeypatch.setattr(replay, "MAX_SHAPES", 3)
    made: list[replay.StatementShapes] = []
    original = replay.StatementShapes.__init__

    def spy(self: replay.StatementShapes, nodes: Any) -> None:
        original(self, nodes)
        made.append(self)

    monkeypatch.setattr(replay.StatementShapes, "__init__", spy)
    text = "".join(f"A{i}_{k} = B{'+1' * k}\n" for i in range(12) for k in range(40))
    assert check_same(text) == 3 * (12 - replay.LEARN_AT)
    (shapes,) = made
    assert len(shapes._seen) <= 5 and len(shapes._templates) == 3


def test_the_generated_code_holds_no_text_of_the_program() -> None:
    # Hostile names and numbers: Python keywords and builtins, the generated code's own
    # identifiers, dunder names; numbers of every form. None may reach the source.
    hostile = ["__import__", "exec", "eval", "parts", "base", "first", "number", "word",
               "Statement", "KINDS", "NUMBERS", "s0", "n0", "f1", "None", "len", "float"]
    numbers = ["1e308", "0.000", "9" * 30, ".5e-3", "7."]
    lines = []
    for index in range(30):
        a, b = hostile[index % len(hostile)], hostile[(index * 7 + 3) % len(hostile)]
        n = numbers[index % len(numbers)]
        lines.append(f"{a}{index} = sin({b}, {a}) * -{n} + ({b}/{n})^2")
    text = "\n".join(lines) + "\n"
    sources: list[str] = []
    original = replay._source

    def spy(template: Any) -> str:
        sources.append(original(template))
        return sources[-1]

    replay._source = spy  # type: ignore[assignment]
    try:
        assert check_same(text) > 0
    finally:
        replay._source = original  # type: ignore[assignment]
    assert sources
    allowed = {"replay", "parts", "base", "first", "number", "KINDS", "NUMBERS", "K", "A",
               "kinds", "arities", "payloads", "starts", "ends", "marks", "mark_ends", "values",
               "word", "Statement", "float", "len"}
    for source in sources:
        for node in python_ast.walk(python_ast.parse(source)):
            if isinstance(node, python_ast.Name):
                numbered = node.id[0] in "snf" and node.id[1:].isdigit()
                assert node.id in allowed or numbered, node.id
            elif isinstance(node, python_ast.Constant):
                assert node.value is None or type(node.value) is int, node.value
            elif isinstance(node, python_ast.arg):
                assert node.arg in ("parts", "base")
            elif isinstance(node, python_ast.Attribute):
                raise AssertionError(f"no attribute access expected: {node.attr}")


def test_only_names_and_numbers_are_slots() -> None:
    # The shapes take out names and numbers by the grammar's own patterns; every other
    # terminal (operators, parentheses, separators) is fixed text: none may start like a name
    # or a number, or the fixed text would not fix the tokens.
    machine = _machine()
    for probe in ("a", "Z", "_", "0", "9", ".5"):
        match = machine.tokens.match(probe)
        assert match is not None and match.lastgroup in ("NAME", "NUMBER"), probe
    assert _run_shaped(machine, "A = 1e5x") is None  # a number then a name: not a program


@pytest.mark.parametrize("text", [
    "",  # nothing
    "\n\n# only a comment\n",
    "A = 1",  # one statement, no separator at the end
    "A = 1;;B = A\n\n;C = B;",
    "A = 1\r\nB = A\r\n",
])
def test_edges_parse_the_same(text: str) -> None:
    check_same(repeated(text, 3))


def test_the_unshaped_loop_parses_a_slice_of_the_text_at_its_offsets() -> None:
    machine = _machine()
    text = "A = 1\nB = A*2 + 1\nC = B"
    whole = _run(machine, text)
    piece = _run(machine, text, start=6, stop=17)
    (statement,) = piece.statements
    assert statement.name == "B" and statement.name_start == 6
    assert list(piece.nodes.starts) == list(whole.nodes.starts)[1:6]
