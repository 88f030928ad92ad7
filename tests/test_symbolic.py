"""Symbolic gradients: exact formulas, the ops' symbolic rules, round trips through gradcalc's own
grammar, Hessians, SymPy as an independent oracle, output size and deep inputs.

SymPy is used here only as an oracle (it is never imported by gradcalc itself).
"""

from __future__ import annotations

import json
import math
import time
import tracemalloc
from collections.abc import Container
from dataclasses import dataclass
from fractions import Fraction

import pytest
import sympy
from helpers import DOMAINS, SETTINGS, close, property_settings, run
from hypothesis import assume, example, given
from hypothesis import strategies as st
from sympy.parsing.sympy_parser import parse_expr

import gradcalc
from gradcalc import engine
from gradcalc.algebra import Algebra
from gradcalc.api import leaf_values
from gradcalc.derivatives import check_gradients, hessian, jacobian
from gradcalc.errors import GradcalcError
from gradcalc.ops import CONSTANTS as NAMED_CONSTANTS
from gradcalc.ops import FUNCTIONS, OPS, op_named
from gradcalc.symbolic import symbolic_gradients

EVAL_FUNCTIONS = {name: op.forward for name, op in FUNCTIONS.items()}


def formulas(program: str, **kwargs) -> dict[str, str]:
    return {n: f.text for n, f in gradcalc.gradients(program, **kwargs).formulas.items()}


def evaluate_text(text: str, at: dict[str, float]) -> float:
    """A printed formula (expression or program) evaluated by gradcalc itself: its output is
    the last statement."""
    dag = gradcalc.compile_program(text, "<formula>")
    # (a formula that is a number, "1", is a program whose output OUT is itself an input)
    given = {n: v for n, v in at.items() if n in dag.inputs and n != dag.output}
    value = gradcalc.gradients(dag, at=given).value
    assert value is not None
    return value


# =============================================================================================
# Exact formulas
# =============================================================================================

def test_linear_gradients_are_exact_constants():
    r = gradcalc.gradients("OUT = A*2 + B*3")
    assert r.gradients == {"A": 2.0, "B": 3.0}
    assert {n: f.text for n, f in r.formulas.items()} == {"A": "2", "B": "3"}
    assert all(f.constant and f.bindings == () for f in r.formulas.values())
    assert r.value is None  # the output itself needs A and B


def test_seed_program_without_values():
    assert formulas("B = A*3; OUT = (B+1)*(B+2)", wrt=["A"]) == {"A": "18*A + 9"}
    # B = 3*A is a small polynomial: substituted, not kept as a binding.
    assert formulas("B = A*3; OUT = (B+1)*(B+2)") == {"A": "18*A + 9", "B": "6*A + 3"}


def test_seed_program_symbolic_with_values_gives_formula_and_number():
    r = gradcalc.gradients("B = A*3; OUT = (B+1)*(B+2)", at={"A": 2}, symbolic=True)
    assert r.formulas["A"].text == "18*A + 9"
    assert r.formulas["A"].value == 45.0 == r.gradients["A"]
    assert r.formulas["B"].value == 15.0 == r.gradients["B"]


def test_division_by_a_constant_is_an_exact_fraction():
    r = gradcalc.gradients("OUT = A/3")
    assert r.formulas["A"].text == "1/3"
    assert r.formulas["A"].constant
    assert r.gradients["A"] == 1 / 3
    assert formulas("OUT = A/3*B") == {"A": "B/3", "B": "A/3"}
    assert formulas("OUT = A*0.5 - B/4") == {"A": "1/2", "B": "-1/4"}


def test_product_with_a_function():
    assert formulas("OUT = sin(A)*B") == {"A": "B*cos(A)", "B": "sin(A)"}


def test_canonical_order_of_terms():
    # Decreasing degree; within a degree by the atoms' text; the constant last.
    assert formulas("OUT = A^3*B + B^2*A + A + 7", wrt=["A"]) == {"A": "3*A^2*B + B^2 + 1"}
    assert formulas("OUT = (A + B)^2", wrt=["A"]) == {"A": "2*(A + B)"}
    # a product of sums stays a product (shorter than multiplied out)
    assert formulas("OUT = (A + 1)*(B - 2)*C", wrt=["C"]) == {"C": "(A + 1)*(B - 2)"}


def test_sqrt_gradient_is_a_reciprocal():
    assert formulas("OUT = sqrt(A)*1") == {"A": "1/(2*sqrt(A))"}


@pytest.mark.parametrize(("program", "expected"), [
    ("OUT = abs(A)", {"A": "sign(A)"}),
    ("OUT = relu(A)", {"A": "heaviside(A, 0)"}),
    ("OUT = max(A, B)", {"A": "heaviside(A - B, 1/2)", "B": "heaviside(B - A, 1/2)"}),
    ("OUT = min(A, B)", {"A": "heaviside(B - A, 1/2)", "B": "heaviside(A - B, 1/2)"}),
])
def test_kinks_are_written_exactly(program, expected):
    assert formulas(program) == expected


@pytest.mark.parametrize(("program", "at", "expected"), [
    # PyTorch's conventions at the kinks, obtained by *evaluating* the printed formulas.
    ("OUT = abs(A)", {"A": 0.0}, {"A": 0.0}),          # sign(0) = 0
    ("OUT = abs(A)", {"A": -2.0}, {"A": -1.0}),
    ("OUT = relu(A)", {"A": 0.0}, {"A": 0.0}),         # heaviside(0, 0) = 0
    ("OUT = relu(A)", {"A": 3.0}, {"A": 1.0}),
    ("OUT = max(A, B)", {"A": 1.0, "B": 1.0}, {"A": 0.5, "B": 0.5}),  # heaviside(0, 1/2)
    ("OUT = max(A, B)", {"A": 2.0, "B": 1.0}, {"A": 1.0, "B": 0.0}),
    ("OUT = min(A, B)", {"A": -1.0, "B": -1.0}, {"A": 0.5, "B": 0.5}),
    ("OUT = min(A, B)", {"A": 2.0, "B": 1.0}, {"A": 0.0, "B": 1.0}),
])
def test_kink_conventions_hold_through_evaluation(program, at, expected):
    r = gradcalc.gradients(program, at=at, symbolic=True)
    assert {n: f.value for n, f in r.formulas.items()} == expected
    assert r.gradients == expected  # the numeric engine agrees
    for name, formula in r.formulas.items():  # and so does gradcalc on the printed text
        assert evaluate_text(formula.text, at) == expected[name]


def test_sign_and_heaviside_functions_follow_numpy():
    X = Algebra()
    a, h = X.symbol("A"), X.symbol("H")
    sign, step = X.call("sign", a), X.call("heaviside", a, h)
    for x, s in ((0.0, 0.0), (-0.0, 0.0), (2.0, 1.0), (-3.0, -1.0)):
        assert X.evaluate(sign, {"A": x}, EVAL_FUNCTIONS) == s
        assert gradcalc.gradients("OUT = sign(A)", at={"A": x}).value == s
    for x, hv, v in ((0.0, 0.25, 0.25), (0.0, 0.0, 0.0), (1.0, 0.25, 1.0), (-1.0, 0.25, 0.0)):
        assert X.evaluate(step, {"A": x, "H": hv}, EVAL_FUNCTIONS) == v
    # Exact folding at exact arguments.
    assert X.text(X.call("sign", X.number(0))) == "0"
    assert X.text(X.call("heaviside", X.number(0), X.number(Fraction(1, 2)))) == "1/2"
    assert X.text(X.call("heaviside", X.number(-3), X.number(Fraction(1, 2)))) == "0"
    # Their own derivatives: 0 for sign; heaviside's is 1 in h exactly at x = 0.
    assert formulas("OUT = sign(A)*B", wrt=["A"]) == {"A": "0"}
    assert formulas("OUT = heaviside(A, H)", wrt=["H"]) == {"H": "1 - abs(sign(A))"}
    r = gradcalc.gradients("OUT = heaviside(A, H)", at={"A": 0, "H": 0.3}, symbolic=True)
    assert r.formulas["H"].value == 1.0 == r.gradients["H"]


def test_gradient_of_a_polynomial_with_a_binding_kept():
    r = gradcalc.gradients("X1 = sin(X0) + cos(X0); OUT = X1*X1", wrt=["X0"], at={"X0": 0.5},
                           symbolic=True)
    f = r.formulas["X0"]
    assert f.text == "X1 = cos(X0) + sin(X0); 2*X1*(cos(X0) - sin(X0))"
    assert f.bindings == ("X1",)
    assert close(f.value, r.gradients["X0"])
    assert close(evaluate_text(f.text, {"X0": 0.5}), r.gradients["X0"])


# =============================================================================================
# Command line
# =============================================================================================

def test_cli_plain_constants():
    r = run("OUT = A*2 + B*3")
    assert (r.exit_code, r.stdout) == (0, "A 2\nB 3\n")


def test_cli_formula_without_values():
    r = run("B = A*3; OUT = (B+1)*(B+2)", "--wrt", "A")
    assert (r.exit_code, r.stdout) == (0, "A 18*A + 9\n")


def test_cli_symbolic_with_values_plain_and_json():
    r = run("OUT = sin(A)*B", "--symbolic", "--at", "A=1", "--at", "B=2")
    assert r.exit_code == 0
    assert r.stdout == "A B*cos(A)\nB sin(A)\n"
    r = run("OUT = sin(A)*B", "--symbolic", "--at", "A=1,B=2", "--format", "json")
    data = json.loads(r.stdout)
    assert data["gradients"] == {"A": "B*cos(A)", "B": "sin(A)"}
    assert data["gradient_values"] == {"A": 2 * math.cos(1.0), "B": math.sin(1.0)}
    # Only A has a value: the formula of A needs B, so only B's value is known.
    r = run("OUT = sin(A)*B", "--symbolic", "--at", "A=1", "--format", "json")
    data = json.loads(r.stdout)
    assert data["gradients"] == {"A": "B*cos(A)", "B": "sin(A)"}
    assert data["gradient_values"] == {"A": None, "B": math.sin(1.0)}


def test_cli_symbolic_table_shows_formula_and_value():
    r = run("OUT = sin(A)*B", "--symbolic", "--at", "A=1", "--format", "table")
    assert r.exit_code == 0
    rows = {line.split()[0]: line.split() for line in r.stdout.splitlines() if line.strip()}
    assert rows["A"][1:] == ["1", "B*cos(A)"]  # needs B: no value
    assert rows["B"][1:] == ["?", "sin(A)", repr(math.sin(1.0))]
    assert "= at the given values" in r.stdout
    r = run("OUT = sin(A)*B", "--symbolic", "--at", "A=1,B=2", "--format", "table")
    assert r.exit_code == 0
    assert "B*cos(A)" in r.stdout and "sin(A)" in r.stdout
    assert repr(2 * math.cos(1.0)) in r.stdout and repr(math.sin(1.0)) in r.stdout


def test_cli_json_without_values_has_formula_strings():
    r = run("OUT = A*2 + B*3", "--format", "json")
    data = json.loads(r.stdout)
    assert data["gradients"] == {"A": 2, "B": 3}
    assert "gradient_values" not in data
    r = run("B = A*3; OUT = (B+1)*(B+2)", "--format", "json")
    data = json.loads(r.stdout)
    assert data["gradients"] == {"A": "18*A + 9", "B": "6*A + 3"}
    assert data["value"] is None
    r = run("OUT = A*2 + B*3", "--format", "json", "--symbolic")
    data = json.loads(r.stdout)
    assert data["gradients"] == {"A": "2", "B": "3"}
    assert data["gradient_values"] == {"A": 2, "B": 3}


def test_cli_hessian_numbers_and_formulas():
    r = run("OUT = A^3*B", "--hessian", "--at", "A=2,B=3", "--format", "json")
    assert r.exit_code == 0
    data = json.loads(r.stdout)
    assert data == {"wrt": ["A", "B"], "hessian": [[36, 12], [12, 0]], "warnings": []}
    r = run("OUT = A^3*B", "--hessian", "--format", "json")
    assert json.loads(r.stdout)["hessian"] == [["6*A*B", "3*A^2"], ["3*A^2", 0]]
    r = run("OUT = A^3*B", "--hessian", "--format", "plain")
    assert r.stdout == "A A 6*A*B\nA B 3*A^2\nB A 3*A^2\nB B 0\n"


def test_hessian_api():
    m = hessian("OUT = A^3*B", at={"A": 2, "B": 3})
    assert m.entries == {"A": {"A": 36.0, "B": 12.0}, "B": {"A": 12.0, "B": 0.0}}
    m = hessian("OUT = A^3*B")
    assert m.entries == {"A": {"A": "6*A*B", "B": "3*A^2"}, "B": {"A": "3*A^2", "B": 0.0}}
    m = hessian("OUT = sin(A)*B", at={"A": 1.0, "B": 2.0})
    assert close(m.entries["A"]["A"], -2 * math.sin(1.0))
    assert close(m.entries["A"]["B"], math.cos(1.0)) and close(m.entries["B"]["A"], math.cos(1.0))


def test_cli_several_outputs_give_a_jacobian():
    r = run("U = A*B; V = A + sin(B)", "--of", "U", "--of", "V", "--format", "json")
    assert r.exit_code == 0
    data = json.loads(r.stdout)
    assert data["outputs"] == ["U", "V"] and data["wrt"] == ["A", "B"]
    assert data["jacobian"] == {"U": {"A": "B", "B": "A"}, "V": {"A": 1, "B": "cos(B)"}}
    r = run("U = A*B; V = A + sin(B)", "--of", "U,V", "--at", "A=2,B=0", "--format", "json")
    assert json.loads(r.stdout)["jacobian"] == {"U": {"A": 0, "B": 2}, "V": {"A": 1, "B": 1}}
    m = jacobian("U = A*B; V = A + sin(B)", ["U", "V"], at={"A": 2, "B": 0})
    assert m.entries == {"U": {"A": 0.0, "B": 2.0}, "V": {"A": 1.0, "B": 1.0}}


def test_cli_check_passes_on_smooth_functions():
    r = run("OUT = sin(A)*B + exp(A/B)", "--check", "--at", "A=0.7,B=1.3")
    assert r.exit_code == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["A", "B"]
    assert all(line.endswith(" ok") for line in lines)
    checks = check_gradients("OUT = tanh(A)^2*log(B)", at={"A": 0.3, "B": 2.0})
    assert all(c.ok for c in checks) and len(checks) == 2


def test_cli_check_fails_at_a_relu_kink():
    r = run("OUT = relu(A)", "--check", "--at", "A=0")
    assert r.exit_code == 1
    assert "FAIL" in r.stdout
    r = run("OUT = relu(A)", "--check", "--at", "A=0", "--format", "json")
    data = json.loads(r.stdout)
    assert r.exit_code == 1
    assert data["check"][0]["ok"] is False
    assert data["check"][0]["gradient"] == 0 and data["check"][0]["finite_difference"] == 0.5


# =============================================================================================
# Every op's symbolic rule against its numeric partials
# =============================================================================================

RULED = [op for op in OPS if op.rule is not None]


def test_every_callable_op_has_a_rule():
    assert {op.name for op in OPS if op.rule is None} == {"input", "const"}
    assert {op.name for op in RULED} <= set(DOMAINS)


def _rule_values(op, point: tuple[float, ...], result_as_symbol: bool) -> list[float | str]:
    """The op's symbolic rule evaluated at ``point``: one number per partial, or the text of
    the error where the printed partial cannot be evaluated there."""
    X = Algebra()
    names = [f"x{i}" for i in range(op.arity)]
    operands = [X.symbol(n) for n in names]
    values = {**NAMED_CONSTANTS, **dict(zip(names, point, strict=True))}  # erf's rule has pi
    if result_as_symbol:  # as for a named value: the rule sees the name's symbol
        y = X.symbol("y")
        values["y"] = op.forward(*point)
    else:  # as for an unnamed value: the rule sees the op's own expression
        y = (getattr(X, op.algebra)(*operands) if op.algebra is not None
             else X.call(op.name, *operands))
    partials = op.rule(X, *operands, y)
    assert len(partials) == op.arity
    out: list[float | str] = []
    for p in partials:
        gradcalc.compile_program(X.text(p))  # every printed rule parses with the grammar
        try:
            out.append(X.evaluate(p, values, EVAL_FUNCTIONS))
        except (ValueError, ZeroDivisionError, OverflowError) as exc:
            out.append(f"{X.text(p)} cannot be evaluated: {type(exc).__name__}: {exc}")
    return out


@pytest.mark.parametrize("name", [op.name for op in RULED])
@SETTINGS
@given(data=st.data())
def test_rule_matches_numeric_partials(name, data):
    op = op_named(name)
    point = data.draw(DOMAINS[name], label="operands")
    result = op.forward(*point)
    numeric = op.partials(*point, result)
    # Canonical forms multiply out: sigmoid's y*(1 - y) is y - y^2 for a named y, which
    # cancels where y is near 1 (rounding of y^2: about 1e-16 absolute).
    cancellation = 1e-15 * max(1.0, abs(result)) ** 2
    for as_symbol in (False, True):
        symbolic = _rule_values(op, point, as_symbol)
        for i, (s, n) in enumerate(zip(symbolic, numeric, strict=True)):
            assert isinstance(s, float), (name, as_symbol, point, i, s)
            assert math.isclose(s, n, rel_tol=1e-9, abs_tol=cancellation), (
                name, as_symbol, point, i, s, n)


@pytest.mark.parametrize(("name", "point", "which"), [
    ("abs", (0.0,), None), ("relu", (0.0,), None), ("max", (1.5, 1.5), None),
    ("min", (-2.0, -2.0), None), ("sign", (0.0,), None), ("heaviside", (0.0, 0.3), None),
    ("heaviside", (0.0, 0.0), None), ("max", (2.0, 1.0), None), ("min", (2.0, 1.0), None),
    ("abs", (-3.0,), None), ("relu", (-1.0,), None),
    # pow with a negative base and a whole exponent: d/d(base) only (d/d(exponent) is nan)
    ("pow", (-2.0, 3.0), 0),
    # x^0 is constant in x, so d/d(base) = 0 at a zero base too. (d/d(exponent) at a zero
    # base is 0 by PyTorch's convention in the numbers; its formula y*log(x) has no value
    # there: see test_pow_formula_at_a_zero_base.)
    ("pow", (0.0, 2.0), 0), ("pow", (0.0, 3.0), 0),
    # PyTorch's conventions (tests/test_ops.py): leaky_relu'(0) is the slope; clamp gives x
    # the gradient on a bound, lo only below lo < hi, hi above hi or where hi < lo
    ("leaky_relu", (0.0, 0.1), None), ("leaky_relu", (0.0, -0.5), None),
    ("leaky_relu", (-2.0, 0.2), None), ("clamp", (0.0, 0.0, 1.0), None),
    ("clamp", (1.0, 0.0, 1.0), None), ("clamp", (1.0, 1.0, 1.0), None),
    ("clamp", (0.0, 1.0, 1.0), None), ("clamp", (2.0, 1.0, 1.0), None),
    ("clamp", (1.0, 1.0, 0.0), None), ("clamp", (-1.0, 0.0, 1.0), None),
    # differentiable, with a rule in two pieces (elu) or through abs (softsign) at 0
    ("elu", (0.0,), None), ("softsign", (0.0,), None), ("gelu", (0.0,), None),
])
def test_rule_matches_numeric_partials_at_kinks(name, point, which):
    op = op_named(name)
    numeric = list(op.partials(*point, op.forward(*point)))
    for as_symbol in (False, True):
        got = _rule_values(op, point, as_symbol)
        if which is None:
            assert got == numeric, (name, point, as_symbol)
        else:
            assert got[which] == numeric[which], (name, point, as_symbol)


# The newer functions' rules against SymPy: each partial as printed, read back by SymPy, is
# SymPy's derivative of the function's definition (PyTorch's, for the activations), compared
# at 30 digits where the function is smooth.
def _sympy_cbrt(x: sympy.Expr) -> sympy.Expr:
    return sympy.sign(x) * sympy.Abs(x) ** sympy.Rational(1, 3)


def _sympy_hypot(a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
    return sympy.sqrt(a**2 + b**2)


SYMPY_DEFINITIONS = {
    "log1p": lambda x: sympy.log(1 + x),
    "expm1": lambda x: sympy.exp(x) - 1,
    "cbrt": _sympy_cbrt,
    "hypot": _sympy_hypot,
    "erf": sympy.erf,
    "erfc": sympy.erfc,
    "asinh": sympy.asinh,
    "acosh": sympy.acosh,
    "atanh": sympy.atanh,
    "gelu": lambda x: x * (1 + sympy.erf(x / sympy.sqrt(2))) / 2,
    "silu": lambda x: x / (1 + sympy.exp(-x)),
    "elu": lambda x: sympy.Piecewise((x, x > 0), (sympy.exp(x) - 1, True)),
    "leaky_relu": lambda x, s: sympy.Piecewise((x, x > 0), (s * x, True)),
    "clamp": lambda x, lo, hi: sympy.Min(sympy.Max(x, lo), hi),
    "softsign": lambda x: x / (1 + sympy.Abs(x)),
}

#: What the printed rules call, for SymPy.
RULE_FUNCTIONS = {
    "exp": sympy.exp, "log": sympy.log, "sqrt": sympy.sqrt, "abs": sympy.Abs,
    "erf": sympy.erf, "erfc": sympy.erfc, "min": sympy.Min, "pi": sympy.pi,
    "sigmoid": lambda x: 1 / (1 + sympy.exp(-x)), "heaviside": sympy.Heaviside,
    "cbrt": _sympy_cbrt, "hypot": _sympy_hypot,
}


def test_every_new_function_has_a_sympy_definition():
    new = {"log1p", "expm1", "cbrt", "hypot", "erf", "erfc", "asinh", "acosh", "atanh", "gelu",
           "silu", "elu", "leaky_relu", "clamp", "softsign"}
    assert new <= set(DOMAINS) and set(SYMPY_DEFINITIONS) == new


@pytest.mark.parametrize("name", sorted(SYMPY_DEFINITIONS))
@property_settings(15)
@given(data=st.data())
def test_new_rules_match_sympy(name, data):
    op = op_named(name)
    point = data.draw(DOMAINS[name], label="operands")
    X = Algebra()
    names = [f"x{i}" for i in range(op.arity)]
    operands = [X.symbol(n) for n in names]
    symbols = sympy.symbols(names, real=True)  # (Abs's derivative: sign)
    theirs = SYMPY_DEFINITIONS[name](*symbols)
    at = {s: sympy.Float(repr(v), 30) for s, v in zip(symbols, point, strict=True)}
    local = {**RULE_FUNCTIONS, **dict(zip(names, symbols, strict=True))}
    for i, partial in enumerate(op.rule(X, *operands, X.call(name, *operands))):
        text = X.text(partial)
        ours = parse_expr(text.replace("^", "**"), local_dict=local)
        expected = complex(sympy.diff(theirs, symbols[i]).evalf(30, subs=at))
        got = complex(ours.evalf(30, subs=at))
        assert abs(got - expected) <= 1e-20 * max(1.0, abs(expected)), (
            name, point, i, text, got, expected)


# =============================================================================================
# Random programs
# =============================================================================================

INPUTS = ("A", "B", "C")
CONSTANTS = ("2", "3", "0.5", "1.5", "7", "0.25")
UNARY = ("sin", "cos", "exp", "tanh", "log1", "log2")


@dataclass(frozen=True)
class Node:
    kind: str  # "name", "num", "add", "sub", "mul", "div", "pow" or a function
    args: tuple[Node, ...] = ()
    text: str = ""  # the name or the number's text; the constant divisor; the exponent


BINARY = ("add", "sub", "mul")


@st.composite
def expressions(draw, names: tuple[str, ...], polynomial: bool, depth: int) -> Node:
    """A random expression; leaves are mostly names, half of them the newest name (so
    statements chain, and earlier names are used again: diamonds)."""
    if depth == 0 or draw(st.integers(0, 9)) == 0:
        if draw(st.integers(0, 5)) == 0:
            return Node("num", text=draw(st.sampled_from(CONSTANTS)))
        name = names[-1] if draw(st.booleans()) else draw(st.sampled_from(names))
        return Node("name", text=name)
    kinds = [*BINARY, *BINARY, "div", "pow"] + ([] if polynomial else [*UNARY, *UNARY])
    kind = draw(st.sampled_from(kinds))
    a = draw(expressions(names, polynomial, depth - 1))
    if kind in BINARY:
        return Node(kind, (a, draw(expressions(names, polynomial, depth - 1))))
    if kind == "div":
        return Node(kind, (a,), draw(st.sampled_from(CONSTANTS)))
    if kind == "pow":
        # Exponent 0 included: with a base that folds to exactly 0, (A - A)^0, it once
        # crashed the symbolic pass (see also test_exact_zero_bases_do_not_crash).
        return Node(kind, (a,), draw(st.sampled_from("0123")))
    return Node(kind, (a,))


def gc_text(node: Node) -> str:
    """gradcalc syntax (operators parenthesised)."""
    k, a = node.kind, node.args
    if k in ("name", "num"):
        return node.text
    if k in ("add", "sub", "mul"):
        sign = {"add": "+", "sub": "-", "mul": "*"}[k]
        return f"({gc_text(a[0])} {sign} {gc_text(a[1])})"
    if k == "div":
        return f"({gc_text(a[0])} / {node.text})"
    if k == "pow":
        return f"({gc_text(a[0])})^{node.text}"
    if k == "log1":
        return f"log(1 + ({gc_text(a[0])})^2)"  # the log of positive things
    if k == "log2":
        return f"log(2 + sin({gc_text(a[0])}))"
    return f"{k}({gc_text(a[0])})"


def sympy_expr(node: Node, env: dict[str, sympy.Expr]) -> sympy.Expr:
    k, a = node.kind, node.args
    if k == "name":
        return env[node.text]
    if k == "num":
        return sympy.Rational(node.text)
    if k == "add":
        return sympy_expr(a[0], env) + sympy_expr(a[1], env)
    if k == "sub":
        return sympy_expr(a[0], env) - sympy_expr(a[1], env)
    if k == "mul":
        return sympy_expr(a[0], env) * sympy_expr(a[1], env)
    if k == "div":
        return sympy_expr(a[0], env) / sympy.Rational(node.text)
    if k == "pow":
        return sympy_expr(a[0], env) ** int(node.text)
    x = sympy_expr(a[0], env)
    if k == "log1":
        return sympy.log(1 + x**2)
    if k == "log2":
        return sympy.log(2 + sympy.sin(x))
    return {"sin": sympy.sin, "cos": sympy.cos, "exp": sympy.exp, "tanh": sympy.tanh}[k](x)


@dataclass(frozen=True)
class RandomProgram:
    statements: tuple[tuple[str, Node], ...]  # the last one is OUT
    polynomial: bool

    @property
    def text(self) -> str:
        return "\n".join(f"{name} = {gc_text(node)}" for name, node in self.statements)

    def degree_bound(self) -> int:
        """An upper bound of OUT's degree as a polynomial (for polynomial programs)."""
        degrees: dict[str, int] = {n: 1 for n in INPUTS}

        def bound(node: Node) -> int:
            k, a = node.kind, node.args
            if k == "name":
                return degrees[node.text]
            if k == "num":
                return 0
            if k in ("add", "sub"):
                return max(bound(a[0]), bound(a[1]))
            if k == "mul":
                return bound(a[0]) + bound(a[1])
            if k == "pow":
                return bound(a[0]) * int(node.text)
            return bound(a[0])

        for name, node in self.statements:
            degrees[name] = bound(node)
        return degrees["OUT"]

    def sympy_output(self, inputs) -> sympy.Expr:
        """OUT in SymPy; ``inputs`` are the names gradcalc takes as inputs (including names
        set to a number in the program, ``V1 = 2``: they stay symbols)."""
        env: dict[str, sympy.Expr] = {n: sympy.Symbol(n) for n in INPUTS}
        for name, node in self.statements:
            env[name] = sympy.Symbol(name) if name in inputs else sympy_expr(node, env)
        return env["OUT"]


@st.composite
def programs(draw, polynomial: bool | None = None) -> RandomProgram:
    if polynomial is None:
        polynomial = draw(st.booleans())
    inputs = tuple(draw(st.lists(st.sampled_from(INPUTS), min_size=1, max_size=3,
                                 unique=True)))
    names: tuple[str, ...] = inputs
    statements: list[tuple[str, Node]] = []
    count = draw(st.integers(1, 6))
    for i in range(count):
        name = "OUT" if i == count - 1 else f"V{i + 1}"
        depth = draw(st.integers(1, 4))
        node = draw(expressions(names, polynomial, depth))
        statements.append((name, node))
        names = (*names, name)
    return RandomProgram(tuple(statements), polynomial)


points = st.fixed_dictionaries({n: st.floats(-2, 2, allow_nan=False) for n in INPUTS})


def numeric(program: RandomProgram, point: dict[str, float]):
    """The engine's gradients (symbolic too), or ``None`` to reject the example (a program
    that cannot be evaluated there, or whose numbers are too big for a fair comparison)."""
    try:
        dag = gradcalc.compile_program(program.text)
    except GradcalcError:
        return None  # e.g. a statement that uses no name at all ... still a program
    at = {n: v for n, v in point.items() if n in dag.inputs}
    try:
        # The generated program's output is its last statement, OUT, also where OUT is an
        # input (OUT = 2) and the default output is therefore another name.
        r = gradcalc.gradients(dag, at=at, of="OUT", symbolic=True)
    except GradcalcError:
        return None
    magnitudes = [abs(v) for v in [*r.node_values, *r.node_gradients] if v is not None]
    if not all(math.isfinite(m) and m < 1e8 for m in magnitudes):
        return None
    return dag, at, r


def scale_of(r) -> float:
    """Rounding in a formula grows with the sizes of the terms it adds up: bound them by the
    numbers the engine met."""
    big = max([1.0, *(abs(v) for v in r.node_values if v is not None)])
    grad = max([1.0, *(abs(g) for g in r.node_gradients if g is not None)])
    return big * grad


@SETTINGS
@given(program=programs(), point=points)
def test_random_programs_formula_value_and_round_trip(program, point):
    found = numeric(program, point)
    assume(found is not None)
    dag, at, r = found
    assert set(r.formulas) == set(r.gradients)
    scale = scale_of(r)
    for name, formula in r.formulas.items():
        expected = r.gradients[name]
        # (a) the formula's value is the engine's number
        assert formula.value is not None, (program.text, name, formula.text)
        assert close(formula.value, expected, abs_tol=1e-9 * scale), (
            program.text, at, name, formula.text, formula.value, expected)
        # (b) the text parses with gradcalc's own grammar and evaluates to the same number
        parsed = gradcalc.compile_program(formula.text, "<formula>")
        # (a constant formula is a program whose output is a leaf: an input with a value)
        assert set(parsed.inputs) - {parsed.output} <= set(dag.inputs), (
            formula.text, parsed.inputs)
        again = evaluate_text(formula.text, r.inputs)  # with values set in the program too
        assert close(again, expected, abs_tol=1e-9 * scale), (
            program.text, at, name, formula.text, again, expected)
        # the bindings it reports are the statements before the gradient
        statements = formula.text.split("; ")
        bound = [s.split(" = ")[0] for s in statements[:-1]]
        assert set(formula.bindings) <= set(bound)
        assert " = " not in statements[-1]


@SETTINGS
@given(program=programs(), point=points)
def test_random_programs_hessian(program, point):
    found = numeric(program, point)
    assume(found is not None)
    dag, at, r = found
    output = dag.named["OUT"]
    names = [n for n, i in dag.inputs.items() if i in _cone(dag) and i != output]
    assume(names)
    # At a kink or a pole (a warning, an infinite gradient) there is no second derivative.
    assume(not r.warnings and all(math.isfinite(g) for g in r.gradients.values()))
    try:
        m = hessian(dag, at=at, of="OUT")
    except GradcalcError as exc:  # the formula cannot be evaluated where the program can
        raise AssertionError(f"hessian failed on {program.text!r} at {at}: {exc}") from exc
    assert m.rows == m.columns == names
    H = [[m.entries[i][j] for j in names] for i in names]
    assert all(isinstance(v, float) for row in H for v in row), H
    size = max([1.0, *(abs(v) for row in H for v in row)])
    # Finite differences of the gradient lose their accuracy where the curvature itself
    # changes fast (exp(exp(...))): keep to moderate second derivatives.
    assume(size < 1e5)
    for i in range(len(names)):
        for j in range(i):
            assert close(H[i][j], H[j][i], abs_tol=1e-9 * size * scale_of(r)), (program.text, at, H)
    # central finite differences of the numeric gradient
    known = dict(r.inputs)  # the point, with the values set in the program
    def estimates(column: str, h: float) -> dict[str, float] | None:
        up, down = dict(known), dict(known)
        up[column] += h
        down[column] -= h
        step = up[column] - down[column]
        try:
            g_up = gradcalc.gradients(dag, at=up, wrt=names, of="OUT").gradients
            g_down = gradcalc.gradients(dag, at=down, wrt=names, of="OUT").gradients
        except GradcalcError:
            return None
        return {row: (g_up[row] - g_down[row]) / step for row in names}

    for j, column in enumerate(names):
        h = 1e-5 * max(1.0, abs(known[column]))
        coarse, fine = estimates(column, h), estimates(column, h / 10)
        if coarse is None or fine is None:
            continue
        for i, row in enumerate(names):
            tolerance = 1e-4 * max(1.0, abs(H[i][j]), abs(fine[row])) + \
                1e-9 * scale_of(r) / h
            if abs(coarse[row] - fine[row]) > tolerance:
                continue  # the difference quotient has not settled: no oracle here
            assert abs(H[i][j] - fine[row]) <= tolerance, (
                program.text, at, row, column, H[i][j], fine[row])


def _cone(dag):
    from gradcalc.engine import cone

    within = cone(dag, [dag.named["OUT"]])
    return {i for i in range(len(within)) if within[i]}


SYMPY_FUNCTIONS = {
    "sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan, "exp": sympy.exp,
    "tanh": sympy.tanh, "sinh": sympy.sinh, "cosh": sympy.cosh, "log": sympy.log,
    "sqrt": sympy.sqrt, "abs": sympy.Abs, "sign": sympy.sign, "pow": lambda a, b: a**b,
    "heaviside": lambda x, h: sympy.Heaviside(x, h),
}


def sympy_of_formula(text: str, inputs: Container[str] = ()) -> sympy.Expr:
    """Our printed formula read by SymPy (``^`` as ``**``); bindings substituted, except the
    statements that set one of the program's ``inputs`` to its number (a formula program is
    self-contained: ``V1 = 2; V1``), which stay symbols, as in SymPy's own derivative."""
    env: dict[str, object] = dict(SYMPY_FUNCTIONS)
    statements = text.split("; ")
    value = None
    for statement in statements:
        name, sep, expr = statement.partition(" = ")
        source = expr if sep else name
        names = {t for t in _identifiers(source) if t not in env}
        env.update({n: sympy.Symbol(n) for n in names})
        value = parse_expr(source.replace("^", "**"), local_dict=env)
        if sep and name not in inputs:
            env[name] = value
    return value


def _identifiers(text: str) -> set[str]:
    import re

    return set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))


@SETTINGS
@given(program=programs(), point=points)
def test_random_programs_against_sympy(program, point):
    found = numeric(program, point)
    assume(found is not None)
    dag, at, r = found
    out = program.sympy_output(dag.inputs)
    for name in INPUTS:
        if name not in r.formulas:
            continue
        theirs = sympy.diff(out, sympy.Symbol(name))
        subs = {sympy.Symbol(n): sympy.Float(v, 30) for n, v in r.inputs.items()}
        true = complex(theirs.evalf(30, subs=subs))
        assert abs(true.imag) < 1e-20
        ours = r.formulas[name].value
        assert close(ours, true.real, abs_tol=1e-9 * scale_of(r)), (
            program.text, at, name, r.formulas[name].text, ours, str(theirs))
        if program.polynomial:
            assert_same_polynomial(
                program, sympy_of_formula(r.formulas[name].text, dag.inputs), theirs)


@SETTINGS
@given(program=programs(polynomial=True))
@example(
    program=RandomProgram(statements=(('V1',
       Node(kind='num', args=(), text='2')),
      ('V2', Node(kind='name', args=(), text='A')),
      ('OUT', Node(kind='num', args=(), text='2'))),
     polynomial=True),
)  # OUT is an input here: the default output is V2, not OUT
def test_random_polynomials_exactly_against_sympy_without_values(program):
    try:
        dag = gradcalc.compile_program(program.text)
        r = gradcalc.gradients(dag, of="OUT")  # the generated program's output
    except GradcalcError:
        assume(False)
        raise
    out = program.sympy_output(dag.inputs)
    for name in INPUTS:
        if name in dag.inputs and name in r.formulas:
            theirs = sympy.diff(out, sympy.Symbol(name))
            ours = sympy_of_formula(r.formulas[name].text, dag.inputs)
            assert_same_polynomial(program, ours, theirs)


EXPAND_DEGREE = 12  # above this, multiplying out in SymPy can take minutes


def assert_same_polynomial(program: RandomProgram, ours: sympy.Expr,
                           theirs: sympy.Expr) -> None:
    """Exactly equal: ``expand(ours - theirs) == 0``; for high degrees, exact rational values
    at a few points (without multiplying out) instead."""
    if program.degree_bound() <= EXPAND_DEGREE:
        difference = sympy.expand(ours - theirs)
        assert difference == 0, (program.text, str(ours), str(theirs), str(difference))
        return
    symbols = sorted(ours.free_symbols | theirs.free_symbols, key=str)
    third = sympy.Rational(1, 3)
    for point in ((3, -2, 5, 7, 11, 13, 17, 19, 23), (third, 2, -1, 4, 1, 2, -3, third, 5)):
        subs = dict(zip(symbols, point[:len(symbols)], strict=True))
        assert ours.xreplace(subs) == theirs.xreplace(subs), (program.text, subs)


# =============================================================================================
# Exact zeros, exact huge numbers, and pow at a zero base
# =============================================================================================

@pytest.mark.parametrize(("program", "expected"), [
    # A well-defined gradient: (A - A)^0 is the constant 1 (numbers: A 1).
    ("OUT = (A - A)^0 + A", {"A": "1"}),
    ("OUT = (A*(2 - 2))^0*B", {"A": "0", "B": "1"}),
    ("B = A - A; OUT = B^0 + A", {"A": "1", "B": "0"}),  # through a name: fine today
])
def test_exact_zero_bases_do_not_crash(program, expected):
    at = {n: 1.0 for n in gradcalc.compile_program(program).inputs}
    numbers = gradcalc.gradients(program, at=at)  # the engine's numbers
    assert {n: str(int(v)) for n, v in numbers.gradients.items()} == expected
    try:
        got = formulas(program)
    except GradcalcError:
        raise
    except Exception as exc:  # e.g. ZeroDivisionError from the algebra: exit 70 in the CLI
        raise AssertionError(f"symbolic gradients of {program!r} crashed: "
                             f"{type(exc).__name__}: {exc}") from exc
    assert got == expected


@pytest.mark.parametrize("program", [
    "OUT = A/(A - A)", "OUT = A/0", "OUT = log(A - A) + A", "OUT = sqrt(A - A)*A",
])
def test_exact_zero_where_the_program_is_undefined_is_an_error_not_a_crash(program):
    """The numbers are undefined (or infinite) there; a formula or a GradcalcError is fine,
    an internal error (exit 70) is not."""
    try:
        gradcalc.gradients(program)
    except GradcalcError:
        pass
    except Exception as exc:
        raise AssertionError(f"symbolic gradients of {program!r} crashed: "
                             f"{type(exc).__name__}: {exc}") from exc
    r = run(program)
    assert r.exit_code in (0, 1, 2), (r.exit_code, repr(r.exception))


def test_cli_exact_zero_base_is_not_an_internal_error():
    r = run("OUT = (A - A)^0 + A", "--at", "A=1")
    assert (r.exit_code, r.stdout) == (0, "A 1\n")
    r = run("OUT = (A - A)^0 + A", "--at", "A=1", "--symbolic")
    assert (r.exit_code, r.stdout) == (0, "A 1\n"), repr(r.exception)
    r = run("OUT = (A - A)^0 + A")
    assert (r.exit_code, r.stdout) == (0, "A 1\n"), repr(r.exception)


def test_pow_formula_at_a_zero_base():
    """The numbers follow PyTorch at a zero base (d(A^B)/dB = 0 for B >= 0). The formula for
    d/dB, A^B*log(A), has no value there (log(0)): the engine's number is what is reported,
    as the formula's number too (formulas are never evaluated where the engine can answer)."""
    r = gradcalc.gradients("OUT = A^B", at={"A": 0.0, "B": 2.0}, symbolic=True)
    assert r.gradients == {"A": 0.0, "B": 0.0}
    assert r.formulas["A"].value == 0.0
    assert r.formulas["B"].value == 0.0 and "log(A)" in r.formulas["B"].text
    data = json.loads(run("OUT = A^B", "--at", "A=0,B=2", "--symbolic", "-F", "json").stdout)
    assert data["gradient_values"] == {"A": 0.0, "B": 0.0}


def test_hessian_of_a_power_at_a_zero_base():
    # d2(A^2)/dA2 = 2 everywhere, a zero base included.
    assert hessian("OUT = A^2", at={"A": 0.0}).entries == {"A": {"A": 2.0}}
    # With a variable exponent the second derivatives involve log(A). The gradient there is
    # (0, 0) by PyTorch's convention, not an error; d/dA(d/dB) follows the same convention
    # (0); d²/dB² = A^B*log(A)^2 is 0*inf: nan, with a warning that says where.
    r = run("OUT = A^B", "--hessian", "--at", "A=0,B=2", "--format", "json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["hessian"] == [[2, 0], [0, "nan"]]
    assert [w["message"] for w in data["warnings"]] == ["d²OUT/dB² is nan"]


def test_coefficients_beyond_float_range_still_parse():
    """Exact rationals are printed exactly; gradcalc's grammar refuses literals above
    ~1.8e308, so bigger ones must be written so that the formula can still be read back."""
    r = gradcalc.gradients("OUT = A*2^1023*B")  # 2^1023 < 1.8e308: fine
    assert r.formulas["A"].text == f"{2**1023}*B"
    gradcalc.compile_program(r.formulas["A"].text)
    r = gradcalc.gradients("OUT = A*2^1024")  # the exact gradient 2^1024 overflows a float
    text = r.formulas["A"].text  # written in chunks that each parse: (c1*10^300 + c0)
    assert text.startswith("(") and "*10^300 + " in text
    gradcalc.compile_program(text)


# =============================================================================================
# Size: diamond chains give formulas linear in the number of levels
# =============================================================================================

def diamond(levels: int) -> str:
    lines = ["X0 = 0.5"]
    lines += [f"X{i} = sin(X{i - 1}) + cos(X{i - 1})" for i in range(1, levels + 1)]
    return "\n".join(lines)


def test_diamond_chain_formula_grows_linearly(capsys):
    lengths = {}
    for levels in (10, 100, 1000):
        start = time.perf_counter()
        r = gradcalc.gradients(diamond(levels), wrt=["X0"], symbolic=True)
        elapsed = time.perf_counter() - start
        f = r.formulas["X0"]
        lengths[levels] = len(f.text)
        assert close(f.value, r.gradients["X0"]), (levels, f.value, r.gradients["X0"])
        assert close(evaluate_text(f.text, {"X0": 0.5}), r.gradients["X0"])
        # X0 = 0.5 is set in the program: the formula program carries it (self-contained)
        assert f.bindings == tuple(f"X{i}" for i in range(levels))
        with capsys.disabled():
            print(f"\n  diamond {levels:5d} levels: {len(f.text):7d} characters, "
                  f"{elapsed * 1000:7.1f} ms", end="")
    assert lengths[1000] < 15 * lengths[100]
    assert lengths[100] < 15 * lengths[10]
    per_level = [lengths[n] / n for n in (10, 100, 1000)]
    assert max(per_level[1:]) < 2 * min(per_level[1:]), per_level


# =============================================================================================
# No recursion: wide sums and deep nesting
# =============================================================================================

N = 10_000


def symbolic_of(text: str, wrt: list[str]):
    dag = gradcalc.compile_program(text)
    question = engine.plan(dag, dag.named[dag.output], {n: dag.named[n] for n in wrt})
    return symbolic_gradients(question, leaf_values(dag, {}))


def wide_sum(terms: int) -> str:
    return "OUT = " + " + ".join(f"A{i}*{i + 1}" for i in range(terms))


def test_wide_sum_symbolic_gradients():
    result = symbolic_of(wide_sum(N), [f"A{i}" for i in range(N)])
    assert [result.formulas[f"A{i}"].text for i in range(N)] == [str(i + 1) for i in range(N)]
    assert all(result.formulas[f"A{i}"].value == i + 1 for i in range(N))
    assert all(result.formulas[f"A{i}"].constant for i in range(N))


def test_wide_sum_symbolic_memory_grows_linearly():
    """Building the output's expression of a left-nested n-term sum interns every partial
    sum in full: quadratic memory (it once took about 5 GB and 2 minutes at 10,000 terms,
    where the numbers take milliseconds). The gradients do not need that expression.
    Measured with tracemalloc (deterministic, not timing)."""
    peaks = {}
    for terms in (500, 2000):
        dag = gradcalc.compile_program(wide_sum(terms))
        targets = {n: dag.named[n] for n in dag.inputs}
        values = leaf_values(dag, {})
        tracemalloc.start()
        try:
            symbolic_gradients(engine.plan(dag, dag.named[dag.output], targets), values)
            peaks[terms] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    ratio = peaks[2000] / peaks[500]
    assert ratio < 8, f"4x the terms took {ratio:.1f}x the memory ({peaks})"


def test_wide_sum_text_and_program():
    X = Algebra()
    terms = [X.mul(X.number(i + 1), X.symbol(f"A{i}")) for i in range(N)]
    total = X.add(*terms)
    text = X.text(total)
    # One degree: ordered by the atoms' text (A10 before A2), not by number.
    assert text.startswith("A0 + 2*A1 + 11*A10 + 101*A100 + 1001*A1000 + 1002*A1001 + ")
    assert text.endswith(" + 9999*A9998 + 10000*A9999")
    assert X.program(total, []) == text
    dag = gradcalc.compile_program(text)
    assert len(dag.inputs) == N
    at = {f"A{i}": 1.0 for i in range(N)}
    assert gradcalc.gradients(dag, at=at, wrt=["A9999"]).value == N * (N + 1) / 2
    assert X.evaluate(total, at, EVAL_FUNCTIONS) == N * (N + 1) / 2


def test_deep_function_nesting():
    text = "OUT = " + "sin(" * N + "A" + ")" * N
    result = symbolic_of(text, ["A"])
    formula = result.formulas["A"]
    expected = gradcalc.gradients(text, at={"A": 0.5}).gradients["A"]
    # The formula is a program sharing sin(sin(...)) through t-bindings: linear size.
    assert len(formula.text) < 100 * N
    assert close(evaluate_text(formula.text, {"A": 0.5}), expected)
    # The algebra's own printers on the expressions, deep as they are
    X = result.algebra
    gradient = result.expressions["A"]
    assert X.program(gradient, []) == formula.text
    nested = X.symbol("A")
    for _ in range(N):
        nested = X.call("sin", nested)
    printed = X.text(nested)
    assert printed == text[len("OUT = "):]
    assert X.program(nested, []) == printed  # nothing used twice: nothing to bind
    assert close(evaluate_text(printed, {"A": 0.5}),
                 X.evaluate(nested, {"A": 0.5}, EVAL_FUNCTIONS))
    assert close(evaluate_text(X.program(nested, []), {"A": 0.5}),
                 X.evaluate(nested, {"A": 0.5}, EVAL_FUNCTIONS))


def affine_chain(levels: int) -> str:
    return "OUT = " + "(" * levels + "A" + "+1)*2" * levels


# Deep, with exact numbers just inside the algebra's bound (MAX_BITS: 2^(AFFINE + 1) - 2 has
# 9,991 bits); one level more than the bound allows is a clear error (see test_algebra.py).
AFFINE = 9_990


def test_deep_affine_chain_no_recursion():
    # ((((A+1)*2+1)*2 ...: exactly 2^N*A + 2^(N+1) - 2, its gradient exactly 2^N.
    from gradcalc.algebra import _integer_text

    N = AFFINE
    result = symbolic_of(affine_chain(N), ["A"])
    assert result.formulas["A"].text == _integer_text(2**N)
    X = result.algebra
    output = X.symbol("A")
    for _ in range(N):
        output = X.mul(X.add(output, X.one), X.number(2))
    assert X.text(output) == f"{_integer_text(2**N)}*A + {_integer_text(2**(N + 1) - 2)}"
    assert X.program(output, []) == X.text(output)
    # A chain whose numbers stay in range parses back and evaluates.
    levels = 1000
    result = symbolic_of(affine_chain(levels), ["A"])
    assert result.formulas["A"].text == str(2**levels)
    assert evaluate_text(result.formulas["A"].text, {}) == 2.0**levels


def test_deep_affine_chain_parses_back():
    N = AFFINE
    result = symbolic_of(affine_chain(N), ["A"])
    text = result.formulas["A"].text  # 2^10000, beyond float range
    dag = gradcalc.compile_program(text)  # parses (a plain literal would be "too large")
    assert not set(dag.inputs) - {dag.output}
    assert sympy.sympify(text.replace("^", "**")) == 2**N  # and means exactly 2^N


# A power of a power or of a product is rewritten only where the rewrite holds for every real
# value where both sides are defined: (x^2)^(1/2) is abs(x), not x.
@pytest.mark.parametrize("inner", ["A^2", "A*A", "A^3", "A^-2", "2*A", "A*B", "A^2*B"])
@pytest.mark.parametrize("outer", ["0.5", "1.5", "-0.5", "2", "3"])
@pytest.mark.parametrize("point", [{"A": -2.0, "B": -3.0}, {"A": 1.5, "B": 0.5},
                                   {"A": -0.7, "B": 2.0}])
def test_power_rewrites_hold_for_negative_values(inner: str, outer: str, point) -> None:
    program = f"T = {inner}; OUT = T^{outer}"
    try:
        numeric = gradcalc.gradients(program, at={n: v for n, v in point.items()
                                                  if n in program}, wrt=["A"])
    except GradcalcError:
        return  # undefined there (a negative base to a fractional power): nothing to compare
    symbolic = gradcalc.gradients(program, wrt=["A"]).formulas["A"]
    at = {n: v for n, v in point.items() if n in gradcalc.compile_program(symbolic.text).inputs}
    value = evaluate_text(symbolic.text, at)
    assert close(value, numeric.gradients["A"], abs_tol=1e-9), (
        program, point, symbolic.text, value, numeric.gradients["A"])
    hess = gradcalc.hessian(program, at={n: v for n, v in point.items() if n in program},
                            wrt=["A"]).entries["A"]["A"]
    h = 1e-6
    up = gradcalc.gradients(program, at={**{n: v for n, v in point.items() if n in program},
                                         "A": point["A"] + h}, wrt=["A"]).gradients["A"]
    down = gradcalc.gradients(program, at={**{n: v for n, v in point.items() if n in program},
                                           "A": point["A"] - h}, wrt=["A"]).gradients["A"]
    assert close(hess, (up - down) / (2 * h), 1e-4, 1e-4 * (abs(hess) + 1)), (program, point, hess)


# --- issue 10: never wrong, never a hang, linear output --------------------------------------

def test_a_gradient_that_needs_no_missing_value_comes_from_the_engine():
    """d/dx does not depend on B: the engine's number, not an expanded formula whose
    1e56-sized terms cancel to 0 (the truth is -cos(36), checked against mpmath in
    test_oracles.py)."""
    r = gradcalc.gradients("T0 = tanh(x^x); F = T0 - sin(x) + B", at={"x": 36.0}, wrt=["x"])
    assert r.gradients["x"] == -math.cos(36.0)
    assert r.formulas["x"].value == r.gradients["x"]
    # a path through a product with a missing factor stays a formula
    r = gradcalc.gradients("OUT = sin(A)*B + A", at={"A": 1.0})
    assert "A" not in r.gradients and r.formulas["A"].text == "B*cos(A) + 1"
    assert r.gradients["B"] == math.sin(1.0)


def test_a_known_part_that_is_undefined_is_an_error_even_with_a_missing_value():
    with pytest.raises(gradcalc.EvaluationError, match=r"log\(-1\)"):
        gradcalc.gradients("OUT = log(A) + B", at={"A": -1.0})


@pytest.mark.parametrize(("program", "column", "shown"), [
    ("OUT = acos(B/B)", 7, "acos(B/B)"),
    ("T = 2 - 1; OUT = A + asin(T)", 22, "asin(T)"),
])
def test_a_derivative_infinite_for_every_value_is_blamed_on_its_operation(program, column,
                                                                         shown):
    with pytest.raises(gradcalc.EvaluationError) as info:
        gradcalc.gradients(program)
    assert info.value.message.startswith(f"the derivative of {shown} is infinite")
    assert info.value.column == column
    # the function itself is defined: it is not called undefined
    assert "undefined for every value:" not in info.value.message.split(",")[0]


def test_a_function_undefined_everywhere_is_still_called_so():
    with pytest.raises(gradcalc.EvaluationError, match="OUT is undefined for every value"):
        gradcalc.gradients("OUT = A/(A-A)")


def test_symbolic_work_past_its_budget_is_a_limit_error(monkeypatch):
    from gradcalc import symbolic

    monkeypatch.setattr(symbolic, "EXPRESSION_BUDGET", 50)
    program = "\n".join(f"X{i} = sin(X{i-1}) + cos(X{i-1})" for i in range(1, 40))
    with pytest.raises(gradcalc.LimitError) as info:
        gradcalc.gradients(program)
    # the library names its arguments, the command line its flags
    assert "too large" in info.value.message and "(at=)" in (info.value.hint or "")
    r = run(program, "--format", "json")
    assert r.exit_code == 1 and "error: the formulas are too large" in r.stderr
    assert "(--at)" in r.stderr and "(--wrt)" in r.stderr
    assert "Traceback" not in r.stderr


def test_an_exact_number_past_the_bound_is_a_limit_error():
    r = run("OUT = A*2^9000*2^9000")
    assert r.exit_code == 1 and "10,000 bits" in r.stderr and "Traceback" not in r.stderr
    # a literal beyond the bound is the float the engine uses (0), not a hang
    assert gradcalc.gradients("OUT = A*1e-1000000000").formulas["A"].text == "0"
    assert gradcalc.gradients("OUT = A*0e999999999").formulas["A"].text == "0"


def _families(n: int) -> dict[str, tuple[str, list[str]]]:
    import random

    rng = random.Random(1)
    lines = ["X0 = P*Q"]
    for i in range(1, n + 1):
        a, b = rng.randrange(i), rng.randrange(i)
        lines.append(f"X{i} = sin(X{a})*cos(X{b}) + X{i - 1}*0.5")
    return {
        "diamond": ("\n".join(f"X{i} = sin(X{i-1}) + cos(X{i-1})" for i in range(1, n + 1)),
                    []),
        "random": ("\n".join(lines), ["--wrt", "P"]),
        "hessian": ("\n".join(["X0 = A*B", *(f"X{i} = X{i-1}*(A + B + {i})"
                                            for i in range(1, n + 1))]), ["--hessian"]),
    }


@pytest.mark.parametrize("family", ["diamond", "random", "hessian"])
def test_formula_text_grows_linearly(family):
    """Doubling the program about doubles the text (quadratic swell would quadruple it):
    every shared intermediate is bound once. Sizes, not times (timings live in
    tests/benchmarks/bench_swell.py)."""
    sizes = []
    for n in (100, 200, 400):
        program, flags = _families(n)[family]
        r = run(program, *flags, "--format", "plain")
        assert r.exit_code == 0, r.stderr
        sizes.append(len(r.stdout))
    assert sizes[1] / sizes[0] < 2.6 and sizes[2] / sizes[1] < 2.6, sizes


def test_shared_bindings_are_printed_once_and_every_formula_stays_whole():
    program = "X1 = sin(X0)+cos(X0); X2 = sin(X1)+cos(X1); X3 = sin(X2)+cos(X2)"
    lines = run(program, "--format", "plain").stdout.splitlines()
    assert lines[0] == "where: X1 = cos(X0) + sin(X0); X2 = cos(X1) + sin(X1)"
    assert lines[3] == "X2 cos(X2) - sin(X2)"
    data = json.loads(run(program, "--format", "json").stdout)
    assert data["bindings"] == {"X1": "cos(X0) + sin(X0)", "X2": "cos(X1) + sin(X1)"}
    r = gradcalc.gradients(program)
    # the library's text is a whole program that evaluates to the gradient
    at = {"X0": 0.3}
    numbers = gradcalc.gradients(program, at=at).gradients
    for name, formula in r.formulas.items():
        assert close(evaluate_text(formula.text, at), numbers[name])


def test_hessian_of_a_tiny_literal_stays_in_the_program():
    """The gradient is a graph appended to the program's: no formula printed and read back,
    so a literal of 1e-309 is not rewritten as A/(500000000*10^300), and nothing points into
    an internal `<d/dA>` text."""
    m = hessian("OUT = A^2*1e-309", at={"A": 1.0})
    assert m.entries == {"A": {"A": 2 * 1e-309}} and m.warnings == []
    m = hessian("OUT = sqrt(A)*B", at={"A": 0.0, "B": 1.0})
    assert m.entries["A"]["B"] == math.inf and m.entries["B"]["B"] == 0.0
    assert all(w.source is None or w.source.name == "<program>" for w in m.warnings)


def test_the_time_budget_covers_substituting_as_well_as_building(monkeypatch):
    """Substituting definitions into a long chain's formulas builds few new expressions, so
    the deadline is checked there too (an 8,000-statement chain once ran past it, exit 0)."""
    from gradcalc import symbolic

    monkeypatch.setattr(symbolic, "TIME_BUDGET", 0.0)
    program = "X0 = A\n" + "".join(f"X{i + 1} = sin(X{i})\n" for i in range(300))
    with pytest.raises(gradcalc.LimitError, match="took too long"):
        gradcalc.gradients(program, symbolic=True)


# =============================================================================================
# Self-contained formula programs (issue 16)
# =============================================================================================


def test_a_formula_program_defines_the_inputs_the_program_sets() -> None:
    program = "H1 = -1.25; H2 = pow(tanh(h1), 0.3) - H1; OUT = pow(h1, 3) + cos(H2)"
    r = gradcalc.gradients(program, wrt=["h1"], at={"h1": 0.7}, symbolic=True)
    text = r.formulas["h1"].text
    # H1 is set in the program: it comes first; H2, used once, is written in
    assert text == ("H1 = -1.25; 3*h1^2 - 3*(1 - tanh(h1)^2)*sin(tanh(h1)^(3/10) - H1)"
                    "/(10*tanh(h1)^(7/10))")
    # fed back as a program, with only the free input given, it is the gradient's value
    assert close(evaluate_text(text, {"h1": 0.7}), r.gradients["h1"])


def test_generated_names_are_never_the_programs_names() -> None:
    shared = "A*B + C*D + exp(A*C) + log(B*D)"
    program = f"OUT = sin({shared})^2 * cos({shared})^3"
    plain = gradcalc.gradients(program, wrt=["A", "B"], symbolic=True).formulas["A"]
    assert plain.bindings == ("t1",)  # a long sub-expression used twice gets a name
    # the program's own t1 and t2 (t2 substituted away, still not free for a helper)
    named = gradcalc.gradients(f"t1 = 5; t2 = t1*2; {program.replace('OUT =', 'OUT = t2*')}",
                               wrt=["A", "B"], symbolic=True).formulas["A"]
    assert named.bindings == ("t1", "t3") and named.text.startswith("t1 = 5; t3 = ")
    assert close(evaluate_text(named.text, {"A": 0.3, "B": 0.7, "C": 1.1, "D": 0.4}),
                 gradcalc.gradients(f"t1 = 5; t2 = t1*2; "
                                    f"{program.replace('OUT =', 'OUT = t2*')}",
                                    at={"A": 0.3, "B": 0.7, "C": 1.1, "D": 0.4},
                                    wrt=["A"]).gradients["A"])


@pytest.mark.parametrize(("program", "wrt", "formula"), [
    ("OUT = sqrt(Y)", "Y", "1/(2*sqrt(Y))"),  # a binding used once is written in
    ("B = A*A*A; C = sin(B); OUT = C", "A", "3*A^2*cos(A^3)"),
    # used twice: it keeps its name
    ("P = sigmoid(W*X); OUT = P*(1 - P)", "W",
     "P = sigmoid(W*X); (1 - 2*P)*(1 - P)*P*X"),
])
def test_bindings_only_where_they_pay(program: str, wrt: str, formula: str) -> None:
    r = gradcalc.gradients(program, wrt=[wrt], symbolic=True)
    assert r.formulas[wrt].text == formula


def test_a_sum_kept_whole_joins_the_terms_around_it() -> None:
    """Found by tests/benchmarks/bench_formulas.py: ((A - B) + A) was printed for 2*A - B."""
    r = gradcalc.gradients("N0 = cos((A - B) * A); OUT = sigmoid(N0)", wrt=["A"], symbolic=True)
    assert r.formulas["A"].text == ("OUT = sigmoid(cos(A*(A - B))); "
                                    "(1 - OUT)*(B - 2*A)*OUT*sin(A*(A - B))")
    at = {"A": 0.3, "B": -0.8}
    assert close(evaluate_text(r.formulas["A"].text, at),
                 gradcalc.gradients("N0 = cos((A - B) * A); OUT = sigmoid(N0)", at=at,
                                    wrt=["A"]).gradients["A"])
