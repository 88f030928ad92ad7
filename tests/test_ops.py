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
from gradcalc.ops import CONSTANTS, FUNCTIONS, OPS, Op, extended_value, op_named

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
    ("cbrt", (0.0,)),
    ("cbrt", (-0.0,)),
    ("hypot", (0.0, 0.0)),
    ("acosh", (1.0,)),
    ("log1p", (-1.0 + 2**-53,)),
    ("atanh", (1.0 - 2**-53,)),
    ("leaky_relu", (0.0, 0.1)),
    ("clamp", (1.0, 1.0, 1.0)),
    ("clamp", (0.0, 1.0, 0.0)),
    ("softsign", (-0.0,)),
    ("elu", (-0.0,)),
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


# --- the newer functions: ln, log1p ... softsign -------------------------------------------------

def test_ln_is_log_under_another_name():
    """``ln`` is an alias: the same op object (printed ``log``), reachable by name; the
    registry holds it once, so everything that goes through OPS sees log once."""
    log = op_named("log")
    assert FUNCTIONS["ln"] is log
    assert set(FUNCTIONS) - {op.name for op in OPS} == {"ln"}
    assert [op.name for op in OPS].count("log") == 1
    with pytest.raises(KeyError):
        op_named("ln")  # ops are named once; the alias is a name to call them by
    r = gradcalc.gradients("OUT = ln(A)*A", at={"A": 2})
    assert r.gradients == gradcalc.gradients("OUT = log(A)*A", at={"A": 2}).gradients
    assert gradcalc.gradients("OUT = ln(A)").formulas["A"].text == "1/A"
    assert [op.name for op in r.dag.ops] == ["input", "log", "mul"]


# The numbers below are PyTorch's, checked against torch 2.13 (CPU, float64): the value and
# the gradient of each operand after backward(). clamp is torch.clamp(x, min=lo, max=hi) with
# tensor bounds; leaky_relu is torch.nn.functional.leaky_relu(x, slope) (its slope is a number
# there, so the slope's own derivative, x below 0 and 0 above, is not PyTorch's).
TORCH_CLAMP = [
    # (x, lo, hi), value, (d/dx, d/dlo, d/dhi)
    ((0.0, 0.0, 1.0), 0.0, (1.0, 0.0, 0.0)),  # on the lower bound: x gets it
    ((1.0, 0.0, 1.0), 1.0, (1.0, 0.0, 0.0)),  # on the upper bound: x gets it
    ((0.5, 0.0, 1.0), 0.5, (1.0, 0.0, 0.0)),
    ((-1.0, 0.0, 1.0), 0.0, (0.0, 1.0, 0.0)),
    ((2.0, 0.0, 1.0), 1.0, (0.0, 0.0, 1.0)),
    ((1.0, 1.0, 1.0), 1.0, (1.0, 0.0, 0.0)),  # lo = hi = x
    ((0.0, 1.0, 1.0), 1.0, (0.0, 0.0, 0.0)),  # lo = hi above x: nobody gets anything
    ((2.0, 1.0, 1.0), 1.0, (0.0, 0.0, 1.0)),  # lo = hi below x: hi gets it
    ((0.5, 1.0, 0.0), 0.0, (0.0, 0.0, 1.0)),  # lo > hi: hi is the result, wherever x is
    ((1.0, 1.0, 0.0), 0.0, (0.0, 0.0, 1.0)),
    ((0.0, 1.0, 0.0), 0.0, (0.0, 0.0, 1.0)),
    ((2.0, 1.0, 0.0), 0.0, (0.0, 0.0, 1.0)),
    ((-1.0, 1.0, 0.0), 0.0, (0.0, 0.0, 1.0)),
    ((3.0, 2.0, 1.0), 1.0, (0.0, 0.0, 1.0)),
    ((1.5, 2.0, 1.0), 1.0, (0.0, 0.0, 1.0)),
]


@pytest.mark.parametrize(("point", "value", "gradients"), TORCH_CLAMP,
                         ids=[str(case[0]) for case in TORCH_CLAMP])
def test_clamp_follows_torch(point, value, gradients):
    clamp = op_named("clamp")
    assert clamp.forward(*point) == value
    assert clamp.partials(*point, value) == gradients
    x, lo, hi = point
    assert clamp.kink(*point) == (lo == hi or (lo < hi and x in (lo, hi)))
    # the same through the whole program, and its formula at the point
    r = gradcalc.gradients("OUT = clamp(X, L, H)", at=dict(zip("XLH", point, strict=True)))
    assert (r.value, tuple(r.gradients[n] for n in "XLH")) == (value, gradients)
    assert [w.kind for w in r.warnings] == (["kink"] if clamp.kink(*point) else [])
    formulas = gradcalc.gradients("OUT = clamp(X, L, H)").formulas
    at = dict(zip("XLH", point, strict=True))
    assert tuple(gradcalc.gradients(formulas[n].text, at=at).value for n in "XLH") == gradients


@pytest.mark.parametrize(("x", "slope", "value", "d_x"), [
    (0.0, 0.01, 0.0, 0.01), (0.0, 0.2, 0.0, 0.2), (0.0, -0.5, -0.0, -0.5),
    (-0.0, 0.01, -0.0, 0.01), (-0.0, 0.2, -0.0, 0.2), (-0.0, -0.5, 0.0, -0.5),
    (1.0, 0.01, 1.0, 1.0), (1.0, -0.5, 1.0, 1.0),
    (-2.0, 0.01, -0.02, 0.01), (-2.0, 0.2, -0.4, 0.2), (-2.0, -0.5, 1.0, -0.5),
])
def test_leaky_relu_follows_torch(x, slope, value, d_x):
    """leaky_relu'(0) is the slope (PyTorch's leaky_relu_backward tests x > 0), checked
    against torch 2.13; the slope's derivative is x below 0 and 0 from 0 up."""
    op = op_named("leaky_relu")
    y = op.forward(x, slope)
    assert y == value and math.copysign(1.0, y) == math.copysign(1.0, value)
    assert op.partials(x, slope, y) == (d_x, min(x, 0.0))
    assert op.kink(x, slope) == (x == 0)
    assert not op.kink(0.0, 1.0)  # slope 1: the identity, no kink
    assert "slope" in op.kink_rule


# (name, x, value, derivative): checked against torch 2.13 (float64), torch.nn.functional's
# gelu (approximate="none"), silu, elu (alpha 1) and softsign, and torch.erf, erfc, asinh,
# acosh, atanh, log1p, expm1. (Far out PyTorch's float64 gelu cancels: gelu(-10) is -0.0
# there, where x*Phi(x) is -7.6e-23 and erfc gives it: see the extremes below.)
TORCH_POINTS = [
    ("gelu", 0.0, 0.0, 0.5), ("gelu", -1.0, -0.15865525393145702, -0.08331547058768635),
    ("gelu", 1.0, 0.841344746068543, 1.0833154705876864),
    ("silu", 0.0, 0.0, 0.5), ("silu", -1.0, -0.2689414213699951, 0.07232948812851325),
    ("silu", 1.0, 0.7310585786300049, 0.9276705118714869),
    ("elu", 0.0, 0.0, 1.0), ("elu", -0.0, -0.0, 1.0),
    ("elu", -1.0, -0.6321205588285577, 0.36787944117144233), ("elu", 1.0, 1.0, 1.0),
    ("softsign", 0.0, 0.0, 1.0), ("softsign", -0.0, -0.0, 1.0), ("softsign", -1.0, -0.5, 0.25),
    ("softsign", 1.0, 0.5, 0.25),
    ("erf", 0.0, 0.0, 1.1283791670955126), ("erf", 1.0, 0.8427007929497149, 0.4151074974205947),
    ("erfc", 0.0, 1.0, -1.1283791670955126),
    ("erfc", 1.0, 0.15729920705028513, -0.4151074974205947),
    ("asinh", 0.0, 0.0, 1.0), ("asinh", 1.0, 0.881373587019543, 0.7071067811865475),
    ("acosh", 1.0, 0.0, math.inf), ("acosh", 2.0, 1.3169578969248166, 0.5773502691896258),
    ("atanh", 0.0, 0.0, 1.0), ("atanh", 0.5, 0.5493061443340548, 1.3333333333333333),
    ("log1p", 0.0, 0.0, 1.0), ("log1p", 1.0, 0.6931471805599453, 0.5),
    ("expm1", 0.0, 0.0, 1.0), ("expm1", 1.0, 1.7182818284590453, 2.7182818284590455),
]


@pytest.mark.parametrize(("name", "x", "value", "derivative"), TORCH_POINTS,
                         ids=[f"{c[0]}({c[1]})" for c in TORCH_POINTS])
def test_new_functions_at_torch_points(name, x, value, derivative):
    op = op_named(name)
    y = op.forward(x)
    assert math.isclose(y, value, rel_tol=1e-15, abs_tol=1e-300)
    assert math.copysign(1.0, y) == math.copysign(1.0, value)
    (d,) = op.partials(x, y)
    assert d == derivative or math.isclose(d, derivative, rel_tol=1e-14)
    assert op.kink is None  # differentiable everywhere (elu and softsign at 0 too)


def test_hypot_at_the_origin_is_nan_as_in_torch():
    """torch.hypot's backward is x/hypot and y/hypot: 0/0 at the origin (torch 2.13: nan,
    nan); a kink warning names the convention."""
    hypot = op_named("hypot")
    assert hypot.forward(0.0, 0.0) == 0.0
    assert all(math.isnan(d) for d in hypot.partials(0.0, 0.0, 0.0))
    assert hypot.kink(0.0, -0.0) and not hypot.kink(0.0, 1e-300)
    assert hypot.partials(3.0, 4.0, 5.0) == (0.6, 0.8)
    assert hypot.partials(0.0, 1.0, 1.0) == (0.0, 1.0)
    r = gradcalc.gradients("OUT = hypot(A, B)", at={"A": 0, "B": 0})
    assert all(math.isnan(g) for g in r.gradients.values())
    assert [w.kind for w in r.warnings] == ["kink", "nonfinite", "nonfinite"]  # A's, B's
    assert "hypot'(0, 0) = nan" in r.warnings[0].hint


def test_cbrt_is_the_real_cube_root_with_an_infinite_slope_at_zero():
    cbrt = op_named("cbrt")
    for x, root in [(27.0, 3.0), (-8.0, -2.0), (0.125, 0.5), (-1e-300, -1e-100), (1e300, 1e100)]:
        assert math.isclose(cbrt.forward(x), root, rel_tol=4e-16)
    assert cbrt.forward(8.0) == 2.0 and cbrt.forward(-27.0) == -3.0
    assert cbrt.forward(-0.0) == 0.0 and math.copysign(1.0, cbrt.forward(-0.0)) == -1.0
    assert cbrt.partials(0.0, 0.0) == (math.inf,)  # like sqrt'(0)
    assert cbrt.partials(-8.0, -2.0) == (1 / 12,)
    assert cbrt.kink(0.0) and not cbrt.kink(1e-300)
    assert cbrt.kink_rule == "cbrt'(0) = inf"
    assert cbrt.exact is not None
    assert cbrt.exact(Fraction(-27, 8)) == Fraction(-3, 2)
    assert cbrt.exact(10**3000) == 10**1000 and cbrt.exact(10**3000 + 1) is None
    assert cbrt.exact(2) is None


def test_new_functions_are_stable_at_the_extremes():
    f = {name: op_named(name).forward for name in (
        "log1p", "expm1", "gelu", "silu", "elu", "softsign", "asinh", "acosh", "hypot",
        "erfc")}
    assert f["log1p"](1e-20) == 1e-20 and f["expm1"](1e-20) == 1e-20  # no 1 + x rounding
    assert f["gelu"](1e308) == 1e308 and f["gelu"](-40.0) == -0.0  # no overflow, no NaN
    assert -1e-297 < f["gelu"](-37.0) < 0  # erfc keeps the tail: 1 + erf(x) would be 0
    assert math.isclose(f["gelu"](-10.0), -7.619853024160527e-23, rel_tol=1e-13)  # x*Phi(x)
    assert f["silu"](-800.0) == -0.0 and f["silu"](800.0) == 800.0
    assert f["elu"](-800.0) == -1.0
    assert f["softsign"](1e308) == 1.0 and f["softsign"](-1e308) == -1.0
    assert f["asinh"](1e308) == math.asinh(1e308) and f["acosh"](1e308) > 709
    assert f["hypot"](1e308, 1e308) == math.sqrt(2) * 1e308
    assert 0 < f["erfc"](26.0) < 1e-290
    with pytest.raises(OverflowError):
        f["hypot"](1.7e308, 1.7e308)
    with pytest.raises(OverflowError):
        op_named("leaky_relu").forward(-1e300, 1e300)
    with pytest.raises(OverflowError):
        f["expm1"](710.0)
    for name, x in [("log1p", -1.0), ("acosh", 0.5), ("atanh", 1.0), ("atanh", -1.0)]:
        with pytest.raises(ValueError):
            op_named(name).forward(x)
    # where the forward rule refuses, IEEE arithmetic's infinity or NaN (as PyTorch's)
    assert extended_value(op_named("log1p"), -1.0) == -math.inf
    assert extended_value(op_named("atanh"), 1.0) == math.inf
    assert extended_value(op_named("atanh"), -1.0) == -math.inf
    assert math.isnan(extended_value(op_named("acosh"), 0.5))
    assert extended_value(op_named("leaky_relu"), -1e300, 1e300) == -math.inf
    assert extended_value(op_named("hypot"), 1.7e308, 1.7e308) == math.inf
