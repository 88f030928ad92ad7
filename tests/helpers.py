"""Helpers shared by the test modules."""

from __future__ import annotations

import itertools
import math
import operator
import shutil
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from gradcalc.ops import OPS, Op

if TYPE_CHECKING:
    from click.testing import Result

# The number of examples the active Hypothesis profile gives a test of weight 100 (see
# conftest.py: 100 under the derandomized ``ci`` profile, ten times more under ``explore``).
BASELINE_EXAMPLES = 100


def scaled(examples: int) -> int:
    """``examples`` under the ``ci`` profile, proportionally more under ``explore``: each
    property test states its own cost once, and the profile decides how hard to look."""
    return max(1, examples * settings.default.max_examples // BASELINE_EXAMPLES)


def property_settings(examples: int, **overrides: object) -> settings:
    """Settings for a property test of weight ``examples`` under the active profile
    (derandomized in CI, random when exploring), with no deadline and no example database."""
    return settings(max_examples=scaled(examples), deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.data_too_large],
                    **overrides)  # type: ignore[arg-type]


def console_script() -> str:
    found = Path(sys.executable).with_name("gradcalc")
    if found.exists():
        return str(found)
    which = shutil.which("gradcalc")
    assert which, "the gradcalc console script is not installed"
    return which


#: The property tests' default weight (see :func:`property_settings`); a module whose tests
#: cost more or less states its own.
SETTINGS = property_settings(100)

#: The README's seed example, with its input's value, and a harder one (a diamond, sin).
SEED = "A = 2; B = A*3; OUT = (B+1)*(B+2)"
HARDER = "A = 2; B = A*3; C = sin(B); D = B*C; OUT = (C+D)*(D-A)"


# --- running and comparing ---------------------------------------------------------------------


def run(*args: str, stdin: str | bytes | None = None,
        env: Mapping[str, str | None] | None = None) -> Result:
    """The command line in-process (Typer's CliRunner), stdout and stderr kept apart; ``env``
    sets variables (``None`` unsets one)."""
    from typer.testing import CliRunner

    from gradcalc import cli

    return CliRunner().invoke(cli.app, list(args), input=stdin, env=env, prog_name="gradcalc")


def close(a: float, b: float, rel_tol: float = 1e-9, abs_tol: float = 1e-12) -> bool:
    """``math.isclose`` with these tolerances by default, NaN matching NaN (and only NaN)."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=rel_tol, abs_tol=abs_tol)


def central_difference(f: Callable[..., float], point: tuple[float, ...], i: int
                       ) -> tuple[float, float]:
    """d f / d point[i] by central differences, and a bound on its rounding error."""
    x = point[i]
    h = 1e-6 * max(1.0, abs(x))
    lo, hi = list(point), list(point)
    lo[i], hi[i] = x - h, x + h
    step = hi[i] - lo[i]  # the step actually taken, after rounding x +- h
    f_hi, f_lo = f(*hi), f(*lo)
    rounding = 1e-13 * max(abs(f_hi), abs(f_lo)) / step
    return (f_hi - f_lo) / step, rounding


# --- the registry's functions, for tests that cover every one ---------------------------------


def reals(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


def near_kink(op: Op, point: tuple[float, ...], gap: float = 1e-3) -> bool:
    """Whether ``op`` has a kink within ``gap`` of ``point``: at the point itself with any
    operands near 0 moved to 0, or any near each other made equal (the kinks are at ``x = 0``
    and at ties). A finite difference across a kink measures nothing."""
    if op.kink is None:
        return False
    nearby = [{x, *(0.0 for _ in (x,) if abs(x) < gap),
               *(y for y in point if abs(x - y) < gap)} for x in point]
    return any(op.kink(*p) for p in itertools.product(*nearby))


def domain(op: Op) -> st.SearchStrategy[tuple[float, ...]]:
    """Operand tuples where ``op`` is smooth: in one of the boxes it declares (``Op.smooth``),
    clear of its kinks (:func:`near_kink`)."""
    if not op.smooth:
        raise ValueError(f"{op.name} declares no smooth boxes (Op.smooth) in gradcalc/ops.py")
    points = st.sampled_from(op.smooth).flatmap(
        lambda box: st.tuples(*(reals(lo, hi) for lo, hi in box)))
    return points.filter(lambda point: not near_kink(op, point))


#: Every op that can be differentiated (all but the leaves), by name: its smooth operands.
DOMAINS: dict[str, st.SearchStrategy[tuple[float, ...]]] = {
    op.name: domain(op) for op in OPS if op.smooth}

# Independent forward rules for the ops that math and operator do not have by their name.
def _logaddexp(a: float, b: float) -> float:
    import mpmath

    with mpmath.workdps(40):
        return float(mpmath.log(mpmath.exp(a) + mpmath.exp(b)))


_REFERENCES: dict[str, Callable[..., float]] = {
    "id": lambda x: x,
    "logaddexp": _logaddexp,
    "div": operator.truediv,
    "abs": abs,
    "relu": lambda x: max(x, 0.0),
    "sigmoid": lambda x: 1 / (1 + math.exp(-x)),
    "softplus": lambda x: math.log1p(math.exp(x)),
    "max": max,
    "min": min,
    "sign": lambda x: math.copysign(1.0, x) if x else 0.0,
    "heaviside": lambda x, h: 1.0 if x > 0 else (0.0 if x < 0 else h),
    # Named like functions of math, which ops.py calls: checked against mpmath instead.
    "ln": lambda x: _mp(lambda m, v: m.log(v), x),
    "log1p": lambda x: _mp(lambda m, v: m.log1p(v), x),
    "expm1": lambda x: _mp(lambda m, v: m.expm1(v), x),
    "cbrt": lambda x: math.copysign(_mp(lambda m, v: m.cbrt(v), abs(x)), x),  # the real root
    "hypot": lambda a, b: _mp(lambda m, u, v: m.sqrt(u * u + v * v), a, b),
    "erf": lambda x: _mp(lambda m, v: m.erf(v), x),
    "erfc": lambda x: _mp(lambda m, v: m.erfc(v), x),
    "asinh": lambda x: _mp(lambda m, v: m.asinh(v), x),
    "acosh": lambda x: _mp(lambda m, v: m.acosh(v), x),
    "atanh": lambda x: _mp(lambda m, v: m.atanh(v), x),
    # PyTorch's definitions, written out: gelu is x*Phi(x) (the exact, erf-based one), silu
    # x*sigmoid(x), elu (alpha 1) e^x - 1 at and below 0, softsign x/(1 + |x|).
    "gelu": lambda x: _mp(lambda m, v: v * m.ncdf(v), x),
    "silu": lambda x: _mp(lambda m, v: v / (1 + m.exp(-v)), x),
    "elu": lambda x: x if x > 0 else _mp(lambda m, v: m.expm1(v), x),
    "softsign": lambda x: _mp(lambda m, v: v / (1 + abs(v)), x),
    "leaky_relu": lambda x, slope: max(x, 0.0) + slope * min(x, 0.0),
    "clamp": lambda x, lo, hi: min(max(x, lo), hi),
}


def _mp(f: Callable[..., object], *xs: float) -> float:
    """``f(mpmath, *xs)`` worked out at 40 digits, rounded to a float."""
    import mpmath

    with mpmath.workdps(40):
        return float(f(mpmath, *map(mpmath.mpf, xs)))  # type: ignore[arg-type]


def reference(name: str) -> Callable[..., float]:
    """An independent implementation of the op ``name``: an explicit one above, else the
    function of that name in :mod:`math`, :mod:`operator` or mpmath (a new function named
    like one of those is checked with no further ado)."""
    if name in _REFERENCES:
        return _REFERENCES[name]
    for module in (math, operator):
        found = getattr(module, name, None)
        if callable(found):
            return found
    import mpmath

    mp_function = getattr(mpmath, name, None)
    if not callable(mp_function):
        raise LookupError(f"no reference for {name}: add one to tests/helpers.py _REFERENCES")
    return lambda *xs: float(mp_function(*xs))


# --- random programs -------------------------------------------------------------------------

INPUT_NAMES = ["A", "B", "C"]


@st.composite
def dag_programs(draw: st.DrawFn, min_statements: int = 3, max_statements: int = 25) -> str:
    """Random DAG programs: a few inputs, then statements over earlier names (reused freely),
    each an expression of depth up to two."""
    count = draw(st.integers(min_statements, max_statements))
    names = INPUT_NAMES[: draw(st.integers(1, 3))]
    lines = [f"{n} = {draw(st.sampled_from(['0.5', '1.5', '2', '-1', '0.7']))}" for n in names]

    def operand(depth: int) -> str:
        pick = draw(st.integers(0, 9))
        if depth > 0 and pick >= 7:
            return expression(depth - 1)
        if pick >= 3:  # mostly recent names: deep graphs
            return names[-1 - draw(st.integers(0, min(2, len(names) - 1)))]
        return draw(st.sampled_from(names))

    def expression(depth: int) -> str:
        kind = draw(st.sampled_from(["add", "sub", "mul", "divc", "addc", "mulc", "sin", "cos",
                                     "tanh", "exp", "max", "min", "alias", "clamp"]))
        a = operand(depth)
        if kind == "clamp":  # three operands (ties among them are kinks: warned)
            return f"clamp({a}, {operand(depth)}, {operand(depth)})"
        if kind in ("add", "sub", "mul", "max", "min"):
            b = operand(depth)
            sign = {"add": "+", "sub": "-", "mul": "*"}.get(kind)
            return f"({a} {sign} {b})" if sign else f"{kind}({a}, {b})"
        if kind in ("divc", "addc", "mulc"):
            c = draw(st.sampled_from(["2", "3", "0.5"]))
            return f"({a} {dict(divc='/', addc='+', mulc='*')[kind]} {c})"
        if kind == "exp":
            return f"exp(tanh({a}))"
        if kind == "alias":
            return a
        return f"{kind}({a})"

    for index in range(count):
        name = "OUT" if index == count - 1 else f"N{index}"
        body = expression(2)
        if index == count - 1:  # let the output depend on several earlier names
            extra = [names[-1 - k] for k in range(1, min(3, len(names)))]
            body = " + ".join([f"({body})", *extra])
        lines.append(f"{name} = {body}")
        names.append(name)
    return "\n".join(lines)
