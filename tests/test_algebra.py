"""The algebra (gradcalc/algebra.py): bounded exact arithmetic (MAX_BITS), the expression budget,
printing that parses back, and rewrites that are theorems.

The theorems are checked against mpmath at 50 digits: a random operation tree is built with the
algebra (which rewrites it) and also evaluated as it stands, step by step, with gradcalc's real
semantics (``math.pow``'s domain: a negative base needs a whole exponent, 0 no negative one);
wherever the tree is defined, the algebra's expression must be defined and equal.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

import mpmath
import pytest
from helpers import property_settings
from hypothesis import example, given
from hypothesis import strategies as st

import gradcalc
from gradcalc import algebra
from gradcalc.algebra import (
    DEFAULT_BUDGET,
    MAX_BITS,
    Algebra,
    ConstantTooLarge,
    ExpressionTooLarge,
    _fraction_text,
    _integer_root,
)
from gradcalc.dag import Dag
from gradcalc.errors import GradcalcError
from gradcalc.ops import FUNCTIONS, op_named

SETTINGS = property_settings(100)

EVAL_FUNCTIONS = {name: op.forward for name, op in FUNCTIONS.items()}

DIGITS = 50


def parses(text: str) -> None:
    gradcalc.compile_program(text, "<formula>")


def mp_close(a: mpmath.mpf, b: mpmath.mpf, rel: float = 1e-9) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b)) + mpmath.mpf("1e-20")


# =============================================================================================
# The reproducers: each used to hang or crash; each now ends at once
# =============================================================================================

# program -> the value of the constant formula dOUT/dA (None: not a constant, or no float)
REPRODUCERS = {
    "OUT = A*3^1e-20": 1.0,
    "OUT = A*3^1e-309": 1.0,
    "OUT = A^(1/3^700)": None,
    "OUT = (A*10^700)^0.5": None,
    "OUT = A^(2^20000)": None,
    "OUT = (A+B)^1e10": None,
    "OUT = (2*A)^1e9": None,
    "OUT = A*0.5^1e9": 0.0,  # 2^-1000000000 underflows
    "OUT = A*3^10000000": None,  # overflows
    "OUT = A*log2(2^1000000)": None,
    "OUT = A*log10(10^300000)": None,
    "OUT = A^(2^1100)": None,
}


@pytest.mark.parametrize(("program", "value"), REPRODUCERS.items())
def test_reproducers_end_with_a_formula_or_a_clear_error(program: str, value: float | None):
    try:
        result = gradcalc.gradients(program)
    except (ConstantTooLarge, ExpressionTooLarge, GradcalcError):
        return  # a clean refusal is a correct answer too
    assert result.formulas
    for formula in result.formulas.values():
        parses(formula.text)
    if value is not None:
        assert result.formulas["A"].value == value


def test_tiny_root_degrees_stay_unevaluated():
    X = Algebra()
    for k in (10**20, 10**309):
        power = X.pow(X.number(3), X.number(Fraction(1, k)))
        assert X.constant_value(power) is None  # 3 has no exact root: kept as 3^(1/k)
        parses(X.text(power))
        with mpmath.workdps(DIGITS):
            expected = mpmath.power(3, mpmath.mpf(1) / k)
        assert mp_close(X.evaluate(power, {}, EVAL_FUNCTIONS), expected, 1e-12)
    assert X.text(X.pow(X.number(3), X.number(Fraction(1, 10**20)))) == \
        "3^(1/100000000000000000000)"
    # 1 has every root, 8 its cube root, however the exponent is written.
    assert X.pow(X.number(1), X.number(Fraction(1, 10**20))) == X.one
    assert X.pow(X.number(8), X.number(Fraction(2, 3))) == X.number(4)


def test_an_exponent_beyond_float_range_stays_exact():
    X = Algebra()
    a = X.symbol("A")
    root = X.pow(a, X.pow(X.number(3), X.number(-700)))
    parses(X.text(root))
    assert X.evaluate(root, {"A": 2.0}, EVAL_FUNCTIONS) == 1.0  # 2^(3^-700)
    # Exact: raising it to 3^700 gives A back.
    assert X.pow(root, X.number(3**700)) == a
    big = X.pow(a, X.pow(X.number(2), X.number(1100)))
    text = X.text(big)
    assert "10^300" in text  # written in chunks: a 332-digit literal would not parse
    parses(text)
    assert X.mul(big, X.pow(a, X.number(-(2**1100)))) == X.one


def test_square_root_of_a_huge_coefficient_is_exact():
    X = Algebra()
    a = X.symbol("A")
    scaled = X.pow(X.mul(a, X.pow(X.number(10), X.number(700))), X.number(Fraction(1, 2)))
    assert scaled == X.mul(X.number(10**350), X.pow(a, X.number(Fraction(1, 2))))
    parses(X.text(scaled))


def test_powers_too_large_to_fold_stay_powers():
    X = Algebra()
    a, b = X.symbol("A"), X.symbol("B")
    cases = {
        X.pow(a, X.pow(X.number(2), X.number(20000))): "A^2^20000",
        X.pow(X.add(a, b), X.number(10**10)): "(A + B)^10000000000",
        X.pow(X.mul(X.number(2), a), X.number(10**9)): "(2*A)^1000000000",
        X.pow(X.number(Fraction(1, 2)), X.number(10**9)): "(1/2)^1000000000",
        X.pow(X.number(3), X.number(10**7)): "3^10000000",
        X.call("log2", X.pow(X.number(2), X.number(10**6))): "log2(2^1000000)",
        X.call("log10", X.pow(X.number(10), X.number(300000))): "log10(10^300000)",
    }
    for expr, text in cases.items():
        assert X.text(expr) == text
        parses(text)
    # Where they are finite, their values are right (negative bases included).
    at = {"A": -1.5, "B": 0.5}
    assert X.evaluate(X.pow(X.add(a, b), X.number(10**10)), at, EVAL_FUNCTIONS) == 1.0
    assert X.evaluate(X.pow(X.mul(X.number(2), a), X.number(10**9)), {"A": -0.5},
                      EVAL_FUNCTIONS) == 1.0
    assert X.evaluate(X.pow(X.number(Fraction(1, 2)), X.number(10**9)), {},
                      EVAL_FUNCTIONS) == 0.0
    with pytest.raises(OverflowError):
        X.evaluate(X.pow(X.number(3), X.number(10**7)), {}, EVAL_FUNCTIONS)


def test_powers_within_the_bound_fold():
    X = Algebra()
    assert X.pow(X.number(2), X.number(MAX_BITS - 1)) == X.number(2 ** (MAX_BITS - 1))
    assert X.constant_value(X.pow(X.number(2), X.number(MAX_BITS))) is None  # MAX_BITS + 1 bits
    assert X.pow(X.number(10), X.number(3000)) == X.number(10**3000)  # 9,966 bits
    assert X.pow(X.number(Fraction(1, 2)), X.number(-9999)) == X.number(2**9999)
    assert X.pow(X.number(-1), X.number(10**30 + 1)) == X.number(-1)
    assert X.call("log2", X.pow(X.number(2), X.number(1000))) == X.number(1000)
    assert X.call("log10", X.pow(X.number(10), X.number(3000))) == X.number(3000)
    # The expansion limit is checked before len(terms)**n is: (A + B)^3 still multiplies out.
    a, b = X.symbol("A"), X.symbol("B")
    assert X.pow(X.add(a, b), X.number(3)) == X.mul(X.mul(X.add(a, b), X.add(a, b)),
                                                    X.add(a, b))
    assert X.term_count(X.pow(X.add(a, b), X.number(3))) == 4


def test_a_power_of_a_power_beyond_the_bound_stays_nested():
    X = Algebra()
    a = X.symbol("A")
    inner = X.pow(a, X.number(2**9000))
    outer = X.pow(inner, X.number(2**9000))  # A^(2^18000) would not fit
    text = X.text(outer)
    assert text.startswith("(A^(")
    parses(text)


# =============================================================================================
# ConstantTooLarge and the helpers it rests on
# =============================================================================================

def test_numbers_beyond_max_bits_are_refused():
    X = Algebra()
    for fits in (2**MAX_BITS - 1, -(2**MAX_BITS - 1), Fraction(1, 2**MAX_BITS - 1)):
        assert X.constant_value(X.number(fits)) == fits
    for value in (2**MAX_BITS, -(2**20000), Fraction(1, 2**MAX_BITS), Fraction(2**20000, 3)):
        with pytest.raises(ConstantTooLarge, match="more than 10,000 bits"):
            X.number(value)
    assert issubclass(ConstantTooLarge, ArithmeticError)


def _primes(limit: int) -> list[int]:
    sieve = bytearray([1]) * limit
    sieve[:2] = b"\0\0"
    for i in range(2, int(limit**0.5) + 1):
        if sieve[i]:
            sieve[i * i::i] = bytearray(len(sieve[i * i::i]))
    return [i for i, prime in enumerate(sieve) if prime]


def test_sums_and_products_beyond_the_bound_raise():
    X = Algebra()
    a = X.symbol("A")
    big = X.number(2**9000)
    with pytest.raises(ConstantTooLarge):
        X.mul(big, big)
    with pytest.raises(ConstantTooLarge):
        X.mul(X.mul(big, a), X.mul(big, a))
    # 1/2 + 1/3 + 1/5 + ...: the denominator is the product of the primes, past the bound.
    parts = [X.mul(X.number(Fraction(1, p)), a) for p in _primes(12000)]
    with pytest.raises(ConstantTooLarge):
        X.add(*parts)
    total = X.zero
    with pytest.raises(ConstantTooLarge):
        for part in parts:
            total = X.add(total, part)
    assert X.text(X.add(a, a)) == "2*A"  # the algebra is still usable


def test_exponents_beyond_the_bound_raise_where_no_power_can_hold_them():
    X = Algebra()
    a = X.symbol("A")
    half = X.pow(a, X.number(2 ** (MAX_BITS - 1)))
    with pytest.raises(ConstantTooLarge, match="exponent"):
        X.mul(half, half)  # A^(2^MAX_BITS)


@SETTINGS
@given(st.integers(0, 2**150), st.integers(1, 60))
@example(10**350, 2)
@example(2, 9999)
def test_integer_roots_are_exact(root: int, k: int):
    n = root**k
    assert _integer_root(n, k) == root
    if root >= 1 and k >= 2:
        assert _integer_root(n + 1, k) is None
    if root >= 2 and k >= 2:
        assert _integer_root(n - 1, k) is None


def test_integer_roots_of_huge_degree_need_no_work():
    assert _integer_root(3, 10**20) is None
    assert _integer_root(1, 10**309) == 1
    assert _integer_root(0, 10**309) == 0
    assert _integer_root(2**9999, 10**20) is None
    assert _integer_root(2**9999, 9999) == 2
    assert _integer_root(-8, 3) is None


def test_exact_logs():
    """log2 and log10 fold (the registry's ``exact``) where the logarithm is an integer."""
    log2, log10 = op_named("log2").exact, op_named("log10").exact
    assert log2 is not None and log10 is not None
    for k in (0, 1, 1000, 9999):
        assert log2(2**k) == k
    assert log10(10**3000) == 3000
    assert log2(3) is None
    assert log10(10**300 + 1) is None
    assert log2(Fraction(1, 8)) is None
    assert log2(-8) is None
    # A number beyond the bound never reaches a fold: the algebra does not build it.
    X = Algebra()
    with pytest.raises(ConstantTooLarge):
        X.number(2**1_000_000)
    assert X.constant_value(X.call("log2", X.number(2**9999))) == 9999
    assert X.constant_value(X.call("log10", X.number(10**3000))) == 3000


def test_exponent_text_parses():
    for value in (Fraction(1, 3), Fraction(-1, 3), 2**1100, -(2**1100),
                  Fraction(1, 3**700), Fraction(2**1100, 3**700)):
        parses(f"A^{_fraction_text(value)}")
    assert _fraction_text(Fraction(-1, 3)) == "(-(1/3))"
    assert _fraction_text(7) == "7"


# =============================================================================================
# The budget
# =============================================================================================

def test_the_budget_counts_the_parts_of_interned_expressions():
    X = Algebra(budget=4)  # 0 (no part), 1 (a term), the atom A (1), the expression A (2)
    a = X.symbol("A")
    with pytest.raises(ExpressionTooLarge, match=r"grew past 4 parts"):
        X.symbol("B")
    assert X.symbol("A") == a  # what is interned already costs nothing


def test_the_budget_stops_a_runaway_expression_and_keeps_the_rest():
    X = Algebra(budget=1000)
    x = X.symbol("x")
    kept = X.add(x, X.one)
    expr = x
    with pytest.raises(ExpressionTooLarge, match="1,000 parts"):
        for _ in range(10_000):
            expr = X.add(X.call("sin", expr), X.call("cos", expr))
    assert X.text(kept) == "x + 1"
    assert X.evaluate(kept, {"x": 2.0}, EVAL_FUNCTIONS) == 3.0


def test_a_long_product_costs_its_factors():
    # A product of n symbols is one expression of n + 1 parts: the budget bounds the size
    # (memory), not just the number, so n products of n factors each cannot slip under it.
    X = Algebra(budget=200)
    product = X.one
    with pytest.raises(ExpressionTooLarge, match="200 parts"):
        for k in range(100):
            product = X.mul(product, X.symbol(f"x{k}"))
    assert X._count <= 200


def test_the_default_budget():
    assert DEFAULT_BUDGET == 4_000_000
    assert Algebra()._budget == DEFAULT_BUDGET == Algebra(None)._budget
    with pytest.raises(ValueError):
        Algebra(budget=1)


# =============================================================================================
# Rewrites are theorems: random operation trees against mpmath
# =============================================================================================

class Undefined(Exception):
    """Not a real number under gradcalc's semantics."""


class TooBig(Exception):
    """Beyond the magnitudes compared (50 digits keep 1e-35 of absolute accuracy below it)."""


BIG = mpmath.mpf(10) ** 15


def _checked(value: mpmath.mpf) -> mpmath.mpf:
    if abs(value) > BIG:
        raise TooBig
    return value


def _rational(value: int | Fraction) -> mpmath.mpf:
    return mpmath.mpf(value.numerator) / value.denominator


def _real_pow(base: mpmath.mpf, exponent: mpmath.mpf) -> mpmath.mpf:
    """``math.pow``'s domain: a negative base needs a whole exponent, 0 no negative one."""
    if exponent == mpmath.floor(exponent):
        if base == 0 and exponent < 0:
            raise Undefined
        return _checked(base ** int(exponent))
    if base < 0 or (base == 0 and exponent < 0):
        raise Undefined
    return _checked(mpmath.power(base, exponent))


def _sqrt(x: mpmath.mpf) -> mpmath.mpf:
    if x < 0:
        raise Undefined
    return mpmath.sqrt(x)


def _log(x: mpmath.mpf) -> mpmath.mpf:
    if x <= 0:
        raise Undefined
    return mpmath.log(x)


MP_FUNCTIONS: dict[str, Callable[..., mpmath.mpf]] = {
    "abs": abs,
    "sqrt": _sqrt,
    "exp": lambda x: _checked(mpmath.exp(x)),
    "log": _log,
    "sin": mpmath.sin,
    "pow": _real_pow,
}

EXPONENTS = [Fraction(1, 2), Fraction(3, 2), Fraction(-1, 3), Fraction(1, 3), Fraction(2, 3),
             Fraction(-1, 2), 2, -2, 3, -1]

Tree = tuple  # ("x",), ("num", q), (op, a, b), ("pow", a, q), ("fn", name, a)

LEAVES = st.one_of(
    st.sampled_from([("x",), ("y",)]),
    st.builds(lambda n, d: ("num", Fraction(n, d)), st.integers(-3, 3), st.integers(1, 3)))

TREES = st.recursive(LEAVES, lambda inner: st.one_of(
    st.tuples(st.sampled_from(["add", "sub", "mul"]), inner, inner),
    st.tuples(st.just("pow"), inner, st.sampled_from(EXPONENTS)),
    st.tuples(st.just("fn"), st.sampled_from(sorted(MP_FUNCTIONS.keys() - {"pow"})), inner),
), max_leaves=8)

GRID_VALUES = (-2.5, -1.0, -0.5, 0.0, 0.75, 1.0, 2.0)
GRID = [{"x": x, "y": y} for x in GRID_VALUES for y in GRID_VALUES]
POINTS = st.builds(lambda x, y: {"x": x, "y": y}, st.floats(-3, 3), st.floats(-3, 3))


def build(X: Algebra, tree: Tree) -> int:
    """The tree through the algebra (which rewrites it as it goes)."""
    kind = tree[0]
    if kind in ("x", "y"):
        return X.symbol(kind)
    if kind == "num":
        return X.number(tree[1])
    if kind == "pow":
        return X.power(build(X, tree[1]), tree[2])
    if kind == "fn":
        return X.call(tree[1], build(X, tree[2]))
    a, b = build(X, tree[1]), build(X, tree[2])
    return X.add(a, b) if kind == "add" else X.sub(a, b) if kind == "sub" else X.mul(a, b)


def reference(tree: Tree, at: dict[str, float]) -> mpmath.mpf:
    """The tree as it stands, every step in the reals (Undefined where one is not)."""
    kind = tree[0]
    if kind in ("x", "y"):
        return mpmath.mpf(at[kind])
    if kind == "num":
        return _rational(tree[1])
    if kind == "pow":
        return _real_pow(reference(tree[1], at), _rational(tree[2]))
    if kind == "fn":
        return _checked(MP_FUNCTIONS[tree[1]](reference(tree[2], at)))
    a, b = reference(tree[1], at), reference(tree[2], at)
    return _checked(a + b if kind == "add" else a - b if kind == "sub" else a * b)


def algebra_value(X: Algebra, expr: int, at: dict[str, float]) -> mpmath.mpf:
    """The algebra's expression in mpmath, with the semantics of :meth:`Algebra.evaluate`."""
    memo: dict[int, mpmath.mpf] = {}
    for poly in X._postorder_polys(expr):
        total = mpmath.mpf(0)
        for monomial, coefficient in X._polys[poly]:
            term = _rational(coefficient)
            for atom, exponent in monomial:
                kind, name, operands = X._atoms[atom]
                if kind == "sym":
                    base = mpmath.mpf(at[name])
                elif kind == "group":
                    base = memo[operands[0]]
                else:
                    base = _checked(MP_FUNCTIONS[name](*(memo[o] for o in operands)))
                term = _checked(term * (base if exponent == 1
                                        else _real_pow(base, _rational(exponent))))
            total = _checked(total + term)
        memo[poly] = total
    return memo[expr]


def dag_value(dag: Dag, at: dict[str, float]) -> mpmath.mpf:
    """A parsed program's output in mpmath, node by node (ids are a topological order)."""
    ops: dict[str, Callable[..., mpmath.mpf]] = {
        "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
        "neg": lambda a: -a, "id": lambda a: a, "pow": _real_pow, **MP_FUNCTIONS}
    values: list[mpmath.mpf] = []
    for node, op in enumerate(dag.ops):
        args = [values[a] for a in dag.args[node]]
        if op.name in ("input", "const"):
            name = dag.names[node]
            value = dag.values[node] if name not in at else at[name]
            assert value is not None
            values.append(mpmath.mpf(value))
        elif op.name == "div":
            if args[1] == 0:
                raise Undefined
            values.append(_checked(args[0] / args[1]))
        else:
            values.append(_checked(ops[op.name](*args)))
    return values[dag.named[dag.output]]


def _outcome(compute: Callable[[], mpmath.mpf]) -> mpmath.mpf | TooBig | None:
    try:
        return compute()
    except Undefined:
        return None
    except TooBig as big:
        return big


def check_tree(tree: Tree, points: list[dict[str, float]]) -> int:
    """Assert the algebra's expression for ``tree`` is defined and equal wherever the tree
    is; the number of points compared."""
    X = Algebra()
    try:
        expr: int | None = build(X, tree)
    except ZeroDivisionError:  # a power of a sum that is identically 0: undefined everywhere
        expr = None
    compared = 0
    with mpmath.workdps(DIGITS):
        for at in points:
            expected = _outcome(lambda: reference(tree, at))  # noqa: B023 (called at once)
            if isinstance(expected, TooBig):
                continue
            if expr is None:
                assert expected is None, (tree, at, expected)
                continue
            got = _outcome(lambda: algebra_value(X, expr, at))  # noqa: B023
            if expected is None or isinstance(got, TooBig):
                continue  # the rewritten form may be defined where the tree is not
            assert got is not None, (tree, X.text(expr), at, expected)
            assert mp_close(got, expected), (tree, X.text(expr), at, got, expected)
            compared += 1
    return compared


@SETTINGS
@given(TREES, POINTS)
@example(("pow", ("pow", ("x",), 2), Fraction(1, 2)), {"x": -1.5, "y": 0.0})
@example(("pow", ("mul", ("x",), ("y",)), Fraction(1, 2)), {"x": -1.5, "y": -2.0})
@example(("pow", ("mul", ("num", Fraction(-2)), ("x",)), Fraction(1, 3)), {"x": -1.0, "y": 0.0})
@example(("pow", ("pow", ("x",), 3), Fraction(2, 3)), {"x": -1.0, "y": 0.0})
@example(("mul", ("pow", ("x",), Fraction(1, 2)), ("pow", ("x",), Fraction(-1, 2))),
         {"x": 0.0, "y": 0.0})
def test_rewrites_are_theorems_at_both_signs(tree: Tree, point: dict[str, float]):
    check_tree(tree, [*GRID, point])


@pytest.mark.parametrize("tree", [
    ("pow", ("pow", ("x",), 2), Fraction(1, 2)),  # (x^2)^(1/2) -> x: wrong for x < 0
    ("pow", ("mul", ("x",), ("y",)), Fraction(1, 2)),  # -> x^(1/2)*y^(1/2): undefined
])
def test_the_theorem_check_catches_the_old_fractional_power_bug(tree: Tree, monkeypatch):
    assert check_tree(tree, GRID) > 0
    monkeypatch.setattr(algebra, "_distributes", lambda monomial, n: True)
    with pytest.raises(AssertionError):
        check_tree(tree, GRID)


# =============================================================================================
# Printing parses back to the same values
# =============================================================================================

def check_round_trip(tree: Tree, points: list[dict[str, float]]) -> None:
    X = Algebra()
    try:
        expr = build(X, tree)
    except ZeroDivisionError:
        return
    text = X.text(expr)
    dag = gradcalc.compile_program(text, "<formula>")
    with mpmath.workdps(DIGITS):
        for at in points:
            printed = _outcome(lambda: dag_value(dag, at))  # noqa: B023 (called at once)
            built = _outcome(lambda: algebra_value(X, expr, at))  # noqa: B023
            if isinstance(printed, TooBig) or isinstance(built, TooBig):
                continue
            assert (printed is None) == (built is None), (text, at, printed, built)
            if printed is not None and built is not None:
                assert mp_close(printed, built), (text, at, printed, built)


@SETTINGS
@given(TREES, POINTS)
def test_printed_expressions_parse_back_to_the_same_values(tree: Tree,
                                                           point: dict[str, float]):
    check_round_trip(tree, [*GRID[::5], point])


@pytest.mark.parametrize("text", ["x^2 - 2*x*y + 1/3", "(x + 1)^(1/2)/(2*y)", "-sin(x)^2",
                                  "(x*y)^(-1/3) + exp(-x)", "abs(x - y)^(3/2)*log(y)"])
def test_printed_text_evaluates_the_same_in_gradcalc(text: str):
    X = Algebra()
    x, y = X.symbol("x"), X.symbol("y")
    dag = gradcalc.compile_program(text)
    # The program's expression, rebuilt in the algebra by walking the parsed graph.
    exprs: list[int] = []
    for node, op in enumerate(dag.ops):
        args = [exprs[a] for a in dag.args[node]]
        name = dag.names[node]
        if op.name in ("input", "const"):
            exprs.append({"x": x, "y": y}[name] if name in ("x", "y")
                         else X.number(Fraction(repr(dag.values[node]))))
        elif op.algebra is not None:
            exprs.append(getattr(X, op.algebra)(*args))
        else:
            exprs.append(X.call(op.name, *args))
    expr = exprs[dag.named[dag.output]]
    printed = X.text(expr)
    at = {"x": 0.7, "y": 1.9}
    direct = gradcalc.gradients(dag, at={n: v for n, v in at.items() if n in dag.inputs}).value
    reparsed = gradcalc.compile_program(printed)
    again = gradcalc.gradients(reparsed, at={n: v for n, v in at.items()
                                             if n in reparsed.inputs}).value
    assert direct is not None and again is not None
    assert abs(direct - again) <= 1e-12 * max(abs(direct), 1.0), (text, printed)
    assert abs(X.evaluate(expr, at, EVAL_FUNCTIONS) - direct) <= 1e-12 * max(abs(direct), 1.0)
