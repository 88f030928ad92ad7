"""Vectors and matrices (``gradcalc/tensor.py``): sugar over scalar nodes, against oracles that
know nothing of the expansion.

- **Finite differences**: random programs of arrays (matmul, broadcasting, the array functions,
  indexing, functions of the program's own) at random points, every input's gradient against a
  central difference.
- **Closed forms**: d sum(M @ x)/dM[i][j] = x[j], d dot(a, b)/da = b, softmax cross-entropy
  (softmax - onehot), d logsumexp = softmax, d norm = x/norm, prod with zeros.
- **Written out**: a program of arrays and the same program written by hand with one scalar
  name per element (``W1[0][1]`` is ``W1_0_1``) must give the same numbers, bit for bit: the
  2-2-1 tanh network, matrix products of random shapes, softmax, norm.
- **Path enumeration**: random small array programs against the brute-force sum over every
  path of ``test_engine``.
- **mpmath**: logsumexp and softmax of large inputs at 50 digits (no overflow, softmax sums to 1).
- Broadcasting against a reference written here (NumPy's rule), every shape error with its
  message and position, the naming rules, functions of arrays, and max/min ties.
"""

from __future__ import annotations

import functools
import itertools
import math
import re

import mpmath
import pytest
from helpers import central_difference, close, property_settings, reals, run
from hypothesis import assume, example, given
from hypothesis import strategies as st
from test_engine import enumerate_paths, prepared

import gradcalc
from gradcalc.api import Result
from gradcalc.dag import Dag, build
from gradcalc.errors import GradcalcError, InputError, ParseError, ShapeError
from gradcalc.parse import parse
from gradcalc.tensor import Tensor

Shapes = dict[str, tuple[int, ...]]


# --- helpers ---------------------------------------------------------------------------------


def compiled(program: str, shapes: Shapes | None = None) -> Dag:
    return build(parse(program), shapes=shapes)


@functools.cache
def cached(program: str, shapes: tuple[tuple[str, tuple[int, ...]], ...] = ()) -> Dag:
    """A program built once (the property tests evaluate it at many points)."""
    return compiled(program, dict(shapes))


def names_of(name: str, shape: tuple[int, ...]) -> list[str]:
    """The element names of an array, row-major, written out independently of the builder."""
    if not shape:
        return [name]
    if len(shape) == 1:
        return [f"{name}[{i}]" for i in range(shape[0])]
    return [f"{name}[{i}][{j}]" for i in range(shape[0]) for j in range(shape[1])]


def scalar_name(element: str) -> str:
    """``W1[0][1]`` -> ``W1_0_1``: the name the element has in the program written out."""
    return re.sub(r"\[(\d+)\]", r"_\1", element)


def literal(values: list[float], shape: tuple[int, ...]) -> str:
    """A literal of ``shape`` holding ``values`` row-major (``repr``: the floats read back)."""
    if len(shape) == 1:
        return "[" + ", ".join(map(repr, values)) + "]"
    rows, columns = shape
    return "[" + ", ".join(literal(values[r * columns:(r + 1) * columns], (columns,))
                           for r in range(rows)) + "]"


def elements(result: Result, name: str) -> list[float]:
    """The values of array ``name``'s elements, row-major, as the evaluation left them."""
    assert result.dag is not None
    return [result.node_values[i] for i in result.dag.tensors[name].ids]


def shape_error(program: str, shapes: Shapes | None = None) -> ShapeError:
    with pytest.raises(ShapeError) as caught:
        gradcalc.gradients(compiled(program, shapes), at={})
    return caught.value


def identical(a: float | None, b: float | None) -> bool:
    """The same float (NaN matching NaN: norm at 0 is NaN written either way)."""
    if a is None or b is None:
        return a is b
    return close(a, b, rel_tol=0.0, abs_tol=0.0)


def softmax_reference(xs: list[float]) -> list[mpmath.mpf]:
    with mpmath.workdps(50):
        exps = [mpmath.exp(mpmath.mpf(x)) for x in xs]
        total = mpmath.fsum(exps)
        return [v / total for v in exps]


def logsumexp_reference(xs: list[float]) -> mpmath.mpf:
    with mpmath.workdps(50):
        return mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(x)) for x in xs))


def point(size: int, lo: float = -1.5, hi: float = 1.5) -> st.SearchStrategy[list[float]]:
    return st.lists(reals(lo, hi), min_size=size, max_size=size)


# --- 1. gradients against central finite differences -----------------------------------------

EXTREMES = "OUT = max(X*Y) * min(X) + max(M @ X)"


def _compared(at: dict[str, float]) -> list[list[float]]:
    """What max and min compare in :data:`EXTREMES` at ``at``."""
    x = [at[f"X[{i}]"] for i in range(3)]
    y = [at[f"Y[{i}]"] for i in range(3)]
    rows = [sum(at[f"M[{r}][{c}]"] * x[c] for c in range(3)) for r in range(2)]
    return [[a * b for a, b in zip(x, y, strict=True)], x, rows]


#: Programs with free array inputs (their shapes given to the builder) and free scalars, each
#: smooth on [-1.5, 1.5] for every input (but :data:`EXTREMES` near a tie, skipped: a difference
#: across a kink measures nothing).
DIFFERENCE_CASES = [
    ("H = tanh(W1 @ X + B1); OUT = sigmoid(dot(W2, H) + B2)",
     {"W1": (2, 2), "X": (2,), "B1": (2,), "W2": (2,)}),
    ("OUT = logsumexp(3*Z) - dot(Z, Y)", {"Z": (4,), "Y": (4,)}),
    ("OUT = norm(M @ N + 2) * sum(sin(M)) + mean(N^2)", {"M": (2, 2), "N": (2, 3)}),
    ("S = softmax(Z); OUT = dot(S, Y) + S[0]*S[-1]", {"Z": (3,), "Y": (3,)}),
    ("OUT = prod(X) + sum(X / (1 + X^2))", {"X": (4,)}),
    ("OUT = sum((V @ M) * W) + V @ V", {"V": (2,), "M": (2, 3), "W": (3,)}),
    ("OUT = sum(exp(C + R) / (3 + A*M))", {"C": (2, 1), "R": (3,), "M": (2, 3)}),
    ("f(v, w) = sigmoid(v @ w); g(m) = sum(m^2); OUT = g(f(M, X)) + f(X, X)",
     {"M": (2, 3), "X": (3,)}),
    ("OUT = sum((M @ N) ^ 2) + sum(M[1] * N[0]) + M[0, 1]*N[-1][-1]",
     {"M": (2, 2), "N": (2, 2)}),
    ("R = [X[0]*X[1], X[2], sin(X[1])]; OUT = dot(R, R) + [[X[0], 1], [2, X[2]]][1, 1]",
     {"X": (3,)}),
    (EXTREMES, {"X": (3,), "Y": (3,), "M": (2, 3)}),
    ("OUT = logsumexp(M) + sum(softplus(M) * C) + sum(atan2(M, C + 2))",
     {"M": (2, 3), "C": (3,)}),
]


def _near_tie(values: list[float], gap: float = 1e-3) -> bool:
    ordered = sorted(values)
    return any(b - a < gap for a, b in itertools.pairwise(ordered))


@property_settings(300)
@given(st.sampled_from(range(len(DIFFERENCE_CASES))), st.data())
def test_gradients_match_central_differences(case: int, data: st.DataObject) -> None:
    program, shapes = DIFFERENCE_CASES[case]
    dag = cached(program, tuple(shapes.items()))
    names = list(dag.inputs)
    values = data.draw(point(len(names)), label="values")
    at = dict(zip(names, values, strict=True))
    result = gradcalc.gradients(dag, at=at, wrt=names)
    if program == EXTREMES:
        assume(not any(_near_tie(compared) for compared in _compared(at)))
    assert not [w for w in result.warnings if w.kind in ("kink", "nonfinite")]

    def value(*xs: float) -> float:
        return gradcalc.gradients(dag, at=dict(zip(names, xs, strict=True)),
                                  wrt=names[:1]).value

    for i, name in enumerate(names):
        slope, rounding = central_difference(value, tuple(values), i)
        gradient = result.gradients[name]
        tolerance = 1e-6 * max(1.0, abs(gradient)) + 10 * rounding
        assert abs(gradient - slope) <= tolerance, (program, name, gradient, slope)


# --- closed forms ----------------------------------------------------------------------------


@property_settings(60)
@given(st.integers(1, 4), st.integers(1, 4), st.data())
def test_sum_of_a_matrix_vector_product(rows: int, columns: int, data: st.DataObject) -> None:
    m = data.draw(point(rows * columns, -10, 10), label="M")
    x = data.draw(point(columns, -10, 10), label="x")
    dag = cached("OUT = sum(M @ X)", (("M", (rows, columns)), ("X", (columns,))))
    at = dict(zip(names_of("M", (rows, columns)), m, strict=True))
    at.update(zip(names_of("X", (columns,)), x, strict=True))
    result = gradcalc.gradients(dag, at=at)
    for i in range(rows):
        for j in range(columns):
            assert result.gradients[f"M[{i}][{j}]"] == x[j]  # exactly: 1 * 1 * ... * x[j]
    for j in range(columns):
        column = math.fsum(m[i * columns + j] for i in range(rows))
        assert close(result.gradients[f"X[{j}]"], column, rel_tol=1e-12, abs_tol=1e-12)
    total = math.fsum(m[i * columns + j] * x[j] for i in range(rows) for j in range(columns))
    assert close(result.value, total, rel_tol=1e-12, abs_tol=1e-11)


@property_settings(60)
@given(st.integers(1, 6).flatmap(lambda n: st.tuples(point(n, -10, 10), point(n, -10, 10))))
def test_dot_gradient_is_the_other_vector(vectors: tuple[list[float], list[float]]) -> None:
    a, b = vectors
    n = len(a)
    at = {**dict(zip(names_of("A", (n,)), a, strict=True)),
          **dict(zip(names_of("B", (n,)), b, strict=True))}
    result = gradcalc.gradients(cached("OUT = dot(A, B)", (("A", (n,)), ("B", (n,)))), at=at)
    assert [result.gradients[f"A[{i}]"] for i in range(n)] == b
    assert [result.gradients[f"B[{i}]"] for i in range(n)] == a
    # @ of two vectors is the same dot product, node for node
    again = gradcalc.gradients(cached("OUT = A @ B", (("A", (n,)), ("B", (n,)))), at=at)
    assert again.value == result.value and again.gradients == result.gradients


CROSS_ENTROPY = [
    "OUT = -dot(Y, log(softmax(Z)))",
    "OUT = logsumexp(Z) - dot(Y, Z)",
]


@property_settings(80)
@given(st.sampled_from(CROSS_ENTROPY), st.integers(2, 5).flatmap(
    lambda n: st.tuples(point(n, -8, 8), st.integers(0, n - 1))))
def test_softmax_cross_entropy_gradient_is_softmax_minus_onehot(
        program: str, case: tuple[list[float], int]) -> None:
    z, k = case
    n = len(z)
    onehot = [1.0 if i == k else 0.0 for i in range(n)]
    text = f"Y = {literal(onehot, (n,))}; {program}"
    at = dict(zip(names_of("Z", (n,)), z, strict=True))
    result = gradcalc.gradients(cached(text, (("Z", (n,)),)), at=at)
    expected = softmax_reference(z)
    with mpmath.workdps(50):
        loss = logsumexp_reference(z) - mpmath.mpf(z[k])
        assert close(result.value, float(loss), rel_tol=1e-12, abs_tol=1e-13)
        for i in range(n):
            want = float(expected[i] - onehot[i])
            assert close(result.gradients[f"Z[{i}]"], want, rel_tol=1e-10, abs_tol=1e-14), i


@property_settings(60)
@given(st.integers(1, 6).flatmap(lambda n: point(n, -30, 30)))
def test_logsumexp_gradient_is_softmax(z: list[float]) -> None:
    n = len(z)
    at = dict(zip(names_of("Z", (n,)), z, strict=True))
    result = gradcalc.gradients(cached("OUT = logsumexp(Z)", (("Z", (n,)),)), at=at)
    rounding = 4 * n * 2**-52
    assert close(result.value, float(logsumexp_reference(z)), rel_tol=rounding,
                 abs_tol=rounding * max(1.0, *map(abs, z)))
    for i, weight in enumerate(softmax_reference(z)):
        assert close(result.gradients[f"Z[{i}]"], float(weight), rel_tol=1e-12,
                     abs_tol=1e-300), i


@property_settings(60)
@given(st.integers(1, 6).flatmap(lambda n: point(n, -10, 10)))
def test_norm_gradient_is_x_over_norm(x: list[float]) -> None:
    n = len(x)
    size = math.sqrt(math.fsum(v * v for v in x))
    assume(size > 1e-3)
    result = gradcalc.gradients(cached("OUT = norm(X)", (("X", (n,)),)),
                                at=dict(zip(names_of("X", (n,)), x, strict=True)))
    assert close(result.value, size, rel_tol=1e-14)
    for i in range(n):
        assert close(result.gradients[f"X[{i}]"], x[i] / size, rel_tol=1e-13, abs_tol=1e-15)


@property_settings(40)
@given(st.sampled_from([(1,), (2,), (3,), (5,), (1, 1), (2, 3), (3, 2)]), st.data())
def test_mean_gradient_is_one_over_n(shape: tuple[int, ...], data: st.DataObject) -> None:
    n = math.prod(shape)
    x = data.draw(point(n, -10, 10))
    result = gradcalc.gradients(cached("OUT = mean(X)", (("X", shape),)),
                                at=dict(zip(names_of("X", shape), x, strict=True)))
    assert close(result.value, math.fsum(x) / n, rel_tol=1e-13, abs_tol=1e-13)
    assert list(result.gradients.values()) == [1 / n] * n


def test_norm_of_a_matrix_is_the_frobenius_norm() -> None:
    result = gradcalc.gradients("M = [[1, 2], [2, 4]]; OUT = norm(M)")
    assert result.value == 5.0
    assert [result.gradients[n] for n in names_of("M", (2, 2))] == [0.2, 0.4, 0.4, 0.8]


@pytest.mark.parametrize(("values", "gradient"), [
    ([2, 0, 3], [0, 6, 0]),
    ([0, 5, 0], [0, 0, 0]),
    ([0.5, -4, 0, 3], [0, 0, -6, 0]),
    ([0], [1]),
    ([7], [1]),
    ([1.5, 2, -2], [-4, -3, 3]),
])
def test_prod_gradient_with_zeros(values: list[float], gradient: list[float]) -> None:
    n = len(values)
    result = gradcalc.gradients(f"X = {literal([float(v) for v in values], (n,))}; "
                                "OUT = prod(X)")
    assert result.value == math.prod(values)
    assert [result.gradients[f"X[{i}]"] for i in range(n)] == gradient
    assert not result.warnings


# --- written out: arrays against one scalar name per element ---------------------------------

NETWORK = "H = tanh(W1 @ X + B1); OUT = sigmoid(dot(W2, H) + B2)"
NETWORK_SHAPES: Shapes = {"W1": (2, 2), "B1": (2,), "W2": (2,), "X": (2,)}
NETWORK_WRITTEN_OUT = """\
H_0 = tanh(W1_0_0*X_0 + W1_0_1*X_1 + B1_0)
H_1 = tanh(W1_1_0*X_0 + W1_1_1*X_1 + B1_1)
OUT = sigmoid(W2_0*H_0 + W2_1*H_1 + B2)"""


def assert_same_as_written_out(array: Result, scalar: Result) -> None:
    """The same value, and the same gradients under the element names written as scalars,
    bit for bit."""
    assert identical(array.value, scalar.value)
    renamed = {scalar_name(name): g for name, g in array.gradients.items()}
    assert renamed.keys() == scalar.gradients.keys()
    assert all(identical(g, scalar.gradients[name]) for name, g in renamed.items()), (
        renamed, scalar.gradients)


@property_settings(60)
@given(point(11, -2, 2))
def test_the_network_written_out_with_scalar_names(values: list[float]) -> None:
    dag = cached(NETWORK, tuple(NETWORK_SHAPES.items()))
    names = [*itertools.chain.from_iterable(names_of(n, s) for n, s in NETWORK_SHAPES.items()),
             "B2"]
    at = dict(zip(names, values, strict=True))
    array = gradcalc.gradients(dag, at=at)
    scalar = gradcalc.gradients(NETWORK_WRITTEN_OUT,
                                at={scalar_name(n): v for n, v in at.items()})
    # eleven inputs (4 + 2 weights, 2 + 1 biases, 2 of X) and H's 2 elements
    assert len(array.gradients) == 13
    assert {"H[0]", "H[1]"} <= set(array.gradients)
    assert_same_as_written_out(array, scalar)


def test_the_network_with_literals_matches_the_written_out_program() -> None:
    program = ("W1 = [[0.5, -0.3], [0.8, 0.2]]; B1 = [0.1, -0.1]; W2 = [1.5, -2]; B2 = 0.3\n"
               + NETWORK)
    written = ("W1_0_0 = 0.5; W1_0_1 = -0.3; W1_1_0 = 0.8; W1_1_1 = 0.2; B1_0 = 0.1; "
               "B1_1 = -0.1; W2_0 = 1.5; W2_1 = -2; B2 = 0.3\n" + NETWORK_WRITTEN_OUT)
    array = gradcalc.gradients(compiled(program, {"X": (2,)}), at={"X[0]": 0.7, "X[1]": -1.2})
    scalar = gradcalc.gradients(written, at={"X_0": 0.7, "X_1": -1.2})
    assert_same_as_written_out(array, scalar)
    assert array.inputs == {"W1[0][0]": 0.5, "W1[0][1]": -0.3, "W1[1][0]": 0.8,
                            "W1[1][1]": 0.2, "B1[0]": 0.1, "B1[1]": -0.1, "W2[0]": 1.5,
                            "W2[1]": -2.0, "B2": 0.3, "X[0]": 0.7, "X[1]": -1.2}


def matmul_written_out(rows: int, inner: int, columns: int) -> str:
    lines = []
    for i in range(rows):
        for j in range(columns):
            terms = " + ".join(f"M_{i}_{k}*N_{k}_{j}" for k in range(inner))
            lines.append(f"P_{i}_{j} = {terms}")
    parts = " + ".join(f"tanh(P_{i}_{j})" for i in range(rows) for j in range(columns))
    lines.append(f"OUT = {parts}")
    return "\n".join(lines)


@property_settings(40)
@given(st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)), st.data())
def test_matrix_products_written_out(dims: tuple[int, int, int], data: st.DataObject) -> None:
    rows, inner, columns = dims
    shapes = (("M", (rows, inner)), ("N", (inner, columns)))
    names = names_of("M", (rows, inner)) + names_of("N", (inner, columns))
    at = dict(zip(names, data.draw(point(len(names))), strict=True))
    array = gradcalc.gradients(cached("P = M @ N; OUT = sum(tanh(P))", shapes), at=at)
    scalar = gradcalc.gradients(matmul_written_out(rows, inner, columns),
                                at={scalar_name(n): v for n, v in at.items()})
    assert_same_as_written_out(array, scalar)
    assert array.dag is not None and array.dag.tensors["P"].shape == (rows, columns)


WRITTEN_OUT = [
    # (arrays, shapes, the program written out with scalar names)
    ("S = softmax(Z); OUT = dot(S, Y)", {"Z": (3,), "Y": (3,)},
     "L = logaddexp(logaddexp(Z_0, Z_1), Z_2)\n"
     "S_0 = exp(Z_0 - L); S_1 = exp(Z_1 - L); S_2 = exp(Z_2 - L)\n"
     "OUT = S_0*Y_0 + S_1*Y_1 + S_2*Y_2"),
    ("OUT = norm(X)", {"X": (3,)}, "OUT = sqrt(X_0^2 + X_1^2 + X_2^2)"),
    ("OUT = mean(X) + mean(M)", {"X": (3,), "M": (2, 2)},
     "OUT = (X_0 + X_1 + X_2)/3 + (M_0_0 + M_0_1 + M_1_0 + M_1_1)/4"),
    ("OUT = logsumexp(M)", {"M": (2, 2)},
     "OUT = logaddexp(logaddexp(logaddexp(M_0_0, M_0_1), M_1_0), M_1_1)"),
    ("R = V @ M; OUT = prod(R) + sum(M * V)", {"V": (2,), "M": (2, 2)},
     "R_0 = V_0*M_0_0 + V_1*M_1_0; R_1 = V_0*M_0_1 + V_1*M_1_1\n"
     "OUT = R_0*R_1 + (M_0_0*V_0 + M_0_1*V_1 + M_1_0*V_0 + M_1_1*V_1)"),
    ("OUT = max(X) - min(X)", {"X": (3,)},
     "OUT = max(max(X_0, X_1), X_2) - min(min(X_0, X_1), X_2)"),
    ("Q = [A*B, A + B, 2]; OUT = sum(exp(Q) * [[1], [2]])", {},
     "Q_0 = A*B; Q_1 = A + B; Q_2 = 2\n"
     "OUT = exp(Q_0)*1 + exp(Q_1)*1 + exp(Q_2)*1 + exp(Q_0)*2 + exp(Q_1)*2 + exp(Q_2)*2"),
]


@property_settings(60)
@given(st.sampled_from(range(len(WRITTEN_OUT))), st.data())
def test_array_programs_match_their_written_out_form(case: int, data: st.DataObject) -> None:
    program, shapes, written = WRITTEN_OUT[case]
    dag = cached(program, tuple(shapes.items()))
    names = [n for n in dag.inputs if dag.values[dag.inputs[n]] is None]
    at = dict(zip(names, data.draw(point(len(names), -3, 3)), strict=True))
    array = gradcalc.gradients(dag, at=at)
    scalar = gradcalc.gradients(written, at={scalar_name(n): v for n, v in at.items()},
                                wrt=[scalar_name(n) for n in array.gradients])
    assert_same_as_written_out(array, scalar)


# --- path enumeration on random array programs -----------------------------------------------


@st.composite
def array_programs(draw: st.DrawFn) -> str:
    """A few literals (vectors of n, an n x n matrix, a number: inputs), named intermediates of
    random shapes, and a number OUT: matmul, broadcasting, reductions, indexing, stacking."""
    n = draw(st.integers(1, 3))
    number = st.integers(-12, 12).map(lambda k: repr(k / 10))
    lines = [f"V = [{', '.join(draw(number) for _ in range(n))}]",
             f"U = [{', '.join(draw(number) for _ in range(n))}]",
             "M = [" + ", ".join("[" + ", ".join(draw(number) for _ in range(n)) + "]"
                                 for _ in range(n)) + "]",
             f"A = {draw(number)}"]
    env = {"s": ["A"], "v": ["V", "U"], "m": ["M"]}
    index = st.integers(-n, n - 1)

    def expr(kind: str, depth: int) -> str:
        pick = draw(st.integers(0, 9)) if depth > 0 else 0
        if pick < 3:
            return draw(st.sampled_from(env[kind]))
        op = draw(st.sampled_from(["+", "-", "*"]))
        if kind == "s":
            return draw(st.sampled_from([
                lambda: f"sum({expr('v', depth - 1)})",
                lambda: f"sum({expr('m', depth - 1)})",
                lambda: f"dot({expr('v', depth - 1)}, {expr('v', depth - 1)})",
                lambda: f"({expr('v', depth - 1)} @ {expr('v', depth - 1)})",
                lambda: f"logsumexp({expr('v', depth - 1)})",
                lambda: f"max({expr('v', depth - 1)})",
                lambda: f"prod({expr('v', depth - 1)})",
                lambda: f"mean({expr('m', depth - 1)})",
                lambda: f"{draw(st.sampled_from(env['v']))}[{draw(index)}]",
                lambda: f"{draw(st.sampled_from(env['m']))}[{draw(index)}, {draw(index)}]",
                lambda: f"tanh({expr('s', depth - 1)} {op} {expr('s', depth - 1)})",
            ]))()
        if kind == "v":
            return draw(st.sampled_from([
                lambda: f"tanh({expr('v', depth - 1)})",
                lambda: f"({expr('v', depth - 1)} {op} {expr('v', depth - 1)})",
                lambda: f"({expr('v', depth - 1)} {op} {expr('s', depth - 1)})",
                lambda: f"({expr('m', depth - 1)} @ {expr('v', depth - 1)})",
                lambda: f"({expr('v', depth - 1)} @ {expr('m', depth - 1)})",
                lambda: f"softmax({expr('v', depth - 1)})",
                lambda: f"{draw(st.sampled_from(env['m']))}[{draw(index)}]",
                lambda: "[" + ", ".join(expr("s", depth - 1) for _ in range(n)) + "]",
            ]))()
        return draw(st.sampled_from([
            lambda: f"tanh({expr('m', depth - 1)})",
            lambda: f"({expr('m', depth - 1)} {op} {expr('m', depth - 1)})",
            lambda: f"({expr('m', depth - 1)} {op} {expr('v', depth - 1)})",
            lambda: f"({expr('s', depth - 1)} {op} {expr('m', depth - 1)})",
            lambda: f"({expr('m', depth - 1)} @ {expr('m', depth - 1)})",
        ]))()

    for i in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from("svm"))
        lines.append(f"T{i} = {expr(kind, 2)}")
        env[kind].append(f"T{i}")
    reduce = {"s": "{}", "v": "sum({})", "m": "sum({})"}
    last = lines[-1].split(" = ")[0]
    kind = next(k for k, names in env.items() if last in names)
    lines.append(f"OUT = {reduce[kind].format(last)} + {expr('s', 2)}")
    return "\n".join(lines)


@property_settings(300)
@given(array_programs())
@example("V = [0.5, -1.0]; U = [0.3, 0.3]; M = [[1.0, 2.0], [0.1, -0.2]]; A = 0.7\n"
         "T0 = tanh(M @ V + A); T1 = [T0 @ U, T0[1]]\nOUT = sum(T1) + max(U)")
def test_array_programs_match_path_enumeration(program: str) -> None:
    dag, output, at, vals = prepared(program, {})
    result = gradcalc.gradients(dag, at=at)
    total, paths, magnitude = enumerate_paths(dag, vals, output)
    assert result.value == vals[output]
    assert result.gradients, program
    for name, gradient in result.gradients.items():
        node = dag.named[name]
        assert paths[node], (name, program)
        assert close(gradient, total[node], abs_tol=1e-12 * max(1.0, magnitude[node])), (
            name, gradient, total[node], program)


# --- 2. high precision: logsumexp and softmax of large inputs --------------------------------

LARGE = [
    [1000.0, 1000.5, 999.0],
    [-1000.0, -1000.5, -999.0],
    [0.0, 800.0, -800.0],
    [5000.0, 5000.0],
    [710.0, 710.0, 710.0, 710.0],
    [-745.0, -746.0],
]


@pytest.mark.parametrize("z", LARGE)
def test_logsumexp_of_large_inputs_against_mpmath(z: list[float]) -> None:
    n = len(z)
    result = gradcalc.gradients(f"Z = {literal(z, (n,))}; OUT = logsumexp(Z)")
    reference = float(logsumexp_reference(z))
    assert math.isfinite(result.value)
    assert close(result.value, reference, rel_tol=4 * n * 2**-52)
    for i, weight in enumerate(softmax_reference(z)):
        assert close(result.gradients[f"Z[{i}]"], float(weight), rel_tol=1e-12,
                     abs_tol=1e-300), i
    assert not result.warnings


@pytest.mark.parametrize("z", LARGE)
def test_softmax_of_large_inputs_against_mpmath(z: list[float]) -> None:
    n = len(z)
    names = names_of("S", (n,))
    result = gradcalc.gradients(f"Z = {literal(z, (n,))}; S = softmax(Z); OUT = sum(S)",
                                wrt=names + names_of("Z", (n,)))
    # exp(z - lse): the error is that of lse, a few units in its last place, relative
    slack = 4 * math.ulp(float(logsumexp_reference(z))) + 8 * 2**-52
    for i, weight in enumerate(softmax_reference(z)):
        assert close(result.values[names[i]], float(weight), rel_tol=slack,
                     abs_tol=1e-300), i
    assert abs(math.fsum(result.values[n_] for n_ in names) - 1) <= n * slack
    assert abs(result.value - 1) <= n * slack
    # the sum of a softmax does not depend on its inputs: gradients of about 0, never nan
    for i in range(n):
        assert abs(result.gradients[f"Z[{i}]"]) <= n * slack
    assert not result.warnings


@property_settings(60)
@given(reals(-1e4, 1e4), st.integers(2, 6).flatmap(lambda n: point(n, -20, 20)))
def test_softmax_sums_to_one_at_any_offset(offset: float, z: list[float]) -> None:
    n = len(z)
    shifted = [offset + v for v in z]
    result = gradcalc.gradients(cached("S = softmax(Z); OUT = sum(S)", (("Z", (n,)),)),
                                at=dict(zip(names_of("Z", (n,)), shifted, strict=True)),
                                wrt=names_of("S", (n,)))
    # exp(z - lse): the error of lse and of the difference, relative
    largest = max(abs(float(logsumexp_reference(shifted))), *map(abs, shifted), 1.0)
    slack = 8 * math.ulp(largest) + 8 * 2**-52
    assert abs(result.value - 1) <= n * slack
    for i, weight in enumerate(softmax_reference(shifted)):
        assert close(result.values[f"S[{i}]"], float(weight), rel_tol=slack, abs_tol=1e-300)


# --- 3. broadcasting -------------------------------------------------------------------------


def broadcast_reference(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...] | None:
    """NumPy's rule, written out: aligned on the right, sizes equal or 1 (None: no match)."""
    rank = max(len(a), len(b))
    pa, pb = (1,) * (rank - len(a)) + a, (1,) * (rank - len(b)) + b
    out = []
    for x, y in zip(pa, pb, strict=True):
        if x != y and 1 not in (x, y):
            return None
        out.append(max(x, y))
    return tuple(out)


def source_index(position: tuple[int, ...], shape: tuple[int, ...]) -> int:
    """The row-major index in an array of ``shape`` that ``position`` of a broadcast reads."""
    own = position[len(position) - len(shape):]
    flat = 0
    for p, size in zip(own, shape, strict=True):
        flat = flat * size + (0 if size == 1 else p)
    return flat


SHAPES = [(), (1,), (3,), (1, 3), (2, 1), (2, 3), (1, 1), (2,)]
OPERATORS = {
    # symbol: (value, d/da, d/db)
    "+": (lambda a, b: a + b, lambda a, b: 1.0, lambda a, b: 1.0),
    "-": (lambda a, b: a - b, lambda a, b: 1.0, lambda a, b: -1.0),
    "*": (lambda a, b: a * b, lambda a, b: b, lambda a, b: a),
    "/": (lambda a, b: a / b, lambda a, b: 1 / b, lambda a, b: -a / (b * b)),
}


@property_settings(100)
@given(st.sampled_from(SHAPES), st.sampled_from(SHAPES), st.sampled_from(sorted(OPERATORS)),
       st.data())
def test_broadcasting_follows_numpys_rule(a_shape: tuple[int, ...], b_shape: tuple[int, ...],
                                          symbol: str, data: st.DataObject) -> None:
    assume(a_shape or b_shape)  # (the sum of a number is an error)
    program = f"R = A {symbol} B; OUT = sum(R)"
    shapes = tuple((n, s) for n, s in (("A", a_shape), ("B", b_shape)) if s)
    out_shape = broadcast_reference(a_shape, b_shape)
    if out_shape is None:
        with pytest.raises(ShapeError) as caught:
            cached(program, shapes)
        assert caught.value.message.startswith(f"shapes do not match for '{symbol}': ")
        assert (caught.value.line, caught.value.column) == (1, 5)
        return
    a = data.draw(point(math.prod(a_shape), 0.5, 2), label="A")
    b = data.draw(point(math.prod(b_shape), 0.5, 2), label="B")
    at = {**dict(zip(names_of("A", a_shape), a, strict=True)),
          **dict(zip(names_of("B", b_shape), b, strict=True))}
    result = gradcalc.gradients(cached(program, shapes), at=at)
    value, d_a, d_b = OPERATORS[symbol]
    positions = list(itertools.product(*(range(d) for d in out_shape)))
    pairs = [(a[source_index(p, a_shape)], b[source_index(p, b_shape)]) for p in positions]
    assert result.dag is not None
    assert result.dag.tensors["R"].shape == out_shape
    assert elements(result, "R") == [value(x, y) for x, y in pairs]
    grad_a = [0.0] * len(a)
    grad_b = [0.0] * len(b)
    for p, (x, y) in zip(positions, pairs, strict=True):
        grad_a[source_index(p, a_shape)] += d_a(x, y)
        grad_b[source_index(p, b_shape)] += d_b(x, y)
    for names, grads in ((names_of("A", a_shape), grad_a), (names_of("B", b_shape), grad_b)):
        for name, expected in zip(names, grads, strict=True):
            assert close(result.gradients[name], expected, rel_tol=1e-12), name


@pytest.mark.parametrize(("program", "value", "gradients"), [
    # a number with a vector and a matrix: the number gets every element's gradient
    ("A = 3; V = [1, 2, 4]; OUT = sum(A*V)", 21.0,
     {"A": 7.0, "V[0]": 3.0, "V[1]": 3.0, "V[2]": 3.0}),
    ("A = 3; M = [[1, 2], [3, 4]]; OUT = sum(A*M - 1)", 26.0,
     {"A": 10.0, "M[0][0]": 3.0, "M[0][1]": 3.0, "M[1][0]": 3.0, "M[1][1]": 3.0}),
    ("A = 2; V = [1, 2]; OUT = sum(V^A)", 5.0,
     {"A": 4 * math.log(2), "V[0]": 2.0, "V[1]": 4.0}),
    # a vector with a matrix: the vector is a row, repeated for every row
    ("M = [[1, 2], [3, 4]]; V = [10, 20]; OUT = sum(M * V)", 160.0,
     {"M[0][0]": 10.0, "M[0][1]": 20.0, "M[1][0]": 10.0, "M[1][1]": 20.0,
      "V[0]": 4.0, "V[1]": 6.0}),
    # a column (2x1) with a row vector: an outer sum, 2x3
    ("C = [[1], [2]]; R = [10, 20, 30]; OUT = sum(C + R)", 129.0,
     {"C[0][0]": 3.0, "C[1][0]": 3.0, "R[0]": 2.0, "R[1]": 2.0, "R[2]": 2.0}),
    # [x] (length 1) stretches over a vector and over a matrix
    ("X = [5]; V = [1, 2, 3]; OUT = sum(X * V)", 30.0,
     {"X[0]": 6.0, "V[0]": 5.0, "V[1]": 5.0, "V[2]": 5.0}),
    ("X = [5]; M = [[1, 2], [3, 4]]; OUT = sum(X * M)", 50.0,
     {"X[0]": 10.0, "M[0][0]": 5.0, "M[0][1]": 5.0, "M[1][0]": 5.0, "M[1][1]": 5.0}),
    # registry functions broadcast too, with numbers, vectors and columns
    ("V = [1, 2, 3]; OUT = sum(clamp(V, 1.5, [2, 2, 2.5]))", 6.0,
     {"V[0]": 0.0, "V[1]": 1.0, "V[2]": 0.0}),
    ("V = [1, 2, 3]; OUT = sum(atan2(V, [[1], [2]]))", None,
     {"V[0]": 1 / 2 + 2 / 5, "V[1]": 1 / 5 + 2 / 8, "V[2]": 1 / 10 + 2 / 13}),
    ("V = [3, 4]; OUT = sum(hypot(V, 0) + max(V, 3.5))", 14.5,
     {"V[0]": 1.0, "V[1]": 2.0}),
])
def test_broadcasting_values_and_gradients(program: str, value: float | None,
                                           gradients: dict[str, float]) -> None:
    result = gradcalc.gradients(program)
    if value is not None:
        assert result.value == value
    assert list(result.gradients) == list(gradients)
    for name, expected in gradients.items():
        assert close(result.gradients[name], expected, rel_tol=1e-14), name


def test_atan2_broadcast_value() -> None:
    result = gradcalc.gradients("V = [1, 2, 3]; R = atan2(V, [[1], [2]]); OUT = sum(R)")
    assert result.dag is not None and result.dag.tensors["R"].shape == (2, 3)
    assert elements(result, "R") == [math.atan2(y, x) for x in (1, 2) for y in (1, 2, 3)]


@pytest.mark.parametrize(("program", "message", "column"), [
    ("OUT = sum([1, 2] + [1, 2, 3])", "shapes do not match for '+': a vector of 2 and a "
     "vector of 3", 11),
    ("OUT = sum([1, 2] * [[1, 2, 3], [4, 5, 6]])", "shapes do not match for '*': a vector of "
     "2 and a 2x3 matrix", 11),
    ("OUT = sum([[1, 2], [3, 4]] - [1, 2, 3])", "shapes do not match for '-': a 2x2 matrix "
     "and a vector of 3", 11),
    ("OUT = sum([[1, 2], [3, 4]] / [[1, 2, 3], [4, 5, 6]])", "shapes do not match for '/': "
     "a 2x2 matrix and a 2x3 matrix", 11),
    ("OUT = sum([[1, 2], [3, 4]] ^ [[1, 2], [3, 4], [5, 6]])", "shapes do not match for "
     "'^': a 2x2 matrix and a 3x2 matrix", 11),
    ("OUT = sum(atan2([1, 2], [1, 2, 3]))", "shapes do not match for atan2: a vector of 2 "
     "and a vector of 3", 11),
    ("OUT = sum(clamp([1, 2], 0, [1, 2, 3]))", "shapes do not match for clamp: a vector of 2 "
     "and a number and a vector of 3", 11),
    ("OUT = sum(max([1, 2], [[1], [2], [3]]) + [1, 2, 3])", "shapes do not match for '+': a "
     "3x2 matrix and a vector of 3", 11),
])
def test_broadcasting_errors(program: str, message: str, column: int) -> None:
    error = shape_error(program)
    assert error.message == message
    assert (error.line, error.column) == (1, column)
    assert error.kind == "shape"
    assert error.hint == ("element-wise operations take arrays of one shape, or a number "
                          "with an array")


# --- 4. shape errors and index errors, with their positions ----------------------------------

SHAPE_ERRORS = [
    # (program, message, (line, column))
    ("OUT = [1, 2] + [1, 2, 3]",
     "shapes do not match for '+': a vector of 2 and a vector of 3", (1, 7)),
    ("V = [1, 2]; OUT = V[2]", "index 2 is out of range for a vector of 2", (1, 21)),
    ("V = [1, 2]; OUT = V[-3]", "index -3 is out of range for a vector of 2", (1, 21)),
    ("M = [[1, 2], [3, 4]]; OUT = M[2][0]", "index 2 is out of range for a 2x2 matrix",
     (1, 31)),
    ("M = [[1, 2], [3, 4]]; OUT = M[0][2]", "index 2 is out of range for a vector of 2",
     (1, 34)),
    ("M = [[1, 2], [3, 4]]; OUT = M[0, -3]", "index -3 is out of range for a vector of 2",
     (1, 34)),
    ("M = [[1, 2], [3, 4]]; OUT = M[0, 0, 0]", "a number has no elements to index", (1, 37)),
    ("V = [1, 2]; OUT = V[0][0]", "a number has no elements to index", (1, 24)),
    ("A = 2; OUT = A[0]", "a number has no elements to index", (1, 16)),
    ("A = 2; OUT = sum(A)", "sum takes a vector or matrix, not a number", (1, 18)),
    ("OUT = prod(A*2)", "prod takes a vector or matrix, not a number", (1, 12)),
    ("OUT = norm(3)", "norm takes a vector or matrix, not a number", (1, 12)),
    ("OUT = logsumexp(pi)", "logsumexp takes a vector or matrix, not a number", (1, 17)),
    ("OUT = max(A)", "max takes a vector or matrix, not a number", (1, 11)),
    ("OUT = sum([[1, 2], [3]])",
     "the elements of a vector must have one shape: element 1 is a vector of 1, element 0 "
     "is a vector of 2", (1, 20)),
    ("OUT = sum([1, [2, 3]])",
     "the elements of a vector must have one shape: element 1 is a vector of 2, element 0 "
     "is a number", (1, 15)),
    ("OUT = sum([[[1]]])", "an array of 3 dimensions: gradcalc has vectors and matrices",
     (1, 11)),
    ("V = [1, 2]; OUT = sum(V @ 2)", "'@' multiplies vectors and matrices, not a number",
     (1, 27)),
    ("V = [1, 2]; OUT = sum(2 @ V)", "'@' multiplies vectors and matrices, not a number",
     (1, 23)),
    ("M = [[1, 2], [3, 4]]; V = [1, 2, 3]; OUT = sum(M @ V)",
     "shapes do not match for '@': a 2x2 matrix and a vector of 3", (1, 48)),
    ("M = [[1, 2, 3], [4, 5, 6]]; OUT = sum(M @ M)",
     "shapes do not match for '@': a 2x3 matrix and a 2x3 matrix", (1, 39)),
    ("V = [1, 2]; M = [[1, 2, 3]]; OUT = sum(V @ M)",
     "shapes do not match for '@': a vector of 2 and a 1x3 matrix", (1, 40)),
    ("OUT = dot([1, 2], [1, 2, 3])",
     "dot takes two vectors of one length, not a vector of 2 and a vector of 3", (1, 7)),
    ("M = [[1, 2], [3, 4]]; OUT = dot(M, [1, 2])", "dot takes a vector, not a 2x2 matrix",
     (1, 33)),
    ("V = [1, 2]; OUT = dot(V, 3)", "dot takes a vector, not a number", (1, 26)),
    ("OUT = sum(softmax([[1, 2], [3, 4]]))", "softmax takes a vector, not a 2x2 matrix",
     (1, 19)),
    ("OUT = softmax(A)[0]", "softmax takes a vector, not a number", (1, 15)),
    # on a later line, in a longer program
    ("W = [1, 2, 3]\nB = [1, 2]\nOUT = sum(W)\\\n  + sum(W - B)",
     "shapes do not match for '-': a vector of 3 and a vector of 2", (4, 9)),
    ("V = [1, 2]\n\n# a comment\nOUT = V[0] + V[7]", "index 7 is out of range for a vector of 2",
     (4, 16)),
]


@pytest.mark.parametrize(("program", "message", "where"), SHAPE_ERRORS)
def test_shape_errors_name_the_problem_and_its_place(program: str, message: str,
                                                     where: tuple[int, int]) -> None:
    error = shape_error(program)
    assert error.kind == "shape"
    assert error.message == message
    assert (error.line, error.column) == where
    assert (error.span.line, error.span.column) == where


@pytest.mark.parametrize(("program", "hint"), [
    ("V = [1, 2]; OUT = V[2]", "indices run from 0 to 1 (or -2 to -1, from the end)"),
    ("OUT = sum([[1, 2], [3]])", "a matrix is a vector of rows of one length: [[1, 2], [3, 4]]"),
    ("OUT = sum([[[1]]])", "nest brackets at most two deep: [[1, 2], [3, 4]]"),
    ("V = [1, 2]; OUT = sum(V @ 2)", "use * to multiply by a number"),
    ("M = [[1, 2], [3, 4]]; V = [1, 2, 3]; OUT = sum(M @ V)",
     "the left side's columns (2) must equal the right side's rows (3)"),
    ("OUT = sum(2)", "sum works on the elements of an array, as in sum([1, 2, 3])"),
])
def test_shape_errors_hint_at_the_fix(program: str, hint: str) -> None:
    assert shape_error(program).hint == hint


def test_free_input_shapes_reach_the_messages() -> None:
    error = shape_error("OUT = sum(X + Y)", {"X": (2,), "Y": (2, 3)})
    assert error.message == "shapes do not match for '+': a vector of 2 and a 2x3 matrix"
    assert (error.line, error.column) == (1, 11)
    error = shape_error("OUT = X @ Y", {"X": (2, 3), "Y": (2,)})
    assert error.message == "shapes do not match for '@': a 2x3 matrix and a vector of 2"
    assert (error.line, error.column) == (1, 7)


@pytest.mark.parametrize(("program", "message", "where"), [
    ("V = [1, 2]; OUT = V[1.5]", "an index must be a whole number", (1, 21)),
    ("V = [1, 2]; A = 1; OUT = V[A]", "an index must be a whole number", (1, 28)),
    ("V = [1, 2]; OUT = V[1+0]", "an index must be a whole number", (1, 21)),
    ("V = [1, 2]; OUT = V[pi]", "an index must be a whole number", (1, 21)),
    ("M = [[1, 2], [3, 4]]; OUT = M[0, 0.5]", "an index must be a whole number", (1, 34)),
    ("V = [1, 2]; OUT = V[1e30]", "the index 1e+30 is too large",
     (1, 21)),
])
def test_an_index_must_be_a_whole_number_literal(program: str, message: str,
                                                 where: tuple[int, int]) -> None:
    with pytest.raises(ParseError) as caught:
        parse(program)
    assert caught.value.message == message
    assert (caught.value.line, caught.value.column) == where
    with pytest.raises(ParseError):
        gradcalc.gradients(program)


@pytest.mark.parametrize(("written", "same"), [
    ("V[-1]", "V[2]"), ("V[- 1]", "V[2]"), ("V[+1]", "V[1]"), ("V[(1)]", "V[1]"),
    ("V[1.0]", "V[1]"), ("V[1e0]", "V[1]"), ("M[1, 0]", "M[1][0]"), ("M[-1][-2]", "M[1][0]"),
    ("M[1][0]", "M[-1, 0]"), ("M[1][1]", "[[1, 2], [3, 4]][1][1] * 0 + M[1, 1]"),
])
def test_index_forms(written: str, same: str) -> None:
    prelude = "V = [10, 20, 30]; M = [[1, 2], [3, 4]]; "
    a = gradcalc.gradients(prelude + f"OUT = {written} * 7")
    b = gradcalc.gradients(prelude + f"OUT = {same} * 7")
    assert a.value == b.value and a.gradients == b.gradients
    assert len(a.gradients) == 1


def test_indexing_rows_and_elements() -> None:
    result = gradcalc.gradients("M = [[1, 2], [3, 4]]; R = M[1]; OUT = dot(R, [10, 100])")
    assert result.value == 430.0
    assert result.gradients == {"M[1][0]": 10.0, "M[1][1]": 100.0, "R[0]": 10.0, "R[1]": 100.0}
    # an index of an expression: a call's result, a literal
    result = gradcalc.gradients("Z = [1, 2, 3]; OUT = (Z*2)[1] + [Z, Z][1, 2]")
    assert result.value == 7.0 and result.gradients == {"Z[1]": 2.0, "Z[2]": 1.0}


def test_an_array_output_is_refused_with_a_hint() -> None:
    with pytest.raises(InputError) as caught:
        gradcalc.gradients("W = [1, 2]; OUT = W*2")
    assert caught.value.message == "the output OUT is a vector of 2: a gradient is of a number"
    assert (caught.value.line, caught.value.column) == (1, 13)


@pytest.mark.parametrize(("program", "message"), [
    ("sum = [1, 2]; OUT = 1", "cannot assign to sum: it is a function"),
    ("softmax = 3; OUT = softmax", "cannot assign to softmax: it is a function"),
])
def test_array_functions_are_not_names(program: str, message: str) -> None:
    with pytest.raises(GradcalcError) as caught:
        gradcalc.gradients(program)
    assert caught.value.message == message


@pytest.mark.parametrize(("program", "message"), [
    ("V = [1, 2]; OUT = sum(V, V)", "sum takes 1 argument, got 2"),
    ("V = [1, 2]; OUT = dot(V)", "dot takes 2 arguments, got 1"),
    ("V = [1, 2]; OUT = max(V, V, V)", "max takes 2 arguments (or 1 array), got 3"),
])
def test_array_function_arity(program: str, message: str) -> None:
    with pytest.raises(GradcalcError) as caught:
        gradcalc.gradients(program)
    assert caught.value.kind == "arity" and caught.value.message == message
    assert (caught.value.line, caught.value.column) == (1, 19)


# --- 5. names: literals, elements, named nodes never merged ----------------------------------


def test_a_literal_statement_makes_its_numbers_inputs() -> None:
    dag = compiled("W = [0.5, -1, 2]; V = [2*A, 3, pi]; M = [[1, B], [2, 3]]\n"
                   "OUT = sum(W) + sum(V) + sum(M)")
    assert {n: dag.values[i] for n, i in dag.inputs.items()} == {
        "W[0]": 0.5, "W[1]": -1.0, "W[2]": 2.0, "A": None, "V[1]": 3.0,
        "M[0][0]": 1.0, "B": None, "M[1][0]": 2.0, "M[1][1]": 3.0}
    assert dag.tensors["W"] == Tensor((3,), tuple(dag.inputs[f"W[{i}]"] for i in range(3)))
    assert dag.tensors["M"].shape == (2, 2)
    for name in ("V[0]", "V[2]", "M[0][1]"):  # other elements: named nodes, not inputs
        assert name in dag.named and name not in dag.inputs
    assert [dag.names[i] for i in dag.tensors["M"].ids] == names_of("M", (2, 2))
    result = gradcalc.gradients(dag, at={"A": 1.0, "B": 2.0, "W[1]": 4.0})
    assert result.value == 0.5 + 4 + 2 + 2 + 3 + math.pi + 1 + 2 + 2 + 3
    assert result.inputs["W[1]"] == 4.0
    with pytest.raises(InputError) as caught:
        gradcalc.gradients(dag, at={"V[0]": 1.0})
    assert caught.value.message.startswith("V[0] is not an input: the program computes it")


def test_a_literal_inside_an_expression_is_constants() -> None:
    dag = compiled("OUT = sum([1, 2] * A) + dot([3, 4], [A, A])")
    assert list(dag.inputs) == ["A"] and not dag.tensors
    assert gradcalc.gradients(dag, at={"A": 2.0}).gradients == {"A": 10.0}


def test_repeated_inputs_in_a_literal_are_distinct_named_nodes() -> None:
    dag = compiled("V = [A, A]; OUT = V[0]*3 + V[1]*5")
    a, v0, v1 = dag.inputs["A"], dag.named["V[0]"], dag.named["V[1]"]
    assert len({a, v0, v1}) == 3
    assert dag.args[v0] == (a,) and dag.args[v1] == (a,)
    result = gradcalc.gradients(dag, at={"A": 2.0})
    assert result.value == 16.0
    assert result.gradients == {"A": 8.0, "V[0]": 3.0, "V[1]": 5.0}
    # the same as the scalar program with two names of A
    scalar = gradcalc.gradients("V_0 = A; V_1 = A; OUT = V_0*3 + V_1*5", at={"A": 2.0})
    assert_same_as_written_out(result, scalar)


def test_a_literal_of_numbers_repeated_is_distinct_inputs() -> None:
    result = gradcalc.gradients("V = [1, 1]; OUT = V[0]*3 + V[1]*5")
    assert result.gradients == {"V[0]": 3.0, "V[1]": 5.0}


NAMED_NOT_MERGED = [
    # (arrays, the scalar program written out): G's tanh is never H's node
    ("X = [0.3, -0.2]; H = tanh(X); G = tanh(X)*2; OUT = H[0] + G[0]",
     "X_0 = 0.3; H_0 = tanh(X_0); G_0 = tanh(X_0)*2; OUT = H_0 + G_0"),
    ("X = [0.3, -0.2]; G = tanh(X)*2; H = tanh(X); OUT = H[0] + G[0]",
     "X_0 = 0.3; G_0 = tanh(X_0)*2; H_0 = tanh(X_0); OUT = H_0 + G_0"),
    ("X = [0.3, -0.2]; OUT = H[0] + G[0]; G = tanh(X)*2; H = tanh(X)",
     "X_0 = 0.3; OUT = H_0 + G_0; G_0 = tanh(X_0)*2; H_0 = tanh(X_0)"),
    ("X = [0.3, -0.2]; H = tanh(X); G = tanh(X)*2; OUT = sum(H) + sum(G)",
     "X_0 = 0.3; X_1 = -0.2; H_0 = tanh(X_0); H_1 = tanh(X_1)\n"
     "G_0 = tanh(X_0)*2; G_1 = tanh(X_1)*2; OUT = H_0 + H_1 + (G_0 + G_1)"),
    ("A = 0.5; H = [tanh(A), tanh(A)*2]; OUT = H[0] + H[1]",
     "A = 0.5; H_0 = tanh(A); H_1 = tanh(A)*2; OUT = H_0 + H_1"),
    ("A = 0.5; X = [A, A]; H = tanh(X); OUT = H[0] + 3*H[1]",
     "A = 0.5; X_0 = A; X_1 = A; H_0 = tanh(X_0); H_1 = tanh(X_1); OUT = H_0 + 3*H_1"),
]


@pytest.mark.parametrize(("program", "written"), NAMED_NOT_MERGED)
def test_named_elements_are_never_merged(program: str, written: str) -> None:
    array = gradcalc.gradients(program)
    scalar = gradcalc.gradients(written)
    assert_same_as_written_out(array, scalar)
    if "H[0]" in array.gradients and "G[0]" in array.gradients:
        assert array.gradients["H[0]"] == 1.0  # G's path is not H's


def test_the_scalar_rule_itself() -> None:
    result = gradcalc.gradients("X0 = 0.3; H0 = tanh(X0); G = tanh(X0)*2; OUT = H0 + G")
    assert result.gradients["H0"] == 1.0 and result.gradients["G"] == 1.0


def test_an_array_named_twice_is_two_arrays() -> None:
    result = gradcalc.gradients("V = [1, 2]; W = V; OUT = sum(W) + V[0]")
    assert result.gradients == {"V[0]": 2.0, "V[1]": 1.0, "W[0]": 1.0, "W[1]": 1.0}
    assert result.dag is not None
    assert set(result.dag.tensors["W"].ids).isdisjoint(result.dag.tensors["V"].ids)


def test_shapes_give_free_inputs_their_shape() -> None:
    dag = compiled("OUT = sum(X @ Y) + A", {"X": (2, 3), "Y": (3,)})
    assert list(dag.inputs) == [*names_of("X", (2, 3)), *names_of("Y", (3,)), "A"]
    assert dag.tensors["X"] == Tensor((2, 3), tuple(dag.inputs[n] for n in names_of("X", (2, 3))))
    at = {n: float(i) for i, n in enumerate(dag.inputs)}
    result = gradcalc.gradients(dag, at=at)
    x = [at[n] for n in names_of("X", (2, 3))]
    y = [at[n] for n in names_of("Y", (3,))]
    assert result.value == sum(x[3 * r + c] * y[c] for r in range(2) for c in range(3)) + at["A"]
    assert [result.gradients[f"Y[{c}]"] for c in range(3)] == [x[c] + x[3 + c] for c in range(3)]
    # a shape for a name the program does not use changes nothing
    assert list(compiled("OUT = A*3", {"X": (2,)}).inputs) == ["A"]


def test_the_output_may_be_written_after_its_array_operands() -> None:
    result = gradcalc.gradients("OUT = dot(W, H); H = tanh(W*2); W = [0.1, 0.2]")
    expected = gradcalc.gradients("W = [0.1, 0.2]; H = tanh(W*2); OUT = dot(W, H)")
    assert result.value == expected.value
    assert result.gradients == expected.gradients


# --- 6. functions of arrays ------------------------------------------------------------------


@pytest.mark.parametrize(("program", "written"), [
    ("f(v) = sum(v^2); X = [1, -2, 0.5]; OUT = f(X)", "X = [1, -2, 0.5]; OUT = sum(X^2)"),
    ("f(v) = v*2 + 1; X = [1, 2]; OUT = dot(f(X), X)", "X = [1, 2]; OUT = dot(X*2 + 1, X)"),
    ("f(m, v) = tanh(m @ v); M = [[1, 2], [3, 4]]; X = [0.1, -0.2]; OUT = sum(f(M, X))",
     "M = [[1, 2], [3, 4]]; X = [0.1, -0.2]; OUT = sum(tanh(M @ X))"),
    ("f(x) = x^2; V = [1, 2]; A = 3; OUT = sum(f(V)) + f(A)",
     "V = [1, 2]; A = 3; OUT = sum(V^2) + A^2"),
    ("f(a, b) = [a*b, a + b]; A = 2; B = 3; OUT = prod(f(A, B))",
     "A = 2; B = 3; OUT = prod([A*B, A + B])"),
    ("g(v) = softmax(v); f(v) = -log(g(v)[1]); Z = [1, 2, 3]; OUT = f(Z)",
     "Z = [1, 2, 3]; OUT = -log(softmax(Z)[1])"),
    ("f(v) = v[0]*v[-1]; M = [[1, 2], [3, 4]]; OUT = f(M)[1]", "M = [[1, 2], [3, 4]]; "
     "OUT = (M[0]*M[-1])[1]"),
    ("f(v) = max(v) + min(v); V = [3, -1, 2]; OUT = f(V) + f(V*2)",
     "V = [3, -1, 2]; OUT = max(V) + min(V) + (max(V*2) + min(V*2))"),
])
def test_functions_of_arrays_give_the_numbers_of_the_program_written_out(
        program: str, written: str) -> None:
    a = gradcalc.gradients(program)
    b = gradcalc.gradients(written)
    assert a.value == b.value
    assert a.gradients == b.gradients


def test_a_named_call_returning_an_array_names_its_elements() -> None:
    result = gradcalc.gradients("f(v) = v*2; X = [1, 2]; P = f(X); Q = f(X); "
                                "OUT = P[0] + 3*Q[0]")
    assert result.value == 8.0
    assert result.gradients == {"X[0]": 8.0, "P[0]": 1.0, "Q[0]": 3.0}


@pytest.mark.parametrize(("program", "message", "where"), [
    ("f(v) = v + [1, 2, 3]; X = [1, 2]; OUT = sum(f(X))",
     "shapes do not match for '+': a vector of 2 and a vector of 3", (1, 45)),
    ("f(v) = sum(v); OUT = f(A)", "sum takes a vector or matrix, not a number", (1, 22)),
    ("f(v) = v[2]; X = [3, 4]; OUT = f(X)", "index 2 is out of range for a vector of 2",
     (1, 32)),
    ("f(v, w) = v @ w; X = [3, 4]; OUT = f(X, [[1, 2, 3]])",
     "shapes do not match for '@': a vector of 2 and a 1x3 matrix", (1, 36)),
    ("f(v) = softmax(v); X = [[3, 4]]; OUT = sum(f(X))",
     "softmax takes a vector, not a 1x2 matrix", (1, 44)),
    ("g(v) = dot(v, v); f(v) = g(v) + 1\nX = [[1, 2]]\nOUT = f(X)",
     "dot takes a vector, not a 1x2 matrix", (3, 7)),
    ("f(v) = [v, [1, 2]]\nOUT = sum(f(A))",
     "the elements of a vector must have one shape: element 1 is a vector of 2, element 0 "
     "is a number", (2, 11)),
])
def test_shape_errors_in_a_body_are_reported_at_the_call(program: str, message: str,
                                                        where: tuple[int, int]) -> None:
    error = shape_error(program)
    assert error.message == message
    assert (error.line, error.column) == where


def test_the_result_of_a_function_is_checked_where_it_is_used() -> None:
    error = shape_error("f(v) = [v, v]; OUT = sum(f(A) @ [1, 2])")
    assert error.message == "sum takes a vector or matrix, not a number"
    assert (error.line, error.column) == (1, 26)


# --- 7. max and min of an array --------------------------------------------------------------


@property_settings(60)
@given(st.sampled_from(["max", "min"]),
       st.lists(reals(-100, 100), min_size=1, max_size=7, unique=True))
def test_max_and_min_without_ties(which: str, x: list[float]) -> None:
    n = len(x)
    result = gradcalc.gradients(cached(f"OUT = {which}(X)", (("X", (n,)),)),
                                at=dict(zip(names_of("X", (n,)), x, strict=True)))
    best = max(x) if which == "max" else min(x)
    assert result.value == best
    assert [result.gradients[f"X[{i}]"] for i in range(n)] == [
        1.0 if v == best else 0.0 for v in x]
    assert not result.warnings


def test_max_and_min_of_a_matrix_reduce_every_element() -> None:
    result = gradcalc.gradients("M = [[1, 7], [-3, 2]]; OUT = max(M) - 2*min(M)")
    assert result.value == 13.0
    assert result.gradients == {"M[0][0]": 0.0, "M[0][1]": 1.0, "M[1][0]": -2.0,
                                "M[1][1]": 0.0}


@pytest.mark.parametrize(("program", "gradients", "ties"), [
    # the binary rule at each step of the fold ((x0 op x1) op x2) op ...: 1/2 to each side
    ("X = [0.3, 0.3]; OUT = max(X)", [0.5, 0.5], 1),
    ("X = [0.3, 0.3, 0.3]; OUT = max(X)", [0.25, 0.25, 0.5], 2),
    ("X = [0.3, 0.3, 0.3]; OUT = min(X)", [0.25, 0.25, 0.5], 2),
    ("X = [1, 0.3, 0.3]; OUT = min(X)", [0.0, 0.5, 0.5], 1),
    ("X = [0.3, 1, 0.3]; OUT = min(X)", [0.5, 0.0, 0.5], 1),
    ("X = [2, 2, 1]; OUT = max(X)", [0.5, 0.5, 0.0], 1),
    ("X = [2, 1, 2, 0]; OUT = max(X)", [0.5, 0.0, 0.5, 0.0], 1),
    ("X = [2, 2, 2, 2]; OUT = max(X)", [0.125, 0.125, 0.25, 0.5], 3),
])
def test_max_and_min_at_a_tie_follow_the_binary_rule_and_warn(
        program: str, gradients: list[float], ties: int) -> None:
    result = gradcalc.gradients(program)
    assert [result.gradients[f"X[{i}]"] for i in range(len(gradients))] == gradients
    assert math.fsum(gradients) == 1.0
    kinks = [w for w in result.warnings if w.kind == "kink"]
    which = "max" if "max(" in program else "min"
    column = program.index(f"{which}(") + 1
    counted = 0  # the tied steps at one place and value are one warning, with a count
    for warning in kinks:
        found = re.fullmatch(rf"{which} is not differentiable at {which}\([\d.]+, [\d.]+\)"
                             r"(?: \((\d+) times\))?", warning.message)
        assert found, warning.message
        counted += int(found[1] or 1)
        assert warning.hint == "the convention used: a tie gives 1/2 to each side"
        assert warning.span is not None
        assert (warning.span.line, warning.span.column) == (1, column)
    assert counted == ties
    # the same numbers as the fold written out with the binary function
    n = len(gradients)
    values = program.split("[")[1].split("]")[0]
    fold = "X_0"
    for i in range(1, n):
        fold = f"{which}({fold}, X_{i})"
    inputs = "; ".join(f"X_{i} = {v.strip()}" for i, v in enumerate(values.split(",")))
    scalar = gradcalc.gradients(f"{inputs}; OUT = {fold}")
    assert_same_as_written_out(result, scalar)
    assert len([w for w in scalar.warnings if w.kind == "kink"]) == ties


def test_max_with_two_arguments_stays_element_wise() -> None:
    result = gradcalc.gradients("V = [1, 2, 3]; OUT = sum(max(V, 2)) + max(V[0], V[2])")
    assert result.value == 10.0
    assert result.gradients == {"V[0]": 0.0, "V[1]": 0.5, "V[2]": 2.0}
    assert [w.kind for w in result.warnings] == ["kink"]


# --- array values given from outside ---------------------------------------------------------


def test_an_array_value_in_at_is_the_shape_given_to_the_builder() -> None:
    program = "OUT = sum(tanh(M @ X)) + mean(X)"
    given_values = gradcalc.gradients(program, at={"M": [[1.0, 2.0], [3.0, 4.0]],
                                                   "X": [0.5, -0.25]})
    shaped = gradcalc.gradients(compiled(program, {"M": (2, 2), "X": (2,)}), at={
        "M[0][0]": 1.0, "M[0][1]": 2.0, "M[1][0]": 3.0, "M[1][1]": 4.0,
        "X[0]": 0.5, "X[1]": -0.25})
    assert given_values.value == shaped.value
    assert given_values.gradients == shaped.gradients
    assert list(given_values.gradients) == [*names_of("M", (2, 2)), *names_of("X", (2,))]


def test_a_shape_error_on_the_command_line() -> None:
    done = run("OUT = [1, 2] + [1, 2, 3]")
    assert done.exit_code == 2
    assert "error: shapes do not match for '+': a vector of 2 and a vector of 3" in done.stderr
    assert "--> <program>:1:7" in done.stderr
    done = run("W = [0.5, -1, 2]; OUT = sum(W^2)", "--format", "plain")
    assert done.exit_code == 0, done.stderr
    assert done.stdout == "W[0] 1\nW[1] -2\nW[2] 4\n"


# --- found by review and fixed: each element its own node, shapes checked, the output chosen --


@pytest.mark.parametrize(("program", "written"), [
    ("A = 0.5; V = [sin(A), sin(A)]; OUT = V[0] + 2*V[1]",
     "A = 0.5; V0 = sin(A); V1 = sin(A); OUT = V0 + 2*V1"),
    ("A = 0.5; H = tanh([A, A]); OUT = H[0] + 3*H[1]",
     "A = 0.5; H0 = tanh(A); H1 = tanh(A); OUT = H0 + 3*H1"),
    ("A = 0.5; H = [A*2, A*2, A*2]; OUT = H[0] + 3*H[1] - H[2]",
     "A = 0.5; H0 = A*2; H1 = A*2; H2 = A*2; OUT = H0 + 3*H1 - H2"),
])
def test_the_same_expression_twice_in_an_array_gives_separate_elements(program: str,
                                                                       written: str) -> None:
    """Merged identical elements must not become identities of the first: the gradient with
    respect to H[0] would take H[1]'s path too."""
    got, want = gradcalc.gradients(program), gradcalc.gradients(written)
    assert got.value == want.value
    renamed = {re.sub(r"\[(\d)\]", r"\1", name): g for name, g in got.gradients.items()}
    assert renamed == want.gradients


@pytest.mark.parametrize("shape", [(0,), (2, 0), (2, 2, 2), (), (1.5,), [2], (-1,)])
def test_build_refuses_shapes_that_are_not_vectors_or_matrices(shape: object) -> None:
    with pytest.raises(InputError, match="the shape of X must be"):
        build(parse("OUT = sum(X)"), shapes={"X": shape})  # type: ignore[dict-item]


def test_an_element_given_twice_is_refused() -> None:
    with pytest.raises(InputError, match=r"X\[0\] is given a value twice"):
        gradcalc.gradients("OUT = sum(X^2)", at={"X": [1, 2], "X[0]": 5})


def test_a_number_output_is_preferred_to_a_vector_candidate() -> None:
    r = gradcalc.gradients("OUT = A*2; V = [A, A*3]", at={"A": 1})
    assert r.output == "OUT" and r.gradients == {"A": 2.0}
    assert [w.message for w in r.warnings] == [
        "several outputs (OUT, V); differentiating OUT, the last that is a number"]


def test_dot_hint_shows_two_vectors() -> None:
    with pytest.raises(ShapeError) as caught:
        gradcalc.gradients("V = [1, 2]; OUT = dot(V, 3)")
    assert caught.value.hint is not None and "dot([1, 2], [3, 4])" in caught.value.hint


def test_kinks_at_one_place_are_one_warning_with_a_count() -> None:
    r = gradcalc.gradients("X = [0, 0, 0, 1, 0]; OUT = sum(relu(X))")
    assert [w.message for w in r.warnings] == ["relu is not differentiable at relu(0) (4 times)"]
    assert (r.warnings[0].span.line, r.warnings[0].span.column) == (1, 32)
    assert r.gradients == {"X[0]": 0.0, "X[1]": 0.0, "X[2]": 0.0, "X[3]": 1.0, "X[4]": 0.0}


def test_a_million_kinks_do_not_flood_the_warnings() -> None:
    n = 2000
    r = gradcalc.gradients("OUT = " + " + ".join(f"relu(A{i})" for i in range(n)),
                           at={f"A{i}": 0 for i in range(n)})
    assert len(r.warnings) == 11
    assert r.warnings[-1].message == f"{n - 10:,} more non-differentiable points met"


# --- symbolic formulas of array programs, against SymPy ----------------------------------------


def test_symbolic_gradients_of_an_array_program_against_sympy() -> None:
    """`--symbolic` over the expanded graph: every element's formula, read by SymPy (``W[0]``
    as a symbol ``W_0``), equals SymPy's own derivative of the closed form."""
    import sympy
    from sympy.parsing.sympy_parser import parse_expr

    program = ("W = [0.5, -1, 2]; M = [[1, 2, 0], [0.5, -1, 3]]; "
               "OUT = sum(tanh(M @ W)) + logsumexp(W) + norm(W)*mean(W)")
    result = gradcalc.gradients(program, symbolic=True)

    def symbol(name: str) -> sympy.Symbol:
        return sympy.Symbol(re.sub(r"\[(\d+)\]", r"_\1", name))

    w = [symbol(f"W[{i}]") for i in range(3)]
    m = [[symbol(f"M[{i}][{j}]") for j in range(3)] for i in range(2)]
    closed = (sum(sympy.tanh(sum(m[i][j] * w[j] for j in range(3))) for i in range(2))
              + sympy.log(sum(sympy.exp(x) for x in w))
              + sympy.sqrt(sum(x**2 for x in w)) * sum(w) / 3)
    functions = {"tanh": sympy.tanh, "exp": sympy.exp, "log": sympy.log, "sqrt": sympy.sqrt,
                 "sigmoid": lambda x: 1 / (1 + sympy.exp(-x)),
                 "logaddexp": lambda a, b: sympy.log(sympy.exp(a) + sympy.exp(b))}
    point = {symbol(n): sympy.Rational(v).limit_denominator(100)
             for n, v in result.inputs.items()}
    assert len(result.formulas) == 9
    for name, formula in result.formulas.items():
        env: dict[str, object] = dict(functions)
        value = None
        for statement in formula.text.split("; "):
            target, sep, expr = statement.partition(" = ")
            source = re.sub(r"\[(\d+)\]", r"_\1", expr if sep else target).replace("^", "**")
            env.update({t: sympy.Symbol(t) for t in re.findall(r"[A-Za-z_]\w*", source)
                        if t not in env})
            value = parse_expr(source, local_dict=env)
            if sep:
                env[re.sub(r"\[(\d+)\]", r"_\1", target)] = value
        want = sympy.diff(closed, symbol(name))
        assert value is not None
        got, expected = (sympy.N(e.subs(point), 30) for e in (value, want))
        assert abs(got - expected) <= 1e-25 * max(1, abs(expected)), (name, formula.text)
