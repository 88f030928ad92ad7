"""Formulas a person would write (gradcalc.tidy): the issue's examples, each rewrite on its own,
and properties over random programs: a tidied formula is equal to the engine's gradient at
points of both signs, reads back through gradcalc's grammar, and is never longer than the
multiplied-out form by more than the near tie a rewritten form is given."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from helpers import property_settings, run
from hypothesis import assume, given
from hypothesis import strategies as st

import gradcalc
from gradcalc.algebra import Algebra
from gradcalc.tidy import Tidy, _by_variable, _content, _divide


def formula(program: str, wrt: str, **kwargs: object) -> str:
    return gradcalc.gradients(program, wrt=[wrt], symbolic=True, **kwargs).formulas[wrt].text


def evaluate(text: str, at: dict[str, float]) -> float:
    """A printed formula program evaluated by gradcalc itself (its last statement)."""
    dag = gradcalc.compile_program(text, "<formula>")
    given = {n: v for n, v in at.items() if n in dag.inputs and n != dag.output}
    value = gradcalc.gradients(dag, at=given).value
    assert value is not None
    return value


# =============================================================================================
# The issue's table: what a person writes (or shorter)
# =============================================================================================

@pytest.mark.parametrize(("program", "wrt", "expected"), [
    ("Z = W*X + B; P = sigmoid(Z); L = -(Y*log(P) + (1-Y)*log(1-P))", "W",
     "P = sigmoid(W*X + B); (P - Y)*X"),
    ("H = tanh(W1*X + B1); OUT = sigmoid(W2*H + B2)", "W1",
     "H = tanh(W1*X + B1); OUT = sigmoid(H*W2 + B2); (1 - H^2)*(1 - OUT)*OUT*W2*X"),
    ("OUT = x^x", "x", "(log(x) + 1)*x^x"),
    ("OUT = (x+y)^3 * (x-y)^2", "x", "(5*x - y)*(x + y)^2*(x - y)"),
    ("OUT = sqrt(Y)", "Y", "1/(2*sqrt(Y))"),
    ("P = sigmoid(W*X); OUT = P", "W", "P = sigmoid(W*X); (1 - P)*P*X"),
    # a binding used once is written in
    ("T = tanh(U*V); OUT = T", "U", "(1 - tanh(U*V)^2)*V"),
    ("T = tanh(U*V); OUT = T*T", "U", "T = tanh(U*V); 2*(1 - T^2)*T*V"),
])
def test_the_issues_examples_read_as_a_person_writes(program: str, wrt: str,
                                                     expected: str) -> None:
    assert formula(program, wrt) == expected


def test_a_two_two_one_network_is_a_product_not_eight_terms() -> None:
    network = ("H1 = tanh(W11*X1 + W12*X2 + B1); H2 = tanh(W21*X1 + W22*X2 + B2); "
               "P = sigmoid(V1*H1 + V2*H2 + C); LOSS = -(Y*log(P) + (1 - Y)*log(1 - P))")
    text = formula(network, "W11")
    assert text.endswith("; (1 - H1^2)*(P - Y)*V1*X1")
    expanded = formula(network, "W11", expand=True)
    assert len(text) < len(expanded)


def test_self_contained_with_the_programs_own_numbers() -> None:
    text = formula("H1 = -1.25; H2 = pow(tanh(h1), 0.3) - H1; OUT = pow(h1, 3) + cos(H2)", "h1")
    assert text.startswith("H1 = -1.25; ")
    h1 = 0.7
    truth = gradcalc.gradients("H1 = -1.25; H2 = pow(tanh(h1), 0.3) - H1; "
                               "OUT = pow(h1, 3) + cos(H2)", at={"h1": h1}).gradients["h1"]
    assert math.isclose(evaluate(text, {"h1": h1}), truth, rel_tol=1e-12)


def test_expand_gives_the_multiplied_out_form() -> None:
    program = "H = tanh(W1*X + B1); OUT = sigmoid(W2*H + B2)"
    assert formula(program, "W1", expand=True).endswith(
        "; H^2*OUT^2*W2*X - H^2*OUT*W2*X - OUT^2*W2*X + OUT*W2*X")
    assert formula("OUT = (A + 1)*(B - 2)*C", "C", expand=True) == "A*B - 2*A + B - 2"
    assert formula("OUT = (A + 1)*(B - 2)*C", "C") == "(A + 1)*(B - 2)"


# =============================================================================================
# Each rewrite
# =============================================================================================

@pytest.mark.parametrize(("program", "wrt", "expected"), [
    # a common factor out of a sum (content), and a sign taken in: 1 - P, P - Y
    ("OUT = A*B + A*C", "A", "B + C"),
    ("OUT = A^2*B + A^2*C", "A", "2*A*(B + C)"),
    ("OUT = B/A + C/A", "B", "1/A"),
    ("OUT = log(A)*(B + C)", "A", "(B + C)/A"),
    # fractions together, and a denominator that divides the numerator cancels
    ("OUT = 1/(1 - P) - Y/(1 - P) - Y/P", "Y", "1/(P*(P - 1))"),
    # a product of sums in different atoms, multiplied out by the algebra, split again
    ("OUT = (A + 1)*(B + 2)*C", "C", "(A + 1)*(B + 2)"),
    # collected: the atom most terms share
    ("T = tanh(x^x); OUT = T*T - sin(x)", "x",
     "T = tanh(x^x); 2*(1 - T^2)*T*(log(x) + 1)*x^x - cos(x)"),
    # a power of one of the program's sums plus a little
    ("S = A + C; OUT = B/((S)^4 + 1)", "B", "1/((A + C)^4 + 1)"),
    # pow(x, y - 1)*x is pow(x, y), sqrt(u)^2 is u
    ("OUT = pow(x, y)", "x", "x^(y - 1)*y"),
    ("OUT = sqrt(A^2 + 1)^2 + A", "A", "2*A + 1"),
    # a function of its inverse: exp(log(u)) is u where it is defined, and so on
    ("OUT = exp(log((B*A)^2 + 1))", "A", "2*A*B^2"),
    ("OUT = log(exp(A*B)) + A", "A", "B + 1"),
])
def test_each_rewrite(program: str, wrt: str, expected: str) -> None:
    assert formula(program, wrt) == expected


def test_a_power_of_a_known_sum_adds_to_the_same_power_already_there() -> None:
    """Found by test_derivatives' random Hessians: 4*(X0 + 4)^2 - 2 - (X0 + 4)^2 lost its last
    term when the power was written over the key it already had."""
    program = "S2 = X0; S3 = ((S2) + (2)) + (2); OUT = (S3) + ((2) / (2 + (S3)^2))"
    [[entry]] = [list(row.values()) for row in gradcalc.hessian(program, wrt=["X0"])
                 .entries.values()]
    assert entry == "4*(3*(X0 + 4)^2 - 2)/((X0 + 4)^2 + 2)^3"
    [[number]] = [list(row.values()) for row in gradcalc.hessian(program, at={"X0": 0.0})
                  .entries.values()]
    assert math.isclose(evaluate(entry, {"X0": 0.0}), number, rel_tol=1e-12)


def test_divide_is_exact_division_or_none() -> None:
    X = Algebra()
    a, b = X.symbol("A"), X.symbol("B")
    ia, ib = X.terms(a)[0][0][0][0], X.terms(b)[0][0][0][0]  # their atoms
    square = {((ia, 2),): 1, ((ia, 1), (ib, 1)): 2, ((ib, 2),): 1}  # (A + B)^2
    plus = {((ia, 1),): 1, ((ib, 1),): 1}
    minus = {((ia, 1),): 1, ((ib, 1),): -1}
    assert _divide(square, plus) == plus
    assert _divide(square, minus) is None
    assert _divide({**square, (): 1}, plus) is None  # (A + B)^2 + 1


def test_split_by_variable_finds_a_product_of_two_sums() -> None:
    # (1 - H^2)*(1 - P) multiplied out: H^2*P - H^2 - P + 1, with atoms H = 0 and P = 1
    poly = {((0, 2), (1, 1)): 1, ((0, 2),): -1, ((1, 1),): -1, (): 1}
    left, right = _by_variable(poly)  # type: ignore[misc]
    product: dict = {}
    for ma, ca in left.items():
        for mb, cb in right.items():
            merged: dict = dict(ma)
            for atom, e in mb:
                merged[atom] = merged.get(atom, 0) + e
            key = tuple(sorted(merged.items()))
            product[key] = product.get(key, 0) + ca * cb
    assert {m: c for m, c in product.items() if c} == poly
    assert len(left) == len(right) == 2


def test_content_takes_out_shared_powers_of_either_sign() -> None:
    # 6*A^2/B - 9*A/B^2 is 3*A/B * (2*A - 3/B)
    poly = {((0, 2), (1, -1)): 6, ((0, 1), (1, -2)): -9}
    number, shared, rest = _content(poly, True)
    assert number == 3 and shared == {0: 1, 1: -1}
    assert rest == {((0, 1),): 2, ((1, -1),): -3}
    number, _, rest = _content({((0, 1),): Fraction(1, 2), (): Fraction(-3, 4)}, True)
    assert number == Fraction(1, 4) and rest == {((0, 1),): 2, (): -3}


def test_tidy_never_recurses_into_deep_expressions() -> None:
    # 20,000 nested functions: the pass walks parts on an explicit stack
    X = Algebra()
    expr = X.symbol("A")
    for _ in range(20_000):
        expr = X.call("sin", X.add(expr, X.one))
    tidy = Tidy(X)
    assert tidy(expr) == expr  # nothing to rewrite, and no RecursionError


def test_a_diamond_chain_stays_linear() -> None:
    def text(n: int, expand: bool = False) -> str:
        lines = ["X0 = A"] + [f"X{i} = sin(X{i - 1})*cos(X{i - 1}) + X{i - 1}"
                              for i in range(1, n + 1)]
        return formula("; ".join(lines), "A", expand=expand)

    sizes = [len(text(n)) for n in (50, 100, 200)]
    assert sizes[1] / sizes[0] < 2.6 and sizes[2] / sizes[1] < 2.6, sizes  # never 4x
    for n in (50, 200):  # and never much longer than as built
        assert len(text(n)) <= 1.1 * len(text(n, expand=True)) + 3


def test_formulas_too_large_to_read_are_printed_as_built() -> None:
    import random

    rng = random.Random(1)
    lines = ["X0 = P*Q"]
    for i in range(1, 301):
        a, b = rng.randrange(i), rng.randrange(i)
        lines.append(f"X{i} = sin(X{a})*cos(X{b}) + X{i - 1}*0.5")
    program = "; ".join(lines)
    assert formula(program, "P") == formula(program, "P", expand=True)


# =============================================================================================
# Random programs: equal values at points of both signs, valid input, never much longer
# =============================================================================================

FUNCTIONS = ("sin", "cos", "exp", "tanh", "sigmoid", "log", "sqrt")


@st.composite
def expressions(draw: st.DrawFn, names: tuple[str, ...], depth: int = 3) -> str:
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from([*names, *names, "1", "2", "3"]))
    kind = draw(st.integers(0, 9))
    inner = draw(expressions(names, depth - 1))
    if kind < 3:
        name = draw(st.sampled_from(FUNCTIONS))
        if name in ("log", "sqrt"):  # positive for every value
            inner = f"({inner})^2 + 1"
        return f"{name}({inner})"
    if kind < 4:
        return f"({inner})^{draw(st.integers(2, 3))}"
    op = draw(st.sampled_from(["+", "-", "*", "*", "/"]))
    right = draw(expressions(names, depth - 1))
    if op == "/":
        right = f"(({right})^2 + 1)"
    return f"({inner} {op} {right})"


@st.composite
def programs(draw: st.DrawFn) -> str:
    names = ["A", "B", "C"]
    lines = []
    for i in range(draw(st.integers(1, 3))):
        lines.append(f"N{i} = {draw(expressions(tuple(names)))}")
        names.append(f"N{i}")
    lines.append(f"OUT = {draw(expressions(tuple(names)))} + A")
    return "; ".join(lines)


POINT = st.fixed_dictionaries({n: st.floats(-2, 2).map(lambda v: round(v, 3))
                               for n in ("A", "B", "C")})


@given(programs(), POINT)
@property_settings(60)
def test_tidied_formulas_equal_the_engines_gradients(program: str, at: dict[str, float]
                                                     ) -> None:
    dag = gradcalc.compile_program(program)
    at = {n: v for n, v in at.items() if n in dag.inputs}
    try:
        numeric = gradcalc.gradients(program, at=at)
    except gradcalc.EvaluationError as error:
        assume(error.kind != "overflow")  # exp(exp(exp(2))): no number to compare with
        raise
    symbolic = gradcalc.gradients(program, symbolic=True)
    expanded = gradcalc.gradients(program, symbolic=True, expand=True)
    for name, f in symbolic.formulas.items():
        truth = numeric.gradients[name]
        assume(math.isfinite(truth) and abs(truth) < 1e12)
        for text in (f.text, expanded.formulas[name].text):
            try:
                got = evaluate(text, at)
            except gradcalc.EvaluationError as error:
                # equal formulas, but a float range is no algebra: A/(exp(N0)^2 + 1) is 0
                # in the program, and its square overflows first in a formula
                assume(error.kind != "overflow")
                raise
            assert math.isclose(got, truth, rel_tol=1e-6, abs_tol=1e-9), (program, text)
        # never clearly longer than multiplied out: a near tie goes to the rewritten form
        # ((1 - P)*P, not P - P^2), a tenth and 3 characters at most
        assert len(f.text) <= 1.1 * len(expanded.formulas[name].text) + 3, (program, f.text)


def test_cli_expand_is_refused_where_it_would_change_nothing() -> None:
    r = run("OUT = A*B", "--at", "A=1,B=2", "--expand")
    assert r.exit_code == 2
    assert "--expand changes formulas, and every result here is a number" in r.stderr
    r = run("OUT = A*B", "--expand", "--graph")
    assert r.exit_code == 2 and "--expand does not apply to --graph" in r.stderr
    r = run("OUT = A*B", "--at", "A=0:1:0.5", "--expand")
    assert r.exit_code == 2 and "cannot be combined with --expand" in r.stderr
    r = run("--batch", "-", "--expand", stdin="OUT = A*B\n")
    assert r.exit_code == 2 and "--batch cannot be combined with --expand" in r.stderr
    r = run("OUT = (A + 1)*(B - 2)*C", "--wrt", "C", "--expand", "--format", "plain")
    assert r.exit_code == 0 and r.stdout == "C A*B - 2*A + B - 2\n"
    r = run("OUT = (A + 1)*(B - 2)*C", "--hessian", "--wrt", "A,C", "--expand",
            "--format", "plain")
    assert r.exit_code == 0 and "A C B - 2\n" in r.stdout
