"""The one registry of operations.

Every operation is declared once, in :data:`OPS`, with its name, arity, forward rule and local
partial derivatives side by side. The parser, the builder, the engine and the printers all look
ops up here, so adding a function means adding one :class:`Op` entry and nothing else.

Partial rules take the operands followed by the op's own result (``exp``'s derivative is its
result) and return one partial derivative per operand. They never raise: where a derivative is
infinite or undefined they return ``inf`` or ``nan`` and the engine reports it. Non-differentiable
points follow PyTorch: ``relu'(0) = 0``, ``abs'(0) = 0``, a ``max``/``min`` tie gives 1/2 to each
side, ``sqrt'(0) = inf``.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

__all__ = ["CONSTANTS", "FUNCTIONS", "OPS", "Op", "extended_value", "op_named"]

inf = math.inf
nan = math.nan


@dataclass(frozen=True, slots=True, eq=False)
class Op:
    """One operation: how to compute it and how to differentiate it.

    ``forward(*operands)`` gives the value (raising ``ValueError``/``ZeroDivisionError`` outside
    the domain, ``OverflowError`` on overflow); ``partials(*operands, result)`` gives the local
    derivative with respect to each operand. ``symbol``/``precedence`` describe infix printing,
    ``pretty`` the symbol used in pictures. ``kink(*operands)`` is true at a non-differentiable
    point, where ``kink_rule`` tells which convention was applied. ``rule(X, *operands, result)``
    is the symbolic form of ``partials``: the same derivatives as expressions of the algebra
    ``X`` (:class:`gradcalc.algebra.Algebra`), with the same conventions at kinks; ``algebra``
    names the algebra's method that builds the op's own expression (``X.call(name, ...)`` when
    ``None``). ``linear`` is true when the partials are constants, independent of the operands
    (add, sub, neg, id): a gradient passing through such an op needs none of its operands'
    values.
    """

    name: str
    arity: int
    forward: Callable[..., float]
    partials: Callable[..., tuple[float, ...]]
    domain: str = ""
    symbol: str | None = None
    pretty: str | None = None
    precedence: int = 5
    function: bool = True
    kink: Callable[..., bool] | None = None
    kink_rule: str = ""
    rule: Callable[..., tuple[int, ...]] | None = None
    algebra: str | None = None
    linear: bool = False

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


def _leaf(*_: float) -> float:  # pragma: no cover - leaves are never evaluated by the engine
    raise AssertionError("leaf nodes have no forward rule")


def _no_partials(*_: float) -> tuple[float, ...]:
    return ()


def _div(a: float, b: float, y: float) -> tuple[float, float]:
    if b == 0:  # the forward rule refuses this; the partials still must not raise
        return (inf, nan)
    return (1.0 / b, -y / b)


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


def _sqrt_partial(x: float, y: float) -> tuple[float]:
    return (0.5 / y if y else inf,)


def _asin_partial(x: float, y: float) -> tuple[float]:
    r = 1.0 - x * x
    return (1.0 / math.sqrt(r) if r > 0 else inf,)


def _acos_partial(x: float, y: float) -> tuple[float]:
    r = 1.0 - x * x
    return (-1.0 / math.sqrt(r) if r > 0 else -inf,)


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def _softplus(x: float) -> float:
    return math.log1p(math.exp(-abs(x))) + max(x, 0.0)


def _tan_partial(x: float, y: float) -> tuple[float]:
    c = math.cos(x)
    return (1.0 / (c * c) if c else inf,)


def _atan2_partials(y_: float, x: float, r: float) -> tuple[float, float]:
    # Divide by the length twice instead of by x² + y², which under- or overflows far sooner.
    h = math.hypot(x, y_)
    if h == 0:
        return (nan, nan)
    return (x / h / h, -y_ / h / h)


def _reciprocal(x: float) -> float:
    return 1.0 / x if x else inf


def _max_partials(a: float, b: float, y: float) -> tuple[float, float]:
    if a > b:
        return (1.0, 0.0)
    if a < b:
        return (0.0, 1.0)
    return (0.5, 0.5)


def _min_partials(a: float, b: float, y: float) -> tuple[float, float]:
    if a < b:
        return (1.0, 0.0)
    if a > b:
        return (0.0, 1.0)
    return (0.5, 0.5)


def _sign(x: float) -> float:
    return 1.0 if x > 0 else -1.0 if x < 0 else 0.0


def _tie(a: float, b: float) -> bool:
    return a == b


def _at_zero(x: float) -> bool:
    return x == 0


_LN2 = math.log(2.0)
_LN10 = math.log(10.0)

HALF = Fraction(1, 2)


def _heaviside(x: float, h: float) -> float:
    return 1.0 if x > 0 else 0.0 if x < 0 else h


# Each op: name, arity, forward, numeric partials, domain message, then its symbolic rule.
# The rules' X is the algebra; x, a, b are the operands' expressions and y the result's.
OPS: tuple[Op, ...] = (
    # Leaves and plumbing: not callable from programs.
    Op("input", 0, _leaf, _no_partials, function=False),
    Op("const", 0, _leaf, _no_partials, function=False),
    Op("id", 1, float, lambda x, y: (1.0,), pretty="=", function=False,
       algebra="identity", linear=True,
       rule=lambda X, x, y: (X.one,)),
    # Operators.
    Op("add", 2, operator.add, lambda a, b, y: (1.0, 1.0), symbol="+", precedence=1,
       function=False, algebra="add", linear=True,
       rule=lambda X, a, b, y: (X.one, X.one)),
    Op("sub", 2, operator.sub, lambda a, b, y: (1.0, -1.0), symbol="-", pretty="−",
       precedence=1, function=False, algebra="sub", linear=True,
       rule=lambda X, a, b, y: (X.one, X.number(-1))),
    Op("mul", 2, operator.mul, lambda a, b, y: (b, a), symbol="*", pretty="×", precedence=2,
       function=False, algebra="mul",
       rule=lambda X, a, b, y: (b, a)),
    Op("div", 2, operator.truediv, _div, "division by zero", symbol="/", pretty="÷",
       precedence=2, function=False,
       algebra="div",
       rule=lambda X, a, b, y: (X.div(X.one, b), X.neg(X.div(y, b)))),
    Op("neg", 1, operator.neg, lambda x, y: (-1.0,), symbol="-", pretty="−", precedence=3,
       function=False, algebra="neg", linear=True,
       rule=lambda X, x, y: (X.number(-1),)),
    Op("pow", 2, math.pow, _pow_partials,
       "a negative base needs a whole exponent, and 0 has no negative powers",
       symbol="^", precedence=4,
       algebra="pow",
       # As numerically: an exponent of exactly 0 gives the base a derivative of 0.
       rule=lambda X, a, b, y: (X.zero if X.constant_value(b) == 0
                                else X.mul(b, X.pow(a, X.sub(b, X.one))),
                                X.mul(y, X.call("log", a)))),
    # Functions.
    Op("sin", 1, math.sin, lambda x, y: (math.cos(x),),
       rule=lambda X, x, y: (X.call("cos", x),)),
    Op("cos", 1, math.cos, lambda x, y: (-math.sin(x),),
       rule=lambda X, x, y: (X.neg(X.call("sin", x)),)),
    Op("tan", 1, math.tan, _tan_partial,
       rule=lambda X, x, y: (X.add(X.one, X.power(y, 2)),)),
    Op("asin", 1, math.asin, _asin_partial, "asin needs an argument in [-1, 1]",
       rule=lambda X, x, y: (X.power(X.sub(X.one, X.power(x, 2)), -HALF),)),
    Op("acos", 1, math.acos, _acos_partial, "acos needs an argument in [-1, 1]",
       rule=lambda X, x, y: (X.neg(X.power(X.sub(X.one, X.power(x, 2)), -HALF)),)),
    Op("atan", 1, math.atan, lambda x, y: (1.0 / (1.0 + x * x),),
       rule=lambda X, x, y: (X.power(X.add(X.one, X.power(x, 2)), -1),)),
    Op("sinh", 1, math.sinh, lambda x, y: (math.cosh(x),),
       rule=lambda X, x, y: (X.call("cosh", x),)),
    Op("cosh", 1, math.cosh, lambda x, y: (math.sinh(x),),
       rule=lambda X, x, y: (X.call("sinh", x),)),
    Op("tanh", 1, math.tanh, lambda x, y: (1.0 - y * y,),
       rule=lambda X, x, y: (X.sub(X.one, X.power(y, 2)),)),
    Op("exp", 1, math.exp, lambda x, y: (y,), rule=lambda X, x, y: (y,)),
    Op("log", 1, math.log, lambda x, y: (_reciprocal(x),), "log needs a positive argument",
       rule=lambda X, x, y: (X.power(x, -1),)),
    Op("log2", 1, math.log2, lambda x, y: (_reciprocal(x * _LN2),),
       "log2 needs a positive argument",
       rule=lambda X, x, y: (X.power(X.mul(x, X.call("log", X.number(2))), -1),)),
    Op("log10", 1, math.log10, lambda x, y: (_reciprocal(x * _LN10),),
       "log10 needs a positive argument",
       rule=lambda X, x, y: (X.power(X.mul(x, X.call("log", X.number(10))), -1),)),
    Op("sqrt", 1, math.sqrt, _sqrt_partial, "sqrt needs a non-negative argument",
       kink=_at_zero, kink_rule="sqrt'(0) = inf",
       rule=lambda X, x, y: (X.power(X.mul(X.number(2), y), -1),)),
    Op("abs", 1, math.fabs, lambda x, y: (_sign(x),), kink=_at_zero, kink_rule="abs'(0) = 0",
       rule=lambda X, x, y: (X.call("sign", x),)),
    Op("relu", 1, lambda x: x if x > 0 else 0.0, lambda x, y: (1.0 if x > 0 else 0.0,),
       kink=_at_zero, kink_rule="relu'(0) = 0",
       rule=lambda X, x, y: (X.call("heaviside", x, X.zero),)),
    Op("sigmoid", 1, _sigmoid, lambda x, y: (y * (1.0 - y),),
       rule=lambda X, x, y: (X.mul(y, X.sub(X.one, y)),)),
    Op("softplus", 1, _softplus, lambda x, y: (_sigmoid(x),),
       rule=lambda X, x, y: (X.call("sigmoid", x),)),
    Op("max", 2, lambda a, b: a if a >= b else b, _max_partials,
       kink=_tie, kink_rule="a tie gives 1/2 to each side",
       rule=lambda X, a, b, y: (X.call("heaviside", X.sub(a, b), X.number(HALF)),
                                X.call("heaviside", X.sub(b, a), X.number(HALF)))),
    Op("min", 2, lambda a, b: a if a <= b else b, _min_partials,
       kink=_tie, kink_rule="a tie gives 1/2 to each side",
       rule=lambda X, a, b, y: (X.call("heaviside", X.sub(b, a), X.number(HALF)),
                                X.call("heaviside", X.sub(a, b), X.number(HALF)))),
    Op("atan2", 2, math.atan2, _atan2_partials,
       rule=lambda X, a, b, y: (X.div(b, X.add(X.power(a, 2), X.power(b, 2))),
                                X.neg(X.div(a, X.add(X.power(a, 2), X.power(b, 2)))))),
    # Kinks written exactly, for symbolic derivatives (numpy's definitions; their own
    # derivatives are 0 wherever they exist, and heaviside's value at 0 moves with h).
    Op("sign", 1, _sign, lambda x, y: (0.0,), kink=_at_zero,
       kink_rule="sign'(0) = 0 (a jump: there is no derivative)",
       rule=lambda X, x, y: (X.zero,)),
    Op("heaviside", 2, _heaviside, lambda x, h, y: (0.0, 1.0 if x == 0 else 0.0),
       kink=lambda x, h: x == 0,
       kink_rule="0 with respect to x at x = 0 (a jump: there is no derivative)",
       rule=lambda X, x, h, y: (X.zero, X.sub(X.one, X.call("abs", X.call("sign", x))))),
)

_BY_NAME: dict[str, Op] = {op.name: op for op in OPS}

#: Ops a program may call by name, e.g. ``sin(x)``.
FUNCTIONS: dict[str, Op] = {op.name: op for op in OPS if op.function}

#: Named constants a program may use.
CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}

INPUT = _BY_NAME["input"]
CONST = _BY_NAME["const"]
IDENTITY = _BY_NAME["id"]


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
        if op.name == "pow":
            return _safe_pow(*operands)
        return nan
    except OverflowError:
        if op.name == "pow":
            a, b = operands
            odd = b == int(b) and int(b) % 2 == 1
            return -inf if a < 0 and odd else inf
        return math.copysign(inf, operands[0]) if op.name == "sinh" else inf
