"""``program_text``: a DAG back to program text that reads back to the same computation.

Random programs (unary minus, negative constants, powers with negative bases, redundant and
nested parentheses, subtraction, division and power chains, pi and e, two-argument functions)
are compiled, printed and parsed again: the value and every gradient must be the same floats.
Shared unnamed sub-expressions get generated names (the text grows with the graph, not with the
number of paths), and printing a 10,000-deep expression does not recurse.
"""

from __future__ import annotations

import math

import pytest
from helpers import property_settings
from hypothesis import given
from hypothesis import strategies as st

import gradcalc
from gradcalc import EvaluationError, Value
from gradcalc.dag import Dag
from gradcalc.ops import CONST, INPUT, op_named
from gradcalc.unparse import program_text

SETTINGS = property_settings(150)


def same(x: float, y: float) -> bool:
    """The same float: equal with the same sign, or both NaN."""
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    return x == y and math.copysign(1.0, x) == math.copysign(1.0, y)


def printed(dag: Dag) -> str:
    return program_text(dag, dag.named[dag.output], dag.output)


def op_nodes_in_cone(dag: Dag, output: int) -> tuple[int, int]:
    """(operation nodes, edges) that ``output`` depends on: the shape of the computation."""
    seen = {output}
    stack = [output]
    while stack:
        for operand in dag.args[stack.pop()]:
            if operand not in seen:
                seen.add(operand)
                stack.append(operand)
    ops = [n for n in seen if dag.ops[n] not in (CONST, INPUT)]
    return len(ops), sum(len(dag.args[n]) for n in ops)


# --- random programs -----------------------------------------------------------------------------

NAMES = ["A", "B", "C"]
CONSTANTS = ["2", "0.5", ".5", "3.", "1e-3", "2.50", "1.5e1", "-2", "-0.5", "-0", "0", "pi", "e",
             "-pi", "(-e)", "- -3", "+2"]
UNARY = ["sin", "cos", "tanh", "atan", "exp", "sigmoid", "softplus", "abs", "relu", "sinh"]
BINARY_FUNCTIONS = ["max", "min", "atan2", "pow"]


@st.composite
def programs(draw):
    """Program text and input values. Expressions are written with a mix of minimal, redundant
    and nested parentheses, so the parser decides their meaning; printing must keep it."""
    at = {n: draw(st.floats(-2, 2, allow_nan=False), label=n) for n in NAMES}
    at["N"] = float(draw(st.integers(-3, 3), label="N"))  # whole: a negative base's exponent
    names = list(NAMES)

    def atom() -> str:
        k = draw(st.integers(0, 9))
        if k < 3:
            return draw(st.sampled_from(CONSTANTS))
        if k < 4:
            return "N"
        return draw(st.sampled_from(names))

    def paren(text: str) -> str:
        k = draw(st.integers(0, 5))
        return f"(({text}))" if k == 0 else f"({text})"

    def expr(depth: int) -> str:
        if depth == 0:
            return atom()
        kind = draw(st.sampled_from(
            ["atom", "unary", "neg", "binary", "binary", "chain", "call2", "power", "group"]))
        if kind == "atom":
            return atom()
        if kind == "group":
            return paren(expr(depth - 1))
        if kind == "unary":
            return f"{draw(st.sampled_from(UNARY))}({expr(depth - 1)})"
        if kind == "neg":
            inner = expr(depth - 1)
            form = draw(st.integers(0, 3))
            if form == 0:
                return f"-{paren(inner)}"
            if form == 1:
                return f"- -{paren(inner)}"
            if form == 2:  # -x^2 is -(x^2)
                return f"-{paren(inner)}^2"
            return f"-{atom()}"
        if kind == "binary":
            op = draw(st.sampled_from(["+", "-", "*", "/", "−", "×", "÷", "·"]))
            return f"{paren(expr(depth - 1))} {op} {paren(expr(depth - 1))}"
        if kind == "chain":  # left-associative chains, written without parentheses
            ops = draw(st.lists(st.sampled_from(["+", "-", "*", "/"]), min_size=2, max_size=4))
            text = paren(expr(depth - 1))
            for op in ops:
                text += f" {op} {paren(expr(depth - 1))}"
            return text
        if kind == "call2":
            f = draw(st.sampled_from(BINARY_FUNCTIONS))
            if f == "pow":
                return f"pow(exp({expr(depth - 1)}), {expr(depth - 1)})"
            return f"{f}({expr(depth - 1)}, {expr(depth - 1)})"
        # powers: negative bases with whole exponents, right-associative towers, signed exponents
        form = draw(st.integers(0, 6))
        if form == 0:
            return f"({draw(st.sampled_from(['-2', '-0.5', '-1.5', '-e']))})^N"
        if form == 1:
            return f"{paren(expr(depth - 1))}^{draw(st.sampled_from(['2', '3', '-1', '-2', 'N']))}"
        if form == 2:
            return f"2^0.5^{paren(expr(depth - 1))}"
        if form == 3:
            return f"(0.5^{paren(expr(depth - 1))})^1.5"
        if form == 4:
            return f"exp({expr(depth - 1)})**-{paren(expr(depth - 1))}"
        if form == 5:
            return f"2^-{atom()}"
        return f"-2^{paren(expr(depth - 1))}"

    lines = []
    preset = draw(st.sets(st.sampled_from(NAMES)))
    for name in sorted(preset):  # some inputs get their value in the program
        lines.append(f"{name} = {at[name]!r}")
    for i in range(draw(st.integers(0, 5))):
        name = f"S{i}"
        if draw(st.integers(0, 7)) == 0:
            lines.append(f"{name} = {draw(st.sampled_from(names))}")  # an alias
        elif draw(st.integers(0, 9)) == 0:
            lines.append(f"{name} = {draw(st.sampled_from(['pi', 'e', '-pi']))}")
        else:
            lines.append(f"{name} = {expr(3)}")
        names.append(name)
    last = expr(3)
    if draw(st.booleans()):
        lines.append(f"OUT = {last}")
    else:
        lines.append(last)  # a bare expression: the output is OUT, or OUT2 when OUT is taken
    separator = draw(st.sampled_from(["\n", "; "]))
    return separator.join(lines), at


def evaluate(program: str | Dag, at: dict[str, float], wrt: list[str] | None = None):
    dag = gradcalc.compile_program(program)
    at = {n: x for n, x in at.items() if n in dag.inputs}
    return gradcalc.gradients(dag, at=at, wrt=wrt)


@SETTINGS
@given(case=programs())
def test_printed_program_computes_the_same_floats(case):
    program, at = case
    dag = gradcalc.compile_program(program)
    text = printed(dag)
    again = gradcalc.compile_program(text)
    output = dag.named[dag.output]
    # the same shape: every operation node and edge the output depends on, no more
    assert again.output == dag.output
    assert op_nodes_in_cone(again, again.named[again.output]) == op_nodes_in_cone(dag, output)
    try:
        original = evaluate(dag, at)
    except EvaluationError as exc:
        with pytest.raises(EvaluationError):
            evaluate(again, at)
        assert exc.kind in ("domain", "overflow")
        return
    result = evaluate(again, at, wrt=list(original.gradients))
    assert same(result.value, original.value), (text, result.value, original.value)
    assert list(result.gradients) == list(original.gradients)
    for name, gradient in original.gradients.items():
        assert same(result.gradients[name], gradient), (name, text, result.gradients[name],
                                                        gradient)
        assert same(result.values[name], original.values[name])
    # the same warnings (notes are about the question asked: here wrt is given, there not)
    assert [w.kind for w in result.warnings if w.level == "warning"] == [
        w.kind for w in original.warnings if w.level == "warning"]
    # every name the output depends on is still there, with its meaning
    assert set(original.gradients) <= set(again.named)


@SETTINGS
@given(case=programs())
def test_printing_is_a_fixed_point(case):
    program, _ = case
    text = printed(gradcalc.compile_program(program))
    assert printed(gradcalc.compile_program(text)) == text


# --- known texts ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("program", "text"),
    [
        ("OUT = A - B - C", "OUT = A - B - C\n"),
        ("OUT = A - (B - C)", "OUT = A - (B - C)\n"),
        ("OUT = A - (B + C)", "OUT = A - (B + C)\n"),
        ("OUT = (A - B) + C", "OUT = A - B + C\n"),
        ("OUT = A/B/C", "OUT = A/B/C\n"),
        ("OUT = A/(B/C)", "OUT = A/(B/C)\n"),
        ("OUT = A/(B*C)", "OUT = A/(B*C)\n"),
        ("OUT = A*(B/C)", "OUT = A*(B/C)\n"),
        ("OUT = 2^3^A", "OUT = 2^3^A\n"),
        ("OUT = (A^2)^B", "OUT = (A^2)^B\n"),
        ("OUT = (-2)^A", "OUT = (-2)^A\n"),
        ("OUT = -2^A", "OUT = -2^A\n"),
        ("OUT = (-A)^2", "OUT = (-A)^2\n"),
        ("OUT = -(A*B)", "OUT = -(A*B)\n"),
        ("OUT = (-A)*B", "OUT = -A*B\n"),
        ("OUT = -(-A)", "OUT = -(-A)\n"),
        ("OUT = A - -2", "OUT = A - -2\n"),
        ("OUT = A*(-2)", "OUT = A*-2\n"),
        ("OUT = 2^-1 + A", "OUT = 2^(-1) + A\n"),
        ("OUT = A + -pi*e", "OUT = A + -pi*e\n"),
        ("OUT = atan2(-0, A)", "OUT = atan2(-0, A)\n"),
        ("OUT = pow(A, B)", "OUT = A^B\n"),
        ("A = 2; B = A*3; OUT = (B+1)*(B+2)", "A = 2\nB = A*3\nOUT = (B + 1)*(B + 2)\n"),
        ("B = A; OUT = B*B", "B = A\nOUT = B*B\n"),
        ("OUT = B*2; B = A*3", "B = A*3\nOUT = B*2\n"),
    ],
)
def test_known_texts(program, text):
    dag = gradcalc.compile_program(program)
    assert program_text(dag, dag.named["OUT"], "OUT") == text
    at = {"A": 2.0, "B": 0.75, "C": -1.5}
    original = gradcalc.gradients(dag, at={n: x for n, x in at.items() if n in dag.inputs},
                                  of="OUT")
    result = evaluate(text, at, wrt=list(original.gradients))
    assert same(result.value, original.value)
    assert all(same(result.gradients[n], g) for n, g in original.gradients.items())


def test_shared_unnamed_subexpression_gets_a_generated_name():
    dag = gradcalc.compile_program("OUT = (A*B + 1)*(A*B + 2)")
    text = printed(dag)
    assert text == "C = A*B\nOUT = (C + 1)*(C + 2)\n"
    at = {"A": 1.5, "B": -2.0}
    original = gradcalc.gradients(dag, at=at)
    result = gradcalc.gradients(text, at=at)
    assert result.value == original.value
    assert result.gradients == {**original.gradients, "C": (1.5 * -2.0 + 2) + (1.5 * -2.0 + 1)}


def test_generated_names_avoid_taken_names():
    dag = gradcalc.compile_program("C = A*2; D = sin(B*C) + cos(B*C); OUT = D*(B*C) + C")
    text = printed(dag)
    statements = [line.split(" = ")[0] for line in text.splitlines()]
    assert len(statements) == len(set(statements))
    assert {"C", "D", "OUT"} <= set(statements)
    generated = set(statements) - {"C", "D", "OUT"}
    assert len(generated) == 1
    assert not generated & {"A", "B", "pi", "e"}
    at = {"A": 0.3, "B": -0.7}
    original = gradcalc.gradients(dag, at=at)
    result = gradcalc.gradients(text, at=at, wrt=list(original.gradients))
    assert result.value == original.value
    assert result.gradients == original.gradients


def exponential_dag(levels: int) -> Dag:
    """X = sin(X) + cos(X), ``levels`` times, unnamed: 2^levels paths from the output."""
    dag = Dag(output="OUT")
    x = dag.add(INPUT, (), None, "A", 0.3)
    dag.inputs["A"] = x
    sin, cos, add, mul = (op_named(n) for n in ("sin", "cos", "add", "mul"))
    for _ in range(levels):
        s = dag.add(sin, (x,), None)
        c = dag.add(cos, (x,), None)
        x = dag.add(add, (s, c), None)
    half = dag.add(CONST, (), None, value=0.5)
    dag.add(mul, (x, half), None, "OUT")
    return dag


def test_shared_chain_text_stays_short():
    levels = 200  # 2^200 paths
    dag = exponential_dag(levels)
    text = printed(dag)
    assert len(text) < 40 * levels
    # A = 0.3, one statement per shared level, and OUT with the last level inline
    assert len(text.splitlines()) == levels + 1
    assert text.endswith("*0.5\n")
    original = gradcalc.gradients(dag)
    result = gradcalc.gradients(text, wrt=["A"])
    assert same(result.value, original.value)
    assert same(result.gradients["A"], original.gradients["A"])


def test_long_inline_expression_is_split():
    program = "OUT = " + " + ".join(f"sin(A*{k})" for k in range(1, 400))
    dag = gradcalc.compile_program(program)
    text = printed(dag)
    assert max(map(len, text.splitlines())) < 200
    at = {"A": 0.7}
    original = gradcalc.gradients(dag, at=at)
    result = gradcalc.gradients(text, at=at, wrt=["A"])
    assert same(result.value, original.value)
    assert same(result.gradients["A"], original.gradients["A"])


def test_output_that_is_an_input():
    dag = gradcalc.compile_program("A = 2")
    assert program_text(dag, dag.named["A"], "A") == "A = 2\n"
    for name in ("A", "OUT"):
        text = program_text(dag, dag.named["A"], name)
        assert text.startswith("A = 2\n")
        result = gradcalc.gradients(text, wrt=["A"])
        assert result.value == 2.0
        assert result.gradients == {"A": 1.0}


def test_output_other_than_the_last_statement():
    dag = gradcalc.compile_program("B = A*3; C = B + 1; D = C*C")
    text = program_text(dag, dag.named["C"], "C")
    assert text == "B = A*3\nC = B + 1\n"
    assert "D" not in text


def test_negative_zero_constant_without_a_label():
    """A graph laid out from values has no source text for its constants: -0.0 must still be
    written so that it reads back as -0.0 (atan2 tells the two zeros apart)."""
    a = Value(2.0, requires_grad=True, name="A")
    out = gradcalc.atan2(a * -0.0, -1.0)
    dag = out.to_dag()
    text = program_text(dag, len(dag) - 1, "OUT")
    result = gradcalc.gradients(text)  # was "atan2(A*0, -1)": +pi
    assert same(result.value, out.data), text


def test_input_set_to_negative_zero_keeps_its_sign():
    """`S = -0` makes S an input with the value -0.0; the printed program must keep the sign."""
    dag = gradcalc.compile_program("S = -0; OUT = atan2(S, -1)")
    original = gradcalc.gradients(dag)
    assert original.value == -math.pi
    text = printed(dag)
    result = gradcalc.gradients(text)  # was "S = 0": +pi
    assert same(result.value, original.value), text
    assert same(result.inputs["S"], -0.0), text


# --- deep expressions ----------------------------------------------------------------------------

# (prefix, suffix) pairs nested inside one another: right- and left-nested operators, calls,
# powers and unary minus, every one kept within [-3, 3] or so
LAYERS = [
    ("sin(", ")"),
    ("B - (", ")"),
    ("(", " - B)/2"),
    ("max(B, ", ")"),
    ("-(", ")"),
    ("atan2(", ", 2)"),
    ("(", ")*0.9"),
    ("0.5^(", ")"),
    ("B/(2 + ", "^2)"),
    ("-(-", ")"),
    ("(", ")^3/4"),
    ("tanh(", ")"),
]


def deep_program(depth: int) -> str:
    layers = [LAYERS[i % len(LAYERS)] for i in range(depth)]
    return ("OUT = " + "".join(p for p, _ in layers) + "A"
            + "".join(s for _, s in reversed(layers)))


def test_ten_thousand_deep_expression_prints_and_reads_back():
    depth = 10_000
    program = deep_program(depth)
    dag = gradcalc.compile_program(program)
    text = printed(dag)  # no recursion: a recursive printer would exceed Python's limit
    assert len(text) < 4 * len(program)
    at = {"A": 0.4, "B": 0.3}
    original = gradcalc.gradients(dag, at=at)
    result = gradcalc.gradients(text, at=at, wrt=list(original.gradients))
    assert math.isfinite(original.value)
    assert same(result.value, original.value)
    for name, gradient in original.gradients.items():
        assert same(result.gradients[name], gradient), name
    assert op_nodes_in_cone(gradcalc.compile_program(text), gradcalc.compile_program(
        text).named["OUT"]) == op_nodes_in_cone(dag, dag.named["OUT"])


def test_ten_thousand_deep_calls_print_and_read_back():
    depth = 10_000
    dag = gradcalc.compile_program("OUT = " + "sin(" * depth + "A" + ")" * depth)
    text = printed(dag)
    result = gradcalc.gradients(text, at={"A": 1.0}, wrt=["A"])
    original = gradcalc.gradients(dag, at={"A": 1.0})
    assert same(result.value, original.value)
    assert same(result.gradients["A"], original.gradients["A"])
