"""Formulas as LaTeX (``--format latex``): names, every construct of the grammar, aligned
blocks for bindings, balanced delimiters on random formulas, and the command line."""

from __future__ import annotations

import json

import pytest
from helpers import property_settings, run
from hypothesis import given
from test_symbolic import RandomProgram, programs

import gradcalc
from gradcalc.latex import formula_latex, gradient_latex, name_latex


@pytest.mark.parametrize(("name", "latex"), [
    ("A", "A"), ("x1", "x_{1}"), ("x_1", "x_{1}"), ("θ", r"\theta"), ("Ω", r"\Omega"),
    ("LOSS", r"\mathrm{LOSS}"), ("learning_rate", r"\mathrm{learning\_rate}"),
    ("W[0][1]", "W_{0,1}"), ("W[2]", "W_{2}"), ("OUT2", r"\mathrm{OUT}_{2}"),
    ("Δx", r"\mathrm{\Delta{}x}"),
])
def test_names(name: str, latex: str) -> None:
    assert name_latex(name) == latex


@pytest.mark.parametrize(("formula", "latex"), [
    ("3*A^2", r"3 \, {A}^{2}"),
    ("1/(2*sqrt(Y))", r"\frac{1}{2 \, \sqrt{Y}}"),
    ("1 - tanh(X)^2", r"1 - {\tanh\left(X\right)}^{2}"),
    ("-A + -B", r"-A + \left(-B\right)"),
    ("A - (B - C)", r"A - \left(B - C\right)"),
    ("(A + B)*C", r"\left(A + B\right) \, C"),
    ("A*2", r"A \cdot 2"),
    ("pow(x, x - 1)*x", r"{x}^{x - 1} \, x"),
    ("(A^2)^3", r"{\left({A}^{2}\right)}^{3}"),
    ("abs(A)*sigmoid(B)", r"\left|A\right| \, \operatorname{sigmoid}\left(B\right)"),
    ("atan2(A, B) + log(pi*A)",
     r"\operatorname{atan2}\left(A, B\right) + \log\left(\pi \, A\right)"),
    ("1e-3*A", r"1 \times 10^{-3} \, A"),
    ("leaky_relu(A, 0.1)", r"\operatorname{leaky\_relu}\left(A, 0.1\right)"),
])
def test_formulas(formula: str, latex: str) -> None:
    assert formula_latex(formula, "OUT", "A") == gradient_latex("OUT", "A") + " = " + latex


def test_bindings_make_an_aligned_block() -> None:
    r = gradcalc.gradients("Z = W*X + B; P = sigmoid(Z); L = -(Y*log(P) + (1-Y)*log(1-P))",
                           wrt=["W"], symbolic=True)
    latex = formula_latex(r.formulas["W"].text, r.output, "W")
    lines = latex.splitlines()
    assert lines[0] == r"\begin{aligned}" and lines[-1] == r"\end{aligned}"
    assert lines[1] == r"P &= \operatorname{sigmoid}\left(W \, X + B\right) \\"
    assert lines[2].startswith(r"\frac{\partial L}{\partial W} &= ")


def balanced(text: str) -> bool:
    depth = 0
    for char in text.replace(r"\{", "").replace(r"\}", ""):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0 and text.count(r"\left") == text.count(r"\right")


@property_settings(60)
@given(programs())
def test_random_formulas_give_balanced_latex(program: RandomProgram) -> None:
    r = gradcalc.gradients(program.text, symbolic=True)
    for name, formula in r.formulas.items():
        latex = formula_latex(formula.text, r.output, name)
        assert balanced(latex), latex
        assert "*" not in latex and "^(" not in latex


def test_deep_formulas_need_no_recursion() -> None:
    text = "A - (" * 20_000 + "B" + ")" * 20_000  # each right operand a sum (but B) needs
    assert formula_latex(text, "OUT", "A").count(r"\left(") == 19_999  # its parentheses


def test_the_command_line() -> None:
    r = run("OUT = sqrt(Y)*X", "--at", "Y=4", "--format", "latex")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == (r"\frac{\partial \mathrm{OUT}}{\partial Y} = \frac{X}{2 \, \sqrt{Y}}"
                        + "\n\n" + r"\frac{\partial \mathrm{OUT}}{\partial X} = \sqrt{Y}" + "\n")
    data = json.loads(run("OUT = A^3", "--format", "json").stdout)
    assert data["latex"] == {"A": r"\frac{\partial \mathrm{OUT}}{\partial A} = 3 \, {A}^{2}"}
    for args in (("--graph",), ("--at", "A=0:1/3"), ("--hessian",)):
        refused = run("OUT = A^3", "--at", "A=1", "--format", "latex", *args)
        assert refused.exit_code == 2
        assert "--format latex is for the gradients of one program" in refused.stderr
