"""The one registry of operations.

Every operation is declared once, in :data:`OPS`, with its name, arity, forward rule and local
partial derivatives side by side, each partial-derivative helper right above the entry that
uses it. The parser, the builder, the engine, the algebra and the printers all look ops up
here, and the tests derive their tables from it, so adding a function means adding one
:class:`Op` entry (and naming it in the README's list of functions) and nothing else. Another
name for a function is an entry of :data:`ALIASES` (``ln`` for ``log``), never a second op.

Partial rules take the operands followed by the op's own result (``exp``'s derivative is its
result) and return one partial derivative per operand. They never raise: where a derivative is
infinite or undefined they return ``inf`` or ``nan`` and the engine reports it. Non-differentiable
points follow PyTorch: ``relu'(0) = 0``, ``abs'(0) = 0``, a ``max``/``min`` tie gives 1/2 to each
side, ``sqrt'(0) = inf``, ``leaky_relu'(0)`` is the slope, ``clamp`` gives ``x`` the gradient
on a bound, ``hypot``'s partials are ``nan`` at the origin.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from fractions import Fraction
from typing import Any, Final, Literal, TypeAlias

from gradcalc.fmt import DIVIDE, MINUS, TIMES

__all__ = [
    "ALIASES", "CONSTANTS", "FUNCTIONS", "OPS", "Op", "Precedence", "extended_value", "op_named"]

inf = math.inf
nan = math.nan

#: An exact number, as the algebra keeps it: an int where integral, else a Fraction.
Rational: TypeAlias = int | Fraction
#: Operand ranges, one ``(low, high)`` per operand.
Box: TypeAlias = tuple[tuple[float, float], ...]


class Precedence:
    """How tightly printed forms bind, loosest first: the grammar's levels. Every printer
    (program text, formulas, picture labels) parenthesises by this one table. Plain ints
    (not an enum): printers compare them for every term they write."""

    SUM: Final = 1  # a + b, a - b
    PRODUCT: Final = 2  # a * b, a / b
    UNARY: Final = 3  # -a, and negative numbers
    POWER: Final = 4  # a ^ b
    ATOM: Final = 9  # names, numbers, calls, anything in parentheses


@dataclass(frozen=True, slots=True, eq=False)
class Op:
    """One operation: how to compute it, differentiate it, print it and fold it.

    ``forward(*operands)`` gives the value (raising ``ValueError``/``ZeroDivisionError`` outside
    the domain, ``OverflowError`` on overflow), and ``domain`` says what the domain is in an
    error message; ``partials(*operands, result)`` gives the local derivative with respect to
    each operand. ``symbol``, ``precedence`` and ``associativity`` describe infix printing,
    ``pretty`` the symbol used in pictures. ``kink(*operands)`` is true at a non-differentiable
    point, where ``kink_rule`` tells which convention was applied. ``rule(X, *operands,
    result)`` is the symbolic form of ``partials``: the same derivatives as expressions of the
    algebra ``X`` (:class:`gradcalc.algebra.Algebra`), with the same conventions at kinks;
    ``algebra`` names the algebra's method that builds the op's own expression
    (``X.call(name, ...)`` when ``None``), and ``exact(*operands)`` is the op's exact value
    at exact rational operands where that is rational (``sin(0) = 0``), else ``None``: the
    algebra folds such calls to numbers. ``linear`` is true when the partials are constants,
    independent of the operands (add, sub, neg, id): a gradient passing through such an op
    needs none of its operands' values. ``smooth`` lists boxes of operands (one ``(low,
    high)`` per operand) inside the domain, clear of poles and branch cuts, where the op is
    smooth but for its kinks: the tests check the partials against finite differences there.
    Everything after ``partials`` is keyword-only.
    """

    name: str
    arity: int
    forward: Callable[..., float]
    partials: Callable[..., tuple[float, ...]]
    _: KW_ONLY
    domain: str = ""
    symbol: str | None = None
    pretty: str | None = None
    precedence: int = Precedence.ATOM
    associativity: Literal["left", "right"] = "left"
    function: bool = True
    kink: Callable[..., bool] | None = None
    kink_rule: str = ""
    rule: Callable[..., tuple[int, ...]] | None = None
    algebra: str | None = None
    linear: bool = False
    exact: Callable[..., Rational | None] | None = None
    smooth: tuple[Box, ...] = ()

    @property
    def label(self) -> str:
        """How the op is shown in pictures and tables: ``×`` for mul, ``sin`` for sin."""
        return self.pretty or self.symbol or self.name

    def show(self, operands: list[str]) -> str:
        """The op applied to operand texts as a person writes it: ``2 * 3``, ``-x``, ``log(-1)``."""
        if self.symbol and len(operands) == 2:
            return f"{operands[0]} {self.symbol} {operands[1]}"
        if self.symbol and len(operands) == 1:
            return f"{self.symbol}{operands[0]}"
        return f"{self.name}({', '.join(operands)})"


_REGISTRY: list[Op] = []


def _define(op: Op) -> Op:
    """Add ``op`` to the registry (in declaration order: :data:`OPS`)."""
    _REGISTRY.append(op)
    return op


# --- helpers several ops share -------------------------------------------------------------------

HALF = Fraction(1, 2)


def _reciprocal(x: float) -> float:
    return 1.0 / x if x else inf


def _sign(x: float) -> float:
    return 1.0 if x > 0 else -1.0 if x < 0 else 0.0


def _at_zero(x: float) -> bool:
    return x == 0


def _tie(a: float, b: float) -> bool:
    return a == b


def _zero_at_zero(x: Rational) -> Rational | None:
    return 0 if x == 0 else None


def _one_at_zero(x: Rational) -> Rational | None:
    return 1 if x == 0 else None


def _safe_pow(a: float, b: float) -> float:
    """``a**b`` where the real result is infinite or undefined gives inf/nan instead of raising."""
    try:
        return math.pow(a, b)
    except ZeroDivisionError:
        return inf
    except ValueError:
        return inf if a == 0 else nan
    except OverflowError:
        return inf


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


_NEAR: Box = ((-1e3, 1e3),)  # where the operators are smooth (everywhere): near enough
_NEAR2: Box = ((-1e3, 1e3), (-1e3, 1e3))

# Each op: name, arity, forward, numeric partials; then (keywords) the domain message, how it
# prints, its symbolic rule, its exact values and where it is smooth. The rules' X is the
# algebra; x, a, b are the operands' expressions and y the result's. X.symbol is only ever
# asked for a named constant (pi, in erf's rule).

# --- leaves and plumbing: not callable from programs ---------------------------------------------


def _leaf(*_: float) -> float:  # pragma: no cover - leaves are never evaluated by the engine
    raise AssertionError("leaf nodes have no forward rule")


def _no_partials(*_: float) -> tuple[float, ...]:
    return ()


INPUT = _define(Op("input", 0, _leaf, _no_partials, function=False))
CONST = _define(Op("const", 0, _leaf, _no_partials, function=False))
IDENTITY = _define(Op(
    "id", 1, float, lambda x, y: (1.0,), pretty="=", function=False,
    algebra="identity", linear=True,
    rule=lambda X, x, y: (X.one,),
    smooth=(_NEAR,)))

# --- operators -----------------------------------------------------------------------------------

_define(Op(
    "add", 2, operator.add, lambda a, b, y: (1.0, 1.0), symbol="+",
    precedence=Precedence.SUM, function=False, algebra="add", linear=True,
    rule=lambda X, a, b, y: (X.one, X.one),
    smooth=(_NEAR2,)))
_define(Op(
    "sub", 2, operator.sub, lambda a, b, y: (1.0, -1.0), symbol="-", pretty=MINUS,
    precedence=Precedence.SUM, function=False, algebra="sub", linear=True,
    rule=lambda X, a, b, y: (X.one, X.number(-1)),
    smooth=(_NEAR2,)))
_define(Op(
    "mul", 2, operator.mul, lambda a, b, y: (b, a), symbol="*", pretty=TIMES,
    precedence=Precedence.PRODUCT, function=False, algebra="mul",
    rule=lambda X, a, b, y: (b, a),
    smooth=(_NEAR2,)))


def _div_partials(a: float, b: float, y: float) -> tuple[float, float]:
    if b == 0:  # the forward rule refuses this; the partials still must not raise
        return (inf, nan)
    return (1.0 / b, -y / b)


_define(Op(
    "div", 2, operator.truediv, _div_partials, domain="division by zero", symbol="/",
    pretty=DIVIDE, precedence=Precedence.PRODUCT, function=False, algebra="div",
    rule=lambda X, a, b, y: (X.div(X.one, b), X.neg(X.div(y, b))),
    smooth=(((-100, 100), (-100, -0.1)), ((-100, 100), (0.1, 100)))))
_define(Op(
    "neg", 1, operator.neg, lambda x, y: (-1.0,), symbol="-", pretty=MINUS,
    precedence=Precedence.UNARY, function=False, algebra="neg", linear=True,
    rule=lambda X, x, y: (X.number(-1),),
    smooth=(_NEAR,)))


def _pow_partials(a: float, b: float, y: float) -> tuple[float, float]:
    d_base = 0.0 if b == 0 else b * _safe_pow(a, b - 1.0)
    # PyTorch's convention: where the base is 0 and the exponent is not negative the result is
    # constant in the exponent (0^b = 0, 0^0 = 1), so that partial is 0, not 0*log(0).
    if a > 0:
        d_exponent = y * math.log(a)
    elif a == 0 and b >= 0:
        d_exponent = 0.0
    else:
        d_exponent = nan  # a negative base: the real power is not differentiable in the exponent
    return (d_base, d_exponent)


_define(Op(
    "pow", 2, math.pow, _pow_partials,
    domain="a negative base needs a whole exponent, and 0 has no negative powers",
    symbol="^", precedence=Precedence.POWER, associativity="right", algebra="pow",
    # As numerically: an exponent of exactly 0 gives the base a derivative of 0.
    rule=lambda X, a, b, y: (X.zero if X.constant_value(b) == 0
                             else X.mul(b, X.pow(a, X.sub(b, X.one))),
                             X.mul(y, X.call("log", a))),
    smooth=(((0.1, 10), (-5, 5)),)))

# --- functions -----------------------------------------------------------------------------------

_define(Op(
    "sin", 1, math.sin, lambda x, y: (math.cos(x),),
    rule=lambda X, x, y: (X.call("cos", x),),
    exact=_zero_at_zero, smooth=(((-50, 50),),)))
_define(Op(
    "cos", 1, math.cos, lambda x, y: (-math.sin(x),),
    rule=lambda X, x, y: (X.neg(X.call("sin", x)),),
    exact=_one_at_zero, smooth=(((-50, 50),),)))


def _tan_partial(x: float, y: float) -> tuple[float]:
    c = math.cos(x)
    return (1.0 / (c * c) if c else inf,)


_define(Op(
    "tan", 1, math.tan, _tan_partial,
    rule=lambda X, x, y: (X.add(X.one, X.power(y, 2)),),
    # Three periods, clear of the poles at pi/2 + k*pi (there |cos| > 0.1).
    exact=_zero_at_zero, smooth=(((-1.47, 1.47),), ((1.68, 4.6),), ((-4.6, -1.68),))))


def _asin_partial(x: float, y: float) -> tuple[float]:
    r = 1.0 - x * x
    return (1.0 / math.sqrt(r) if r > 0 else inf,)


_define(Op(
    "asin", 1, math.asin, _asin_partial, domain="asin needs an argument in [-1, 1]",
    rule=lambda X, x, y: (X.power(X.sub(X.one, X.power(x, 2)), -HALF),),
    exact=_zero_at_zero, smooth=(((-0.99, 0.99),),)))


def _acos_partial(x: float, y: float) -> tuple[float]:
    r = 1.0 - x * x
    return (-1.0 / math.sqrt(r) if r > 0 else -inf,)


_define(Op(
    "acos", 1, math.acos, _acos_partial, domain="acos needs an argument in [-1, 1]",
    rule=lambda X, x, y: (X.neg(X.power(X.sub(X.one, X.power(x, 2)), -HALF)),),
    smooth=(((-0.99, 0.99),),)))
_define(Op(
    "atan", 1, math.atan, lambda x, y: (1.0 / (1.0 + x * x),),
    rule=lambda X, x, y: (X.power(X.add(X.one, X.power(x, 2)), -1),),
    exact=_zero_at_zero, smooth=(((-100, 100),),)))
_define(Op(
    "sinh", 1, math.sinh, lambda x, y: (math.cosh(x),),
    rule=lambda X, x, y: (X.call("cosh", x),),
    exact=_zero_at_zero, smooth=(((-20, 20),),)))
_define(Op(
    "cosh", 1, math.cosh, lambda x, y: (math.sinh(x),),
    rule=lambda X, x, y: (X.call("sinh", x),),
    exact=_one_at_zero, smooth=(((-20, 20),),)))
_define(Op(
    "tanh", 1, math.tanh, lambda x, y: (1.0 - y * y,),
    rule=lambda X, x, y: (X.sub(X.one, X.power(y, 2)),),
    exact=_zero_at_zero, smooth=(((-20, 20),),)))
_define(Op(
    "exp", 1, math.exp, lambda x, y: (y,),
    rule=lambda X, x, y: (y,),
    exact=_one_at_zero, smooth=(((-30, 30),),)))
_define(Op(
    "log", 1, math.log, lambda x, y: (_reciprocal(x),), domain="log needs a positive argument",
    rule=lambda X, x, y: (X.power(x, -1),),
    exact=lambda x: 0 if x == 1 else None, smooth=(((0.01, 1e4),),)))

_LN2 = math.log(2.0)
_LN10 = math.log(10.0)


def _exact_log(x: Rational, base: int) -> Rational | None:
    """log_base(x) where it is an integer: one candidate from the float logarithm, checked
    exactly (no loop over the digits of a huge number; the algebra's numbers are bounded)."""
    if x <= 0 or x.denominator != 1:
        return None
    n = x.numerator
    power = round(math.log(n, base))
    return power if base**power == n else None


_define(Op(
    "log2", 1, math.log2, lambda x, y: (_reciprocal(x * _LN2),),
    domain="log2 needs a positive argument",
    rule=lambda X, x, y: (X.power(X.mul(x, X.call("log", X.number(2))), -1),),
    exact=lambda x: _exact_log(x, 2), smooth=(((0.01, 1e4),),)))
_define(Op(
    "log10", 1, math.log10, lambda x, y: (_reciprocal(x * _LN10),),
    domain="log10 needs a positive argument",
    rule=lambda X, x, y: (X.power(X.mul(x, X.call("log", X.number(10))), -1),),
    exact=lambda x: _exact_log(x, 10), smooth=(((0.01, 1e4),),)))


def _sqrt_partial(x: float, y: float) -> tuple[float]:
    return (0.5 / y if y else inf,)


def _exact_root(x: Rational) -> Rational | None:
    if x < 0:
        return None
    p, q = math.isqrt(x.numerator), math.isqrt(x.denominator)
    return Fraction(p, q) if p * p == x.numerator and q * q == x.denominator else None


_define(Op(
    "sqrt", 1, math.sqrt, _sqrt_partial, domain="sqrt needs a non-negative argument",
    kink=_at_zero, kink_rule="sqrt'(0) = inf",
    rule=lambda X, x, y: (X.power(X.mul(X.number(2), y), -1),),
    exact=_exact_root, smooth=(((1e-3, 1e4),),)))
_define(Op(
    "abs", 1, math.fabs, lambda x, y: (_sign(x),), kink=_at_zero, kink_rule="abs'(0) = 0",
    rule=lambda X, x, y: (X.call("sign", x),),
    exact=abs, smooth=(((-100, 100),),)))
_define(Op(
    "relu", 1, lambda x: x if x > 0 else 0.0, lambda x, y: (1.0 if x > 0 else 0.0,),
    kink=_at_zero, kink_rule="relu'(0) = 0",
    rule=lambda X, x, y: (X.call("heaviside", x, X.zero),),
    exact=lambda x: max(x, 0), smooth=(((-100, 100),),)))
_define(Op(
    "sigmoid", 1, _sigmoid, lambda x, y: (y * (1.0 - y),),
    rule=lambda X, x, y: (X.mul(y, X.sub(X.one, y)),),
    exact=lambda x: HALF if x == 0 else None, smooth=(((-30, 30),),)))


def _softplus(x: float) -> float:
    return math.log1p(math.exp(-abs(x))) + max(x, 0.0)


_define(Op(
    "softplus", 1, _softplus, lambda x, y: (_sigmoid(x),),
    rule=lambda X, x, y: (X.call("sigmoid", x),),
    smooth=(((-30, 30),),)))


def _logaddexp(a: float, b: float) -> float:
    if math.isnan(a) or math.isnan(b):
        return nan
    high = a if a >= b else b
    if math.isinf(high):
        return high  # inf with anything, or both -inf
    return high + math.log1p(math.exp(-abs(a - b)))


def _logaddexp_partials(a: float, b: float, y: float) -> tuple[float, float]:
    gap = a - b
    if math.isnan(gap):
        return (nan, nan)
    return (_sigmoid(gap), _sigmoid(-gap))


# log(exp(a) + exp(b)) without overflow: logsumexp and softmax over a vector are made of it.
_define(Op(
    "logaddexp", 2, _logaddexp, _logaddexp_partials,
    rule=lambda X, a, b, y: (X.call("sigmoid", X.sub(a, b)), X.call("sigmoid", X.sub(b, a))),
    smooth=(((-30, 30), (-30, 30)),)))


def _max_partials(a: float, b: float, y: float) -> tuple[float, float]:
    if a > b:
        return (1.0, 0.0)
    if a < b:
        return (0.0, 1.0)
    return (0.5, 0.5)


_define(Op(
    "max", 2, lambda a, b: a if a >= b else b, _max_partials,
    kink=_tie, kink_rule="a tie gives 1/2 to each side",
    rule=lambda X, a, b, y: (X.call("heaviside", X.sub(a, b), X.number(HALF)),
                             X.call("heaviside", X.sub(b, a), X.number(HALF))),
    exact=max, smooth=(((-100, 100), (-100, 100)),)))


def _min_partials(a: float, b: float, y: float) -> tuple[float, float]:
    if a < b:
        return (1.0, 0.0)
    if a > b:
        return (0.0, 1.0)
    return (0.5, 0.5)


_define(Op(
    "min", 2, lambda a, b: a if a <= b else b, _min_partials,
    kink=_tie, kink_rule="a tie gives 1/2 to each side",
    rule=lambda X, a, b, y: (X.call("heaviside", X.sub(b, a), X.number(HALF)),
                             X.call("heaviside", X.sub(a, b), X.number(HALF))),
    exact=min, smooth=(((-100, 100), (-100, 100)),)))


def _atan2_partials(y_: float, x: float, r: float) -> tuple[float, float]:
    # Divide by the length twice instead of by x² + y², which under- or overflows far sooner.
    h = math.hypot(x, y_)
    if h == 0:
        return (nan, nan)
    return (x / h / h, -y_ / h / h)


_define(Op(
    "atan2", 2, math.atan2, _atan2_partials,
    rule=lambda X, a, b, y: (X.div(b, X.add(X.power(a, 2), X.power(b, 2))),
                             X.neg(X.div(a, X.add(X.power(a, 2), X.power(b, 2))))),
    # (y, x) away from the origin (a pole of the partials) and from the branch cut on the
    # negative x axis, where atan2 jumps by 2*pi as y changes sign.
    smooth=(((-10, 10), (0.1, 10)), ((0.1, 10), (-10, 10)), ((-10, -0.1), (-10, 10)))))

# Kinks written exactly, for symbolic derivatives (numpy's definitions; their own derivatives
# are 0 wherever they exist, and heaviside's value at 0 moves with h).
_define(Op(
    "sign", 1, _sign, lambda x, y: (0.0,), kink=_at_zero,
    kink_rule="sign'(0) = 0 (a jump: there is no derivative)",
    rule=lambda X, x, y: (X.zero,),
    exact=lambda x: Fraction((x > 0) - (x < 0)), smooth=(((-100, 100),),)))


def _heaviside(x: float, h: float) -> float:
    return 1.0 if x > 0 else 0.0 if x < 0 else h


_define(Op(
    "heaviside", 2, _heaviside, lambda x, h, y: (0.0, 1.0 if x == 0 else 0.0),
    kink=lambda x, h: x == 0,
    kink_rule="0 with respect to x at x = 0 (a jump: there is no derivative)",
    rule=lambda X, x, h, y: (X.zero, X.sub(X.one, X.call("abs", X.call("sign", x)))),
    exact=lambda x, h: 1 if x > 0 else 0 if x < 0 else h,
    smooth=(((-100, 100), (0, 1)),)))

# --- more functions: logarithms and exponentials near 0, roots, error functions, inverse
# hyperbolic functions -----------------------------------------------------------------------


def _log1p_partial(x: float, y: float) -> tuple[float]:
    return (_reciprocal(1.0 + x),)


_define(Op(
    "log1p", 1, math.log1p, _log1p_partial, domain="log1p needs an argument above -1",
    rule=lambda X, x, y: (X.power(X.add(X.one, x), -1),),
    exact=_zero_at_zero, smooth=(((-0.99, 1e4),),)))


def _safe_exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return inf


_define(Op(
    "expm1", 1, math.expm1, lambda x, y: (_safe_exp(x),),
    rule=lambda X, x, y: (X.call("exp", x),),
    exact=_zero_at_zero, smooth=(((-30, 30),),)))


def _cbrt(x: float) -> float:
    """The real cube root (negative for a negative argument): a float power, then one Newton
    step, which makes it accurate to about an ulp (``cbrt(27) = 3``, where ``27**(1/3)`` is
    3.0000000000000004). Python 3.11's ``math.cbrt`` is not there in 3.10."""
    if x == 0 or not math.isfinite(x):
        return x
    y = math.copysign(math.fabs(x) ** (1.0 / 3.0), x)
    return y - (y - x / (y * y)) / 3.0


def _cbrt_partial(x: float, y: float) -> tuple[float]:
    return (1.0 / (3.0 * y * y) if y else inf,)


def _integer_cbrt(n: int) -> int:
    """The integer cube root of ``n >= 0`` (rounded down), by Newton's method on integers: no
    float, so any size the algebra keeps."""
    if n < 2:
        return n
    x = 1 << -(-n.bit_length() // 3)  # at least the root
    while True:
        y = (2 * x + n // (x * x)) // 3
        if y >= x:
            return x
        x = y


def _exact_cbrt(x: Rational) -> Rational | None:
    a = -x if x < 0 else x
    p, q = _integer_cbrt(a.numerator), _integer_cbrt(a.denominator)
    if p**3 != a.numerator or q**3 != a.denominator:
        return None
    return Fraction(p, q) if x >= 0 else -Fraction(p, q)


_define(Op(
    "cbrt", 1, _cbrt, _cbrt_partial,
    kink=_at_zero, kink_rule="cbrt'(0) = inf",
    rule=lambda X, x, y: (X.power(X.mul(X.number(3), X.power(y, 2)), -1),),
    exact=_exact_cbrt, smooth=(((-1e3, -0.01),), ((0.01, 1e3),))))


def _hypot(a: float, b: float) -> float:
    h = math.hypot(a, b)
    if math.isinf(h) and math.isfinite(a) and math.isfinite(b):
        raise OverflowError("hypot overflows")
    return h


def _hypot_partials(a: float, b: float, y: float) -> tuple[float, float]:
    # PyTorch's a/hypot and b/hypot: 0/0 = nan at the origin (a cone's tip: no derivative).
    if y == 0:
        return (nan, nan)
    return (a / y, b / y)


_define(Op(
    "hypot", 2, _hypot, _hypot_partials,
    kink=lambda a, b: a == 0 and b == 0,
    kink_rule="hypot'(0, 0) = nan with respect to each argument (PyTorch's x/hypot(x, y))",
    rule=lambda X, a, b, y: (X.div(a, y), X.div(b, y)),
    exact=lambda a, b: _exact_root(a * a + b * b), smooth=(((-100, 100), (-100, 100)),)))

_SQRT_PI = math.sqrt(math.pi)
_SQRT2 = math.sqrt(2.0)


def _erf_partial(x: float, y: float) -> tuple[float]:
    return (2.0 / _SQRT_PI * math.exp(-x * x),)


def _two_over_sqrt_pi(X: Any) -> int:
    """2/sqrt(pi), exactly, in the algebra ``X``."""
    return X.div(X.number(2), X.call("sqrt", X.symbol("pi")))


_define(Op(
    "erf", 1, math.erf, _erf_partial,
    rule=lambda X, x, y: (X.mul(_two_over_sqrt_pi(X), X.call("exp", X.neg(X.power(x, 2)))),),
    exact=_zero_at_zero, smooth=(((-6, 6),),)))
_define(Op(
    "erfc", 1, math.erfc, lambda x, y: (-_erf_partial(x, y)[0],),
    rule=lambda X, x, y: (X.neg(X.mul(_two_over_sqrt_pi(X),
                                      X.call("exp", X.neg(X.power(x, 2))))),),
    exact=_one_at_zero, smooth=(((-6, 20),),)))
_define(Op(
    "asinh", 1, math.asinh, lambda x, y: (1.0 / math.hypot(1.0, x),),
    rule=lambda X, x, y: (X.power(X.add(X.power(x, 2), X.one), -HALF),),
    exact=_zero_at_zero, smooth=(((-1e3, 1e3),),)))


def _acosh_partial(x: float, y: float) -> tuple[float]:
    r = (x - 1.0) * (x + 1.0)
    return (1.0 / math.sqrt(r) if r > 0 else inf,)


_define(Op(
    "acosh", 1, math.acosh, _acosh_partial, domain="acosh needs an argument of at least 1",
    rule=lambda X, x, y: (X.power(X.sub(X.power(x, 2), X.one), -HALF),),
    exact=lambda x: 0 if x == 1 else None, smooth=(((1.01, 1e4),),)))


def _atanh_partial(x: float, y: float) -> tuple[float]:
    r = (1.0 - x) * (1.0 + x)
    return (1.0 / r if r else inf,)


_define(Op(
    "atanh", 1, math.atanh, _atanh_partial,
    domain="atanh needs an argument between -1 and 1 (both excluded)",
    rule=lambda X, x, y: (X.power(X.sub(X.one, X.power(x, 2)), -1),),
    exact=_zero_at_zero, smooth=(((-0.99, 0.99),),)))

# --- activation functions, as PyTorch defines them ----------------------------------------------


def _gelu(x: float) -> float:
    # x * Phi(x), Phi the normal distribution function, written with erfc: no cancellation
    # in 1 + erf(x/sqrt 2) for negative x, and no overflow in 0.5*x for huge x.
    return x * (0.5 * math.erfc(-x / _SQRT2))


def _gelu_partial(x: float, y: float) -> tuple[float]:
    # Phi(x) + x*phi(x), phi the normal density
    return (0.5 * math.erfc(-x / _SQRT2) + x * math.exp(-0.5 * x * x) / (_SQRT2 * _SQRT_PI),)


def _gelu_rule(X: Any, x: int, y: int) -> tuple[int]:
    # Phi(x) + x*phi(x): erfc(-x/sqrt(2))/2 + x*exp(-x^2/2)/sqrt(2*pi)
    phi = X.div(X.call("exp", X.mul(X.number(-HALF), X.power(x, 2))),
                X.call("sqrt", X.mul(X.number(2), X.symbol("pi"))))
    cdf = X.mul(X.number(HALF), X.call("erfc", X.neg(X.div(x, X.call("sqrt", X.number(2))))))
    return (X.add(cdf, X.mul(x, phi)),)


_define(Op(
    "gelu", 1, _gelu, _gelu_partial, rule=_gelu_rule,
    exact=_zero_at_zero, smooth=(((-20, 20),),)))


def _silu_partial(x: float, y: float) -> tuple[float]:
    s = _sigmoid(x)
    return (s * (1.0 + x * (1.0 - s)),)


def _silu_rule(X: Any, x: int, y: int) -> tuple[int]:
    s = X.call("sigmoid", x)
    return (X.mul(s, X.add(X.one, X.mul(x, X.sub(X.one, s)))),)


_define(Op(
    "silu", 1, lambda x: x * _sigmoid(x), _silu_partial, rule=_silu_rule,
    exact=_zero_at_zero, smooth=(((-50, 50),),)))
# elu with alpha = 1 is differentiable at 0 (both sides have slope 1; PyTorch gives 1 there):
# no kink. exp(min(x, 0)) is its derivative on both sides without overflowing for a big x.
_define(Op(
    "elu", 1, lambda x: x if x > 0 else math.expm1(x),
    lambda x, y: (1.0 if x > 0 else math.exp(x),),
    rule=lambda X, x, y: (X.call("exp", X.call("min", x, X.zero)),),
    exact=lambda x: x if x >= 0 else None, smooth=(((-30, 30),),)))


def _leaky_relu(x: float, slope: float) -> float:
    if x > 0:
        return x
    y = slope * x
    if math.isinf(y) and math.isfinite(slope) and math.isfinite(x):
        raise OverflowError("leaky_relu overflows")
    return y


def _leaky_relu_partials(x: float, slope: float, y: float) -> tuple[float, float]:
    # PyTorch: the slope below 0 *and at 0* (its leaky_relu_backward tests x > 0).
    return (1.0, 0.0) if x > 0 else (slope, x)


_define(Op(
    "leaky_relu", 2, _leaky_relu, _leaky_relu_partials,
    kink=lambda x, slope: x == 0 and slope != 1,
    kink_rule="leaky_relu'(0) = slope with respect to x (PyTorch), 0 with respect to slope",
    rule=lambda X, x, s, y: (
        X.add(s, X.mul(X.sub(X.one, s), X.call("heaviside", x, X.zero))),
        X.mul(x, X.call("heaviside", X.neg(x), X.one))),
    exact=lambda x, slope: x if x > 0 else slope * x,
    smooth=(((-100, 100), (-1, 1)),)))


def _clamp(x: float, lo: float, hi: float) -> float:
    """``min(max(x, lo), hi)``, as ``torch.clamp``: ``hi`` wins where ``lo > hi``, and a NaN
    anywhere gives NaN (a Value may hold one)."""
    if math.isnan(lo) or math.isnan(hi):
        return nan
    y = lo if x < lo else x
    return hi if y > hi else y


def _clamp_partials(x: float, lo: float, hi: float, y: float) -> tuple[float, float, float]:
    # PyTorch's clamp_backward and clamp_backward_min_max (checked against torch 2.13): x
    # gets 1 on [lo, hi], bounds included; lo gets 1 below it only while lo < hi; hi gets 1
    # above it, and wherever hi < lo (it is the result). lo = hi gives x 1 only at x = lo.
    return (1.0 if lo <= x <= hi else 0.0,
            1.0 if x < lo < hi else 0.0,
            1.0 if x > hi or hi < lo else 0.0)


def _clamp_kink(x: float, lo: float, hi: float) -> bool:
    return lo == hi or (lo < hi and (lo == x or x == hi))  # (nan is on no bound)


def _clamp_rule(X: Any, x: int, lo: int, hi: int, y: int) -> tuple[int, int, int]:
    def step(a: int, b: int, at_zero: int) -> int:
        return X.call("heaviside", X.sub(a, b), X.number(at_zero))  # 1 where a > b

    return (X.mul(step(x, lo, 1), step(hi, x, 1)),  # lo <= x and x <= hi
            X.mul(step(lo, x, 0), step(hi, lo, 0)),  # x < lo and lo < hi
            X.sub(X.one, X.mul(step(hi, x, 1), step(hi, lo, 1))))  # not (x <= hi and lo <= hi)


_define(Op(
    "clamp", 3, _clamp, _clamp_partials,
    kink=_clamp_kink,
    kink_rule="as PyTorch: x gets 1 on [lo, hi], bounds included; lo gets 1 only below lo < "
    "hi; hi gets 1 above hi, or wherever hi < lo",
    rule=_clamp_rule,
    exact=lambda x, lo, hi: min(max(x, lo), hi),
    smooth=(((-10, 10), (-5, 0), (0, 5)), ((-10, 10), (1, 5), (-5, 0)))))


def _softsign_partial(x: float, y: float) -> tuple[float]:
    d = 1.0 + math.fabs(x)
    return (1.0 / d / d,)


_define(Op(
    "softsign", 1, lambda x: x / (1.0 + math.fabs(x)), _softsign_partial,
    rule=lambda X, x, y: (X.power(X.add(X.one, X.call("abs", x)), -2),),
    exact=lambda x: Fraction(x) / (1 + abs(x)), smooth=(((-100, 100),),)))

# --- the registry --------------------------------------------------------------------------------

#: Every op, in declaration order.
OPS: tuple[Op, ...] = tuple(_REGISTRY)

_BY_NAME: dict[str, Op] = {op.name: op for op in OPS}

#: Other names of registry functions: ``ln(x)`` is ``log(x)`` (the same op; printed ``log``).
ALIASES: dict[str, str] = {"ln": "log"}

#: Ops a program may call by name, e.g. ``sin(x)``: every function under its own name, then
#: the :data:`ALIASES` (so ``FUNCTIONS["ln"] is FUNCTIONS["log"]``). Code that goes through
#: the ops themselves, once each, iterates :data:`OPS`.
FUNCTIONS: dict[str, Op] = {op.name: op for op in OPS if op.function}
FUNCTIONS.update({alias: FUNCTIONS[name] for alias, name in ALIASES.items()})

#: Named constants a program may use.
CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}


def op_named(name: str) -> Op:
    """The registry entry called ``name`` (``KeyError`` if there is none)."""
    return _BY_NAME[name]


def extended_value(op: Op, *operands: float) -> float:
    """``op``'s value where it is defined, and elsewhere the infinity or NaN that IEEE
    arithmetic gives (``1/0`` is inf, ``log(0)`` is -inf, ``sqrt(-1)`` and ``0/0`` are nan, an
    overflow is an infinity of the right sign). The numeric engine refuses such points in a
    program; a derivative's graph meets them at a kink or a boundary (``sqrt'(0)``) without the
    program being undefined there, and carries them on as the numeric partials do."""
    try:
        return op.forward(*operands)
    except ZeroDivisionError:
        a = operands[0]
        return nan if a == 0 or math.isnan(a) else math.copysign(inf, a)
    except ValueError:
        if op.name in ("log", "log2", "log10") and operands[0] == 0:
            return -inf
        if op.name == "log1p" and operands[0] == -1:
            return -inf
        if op.name == "atanh" and abs(operands[0]) == 1:
            return math.copysign(inf, operands[0])
        if op.name == "pow":
            return _safe_pow(*operands)
        return nan
    except OverflowError:
        if op.name == "pow":
            a, b = operands
            odd = b == int(b) and int(b) % 2 == 1
            return -inf if a < 0 and odd else inf
        if op.name == "leaky_relu":
            return operands[0] * operands[1]  # the product's infinity, with its sign
        return math.copysign(inf, operands[0]) if op.name == "sinh" else inf
