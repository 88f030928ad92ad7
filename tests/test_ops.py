"""The op registry against independent oracles.

Every differentiable op's value is checked against an independent implementation and its
partial derivatives against central finite differences, at many random points where the op
declares itself smooth (``Op.smooth``: inside the domain, clear of poles and branch cuts; the
points near a kink left out), so a new op is covered without touching the tests; the
documented conventions at non-differentiable points are checked exactly.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import pytest
from helpers import DOMAINS, central_difference, near_kink, property_settings, reference
from hypothesis import assume, given
from hypothesis import strategies as st

import gradcalc
from gradcalc.ops import CONSTANTS, FUNCTIONS, OPS, Op, op_named

SETTINGS = property_settings(150)

LEAVES = {"input", "const"}
DIFFERENTIABLE = [op for op in OPS if op.name not in LEAVES]


def test_every_op_declares_where_it_is_smooth():
    """The operand strategies of every test that covers all ops come from ``Op.smooth``
    (tests/helpers.py ``DOMAINS``): a new op must declare its boxes, each inside its domain."""
    assert set(DOMAINS) == {op.name for op in DIFFERENTIABLE}
    for op in DIFFERENTIABLE:
        for box in op.smooth:
            assert len(box) == op.arity, op.name
            assert all(lo < hi for lo, hi in box), op.name
            corner = tuple(lo for lo, _ in box)
            if not near_kink(op, corner):
                assert math.isfinite(op.forward(*corner)), (op.name, corner)


def test_registry_is_consistent():
    names = [op.name for op in OPS]
    assert len(names) == len(set(names))
    assert set(names) >= LEAVES
    for op in OPS:
        assert op_named(op.name) is op
        if op.function:
            assert FUNCTIONS[op.name] is op
    assert {"pi": math.pi, "e": math.e} == CONSTANTS


@pytest.mark.parametrize("name", sorted(DOMAINS))
@SETTINGS
@given(data=st.data())
def test_forward_matches_an_independent_implementation(name, data):
    """Each op's value against the function of its name in math, operator or mpmath, or the
    explicit definition in tests/helpers.py."""
    op = op_named(name)
    point = data.draw(DOMAINS[name], label="operands")
    assert math.isclose(op.forward(*point), reference(name)(*point), rel_tol=1e-12,
                        abs_tol=1e-300), (name, point)


@pytest.mark.parametrize("name", sorted(DOMAINS))
@SETTINGS
@given(data=st.data())
def test_partials_match_finite_differences(name, data):
    op = op_named(name)
    point = data.draw(DOMAINS[name], label="operands")
    assert len(point) == op.arity
    result = op.forward(*point)
    assert math.isfinite(result)
    partials = op.partials(*point, result)
    assert isinstance(partials, tuple)
    assert len(partials) == op.arity
    for i, partial in enumerate(partials):
        estimate, rounding = central_difference(op.forward, point, i)
        assert math.isfinite(partial), (name, point, i)
        tolerance = 1e-5 * max(abs(partial), abs(estimate)) + rounding + 1e-12
        assert abs(partial - estimate) <= tolerance, (name, point, i, partial, estimate)


# --- exact values: what the algebra folds ------------------------------------------------------

EXACT_POINTS = sorted({Fraction(n, d) for n in range(-4, 9) for d in (1, 2, 4)}
                      | {Fraction(100), Fraction(1000), Fraction(1, 9)})


@pytest.mark.parametrize("op", [op for op in OPS if op.exact is not None], ids=lambda op: op.name)
def test_exact_values_are_the_forward_values(op: Op):
    """Where an op folds exact operands to an exact number (``sin(0) = 0``, ``log2(8) = 3``),
    that number is the forward rule's value: folding changes no result."""
    assert op.exact is not None
    folded = 0
    for point in itertools.product(EXACT_POINTS, repeat=op.arity):
        value = op.exact(*point)
        if value is None:
            continue
        folded += 1
        assert isinstance(value, int | Fraction), (op.name, point, value)
        expected = op.forward(*map(float, point))
        assert math.isclose(float(value), expected, rel_tol=1e-15), (op.name, point, value)
    assert folded, f"{op.name} folds none of {EXACT_POINTS}"


def test_everything_after_the_partials_is_a_keyword():
    with pytest.raises(TypeError):
        Op("twice", 1, lambda x: 2 * x, lambda x, y: (2.0,), "no domain")  # type: ignore[misc]
    assert Op("twice", 1, lambda x: 2 * x, lambda x, y: (2.0,), domain="all").domain == "all"


def test_printing_follows_the_grammar():
    """Infix ops bind as the grammar reads them: + - loosest, then * /, unary -, then ^, the
    only right-associative one."""
    assert {op.name: op.precedence for op in OPS if op.symbol} == {
        "add": 1, "sub": 1, "mul": 2, "div": 2, "neg": 3, "pow": 4}
    assert [op.name for op in OPS if op.associativity == "right"] == ["pow"]


# --- documented conventions at non-differentiable points -------------------------------------

@pytest.mark.parametrize("x", [0.0, -0.0])
def test_relu_derivative_at_zero_is_zero(x):
    relu = op_named("relu")
    assert relu.forward(x) == 0.0
    assert relu.partials(x, relu.forward(x)) == (0.0,)
    assert relu.kink(x)
    assert relu.kink_rule == "relu'(0) = 0"


@pytest.mark.parametrize("x", [0.0, -0.0])
def test_abs_derivative_at_zero_is_zero(x):
    fabs = op_named("abs")
    assert fabs.forward(x) == 0.0
    assert fabs.partials(x, fabs.forward(x)) == (0.0,)
    assert fabs.kink(x)
    assert fabs.kink_rule == "abs'(0) = 0"


@pytest.mark.parametrize("name", ["max", "min"])
@pytest.mark.parametrize("a", [0.0, 1.0, -2.5, 1e300, -1e-300])
def test_max_min_tie_splits_half_half(name, a):
    op = op_named(name)
    y = op.forward(a, a)
    assert y == a
    assert op.partials(a, a, y) == (0.5, 0.5)
    assert op.kink(a, a)
    assert not op.kink(a, a + 1.0) or a + 1.0 == a


def test_sqrt_derivative_at_zero_is_infinite():
    sqrt = op_named("sqrt")
    assert sqrt.forward(0.0) == 0.0
    assert sqrt.partials(0.0, 0.0) == (math.inf,)
    assert sqrt.kink(0.0)
    assert not sqrt.kink(1e-300)


@pytest.mark.parametrize("name", ["relu", "abs", "sqrt", "sign"])
def test_kinks_only_at_zero(name):
    op = op_named(name)
    for x in (1e-300, 0.5, 3.0):
        assert not op.kink(x)
    assert op.kink(0.0)


def test_every_kink_states_its_rule():
    """An op with a kink says which convention applies there (the warning quotes it), and
    only such an op has a rule to state."""
    kinked = {op.name for op in DIFFERENTIABLE if op.kink is not None}
    assert kinked == {op.name for op in DIFFERENTIABLE if op.kink_rule}


# --- partials never raise -----------------------------------------------------------------------

EDGE_POINTS: list[tuple[str, tuple[float, ...]]] = [
    ("sqrt", (0.0,)),
    ("sqrt", (-0.0,)),
    ("relu", (0.0,)),
    ("abs", (0.0,)),
    ("asin", (1.0,)),
    ("asin", (-1.0,)),
    ("acos", (1.0,)),
    ("acos", (-1.0,)),
    ("pow", (-2.0, 2.0)),
    ("pow", (-2.0, 3.0)),
    ("pow", (-0.5, -2.0)),
    ("pow", (0.0, 0.0)),
    ("pow", (0.0, 0.5)),
    ("pow", (0.0, 2.0)),
    ("pow", (-0.0, 3.0)),
    ("atan2", (0.0, 0.0)),
    ("atan2", (-0.0, -0.0)),
    ("max", (0.0, 0.0)),
    ("min", (0.0, 0.0)),
    ("tan", (math.pi / 2,)),
    ("div", (0.0, 1.0)),
]


@pytest.mark.parametrize(("name", "point"), EDGE_POINTS,
                         ids=[f"{n}{p}" for n, p in EDGE_POINTS])
def test_partials_at_edge_points_do_not_raise(name, point):
    op = op_named(name)
    y = op.forward(*point)
    partials = op.partials(*point, y)
    assert isinstance(partials, tuple)
    assert len(partials) == op.arity
    assert all(isinstance(p, float) for p in partials)


def test_edge_point_values():
    """The specific inf/nan values documented for the edge points."""
    asin, acos, pw, atan2 = (op_named(n) for n in ("asin", "acos", "pow", "atan2"))
    assert asin.partials(1.0, asin.forward(1.0)) == (math.inf,)
    assert asin.partials(-1.0, asin.forward(-1.0)) == (math.inf,)
    assert acos.partials(1.0, acos.forward(1.0)) == (-math.inf,)
    assert acos.partials(-1.0, acos.forward(-1.0)) == (-math.inf,)
    # negative base, whole exponent: d/da = b*a^(b-1) is fine, d/db is undefined (nan)
    d_base, d_exp = pw.partials(-2.0, 3.0, pw.forward(-2.0, 3.0))
    assert d_base == 3.0 * 4.0
    assert math.isnan(d_exp)
    # 0^b with b >= 0 is constant in b (PyTorch convention); d/da of 0^0.5 is inf
    assert pw.partials(0.0, 2.0, 0.0) == (0.0, 0.0)
    assert pw.partials(0.0, 0.0, 1.0) == (0.0, 0.0)
    assert pw.partials(0.0, 0.5, 0.0) == (math.inf, 0.0)
    d = atan2.partials(0.0, 0.0, atan2.forward(0.0, 0.0))
    assert len(d) == 2
    assert all(math.isnan(v) for v in d)



@pytest.mark.parametrize("scale", [2.0**-600, 2.0**-300, 2.0**300, 2.0**600])
@pytest.mark.parametrize(("y", "x"), [(1.0, 1.0), (3.0, -4.0)])
def test_atan2_partials_at_extreme_scales(y, x, scale):
    """atan2's partials x/r^2 and -y/r^2 are finite, representable numbers far from the origin
    at any scale; computing r^2 = x*x + y*y directly underflows (or overflows) first."""
    atan2 = op_named("atan2")
    ys, xs = y * scale, x * scale
    r = math.hypot(xs, ys)
    expected = ((xs / r) / r, (-ys / r) / r)
    got = atan2.partials(ys, xs, atan2.forward(ys, xs))
    assert all(math.isfinite(e) and e != 0 for e in expected)
    for g, e in zip(got, expected, strict=True):
        assert math.isclose(g, e, rel_tol=1e-12), (got, expected)

FINITE = st.floats(allow_nan=False, allow_infinity=False)
SPECIAL = st.sampled_from([0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 3.0, 1e-300, -1e-300,
                           5e-324, 1e300, -1e300, 700.0, -700.0, 710.0, math.pi / 2])
ANY_FLOAT = st.one_of(SPECIAL, FINITE)


@pytest.mark.parametrize("name", sorted(DOMAINS))
@SETTINGS
@given(data=st.data())
def test_partials_never_raise_where_forward_is_defined(name, data):
    """Wherever the forward rule gives a finite value (the only points the engine ever
    differentiates at), the partials return floats (possibly inf/nan) instead of raising."""
    op = op_named(name)
    point = tuple(data.draw(ANY_FLOAT, label=f"x{i}") for i in range(op.arity))
    try:
        y = op.forward(*point)
    except (ValueError, ZeroDivisionError, OverflowError):
        assume(False)
    assume(math.isfinite(y))
    partials = op.partials(*point, y)
    assert len(partials) == op.arity
    assert all(isinstance(p, float) for p in partials)


# --- forward values against closed forms ---------------------------------------------------------

def test_sigmoid_closed_forms():
    sigmoid = op_named("sigmoid").forward
    assert sigmoid(0.0) == 0.5
    for x in (-5.0, -1.0, 0.3, 2.0, 7.5):
        assert math.isclose(sigmoid(x), 1.0 / (1.0 + math.exp(-x)), rel_tol=1e-14)
        assert math.isclose(sigmoid(x) + sigmoid(-x), 1.0, rel_tol=1e-14)
    assert sigmoid(800.0) == 1.0
    assert 0.0 <= sigmoid(-800.0) < 1e-300


def test_softplus_closed_forms_and_stability():
    softplus = op_named("softplus")
    assert softplus.forward(0.0) == math.log(2.0)
    for x in (-20.0, -3.0, -0.5, 0.25, 1.0, 4.0, 20.0):
        assert math.isclose(softplus.forward(x), math.log1p(math.exp(x)), rel_tol=1e-12)
        assert math.isclose(softplus.forward(x) - softplus.forward(-x), x,
                            rel_tol=1e-12, abs_tol=1e-12)
    # log(1 + e^800) would overflow if computed naively
    assert softplus.forward(800.0) == 800.0
    assert 0.0 <= softplus.forward(-800.0) < 1e-300
    assert softplus.partials(800.0, 800.0) == (1.0,)
    (d,) = softplus.partials(-800.0, softplus.forward(-800.0))
    assert 0.0 <= d < 1e-300


def test_other_forward_closed_forms():
    f = {op.name: op.forward for op in DIFFERENTIABLE}
    assert f["relu"](-2.0) == 0.0
    assert f["relu"](3.0) == 3.0
    assert f["abs"](-2.5) == 2.5
    assert f["max"](1.0, 2.0) == 2.0
    assert f["min"](1.0, 2.0) == 1.0
    assert f["max"](-3.0, -4.0) == -3.0
    assert f["min"](-3.0, -4.0) == -4.0
    assert math.isclose(f["atan2"](1.0, 1.0), math.pi / 4, rel_tol=1e-15)
    assert math.isclose(f["atan2"](1.0, -1.0), 3 * math.pi / 4, rel_tol=1e-15)
    assert f["pow"](2.0, 10.0) == 1024.0
    assert f["pow"](-2.0, 3.0) == -8.0
    assert f["div"](1.0, 4.0) == 0.25
    assert f["sub"](5.0, 7.0) == -2.0
    assert f["neg"](3.0) == -3.0
    assert f["id"](3.0) == 3.0
    assert f["log2"](1024.0) == 10.0
    assert f["log10"](1e-3) == -3.0
    assert math.isclose(f["tanh"](0.5), (math.e - 1) / (math.e + 1), rel_tol=1e-14)
    assert math.isclose(f["cosh"](1.0), (math.e + 1 / math.e) / 2, rel_tol=1e-14)
    assert math.isclose(f["sinh"](1.0), (math.e - 1 / math.e) / 2, rel_tol=1e-14)


def test_steps_warn_at_their_jump():
    """sign and heaviside jump at 0: the derivative 0 used there is a convention, and the
    evaluation says so like at any other kink."""
    heaviside = op_named("heaviside")
    assert heaviside.kink(0.0, 0.5) and not heaviside.kink(1e-300, 0.5)
    r = gradcalc.gradients("OUT = sign(A) + heaviside(A, 0.5)", at={"A": 0})
    assert [w.message for w in r.warnings] == [
        "sign is not differentiable at sign(0)",
        "heaviside is not differentiable at heaviside(0, 0.5)"]
