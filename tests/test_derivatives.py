"""Jacobians, Hessians and gradient checks (gradcalc.derivatives), against independent oracles.

The Hessian is checked for exact symmetry (one triangle is computed and mirrored) and against
second derivatives worked out without gradcalc's differentiation at all: central finite
differences of the program evaluated by mpmath at 60 significant digits, and SymPy's exact
derivatives for the issue's tanh network. Warnings (kinks, where an infinite or NaN entry
arose) must reach every result: Matrix.warnings, Checks.warnings.
"""

from __future__ import annotations

import math
import pickle

import mpmath
import pytest
import sympy
from helpers import SETTINGS, property_settings, run
from hypothesis import assume, example, given
from hypothesis import strategies as st

import gradcalc
from gradcalc import derivatives
from gradcalc.derivatives import Check, Checks, Matrix, check_gradients, hessian, jacobian

NETWORK = ("H1 = tanh(W11*X1 + W12*X2 + B1); H2 = tanh(W21*X1 + W22*X2 + B2); "
           "OUT = V1*H1 + V2*H2 + C")
NETWORK_AT = {"W11": 0.5, "W12": -0.3, "W21": 0.8, "W22": 0.2, "B1": 0.1, "B2": -0.1,
              "X1": 1.0, "X2": 2.0, "V1": 1.5, "V2": -0.7, "C": 0.05}


# --- oracles (no gradcalc differentiation) -----------------------------------------------------

MP_FUNCTIONS = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b, "neg": lambda x: -x, "id": lambda x: x,
    "pow": lambda a, b: mpmath.power(a, b), "sin": mpmath.sin, "cos": mpmath.cos,
    "tan": mpmath.tan, "tanh": mpmath.tanh, "sinh": mpmath.sinh, "cosh": mpmath.cosh,
    "exp": mpmath.exp, "log": mpmath.log, "sqrt": mpmath.sqrt, "atan": mpmath.atan,
    "sigmoid": lambda x: 1 / (1 + mpmath.exp(-x)),
    "softplus": lambda x: mpmath.log(1 + mpmath.exp(x)),
    "atan2": mpmath.atan2,
}

SYMPY_FUNCTIONS = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b, "neg": lambda x: -x, "id": lambda x: x,
    "pow": lambda a, b: a**b, "tanh": sympy.tanh, "sin": sympy.sin, "exp": sympy.exp,
}


def mp_output(dag: gradcalc.Dag, point: dict[str, mpmath.mpf]) -> mpmath.mpf:
    """The program's output evaluated by mpmath (at the working precision), node by node."""
    output = dag.named[dag.output]
    vals: list = []
    for node in range(output + 1):
        op = dag.ops[node].name
        if op == "input":
            vals.append(point[dag.names[node]])
        elif op == "const":
            label = dag.labels.get(node)
            vals.append(mpmath.pi if label == "pi" else mpmath.e if label == "e"
                        else mpmath.mpf(label if label is not None else repr(dag.values[node])))
        else:
            vals.append(MP_FUNCTIONS[op](*[vals[a] for a in dag.args[node]]))
    return vals[output]


def mp_hessian(dag: gradcalc.Dag, at: dict[str, float], names: list[str]) -> list[list[float]]:
    """Second derivatives by central differences at 60 digits with a step of 1e-15: the
    truncation error (~h²) and the rounding (~10^-60/h²) both stay near 1e-30."""
    with mpmath.workdps(60):
        h = mpmath.mpf("1e-15")
        base = {n: mpmath.mpf(v) for n, v in at.items()}

        def f(shift: dict[str, int]) -> mpmath.mpf:
            point = dict(base)
            for name, k in shift.items():
                point[name] += k * h
            return mp_output(dag, point)

        H = []
        for i, a in enumerate(names):
            row = []
            for j, b in enumerate(names):
                if i == j:
                    value = (f({a: 1}) - 2 * f({}) + f({a: -1})) / h**2
                else:
                    value = (f({a: 1, b: 1}) - f({a: 1, b: -1}) - f({a: -1, b: 1})
                             + f({a: -1, b: -1})) / (4 * h**2)
                row.append(float(value))
            H.append(row)
        return H


def sympy_output(dag: gradcalc.Dag) -> sympy.Expr:
    output = dag.named[dag.output]
    exprs: list[sympy.Expr] = []
    for node in range(output + 1):
        op = dag.ops[node].name
        if op == "input":
            exprs.append(sympy.Symbol(dag.names[node]))
        elif op == "const":
            exprs.append(sympy.Rational(dag.labels.get(node) or repr(dag.values[node])))
        else:
            exprs.append(SYMPY_FUNCTIONS[op](*[exprs[a] for a in dag.args[node]]))
    return exprs[output]


# --- random smooth programs --------------------------------------------------------------------

UNARY = ["sin", "cos", "tanh", "exp", "sigmoid", "atan", "softplus", "-", "^2", "^3"]
BINARY = ["+", "-", "*", "/"]


@st.composite
def smooth_programs(draw):
    """2..6 statements over 1..3 inputs, built from operations that are smooth everywhere
    (a division's denominator is 2 + b^2), with names reused (diamonds, products of a name
    with itself)."""
    n_inputs = draw(st.sampled_from([1, 2, 3, 3]))  # off the diagonal needs two inputs
    names = [f"X{i}" for i in range(n_inputs)]
    at = {n: draw(st.floats(-1.2, 1.2, allow_nan=False), label=n) for n in names}

    def leaf() -> str:
        if draw(st.integers(0, 6)) == 0:
            return draw(st.sampled_from(["2", "0.5", "1.5"]))
        return draw(st.sampled_from(names[-2:] if draw(st.booleans()) else names))

    def expr(depth: int) -> str:
        kind = draw(st.sampled_from(["leaf", "unary", "binary"])) if depth else "leaf"
        if kind == "leaf":
            return leaf()
        if kind == "unary":
            f, inner = draw(st.sampled_from(UNARY)), expr(depth - 1)
            if f == "-":
                return f"-({inner})"
            return f"({inner}){f}" if f.startswith("^") else f"{f}({inner})"
        op, a, b = draw(st.sampled_from(BINARY)), expr(depth - 1), expr(depth - 1)
        return f"({a}) / (2 + ({b})^2)" if op == "/" else f"({a}) {op} ({b})"

    lines = []
    for i in range(draw(st.integers(1, 5))):
        lines.append(f"S{i} = {expr(2)}")
        names.append(f"S{i}")
    lines.append(f"OUT = ({names[-1]}) {draw(st.sampled_from(['+', '*']))} ({expr(1)})")
    return "\n".join(lines), at


def inputs_of(program: str, at: dict[str, float]) -> tuple[gradcalc.Dag, dict[str, float]]:
    """The built program and the value of each of its inputs (drawn, or set in the program:
    a statement ``S0 = 2`` makes an input)."""
    dag = gradcalc.compile_program(program)
    values = {n: at[n] if n in at else dag.values[i] for n, i in dag.inputs.items()}
    assert all(v is not None for v in values.values())
    return dag, values  # type: ignore[return-value]


def moderate(dag: gradcalc.Dag, at: dict[str, float]) -> bool:
    """Whether the program evaluates at the point with every value below 1e6 in size (exp of
    exp overflows; huge values make second differences meaningless)."""
    try:
        result = gradcalc.gradients(dag, at=at)
    except gradcalc.EvaluationError:
        return False
    return all(abs(v) < 1e6 for v in result.node_values if v is not None)


def assert_close_to(H: list[list[float]], exact: list[list[float]], context: object) -> None:
    scale = max([1.0, *(abs(v) for row in exact for v in row)])
    for i, row in enumerate(exact):
        for j, value in enumerate(row):
            assert abs(H[i][j] - value) <= 1e-9 * scale, (context, i, j, H[i][j], value)


# --- Hessians: symmetry ------------------------------------------------------------------------

def test_issue_network_hessian_is_symmetric_and_exact():
    m = hessian(NETWORK, at=NETWORK_AT)
    names = m.rows
    assert names == m.columns and set(names) == set(NETWORK_AT)
    for a in names:
        for b in names:
            assert m.entries[a][b] == m.entries[b][a], (a, b)
    # SymPy's exact second derivatives, evaluated at 40 digits
    out = sympy_output(gradcalc.compile_program(NETWORK))
    subs = {sympy.Symbol(n): sympy.Rational(repr(v)) for n, v in NETWORK_AT.items()}
    for a in names:
        for b in names:
            exact = float(sympy.diff(out, sympy.Symbol(a), sympy.Symbol(b)).evalf(40, subs=subs))
            assert math.isclose(m.entries[a][b], exact, rel_tol=1e-12, abs_tol=1e-15), (a, b)
    assert m.warnings == []


def test_issue_network_on_the_command_line():
    args = [f"{n}={v}" for n, v in NETWORK_AT.items()]
    r = run(NETWORK, "--hessian", "--at", ",".join(args), "--format", "plain")
    assert r.exit_code == 0, r.output
    entries = {}
    for line in r.stdout.splitlines():
        a, b, value = line.split()
        entries[a, b] = value
    assert len(entries) == len(NETWORK_AT) ** 2
    assert all(entries[a, b] == entries[b, a] for a, b in entries)


def test_issue_network_formulas_are_symmetric():
    m = hessian(NETWORK)
    assert all(m.entries[a][b] == m.entries[b][a] for a in m.rows for b in m.rows)
    assert m.entries["W11"]["X1"] == m.entries["X1"]["W11"]
    assert isinstance(m.entries["W11"]["X1"], str)
    assert m.warnings == []


def test_only_the_upper_triangle_is_differentiated(monkeypatch):
    """Row k is differentiated against columns k, k+1, ... only: half the work."""
    asked: list[list[str]] = []
    real = derivatives._second_derivatives

    def spy(gdag, vals, node, columns):
        asked.append(list(columns))
        return real(gdag, vals, node, columns)

    monkeypatch.setattr(derivatives, "_second_derivatives", spy)
    m = hessian("OUT = A*B*C + sin(A)*C^2", at={"A": 0.3, "B": -1.1, "C": 2.0})
    assert asked == [["A", "B", "C"], ["B", "C"], ["C"]]
    assert m.entries["A"]["B"] == m.entries["B"]["A"] == 2.0
    assert m.entries["B"]["B"] == 0.0


@SETTINGS
@given(case=smooth_programs())
@example(case=(NETWORK, NETWORK_AT))  # asymmetric in the last bits before the mirroring
def test_random_hessians_are_exactly_symmetric_and_match_mpmath(case):
    program, at = case
    dag, at = inputs_of(program, at)
    assume(moderate(dag, at))
    m = hessian(dag, at=at)
    names = m.rows
    H = [[m.entries[a][b] for b in names] for a in names]
    assert all(isinstance(v, float) for row in H for v in row), H
    for i in range(len(names)):
        for j in range(len(names)):
            assert H[i][j] == H[j][i], (program, at, names[i], names[j], H)
    assert_close_to(H, mp_hessian(dag, at, names), (program, at))


@property_settings(25)
@given(case=smooth_programs())
def test_random_formula_hessians_are_symmetric_and_evaluate_to_the_numbers(case):
    program, at = case
    dag, at = inputs_of(program, at)
    assume(moderate(dag, at))
    formulas = hessian(dag)
    numbers = hessian(dag, at=at)
    assert formulas.rows == numbers.rows
    for a in formulas.rows:
        for b in formulas.rows:
            entry = formulas.entries[a][b]
            assert entry == formulas.entries[b][a], (program, a, b)
            if isinstance(entry, str):
                inner = gradcalc.compile_program(entry, "<entry>")
                value = gradcalc.gradients(inner, at={n: v for n, v in at.items()
                                                      if n in inner.inputs}).value
            else:
                value = entry
            assert value is not None
            expected = numbers.entries[a][b]
            assert isinstance(expected, float)
            assert math.isclose(value, expected, rel_tol=1e-9, abs_tol=1e-9), (program, a, b)


# --- Hessians: formulas re-read as programs ----------------------------------------------------

def test_an_input_named_OUT_is_not_mistaken_for_a_formula_output():
    """A constant formula ("2") or one not using the name OUT is read back as a program whose
    output is called OUT: that must not make d/dOUT of it 1."""
    assert hessian("C = OUT*A", at={"OUT": 1, "A": 2}).entries == {
        "OUT": {"OUT": 0.0, "A": 1.0}, "A": {"OUT": 1.0, "A": 0.0}}
    assert hessian("C = OUT*A").entries == {"OUT": {"OUT": 0.0, "A": 1.0},
                                            "A": {"OUT": 1.0, "A": 0.0}}
    assert hessian("C = OUT*2 + A^2", at={"OUT": 1, "A": 3}).entries == {
        "OUT": {"OUT": 0.0, "A": 0.0}, "A": {"OUT": 0.0, "A": 2.0}}
    assert hessian("C = OUT^2*A", at={"OUT": 3, "A": 2}).entries == {
        "OUT": {"OUT": 4.0, "A": 6.0}, "A": {"OUT": 6.0, "A": 0.0}}


def test_hessian_where_the_program_is_undefined_is_an_error():
    """The gradient is computed at the point first: log(-1) is an evaluation error, as for
    gradients(), not a number read off the formula 1/A."""
    with pytest.raises(gradcalc.EvaluationError) as info:
        hessian("OUT = log(A)", at={"A": -1})
    assert "log(-1)" in info.value.message


# --- warnings reach every result ---------------------------------------------------------------

def test_hessian_warnings_at_a_kink_and_at_an_infinite_entry():
    m = hessian("OUT = relu(A)^2", at={"A": 0})
    assert m.entries == {"A": {"A": 0.0}}
    assert [(w.kind, w.message) for w in m.warnings] == [
        ("kink", "relu is not differentiable at relu(0)")]
    m = hessian("OUT = A^1.5", at={"A": 0})
    assert m.entries == {"A": {"A": math.inf}}
    [warning] = m.warnings
    assert warning.kind == "nonfinite" and warning.message == "d²OUT/dA² is inf"
    # it points at the operation of the program whose derivative is not differentiable
    assert warning.source is not None and warning.source.name == "<program>"
    assert warning.span is not None and warning.span.column == 7
    assert hessian("OUT = relu(A)^2").warnings == []  # formulas: nothing was evaluated


def test_jacobian_warnings_each_once():
    m = jacobian("U = sqrt(A^2) + relu(B); V = relu(B)*A", ["U", "V"], at={"A": 0, "B": 0})
    assert math.isnan(m.entries["U"]["A"]) and m.entries["V"]["A"] == 0.0
    kinds = [(w.kind, w.span.column) for w in m.warnings]
    # the relu(B) kink is met by both backward passes and reported once
    assert kinds.count(("kink", 17)) == 1  # one node: identical sub-expressions are merged
    nonfinite = [w for w in m.warnings if w.kind == "nonfinite"]
    assert len(nonfinite) == 1 and "inf × 0" in nonfinite[0].message
    assert jacobian("U = A*B; V = A+B", ["U", "V"], at={"A": 1, "B": 2}).warnings == []


def test_matrix_is_backwards_compatible():
    m = Matrix(["A"], ["A"], {"A": {"A": 1.0}})
    assert m.warnings == []


def test_check_gradients_at_a_relu_kink_carries_the_warning():
    checks = check_gradients("OUT = relu(A)", at={"A": 0})
    assert isinstance(checks, Checks) and isinstance(checks, list)
    assert len(checks) == 1 and isinstance(checks[0], Check)
    assert not checks[0].ok and not checks.ok
    assert [(w.kind, w.message) for w in checks.warnings] == [
        ("kink", "relu is not differentiable at relu(0)")]
    assert checks.warnings == gradcalc.gradients("OUT = relu(A)", at={"A": 0}).warnings


def test_check_gradients_nonfinite_warning_and_smooth_case():
    checks = check_gradients("OUT = sqrt(A^2)", at={"A": 0})
    assert math.isnan(checks[0].gradient) and not checks.ok
    assert [w.kind for w in checks.warnings] == ["kink", "nonfinite"]
    assert "inf × 0" in checks.warnings[1].message
    checks = check_gradients("OUT = tanh(A)^2*log(B)", at={"A": 0.3, "B": 2.0})
    assert checks.ok and checks.warnings == []


def test_checks_stay_a_plain_list_to_their_users():
    checks = check_gradients("OUT = A*B", at={"A": 2, "B": 3})
    assert checks == [Check("A", 3.0, c.estimate, c.relative_error, c.step) if c.name == "A"
                      else Check("B", 2.0, c.estimate, c.relative_error, c.step)
                      for c in checks]
    assert [c.name for c in checks] == ["A", "B"]
    again = pickle.loads(pickle.dumps(check_gradients("OUT = relu(A)", at={"A": 0})))
    assert isinstance(again, Checks) and again.warnings[0].kind == "kink"
    assert Checks() == [] and Checks().warnings == []


def test_results_carry_warnings_not_notes_about_the_question():
    """Which output was chosen is the caller's to say (gradients() notes it); the matrices and
    checks carry what the computation met."""
    program = "U = relu(A)*2; V = relu(A)^2"  # two candidate outputs: V is differentiated
    checks = check_gradients(program, at={"A": 0})
    assert [w.kind for w in checks.warnings] == ["kink"]
    assert [w.kind for w in hessian(program, at={"A": 0}).warnings] == ["kink"]
