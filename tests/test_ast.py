"""The flat AST: the postfix arrays the parser writes, their tree view, and what they cost."""

from __future__ import annotations

import math
import tracemalloc

from helpers import dag_programs, property_settings
from hypothesis import given
from hypothesis import strategies as st

import gradcalc
from gradcalc.ast import APPLY, CALL, NAME, NUM, Apply, Assign, Name, Num, Output, from_tree, walk
from gradcalc.dag import build
from gradcalc.parse import parse


def test_nodes_come_in_postfix_order_with_their_spans() -> None:
    text = "OUT = sin(A) * (B + 2)"
    program = parse(text)
    nodes = program.nodes
    kinds = [nodes.kinds[i] for i in range(len(nodes))]
    assert kinds == [NAME, CALL, NAME, NUM, APPLY, APPLY]
    words = [nodes.words[nodes.payloads[i]] if nodes.kinds[i] != NUM else None
             for i in range(len(nodes))]
    assert words == ["A", "sin", "B", None, "add", "mul"]
    assert [nodes.arities[i] for i in range(len(nodes))] == [0, 1, 0, 0, 2, 2]
    shown = [text[nodes.starts[i] : nodes.ends[i]] for i in range(len(nodes))]
    assert shown == ["A", "sin(A)", "B", "2", "(B + 2)", "sin(A) * (B + 2)"]
    marks = [text[nodes.marks[i] : nodes.mark_ends[i]] for i in (1, 4, 5)]
    assert marks == ["sin", "+", "*"]
    (statement,) = program.statements
    assert (statement.name, statement.root) == ("OUT", 5)
    assert nodes.first(5) == 0 and nodes.first(4) == 2 and nodes.first(1) == 0


def test_names_are_stored_once() -> None:
    program = parse("OUT = A*A + A*A + B")
    assert program.nodes.words.count("A") == 1


def test_folded_minus_signs_keep_the_literal_and_its_sign() -> None:
    text = "A = -(2); B = --3; C = -0; D = -1e-3; OUT = A*B*C*D"
    tree = parse(text).tree()
    numbers = [s.expr for s in tree[:4] if isinstance(s, Assign)]
    assert all(isinstance(n, Num) for n in numbers)
    assert [(n.value, n.text) for n in numbers if isinstance(n, Num)] == [
        (-2.0, "-2"), (3.0, "3"), (-0.0, "-0"), (-0.001, "-1e-3")]
    assert math.copysign(1.0, numbers[2].value) < 0  # type: ignore[union-attr]
    # the span covers the minus and the parentheses
    assert text[numbers[0].span.start : numbers[0].span.end] == "-(2)"


def test_the_tree_view_has_line_and_column() -> None:
    program = parse("A = 1\n\n  OUT = (A +\\\n 2)*3", first_line=7)
    out = program.tree()[-1]
    assert isinstance(out, Assign)
    assert (out.name_span.line, out.name_span.column) == (9, 3)
    mul = out.expr
    assert isinstance(mul, Apply) and mul.op == "mul"
    add = mul.args[0]
    assert isinstance(add, Apply) and (add.span.line, add.span.column) == (9, 9)
    assert isinstance(add.args[1], Num) and add.args[1].span.line == 10


def test_a_bare_expression_is_an_output_statement() -> None:
    program = parse("B = A*2\nB + 1")
    assert [s.name for s in program.statements] == ["B", None]
    assert isinstance(program.tree()[-1], Output)


def _same_tree(first: list[Assign | Output], second: list[Assign | Output]) -> None:
    assert len(first) == len(second)
    for a, b in zip(first, second, strict=True):
        assert type(a) is type(b) and a.span == b.span
        if isinstance(a, Assign) and isinstance(b, Assign):
            assert (a.name, a.name_span) == (b.name, b.name_span)
        nodes_a, nodes_b = list(walk(a.expr)), list(walk(b.expr))
        assert len(nodes_a) == len(nodes_b)
        for x, y in zip(nodes_a, nodes_b, strict=True):
            assert type(x) is type(y) and x.span == y.span
            if isinstance(x, Num) and isinstance(y, Num):
                assert (x.text, x.value.hex()) == (y.text, y.value.hex())
            elif isinstance(x, Name) and isinstance(y, Name):
                assert x.id == y.id
            elif isinstance(x, Apply) and isinstance(y, Apply):
                assert (x.op, x.call, x.op_span) == (y.op, y.call, y.op_span)


@given(text=dag_programs())
@property_settings(100)
def test_from_tree_inverts_tree(text: str) -> None:
    program = parse(text)
    again = from_tree(program.tree(), program.source)
    _same_tree(program.tree(), again.tree())
    first, second = build(program), build(again)
    assert list(first.args) == list(second.args)
    assert [op.name for op in first.ops] == [op.name for op in second.ops]
    assert first.labels == second.labels and first.merged == second.merged


def test_from_tree_builds_programs_made_in_python() -> None:
    from gradcalc.errors import Source, Span

    span = Span(0, 1, 1, 1)
    tree: list[Assign | Output] = [
        Assign("B", span, Apply("mul", [Name("A", span), Num(3.0, "3", span)], span, span), span),
        Output(Apply("sin", [Name("B", span)], span, span, call=True), span),
    ]
    r = gradcalc.gradients(from_tree(tree, Source("")), at={"A": 0.0})
    assert (r.output, r.value, r.gradients["A"]) == ("OUT", 0.0, 3.0)


@given(depth=st.integers(1, 3000))
@property_settings(20)
def test_first_finds_the_start_of_deep_subtrees(depth: int) -> None:
    program = parse("OUT = " + "-sin(" * depth + "A" + ")" * depth)
    root = program.statements[0].root
    assert program.nodes.first(root) == 0 and len(program.nodes) == 2 * depth + 1


def _peak_per_byte(text: str) -> float:
    """Peak bytes allocated per byte of ``text`` while it is parsed, built and differentiated."""
    tracemalloc.start()
    try:
        dag = gradcalc.compile_program(text, max_size=len(text))
        gradcalc.gradients(dag, at={name: 1.0 for name in dag.inputs})
        return tracemalloc.get_traced_memory()[1] / len(text)
    finally:
        tracemalloc.stop()


def test_memory_per_byte_of_program_stays_small() -> None:
    # The densest program (a sum, two bytes a node) measured 65 bytes per byte at 256 KiB;
    # a tree of objects took 380. The bound catches a return to objects per node.
    size = 64 * 1024
    assert _peak_per_byte("OUT = A" + "+A" * (size // 2)) < 100
    assert _peak_per_byte("OUT = A" + "+sin(A)*B" * (size // 9)) < 100
