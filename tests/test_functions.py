"""Functions of the program's own (issue 14): ``f(x, y) = x^2 + y``, inlined at each call.

The oracle is the same program with every call written out: the generated programs of
``test_oracles`` (checked there against 50-digit mpmath jets) are rewritten with some
statements turned into functions of the names they use, called in their place, some through
a second function. Values and gradients must be the same numbers, bit for bit, and so must the
Hessians. Then finite differences and hand-computed gradients, the tree view, and every error
with its position.
"""

from __future__ import annotations

import json
import math

import pytest
from helpers import central_difference, property_settings, run
from hypothesis import assume, given
from hypothesis import strategies as st
from test_engine import enumerate_paths, prepared
from test_oracles import INPUTS, Case, Node, cases, text

import gradcalc
from gradcalc.ast import Define, from_tree
from gradcalc.dag import build
from gradcalc.errors import GradcalcError, LimitError
from gradcalc.functions import INLINE_LIMIT
from gradcalc.parse import parse


def _names(node: Node) -> list[str]:
    found: list[str] = []

    def walk(n: Node) -> None:
        if n[0] == "name" and n[1] not in found:
            found.append(n[1])
        for child in n[1:]:
            if isinstance(child, tuple):
                walk(child)

    walk(node)
    return found


def _renamed(node: Node, names: dict[str, str]) -> Node:
    if node[0] == "name":
        return ("name", names[node[1]])
    return tuple(_renamed(c, names) if isinstance(c, tuple) else c for c in node)


def with_functions(case: Case, chosen: list[bool], wrapped: list[bool]) -> str:
    """``case``'s program with the chosen statements as functions of the names they use
    (parameters p0, p1, ...), called in their place; a wrapped one is called through a
    second function, defined before the first (definitions may come in any order)."""
    lines: list[str] = []
    for index, (name, node) in enumerate(case.statements):
        used = _names(node)
        if not chosen[index % len(chosen)] or not used:
            lines.append(f"{name} = {text(node)}")
            continue
        params = [f"p{k}" for k in range(len(used))]
        body = text(_renamed(node, dict(zip(used, params, strict=True))))
        function = f"f{index}"
        called = function
        if wrapped[index % len(wrapped)]:
            called = f"g{index}"
            lines.append(f"{called}({', '.join(params)}) = {function}({', '.join(params)})")
        lines.append(f"{function}({', '.join(params)}) = {body}")
        lines.append(f"{name} = {called}({', '.join(used)})")
    return "\n".join(lines)


def outcome(program: str, at: dict[str, float]) -> object:
    try:
        result = gradcalc.gradients(program, at=at)
    except GradcalcError as exc:
        return type(exc).__name__, exc.message
    return result.value, dict(result.gradients)


@property_settings(300)
@given(cases(), st.lists(st.booleans(), min_size=1, max_size=4),
       st.lists(st.booleans(), min_size=1, max_size=3))
def test_functions_give_the_numbers_of_the_program_written_out(
        case: Case, chosen: list[bool], wrapped: list[bool]) -> None:
    program = with_functions(case, chosen, wrapped)
    assert outcome(program, case.at) == outcome(case.program, case.at)


@property_settings(100)
@given(cases(), st.lists(st.booleans(), min_size=1, max_size=4))
def test_functions_give_the_hessian_of_the_program_written_out(
        case: Case, chosen: list[bool]) -> None:
    program = with_functions(case, chosen, [False])

    def hessian(text_: str) -> object:
        try:
            found = gradcalc.hessian(text_, at=case.at)
        except GradcalcError as exc:
            return type(exc).__name__
        return found.rows, found.columns, found.entries

    assert hessian(program) == hessian(case.program)


def test_the_seed_with_a_function_against_hand_derivatives_and_differences() -> None:
    program = "f(x, y) = x^2 + y; OUT = f(A, B) * f(B, A)"
    result = gradcalc.gradients(program, at={"A": 2.0, "B": 3.0})
    # OUT = (A^2 + B)(B^2 + A): dA = 2A(B^2 + A) + (A^2 + B), dB = (B^2 + A) + 2B(A^2 + B)
    assert result.value == 77.0
    assert result.gradients == {"A": 51.0, "B": 53.0}

    def out(a: float, b: float) -> float:
        return gradcalc.gradients(program, at={"A": a, "B": b}).value

    for i, name in enumerate("AB"):
        slope, _ = central_difference(out, (2.0, 3.0), i)
        assert math.isclose(slope, result.gradients[name], rel_tol=1e-6)


def test_calls_with_the_same_operands_are_one_node_and_others_are_not() -> None:
    twice = build(parse("f(x) = sin(x)*2; OUT = f(A) + f(A)"))
    once = build(parse("OUT = sin(A)*2 + sin(A)*2"))
    assert len(twice) == len(once)
    other = build(parse("f(x) = sin(x)*2; OUT = f(A) + f(B)"))
    assert len(other) == len(once) + 3  # B, sin(B), sin(B)*2


def test_a_named_call_is_the_names_own_node() -> None:
    dag = build(parse("f(x) = x*3; B = f(A); OUT = B + f(A)"))
    b = dag.named["B"]
    assert dag.ops[b].name == "mul" and dag.names[b] == "B"
    result = gradcalc.gradients("f(x) = x*3; B = f(A); OUT = B*f(A)", at={"A": 2.0},
                                wrt=["A", "B"])
    assert result.gradients == {"A": 36.0, "B": 6.0}
    # a body that is a parameter or a constant: the name gets an identity node
    assert gradcalc.gradients("f(x) = x; OUT = f(A)*2", at={"A": 5.0}).gradients == {"A": 2.0}
    assert gradcalc.gradients("f(x) = pi; OUT = f(A)", at={"A": 5.0}).value == math.pi


def test_body_nodes_point_at_the_call() -> None:
    source = "f(x) = log(x)\nOUT = f(A) + 1"
    with pytest.raises(GradcalcError) as caught:
        gradcalc.gradients(source, at={"A": -1.0})
    assert (caught.value.line, caught.value.column) == (2, 7)  # f(A), where it is called


def test_functions_may_be_defined_in_any_order_and_call_each_other() -> None:
    program = "OUT = h(A); h(x) = g(x) + g(2*x); g(y) = y^3"
    result = gradcalc.gradients(program, at={"A": 1.0})
    assert result.value == 9.0 and result.gradients == {"A": 27.0}  # 3 + 3*2^3


def test_the_tree_view_keeps_definitions() -> None:
    program = parse("f(x, y) = x*y\nOUT = f(A, 2)")
    tree = program.tree()
    assert type(tree[0]) is Define
    assert [p.id for p in tree[0].params] == ["x", "y"]
    again = from_tree(tree, program.source)
    assert again.tree()[0].name == "f"
    assert gradcalc.gradients(again, at={"A": 3.0}).gradients == {"A": 2.0}


@pytest.mark.parametrize(("program", "message", "where"), [
    ("f(x) = f(x) + 1; OUT = f(A)", "f calls itself", (1, 8)),
    ("f(x) = g(x); g(y) = h(y); h(z) = f(z); OUT = f(A)",
     "functions call each other in a loop: f → g → h → f", (1, 34)),
    ("f(x) = x; OUT = f(A, B)", "f takes 1 argument, got 2", (1, 17)),
    ("f(x, y) = x; OUT = f(A)", "f takes 2 arguments, got 1", (1, 20)),
    ("f(x) = x; g(y) = f(y, y); OUT = g(A)", "f takes 1 argument, got 2", (1, 18)),
    ("f(x, x) = x; OUT = f(A, A)", "x is a parameter of f twice", (1, 6)),
    ("f(x) = x + y; OUT = f(A)", "y is not a parameter of f", (1, 12)),
    ("f(x) = x + A; A = 2; OUT = f(A)", "A is not a parameter of f", (1, 12)),
    ("sin(x) = x; OUT = sin(A)", "cannot define sin: it is the function sin", (1, 1)),
    ("pi(x) = x; OUT = pi(A)", "cannot define pi: it is the constant pi", (1, 1)),
    ("f(x) = x; f = 2; OUT = f(A)", "f is both a function and a variable", (1, 1)),
    ("f(x) = x; f(y) = y; OUT = f(A)", "f is defined twice", (1, 11)),
    ("f(pi) = pi; OUT = f(A)", "a parameter cannot be named pi: it is the constant pi", (1, 3)),
    ("f(sin) = sin; OUT = f(A)", "a parameter cannot be named sin: it is the function sin",
     (1, 3)),
    ("f(x) = x; OUT = f + 1", "f is a function, not a value", (1, 17)),
    ("f(x) = g; g(y) = y; OUT = f(A)", "g is a function, not a value", (1, 8)),
    ("f(x) = x; OUT = fo(A)", "unknown function 'fo'", (1, 17)),
    ("f(x) = sinn(x); OUT = A", "unknown function 'sinn'", (1, 8)),
    ("f(x, 2) = x; OUT = f(A, 2)", "a parameter must be a name", (1, 6)),
    ("f(x + 1) = x; OUT = A", "a parameter must be a name", (1, 3)),
])
def test_errors_name_the_problem_and_its_place(program: str, message: str,
                                               where: tuple[int, int]) -> None:
    with pytest.raises(GradcalcError) as caught:
        gradcalc.gradients(program, at={"A": 1.0, "B": 2.0})
    assert caught.value.message == message
    assert (caught.value.line, caught.value.column) == where


def test_an_unknown_function_suggests_the_programs_own() -> None:
    with pytest.raises(GradcalcError) as caught:
        gradcalc.gradients("square(x) = x*x; OUT = squar(A)", at={"A": 1.0})
    assert caught.value.hint == "did you mean square?"
    with pytest.raises(GradcalcError) as caught:  # in a body, before the functions are built
        gradcalc.gradients("f(x) = squar(x) + 1; square(y) = y*y; OUT = f(A)", at={"A": 1.0})
    assert caught.value.hint == "did you mean square?"


def test_expansion_is_bounded() -> None:
    # Each level calls the one below twice with different operands: 2^30 copies.
    lines = ["f0(x) = sin(x)"] + [f"f{k}(x) = f{k - 1}(x*2) + f{k - 1}(x*3)"
                                   for k in range(1, 31)]
    with pytest.raises(LimitError) as caught:
        gradcalc.gradients("\n".join(lines) + "\nOUT = f30(A)", at={"A": 1.0})
    assert f"{INLINE_LIMIT:,} nodes" in caught.value.message
    assert caught.value.line == 32


def test_the_command_line_with_functions() -> None:
    done = run('f(x, y) = x^2 + y; OUT = f(A, B) * f(B, A)', "--at", "A=2,B=3", "--format",
               "json")
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout)["gradients"] == {"A": 51.0, "B": 53.0}
    bad = run("f(x) = f(x); OUT = f(A)", "--at", "A=1")
    assert bad.exit_code == 2 and "f calls itself" in bad.stderr and "^" in bad.stderr


def test_inputs_are_the_statements_names_not_parameters() -> None:
    dag = build(parse("f(x, y) = x*y; OUT = f(A, B)"))
    assert list(dag.inputs) == ["A", "B"] and set(INPUTS) >= set(dag.inputs)


def test_nodes_from_a_body_are_described_as_their_operation_in_the_call() -> None:
    dag = build(parse("f(x, y) = x^2 + y\nOUT = f(A, B)*3"))
    described = sorted(dag.describe(node) for node in range(len(dag)))
    assert "^ in f(A, B)" in described and "OUT" in described
    done = run("f(x, y) = x^2 + y; OUT = f(A, B)*3", "--at", "A=2,B=1", "--explain")
    assert done.exit_code == 0, done.stderr
    assert "(^ in f(A, B))  waits for 1: (+ in f(A, B))" in done.stdout
    assert "(+ in f(A, B))  waits for 1: OUT" in done.stdout


@st.composite
def function_programs(draw: st.DrawFn) -> tuple[str, dict[str, float]]:
    """Two functions of random bodies (the second calls the first), called on the inputs
    and on each other's results."""
    def body(params: list[str], depth: int, calls: str | None) -> str:
        if depth == 0 or draw(st.integers(0, 3)) == 0:
            return draw(st.sampled_from([*params, "0.5", "2"]))
        kind = draw(st.integers(0, 4 if calls else 3))
        if kind == 4:
            return f"{calls}({body(params, depth - 1, None)}, {body(params, depth - 1, None)})"
        if kind == 3:
            return f"{draw(st.sampled_from(UNARY_FUNCTIONS))}({body(params, depth - 1, calls)})"
        op = draw(st.sampled_from("+-*"))
        return f"({body(params, depth - 1, calls)} {op} {body(params, depth - 1, calls)})"

    f = body(["x", "y"], 3, None)
    g = body(["z"], 3, "f")
    uses = [draw(st.sampled_from(["f(A, B)", "f(B, A)", "g(A)", "g(C)", "f(g(B), C)",
                                  "g(f(A, A))", "A"])) for _ in range(3)]
    program = (f"g(z) = {g}\nf(x, y) = {f}\nT = {uses[0]} * {uses[1]}\n"
               f"OUT = T + {uses[2]} + T*A")
    at = {name: draw(st.floats(-1.5, 1.5).map(lambda v: round(v, 2))) for name in "ABC"}
    return program, at


UNARY_FUNCTIONS = ["sin", "cos", "tanh", "sigmoid", "atan"]


@property_settings(150)
@given(function_programs())
def test_functions_match_path_enumeration(case: tuple[str, dict[str, float]]) -> None:
    # The independent oracle of test_engine: every path's product of local derivatives,
    # summed, on the graph the calls were inlined into.
    program, at = case
    dag, output, at, vals = prepared(program, at)
    assume(dag.inputs)
    result = gradcalc.gradients(dag, at=at)
    total, _, magnitude = enumerate_paths(dag, vals, output)
    assert result.value == vals[output]
    for name, gradient in result.gradients.items():
        node = dag.named[name]
        assert math.isclose(gradient, total[node], rel_tol=1e-9,
                            abs_tol=1e-12 * max(1.0, magnitude[node])), (name, program)
