"""The PyTorch-like ``Value`` against known answers, closed forms, finite differences and the
program-text route (``gradcalc.gradients``).

Known cases are the seed project's, written with values; every operator form and every registry
function is checked against a closed form or central finite differences; micrograd's defaults
(values track gradients, ``grad`` starts at 0) and PyTorch's methods, comparisons and IEEE
results (values and gradients as PyTorch's backward formulas give them at infinities and NaN)
are pinned; random computations are built twice, as program text and as values, and must agree,
pictures and explanations included; a million-step chain must not recurse. (micrograd's own
tests are in ``test_micrograd.py``.)
"""

from __future__ import annotations

import dataclasses
import math
import random
import sys
from collections import Counter
from collections.abc import Callable

import pytest
from helpers import property_settings, reference
from hypothesis import assume, given
from hypothesis import strategies as st

import gradcalc
from gradcalc import EvaluationError, InputError, Value
from gradcalc import value as value_module
from gradcalc.engine import Step
from gradcalc.ops import FUNCTIONS

SETTINGS = property_settings(120)


def leaf(x: float, name: str | None = None) -> Value:
    return Value(x, requires_grad=True, name=name)


def steps_of(out: Value) -> list[Step]:
    steps: list[Step] = []
    out.backward(on_step=steps.append)
    return steps


def consumers(dag: gradcalc.Dag, node: int) -> list[int]:
    return [n for n in range(len(dag)) if node in dag.args[n]]


def shared_node(dag: gradcalc.Dag, op: str) -> int:
    """The unique node of operation ``op`` that feeds two different consumers."""
    found = [n for n in range(len(dag))
             if dag.ops[n].name == op and len(set(consumers(dag, n))) == 2]
    assert len(found) == 1, found
    return found[0]


# --- the seed cases, with values -------------------------------------------------------------

def test_sum_of_two_inputs():
    a, b = leaf(2.0), leaf(3.0)
    out = a + b
    out.backward()
    assert out.data == 5.0
    assert (a.grad, b.grad) == (1.0, 1.0)
    assert out.grad == 1.0


def test_four_inputs():
    a, b, c, d = leaf(2.0), leaf(3.0), leaf(4.0), leaf(5.0)
    out = a - b + c * d
    out.backward()
    assert out.data == 19.0
    assert (a.grad, b.grad, c.grad, d.grad) == (1.0, -1.0, 5.0, 4.0)


def test_input_used_in_both_factors():
    a = leaf(2.0)
    out = (a + 3) * (a * 4)
    out.backward()
    assert out.data == 40.0
    assert a.grad == 28.0


@pytest.mark.parametrize("make_b", [lambda a: a * 1, lambda a: a + 0, lambda a: 1 * a,
                                    lambda a: 0 + a], ids=["a*1", "a+0", "1*a", "0+a"])
def test_pass_through_node_used_twice_steps_once(make_b):
    a = leaf(2.0)
    b = make_b(a)
    out = (b + 4) * (b + 5)
    dag = out.to_dag()
    b_node = _pass_through_node(dag)
    steps = steps_of(out)
    assert out.data == 42.0
    assert a.grad == 13.0
    assert b.grad == 13.0
    counts = Counter(s.node for s in steps)
    assert counts[b_node] == 1, "b's backward step must run exactly once"
    assert max(counts.values()) == 1, "no node steps twice"
    (b_step,) = [s for s in steps if s.node == b_node]
    assert b_step.gradient == 13.0
    assert b_step.operands == (dag.inputs["A"],)
    assert b_step.partials == (1.0,)
    # both of b's consumers delivered before b stepped
    position = {s.node: i for i, s in enumerate(steps)}
    users = consumers(dag, b_node)
    assert len(users) == 2
    assert all(position[u] < position[b_node] for u in users)


def _pass_through_node(dag: gradcalc.Dag) -> int:
    """b: the node that reads the input and feeds two consumers."""
    a = dag.inputs["A"]
    found = [n for n in range(len(dag)) if a in dag.args[n] and len(consumers(dag, n)) == 2]
    assert len(found) == 1, found
    assert dag.ops[found[0]].name in ("mul", "add")
    return found[0]


def test_derived_node_used_in_two_products():
    a, b = leaf(2.0), leaf(5.0)
    c = a * b
    out = c * 3 + c * 4
    dag = out.to_dag()
    c_node = shared_node(dag, "mul")
    steps = steps_of(out)
    assert out.data == 70.0
    assert c.grad == 7.0
    assert a.grad == 35.0
    assert b.grad == 14.0
    assert Counter(s.node for s in steps)[c_node] == 1
    assert len(steps) == len({s.node for s in steps})


def test_operand_without_grad_gets_none():
    a, b = leaf(2.0), Value(3.0, requires_grad=False)
    out = a + b
    out.backward()
    assert a.grad == 1.0
    assert b.grad is None
    assert not b.requires_grad


def test_constants_never_get_grad():
    a, k = leaf(2.0), Value(3.0, requires_grad=False)
    out = a * k + 2 - k / 4 + gradcalc.sin(k) * a
    out.backward()
    assert k.grad is None
    assert math.isclose(a.grad, 3.0 + math.sin(3.0), rel_tol=1e-15)
    for value in out.inputs():
        assert value.requires_grad
    assert out.inputs() == [a]
    # the constants are constants of the laid-out graph: no backward step touches them
    dag = out.to_dag()
    steps = steps_of(out)
    for step in steps:
        assert dag.ops[step.node].name != "const"
        assert all(dag.ops[j].name != "const" for j in step.operands)


def test_readme_example():
    a = Value(2.0, requires_grad=True)
    b = a * 3
    out = (b + 1) * (b + 2)
    out.backward()
    assert out.data == 56.0
    assert a.grad == 45.0
    assert b.grad == 15.0
    assert out.to_program() == "A = 2\nB = A*3\nOUT = (B + 1)*(B + 2)\n"
    result = gradcalc.gradients(out.to_program())
    assert result.value == 56.0
    assert result.gradients == {"A": 45.0, "B": 15.0}


def test_step_node_ids_are_those_of_to_dag():
    a, b = leaf(0.5, "A"), leaf(-1.5, "B")
    c = a * b
    out = gradcalc.sin(c) * c + b / 3
    dag = out.to_dag()
    steps = steps_of(out)
    assert steps[0].node == len(dag) - 1
    assert steps[0].gradient == 1.0
    for step in steps:
        live = tuple(j for j in dag.args[step.node] if dag.ops[j].name != "const")
        assert step.operands == live
    assert {s.node for s in steps} == {n for n in range(len(dag)) if dag.ops[n].name != "const"}


# --- every operator form, against closed forms ----------------------------------------------------

xs = st.floats(-5, 5, allow_nan=False).filter(lambda x: abs(x) > 1e-3)
positive = st.floats(0.1, 5, allow_nan=False)

# name -> (build from a, value of the result, derivative at x)
FORMS = {
    "2*a": (lambda a: 2 * a, lambda x: 2 * x, lambda x: 2.0),
    "a*2": (lambda a: a * 2, lambda x: x * 2, lambda x: 2.0),
    "a+2": (lambda a: a + 2, lambda x: x + 2, lambda x: 1.0),
    "2+a": (lambda a: 2 + a, lambda x: 2 + x, lambda x: 1.0),
    "a/3": (lambda a: a / 3, lambda x: x / 3, lambda x: 1 / 3),
    "3/a": (lambda a: 3 / a, lambda x: 3 / x, lambda x: -3 / x**2),
    "1-a": (lambda a: 1 - a, lambda x: 1 - x, lambda x: -1.0),
    "a-1": (lambda a: a - 1, lambda x: x - 1, lambda x: 1.0),
    "a**2": (lambda a: a**2, lambda x: x**2, lambda x: 2 * x),
    "a**3": (lambda a: a**3, lambda x: x**3, lambda x: 3 * x**2),
    "a**-1": (lambda a: a**-1, lambda x: x**-1, lambda x: -(x**-2)),
    "2**a": (lambda a: 2**a, lambda x: 2**x, lambda x: 2**x * math.log(2)),
    "-a": (lambda a: -a, lambda x: -x, lambda x: -1.0),
    "+a": (lambda a: +a, lambda x: x, lambda x: 1.0),
    "abs(a)": (lambda a: abs(a), abs, lambda x: math.copysign(1.0, x)),
    "a*a": (lambda a: a * a, lambda x: x * x, lambda x: 2 * x),
    "a/a": (lambda a: a / a, lambda x: 1.0, lambda x: 0.0),
    "a-a": (lambda a: a - a, lambda x: 0.0, lambda x: 0.0),
}


@pytest.mark.parametrize("form", list(FORMS))
@SETTINGS
@given(x=xs)
def test_operator_forms_closed_form(form, x):
    build, value, derivative = FORMS[form]
    a = leaf(x)
    out = build(a)
    assert isinstance(out, Value)
    assert math.isclose(out.data, value(x), rel_tol=1e-14, abs_tol=1e-300)
    out.backward()
    assert math.isclose(a.grad, derivative(x), rel_tol=1e-13, abs_tol=1e-15), (a.grad,
                                                                               derivative(x))


def test_unary_plus_is_the_value_itself():
    a = leaf(3.0)
    assert +a is a


@SETTINGS
@given(x=positive, y=st.floats(-3, 3, allow_nan=False))
def test_power_of_two_values_closed_form(x, y):
    a, b = leaf(x), leaf(y)
    out = a**b
    out.backward()
    assert out.data == math.pow(x, y)
    assert math.isclose(a.grad, y * x ** (y - 1), rel_tol=1e-13, abs_tol=1e-300)
    assert math.isclose(b.grad, x**y * math.log(x), rel_tol=1e-13, abs_tol=1e-300)


def test_numbers_on_either_side_are_constants():
    a = leaf(2.0)
    for out in (2 * a, a * 2, a / 3, 3 / a, 1 - a, a - 1, 2**a, a**2, a + 1, 1 + a):
        dag = out.to_dag()
        ops = [op.name for op in dag.ops]
        assert ops.count("input") == 1
        assert ops.count("const") == 1
        assert out.inputs() == [a]


# --- every registry function and method, against finite differences ---------------------------

def reals(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


def away_from_zero(lo: float, hi: float, gap: float = 1e-3) -> st.SearchStrategy[float]:
    return reals(lo, hi).filter(lambda x: abs(x) > gap)


def apart(lo: float, hi: float) -> st.SearchStrategy[tuple[float, float]]:
    return st.tuples(reals(lo, hi), reals(lo, hi)).filter(lambda p: abs(p[0] - p[1]) > 1e-3)


def _atan2_ok(p: tuple[float, float]) -> bool:
    y, x = p
    return math.hypot(x, y) > 0.1 and (x > 0 or abs(y) > 1e-3)


DOMAINS: dict[str, st.SearchStrategy[tuple[float, ...]]] = {
    "pow": st.tuples(reals(0.1, 5), reals(-3, 3)),
    "sin": st.tuples(reals(-10, 10)),
    "cos": st.tuples(reals(-10, 10)),
    "tan": st.tuples(reals(-1.3, 1.3)),
    "asin": st.tuples(reals(-0.95, 0.95)),
    "acos": st.tuples(reals(-0.95, 0.95)),
    "atan": st.tuples(reals(-20, 20)),
    "sinh": st.tuples(reals(-5, 5)),
    "cosh": st.tuples(reals(-5, 5)),
    "tanh": st.tuples(reals(-5, 5)),
    "exp": st.tuples(reals(-5, 5)),
    "log": st.tuples(reals(0.05, 50)),
    "log2": st.tuples(reals(0.05, 50)),
    "log10": st.tuples(reals(0.05, 50)),
    "sqrt": st.tuples(reals(0.05, 50)),
    "abs": st.tuples(away_from_zero(-10, 10)),
    "relu": st.tuples(away_from_zero(-10, 10)),
    "sigmoid": st.tuples(reals(-10, 10)),
    "softplus": st.tuples(reals(-10, 10)),
    "max": apart(-10, 10),
    "min": apart(-10, 10),
    "atan2": st.tuples(reals(-3, 3), reals(-3, 3)).filter(_atan2_ok),
    "sign": st.tuples(away_from_zero(-10, 10)),
    "heaviside": st.tuples(away_from_zero(-10, 10), reals(0, 1)),
    "ln": st.tuples(reals(0.05, 50)),
    "log1p": st.tuples(reals(-0.9, 50)),
    "expm1": st.tuples(reals(-5, 5)),
    "cbrt": st.tuples(st.one_of(reals(-50, -0.05), reals(0.05, 50))),
    "hypot": st.tuples(reals(-3, 3), reals(-3, 3)).filter(lambda p: math.hypot(*p) > 0.1),
    "erf": st.tuples(reals(-3, 3)),
    "erfc": st.tuples(reals(-3, 3)),
    "asinh": st.tuples(reals(-20, 20)),
    "acosh": st.tuples(reals(1.05, 20)),
    "atanh": st.tuples(reals(-0.95, 0.95)),
    "gelu": st.tuples(reals(-5, 5)),
    "silu": st.tuples(reals(-10, 10)),
    "elu": st.tuples(reals(-5, 5)),  # differentiable at 0 too (slope 1 on both sides)
    "leaky_relu": st.tuples(away_from_zero(-10, 10), reals(-1, 1)),
    "clamp": st.tuples(reals(-3, 3), reals(-3, 3), reals(-3, 3)).filter(
        lambda p: min(abs(p[0] - p[1]), abs(p[0] - p[2]), abs(p[1] - p[2])) > 1e-3),
    "softsign": st.tuples(reals(-10, 10)),
    "logaddexp": st.tuples(reals(-20, 20), reals(-20, 20)),
}

REFERENCE = {  # independent forward rules, to check the values themselves
    "pow": math.pow, "sin": math.sin, "cos": math.cos, "tan": math.tan, "asin": math.asin,
    "acos": math.acos, "atan": math.atan, "sinh": math.sinh, "cosh": math.cosh,
    "tanh": math.tanh, "exp": math.exp, "log": math.log, "log2": math.log2,
    "log10": math.log10, "sqrt": math.sqrt, "abs": abs, "relu": lambda x: max(x, 0.0),
    "sigmoid": lambda x: 1 / (1 + math.exp(-x)), "softplus": lambda x: math.log1p(math.exp(x)),
    "max": max, "min": min, "atan2": math.atan2,
    "sign": lambda x: math.copysign(1.0, x),
    "heaviside": lambda x, h: 1.0 if x > 0 else (0.0 if x < 0 else h),
    # the newer functions: mpmath or PyTorch's definitions written out (tests/helpers.py)
    **{name: reference(name) for name in (
        "ln", "log1p", "expm1", "cbrt", "hypot", "erf", "erfc", "asinh", "acosh", "atanh",
        "gelu", "silu", "elu", "leaky_relu", "clamp", "softsign", "logaddexp")},
}

# PyTorch-style method name -> registry function name
METHODS = {"exp": "exp", "tanh": "tanh", "log": "log", "sqrt": "sqrt", "sigmoid": "sigmoid",
           "relu": "relu", "pow": "pow", "maximum": "max", "minimum": "min", "atan2": "atan2"}


def test_every_registry_function_has_a_domain_and_is_exported():
    assert set(DOMAINS) == set(FUNCTIONS) == set(gradcalc.FUNCTION_NAMES)
    for name in FUNCTIONS:
        f = getattr(gradcalc, name)
        assert callable(f)
        assert f.__name__ == name
    with pytest.raises(AttributeError):
        gradcalc.no_such_function  # noqa: B018


def central_difference(f, point: tuple[float, ...], i: int) -> tuple[float, float]:
    x = point[i]
    h = 1e-6 * max(1.0, abs(x))
    hi = list(point)
    lo = list(point)
    hi[i] = x + h
    lo[i] = x - h
    step = hi[i] - lo[i]
    return (f(*hi) - f(*lo)) / step, step


def check_against_fd(name: str, point: tuple[float, ...], grads: list[float]) -> None:
    def f(*args: float) -> float:
        return getattr(gradcalc, name)(*args).data

    for i, g in enumerate(grads):
        estimate, step = central_difference(f, point, i)
        scale = max(1.0, abs(f(*point)))
        tolerance = 1e-6 * max(abs(g), abs(estimate)) + 1e-13 * scale / step + 1e-9
        assert abs(g - estimate) <= tolerance, (name, point, i, g, estimate)


@pytest.mark.parametrize("name", sorted(DOMAINS))
@SETTINGS
@given(data=st.data())
def test_registry_function_against_finite_differences(name, data):
    point = data.draw(DOMAINS[name], label="point")
    values = [leaf(x) for x in point]
    out = getattr(gradcalc, name)(*values)
    assert out.requires_grad
    assert math.isclose(out.data, REFERENCE[name](*point), rel_tol=1e-12, abs_tol=1e-300)
    out.backward()
    check_against_fd(name, point, [v.grad for v in values])
    # with numbers in the other places, only the value that requires grad gets a gradient
    for i in range(len(point)):
        args: list[float | Value] = list(point)
        args[i] = leaf(point[i])
        mixed = getattr(gradcalc, name)(*args)
        assert mixed.data == out.data
        mixed.backward()
        assert args[i].grad == values[i].grad
    # numbers only: a constant value, no graph
    constant = getattr(gradcalc, name)(*point)
    assert constant.data == out.data
    assert not constant.requires_grad
    assert constant._parents == ()


@pytest.mark.parametrize("method", sorted(METHODS))
@SETTINGS
@given(data=st.data())
def test_methods_match_the_functions(method, data):
    name = METHODS[method]
    point = data.draw(DOMAINS[name], label="point")
    by_method = [leaf(x) for x in point]
    by_function = [leaf(x) for x in point]
    out = getattr(by_method[0], method)(*by_method[1:])
    reference = getattr(gradcalc, name)(*by_function)
    assert out.data == reference.data
    out.backward()
    reference.backward()
    assert [v.grad for v in by_method] == [v.grad for v in by_function]
    check_against_fd(name, point, [v.grad for v in by_method])
    if len(point) == 2:  # a number as the other operand
        a = leaf(point[0])
        mixed = getattr(a, method)(point[1])
        mixed.backward()
        assert mixed.data == out.data
        assert a.grad == by_method[0].grad


def test_every_unary_function_is_a_method():
    a = leaf(0.5)
    for name, op in FUNCTIONS.items():
        if op.arity == 1:  # (acosh(0.5) is nan both ways)
            assert same(getattr(a, name)().data, getattr(gradcalc, name)(a).data), name


def test_function_arity_is_checked():
    a = leaf(0.5)
    with pytest.raises(TypeError, match="1 argument"):
        gradcalc.sin(a, a)
    with pytest.raises(TypeError, match="2 argument"):
        gradcalc.max(a)


def test_kink_conventions():
    a = leaf(0.0)
    abs(a).backward()
    assert a.grad == 0.0
    a.zero_grad()
    gradcalc.relu(a).backward()
    assert a.grad == 0.0
    b, c = leaf(1.5), leaf(1.5)
    gradcalc.max(b, c).backward()
    assert (b.grad, c.grad) == (0.5, 0.5)
    b.zero_grad()
    c.zero_grad()
    b.minimum(c).backward()
    assert (b.grad, c.grad) == (0.5, 0.5)


# --- accumulation, zero_grad, errors ------------------------------------------------------------

def test_backward_twice_accumulates():
    a = leaf(2.0)
    b = a * 3
    out = (b + 1) * (b + 2)
    out.backward()
    out.backward()
    assert a.grad == 90.0
    assert b.grad == 30.0
    assert out.grad == 2.0


def test_zero_grad_resets():
    a, c = leaf(2.0), leaf(-1.0)
    b = a * 3
    out = (b + 1) * (b + 2) * c
    out.backward()
    assert (a.grad, c.grad) == (-45.0, 56.0)
    a.zero_grad()
    b.zero_grad()
    assert a.grad == 0.0 and b.grad == 0.0  # back where they started, as micrograd's p.grad = 0
    out.backward()
    assert a.grad == -45.0
    assert b.grad == -15.0
    assert c.grad == 2 * 56.0
    assert out.inputs() == [a, c]
    gradcalc.zero_grad(out.inputs())
    assert a.grad == 0.0 and c.grad == 0.0
    gradcalc.zero_grad([b, out], set_to_none=True)  # PyTorch's optimizer.zero_grad() default
    assert b.grad is None and out.grad is None
    out.backward()  # None and 0.0 both start from nothing
    assert (a.grad, b.grad, c.grad, out.grad) == (-45.0, -15.0, 56.0, 1.0)
    a.zero_grad(set_to_none=True)
    assert a.grad is None
    k = Value(3.0, requires_grad=False)
    k.zero_grad()
    assert k.grad is None  # a value that does not require grad never has a number there


def test_backward_on_a_value_not_requiring_grad():
    with pytest.raises(InputError, match="requires grad"):
        Value(2.0, requires_grad=False).backward()
    with pytest.raises(InputError):
        (Value(2.0, requires_grad=False) * 3).backward()
    with pytest.raises(InputError):
        gradcalc.sin(2.0).backward()  # numbers only: a constant


def test_backward_on_a_leaf():
    a = leaf(4.0)
    a.backward()
    assert a.grad == 1.0


# --- the backward pass: a kept order, a value's flags, an interrupted pass ---------------------

def test_backward_again_keeps_the_order(monkeypatch):
    """A second backward() on the same value keeps the order of the pass with it, and later
    calls are the pass alone; a value backpropagated once (a training step's loss) keeps
    nothing."""
    a, b = leaf(2.0), leaf(-1.0)
    out = (a * b + a).tanh() * b
    walks: list[Value] = []
    walk = value_module._ancestors
    monkeypatch.setattr(value_module, "_ancestors", lambda v: walks.append(v) or walk(v))
    out.backward()
    once = (a.grad, b.grad, out.grad)
    assert walks == [out] and out._plan.order is None
    out.backward()
    assert walks == [out, out] and len(out._plan.order) == 5  # a*b, +a, tanh, a, b
    out.backward()
    out.backward()
    assert walks == [out, out]
    assert (a.grad, b.grad, out.grad) == tuple(4 * g for g in once)
    other = a * b  # another output: its own order
    other.backward()
    other.backward()
    other.backward()
    assert walks == [out, out, other, other]


def test_backward_after_the_graph_grew():
    """Values computed from ``c`` after its backward() are not in ``c``'s graph: ``c`` keeps
    its order, and the new output gets its own."""
    a, b = leaf(2.0), leaf(3.0)
    c = a * b
    c.backward()
    assert (a.grad, b.grad, c.grad) == (3.0, 2.0, 1.0)
    out = c * a + b  # a*b*a + b: d/da = 2ab = 12, d/db = a^2 + 1 = 5, d/dc = a = 2
    out.backward()
    assert (a.grad, b.grad, c.grad, out.grad) == (15.0, 7.0, 3.0, 1.0)
    c.backward()
    assert (a.grad, b.grad, c.grad, out.grad) == (18.0, 9.0, 4.0, 1.0)
    out.backward()
    assert (a.grad, b.grad, c.grad, out.grad) == (30.0, 14.0, 6.0, 2.0)


def test_a_flag_changed_after_backward_counts_in_the_next():
    """A kept order is dropped when a value starts or stops tracking gradients (by
    requires_grad_ or by setting requires_grad): the next pass sees the graph as it is."""
    a, k = leaf(2.0), Value(3.0, requires_grad=False)
    out = a * k + a * 5.0
    out.backward()
    assert (a.grad, k.grad) == (8.0, None)
    k.requires_grad_(True)
    number = out._parents[1]._parents[1]  # the constant 5.0 made from a plain number
    number.requires_grad = True
    out.backward()
    assert (a.grad, k.grad, number.grad) == (16.0, 2.0, 2.0)
    a.requires_grad = False  # a leaf may stop: a constant from now on
    out.backward()
    assert (a.grad, k.grad, number.grad) == (16.0, 4.0, 4.0)
    with pytest.raises(InputError, match="detach"):
        out.requires_grad = False  # a result cannot stop, as in PyTorch


def test_an_interrupted_backward_leaves_nothing_behind(monkeypatch):
    """Gradients gather in the values during a pass; a pass that raises half-way clears them,
    so the next pass starts from nothing."""
    a = leaf(2.0)
    b = a * 3
    out = b.tanh() + b

    def fails(*operands: float) -> tuple[float, ...]:
        raise RuntimeError("stop")

    monkeypatch.setattr(b, "_op", dataclasses.replace(b._op, partials=fails))
    with pytest.raises(RuntimeError, match="stop"):
        out.backward()  # out and tanh(b) have handed their gradients to b by then
    monkeypatch.undo()
    gradcalc.zero_grad([a, b, out])
    out.backward()
    assert b.grad == 1 - math.tanh(6.0) ** 2 + 1
    assert a.grad == 3 * b.grad


def test_a_small_tanh_network_against_finite_differences():
    """A 3-4-1 tanh network, micrograd's neuron (tanh(sum(w*x, b))), with a squared loss over
    two samples: every parameter's gradient against central differences."""
    rng = random.Random(7)
    layers = [[([leaf(rng.uniform(-1, 1)) for _ in range(n_in)], leaf(rng.uniform(-1, 1)))
               for _ in range(n_out)] for n_in, n_out in ((3, 4), (4, 1))]
    samples = (([0.5, -1.0, 2.0], 1.0), ([-0.3, 0.8, 0.1], -1.0))

    def loss() -> Value:
        total = Value(0.0, requires_grad=False)
        for x, target in samples:
            for layer in layers:
                x = [sum((wi * xi for wi, xi in zip(w, x, strict=True)), b).tanh()
                     for w, b in layer]
            total = total + (x[0] - target) ** 2
        return total

    loss().backward()
    params = [p for layer in layers for w, b in layer for p in (*w, b)]
    h = 1e-6
    for p in params:
        p.data += h
        up = loss().data
        p.data -= 2 * h
        down = loss().data
        p.data += h
        assert math.isclose(p.grad, (up - down) / (2 * h), rel_tol=1e-6, abs_tol=1e-8)


# --- micrograd's defaults, PyTorch's methods ----------------------------------------------------

def test_a_created_value_tracks_gradients_unless_told_not_to():
    """micrograd's rule (PyTorch's tensors track them only when asked): Value(x) is an input,
    numbers in arithmetic are constants."""
    a = Value(2.0)
    assert a.requires_grad and a.grad == 0.0
    k = Value(3.0, requires_grad=False)
    assert not k.requires_grad and k.grad is None
    out = a * k + 1
    assert out.requires_grad and out.grad == 0.0
    assert [op.name for op in out.to_dag().ops] == ["input", "const", "mul", "const", "add"]
    out.backward()
    assert (a.grad, k.grad, out.grad) == (3.0, None, 1.0)
    assert not (k * 2).requires_grad


def test_grad_is_zero_before_backward_and_can_be_added_to():
    a = Value(2.0)
    b = a * a
    assert (a.grad, b.grad) == (0.0, 0.0)
    a.grad += 1.0  # fails in PyTorch (None); micrograd code does this
    b.backward()
    assert a.grad == 5.0
    a.data -= 0.1 * a.grad  # a plain gradient-descent step on the number
    assert a.data == 1.5


def test_repr_shows_grad_and_a_non_default_flag():
    assert repr(Value(2.0)) == "Value(2, grad=0)"
    assert repr(Value(2.5, requires_grad=False)) == "Value(2.5, requires_grad=False)"
    a = Value(-1.0, name="a")
    (a * 3).backward()
    assert repr(a) == "Value(-1, grad=3, name='a')"


def test_requires_grad_underscore():
    k = Value(3.0, requires_grad=False)
    assert k.requires_grad_() is k
    assert k.requires_grad and k.grad == 0.0
    (k * k).backward()
    assert k.grad == 6.0
    k.requires_grad_(False)
    assert not k.requires_grad and k.grad == 6.0  # as PyTorch: the gradient stays
    out = k * 2
    assert not out.requires_grad and out._parents == ()
    c = Value(1.0, requires_grad=False) * 4  # computed from constants: a leaf
    c.requires_grad_()
    (c * c).backward()
    assert c.grad == 8.0
    result = Value(1.0) * 2
    assert result.requires_grad_(True) is result  # already tracking: nothing to do
    with pytest.raises(InputError, match="detach"):
        result.requires_grad_(False)


def test_detach_is_a_constant_copy():
    a = Value(2.0, name="a")
    b = a * 3
    d = b.detach()
    assert d is not b and d.data == 6.0
    assert not d.requires_grad and d.grad is None and d._parents == ()
    out = b * d  # d is a constant: only b's path carries a gradient
    out.backward()
    assert a.grad == 3.0 * 6.0
    assert d.grad is None
    d.data = 0.0
    assert b.data == 6.0  # a copy of the number, not shared storage


def test_retain_grad_is_a_no_op():
    a = Value(2.0)
    b = a * 3
    assert b.retain_grad() is None
    (b * b).backward()
    assert b.grad == 12.0  # as after retain_grad() in PyTorch; here every value keeps its grad
    with pytest.raises(InputError, match="retain_grad"):
        Value(1.0, requires_grad=False).retain_grad()


def test_square():
    a = Value(-3.0)
    out = a.square()
    out.backward()
    assert out.data == 9.0 and a.grad == -6.0
    assert "A^2" in out.to_program()


POINTS = [-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0]


def test_clamp_is_torch_clamp():
    """Every placement of a point against bounds from the same grid (bounds included, a
    missing bound, min > max): the value is min(max(x, min), max) and the gradient 1 where
    min <= x <= max (PyTorch's clamp_backward), else 0."""
    for x in POINTS:
        for lo in [None, *POINTS]:
            for hi in [None, *POINTS]:
                if lo is None and hi is None:
                    continue
                a = Value(x)
                out = a.clamp(lo, hi)
                expected = x if lo is None else max(x, lo)
                expected = expected if hi is None else min(expected, hi)
                inside = (lo is None or x >= lo) and (hi is None or x <= hi)
                assert out.data == expected, (x, lo, hi)
                out.backward()
                assert a.grad == (1.0 if inside else 0.0), (x, lo, hi)
                result = gradcalc.gradients(out.to_program())  # the text agrees
                assert result.value == expected
                assert result.gradients.get(result.dag.names[0], 0.0) == a.grad, (x, lo, hi)


def test_clamp_keywords_bounds_as_values_and_errors():
    a = Value(5.0)
    assert a.clamp(max=1.0).data == 1.0 and a.clamp(min=6).data == 6.0
    lo = Value(7.0)
    out = a.clamp(min=lo)  # the bound is the result: it gets the gradient
    out.backward()
    assert (out.data, a.grad, lo.grad) == (7.0, 0.0, 1.0)
    with pytest.raises(TypeError, match="min, max"):
        a.clamp()
    with pytest.raises(TypeError, match="bounds"):
        a.clamp("0")
    assert math.isnan(Value(math.nan).clamp(0.0, 1.0).data)


def test_the_registry_clamp_is_the_clamp_method():
    """gc.clamp(x, lo, hi), the registry's function of three values, and x.clamp(lo, hi)
    agree with each other (and so with torch.clamp) at every placement, bounds as values.
    With lo = hi above x, torch 2.13 gives no operand a gradient: the method, which built
    max(x, lo) there and gave lo 1, now records the registry's clamp too."""
    for x in POINTS:
        for lo in POINTS:
            for hi in POINTS:
                a, b, c = Value(x), Value(lo), Value(hi)
                by_function = gradcalc.clamp(a, b, c)
                by_function.backward()
                d, e, f = Value(x), Value(lo), Value(hi)
                by_method = d.clamp(e, f)
                by_method.backward()
                assert by_function.data == by_method.data, (x, lo, hi)
                assert (a.grad, b.grad, c.grad) == (d.grad, e.grad, f.grad), (x, lo, hi)
                assert "clamp(" in by_function.to_program()
    a, lo, hi = Value(0.0), Value(1.0), Value(1.0)
    gradcalc.clamp(a, lo, hi).backward()
    assert (a.grad, lo.grad, hi.grad) == (0.0, 0.0, 0.0)


def test_ln_is_log_on_values():
    a = Value(2.0)
    out = gradcalc.ln(a) + a.ln()
    out.backward()
    assert out.data == 2 * math.log(2.0) and a.grad == 1.0
    assert "ln" in gradcalc.FUNCTION_NAMES and gradcalc.ln.__name__ == "ln"
    assert "log(A)" in out.to_program()  # printed under the op's own name


def test_comparisons_are_plain_bools_of_the_numbers():
    """As for PyTorch's 0-d tensors: a comparison gives a bool (no gradient, no graph)."""
    v, w = Value(1.0), Value(2.0)
    for result, expected in [(v < w, True), (v <= w, True), (v > w, False), (v >= w, False),
                             (v == w, False), (v != w, True), (v == Value(1.0), True),
                             (v > 0, True), (0 < v, True), (v >= 1, True),  # noqa: SIM300
                             (v == 1, True), (v != 1.0, False), (2 > v, True),  # noqa: SIM300
                             (v < 10**400, True)]:
        assert type(result) is bool
        assert result is expected
    assert (Value(float("nan")) == Value(float("nan"))) is False
    assert (v == "1") is False and (v != None) is True  # noqa: E711
    with pytest.raises(TypeError):
        v < "2"  # noqa: B015
    assert max(v, w) is w and min(v, w) is v  # the builtins: the values themselves
    assert sorted([w, v, Value(1.5)]) == [v, Value(1.5), w]
    out = max(v * 3, w)  # the larger one, with its graph
    assert out.data == 3.0
    out.backward()
    assert (v.grad, w.grad) == (3.0, 0.0)


def test_truth_value_is_the_number_not_zero():
    assert bool(Value(2.0)) and bool(Value(-0.5)) and bool(Value(float("nan")))
    assert not Value(0.0) and not Value(-0.0, requires_grad=False)
    a = Value(-3.0)
    out = a * 2 if a > 0 else -a  # control flow on values, as in micrograd or PyTorch code
    out.backward()
    assert a.grad == -1.0


def test_equal_numbers_hash_by_identity():
    """``==`` compares numbers but hashing is by identity, like PyTorch tensors: ``in`` on a
    list finds an equal number, sets and dicts keep distinct values apart (a graph walk's
    ``visited`` set must not merge two nodes that happen to hold the same number)."""
    a, b, c = Value(1.0), Value(2.0), Value(1.0)
    assert a in [b, a] and b in [b, a]
    assert c in [b, a]  # by value, as `torch.tensor(1.) in [torch.tensor(1.)]`
    assert Value(3.0) not in [a, b]
    assert len({a, b, c, a}) == 3
    assert a in {a} and c not in {a}
    grads = {a: "a", c: "c"}
    assert grads[a] == "a" and grads[c] == "c"
    assert hash(a) == hash(a) and hash(a) != hash(c)
    assert Counter([a, a, c])[a] == 2

    # micrograd's own topological sort, on gradcalc values: a set of visited nodes
    x = Value(2.0)
    y = x * 1.0  # the same number as x: an equality-based hash would merge them
    z = y + x
    topo: list[Value] = []
    visited: set[Value] = set()

    def build(v: Value) -> None:
        if v not in visited:
            visited.add(v)
            for child in v._parents:
                build(child)
            topo.append(v)

    build(z)
    assert len(topo) == 4  # x, the constant 1, y, z
    assert topo[-1] is z


def test_format_spec_formats_the_number():
    v = Value(2.0 / 3.0)
    assert f"{v:.4f}" == "0.6667"
    assert f"{v}" == str(v) == repr(v)


def test_float_and_item():
    v = Value(2.5)
    assert float(v) == 2.5
    assert v.item() == 2.5
    assert isinstance(v.item(), float)
    assert Value(3).data == 3.0 and isinstance(Value(3).data, float)
    assert float(leaf(2.0) * 3) == 6.0


@pytest.mark.parametrize("bad", ["x", None, True, [1.0], 1j, 10**400])
def test_bad_data_is_an_input_error(bad):
    with pytest.raises(InputError):
        Value(bad)


def test_infinite_and_nan_data_are_numbers_too():
    """As torch.tensor(inf): arithmetic gives infinities and NaN, so a value may hold one."""
    inf = float("inf")
    assert Value(inf).data == inf and Value(-inf).data == -inf
    assert math.isnan(Value(float("nan")).data)
    a = Value(inf)
    out = a * 2 + 1
    out.backward()
    assert out.data == inf and a.grad == 2.0


@pytest.mark.parametrize("bad", ["1x", "sin", "pi", "e", "", "a b"])
def test_bad_names_are_input_errors(bad):
    with pytest.raises(InputError):
        Value(1.0, requires_grad=True, name=bad)


# --- IEEE results: infinities and NaN, as PyTorch -------------------------------------------------

inf, nan = math.inf, math.nan

# Where PyTorch gives an infinity or NaN, so does Value, value and gradient: PyTorch's backward
# formulas (derivatives.yaml) evaluated in IEEE arithmetic. (expression, value, gradients)
IEEE_CASES = [
    ("exp(710)", lambda a: a.exp(), (710.0,), inf, (inf,)),
    ("1/x at 0", lambda a: 1 / a, (0.0,), inf, (-inf,)),
    ("-1/x at 0", lambda a: -1 / a, (0.0,), -inf, (inf,)),
    ("a/b at (1, 0)", lambda a, b: a / b, (1.0, 0.0), inf, (inf, -inf)),
    ("a/b at (0, 0)", lambda a, b: a / b, (0.0, 0.0), nan, (inf, nan)),
    ("log(0)", lambda a: a.log(), (0.0,), -inf, (inf,)),
    ("log(-1)", lambda a: a.log(), (-1.0,), nan, (-1.0,)),
    ("log2(0)", lambda a: gradcalc.log2(a), (0.0,), -inf, (inf,)),
    ("sqrt(-4)", lambda a: a.sqrt(), (-4.0,), nan, (nan,)),
    ("x**-1 at 0", lambda a: a**-1, (0.0,), inf, (-inf,)),
    ("a**b at (0, -1)", lambda a, b: a**b, (0.0, -1.0), inf, (-inf, -inf)),
    ("(-8)**(1/3)", lambda a: a ** (1 / 3), (-8.0,), nan, (nan,)),
    ("2**x at 5000", lambda a: 2**a, (5000.0,), inf, (inf,)),
    ("x*10 at 1e308", lambda a: a * 10, (1e308,), inf, (10.0,)),
    ("x*x at 1e200", lambda a: a * a, (1e200,), inf, (2e200,)),
    ("square at 1e200", lambda a: a.square(), (1e200,), inf, (2e200,)),
    ("cosh(-800)", lambda a: a.cosh(), (-800.0,), inf, (-inf,)),
    ("sinh(800)", lambda a: a.sinh(), (800.0,), inf, (inf,)),
    ("sinh(-800)", lambda a: a.sinh(), (-800.0,), -inf, (inf,)),
    ("asin(1.5)", lambda a: a.asin(), (1.5,), nan, (nan,)),
    ("sin(inf)", lambda a: a.sin(), (inf,), nan, (nan,)),
    ("tan(inf)", lambda a: a.tan(), (inf,), nan, (nan,)),
    ("exp(-inf)", lambda a: a.exp(), (-inf,), 0.0, (0.0,)),
    ("tanh(inf)", lambda a: a.tanh(), (inf,), 1.0, (0.0,)),
    ("sigmoid(-inf)", lambda a: a.sigmoid(), (-inf,), 0.0, (0.0,)),
    ("relu(inf)", lambda a: a.relu(), (inf,), inf, (1.0,)),
    ("abs(-inf)", lambda a: abs(a), (-inf,), inf, (-1.0,)),
    ("sqrt(inf)", lambda a: a.sqrt(), (inf,), inf, (0.0,)),
    ("inf - inf", lambda a, b: a - b, (inf, inf), nan, (1.0, -1.0)),
    ("inf * 0", lambda a, b: a * b, (inf, 0.0), nan, (0.0, inf)),
    ("1/x at inf", lambda a: 1 / a, (inf,), 0.0, (-0.0,)),
    ("max(inf, 1)", lambda a, b: a.maximum(b), (inf, 1.0), inf, (1.0, 0.0)),
    # the newer functions, checked against torch 2.13 the same way
    ("log1p(-1)", lambda a: gradcalc.log1p(a), (-1.0,), -inf, (inf,)),
    ("log1p(-2)", lambda a: gradcalc.log1p(a), (-2.0,), nan, (-1.0,)),
    ("expm1(710)", lambda a: gradcalc.expm1(a), (710.0,), inf, (inf,)),
    ("expm1(-inf)", lambda a: gradcalc.expm1(a), (-inf,), -1.0, (0.0,)),
    ("hypot(0, 0)", lambda a, b: gradcalc.hypot(a, b), (0.0, 0.0), 0.0, (nan, nan)),
    ("hypot(inf, 1)", lambda a, b: gradcalc.hypot(a, b), (inf, 1.0), inf, (nan, 0.0)),
    ("erf(inf)", lambda a: gradcalc.erf(a), (inf,), 1.0, (0.0,)),
    ("erfc(-inf)", lambda a: gradcalc.erfc(a), (-inf,), 2.0, (0.0,)),
    ("asinh(-inf)", lambda a: gradcalc.asinh(a), (-inf,), -inf, (0.0,)),
    ("acosh(0.5)", lambda a: gradcalc.acosh(a), (0.5,), nan, (nan,)),
    ("acosh(1)", lambda a: gradcalc.acosh(a), (1.0,), 0.0, (inf,)),
    ("atanh(1)", lambda a: gradcalc.atanh(a), (1.0,), inf, (inf,)),
    ("atanh(-1)", lambda a: gradcalc.atanh(a), (-1.0,), -inf, (inf,)),
    ("atanh(2)", lambda a: gradcalc.atanh(a), (2.0,), nan, (-1 / 3,)),
    ("gelu(inf)", lambda a: gradcalc.gelu(a), (inf,), inf, (nan,)),
    ("gelu(-inf)", lambda a: gradcalc.gelu(a), (-inf,), nan, (nan,)),
    ("silu(-inf)", lambda a: gradcalc.silu(a), (-inf,), nan, (nan,)),
    ("elu(-inf)", lambda a: gradcalc.elu(a), (-inf,), -1.0, (0.0,)),
    ("elu(inf)", lambda a: gradcalc.elu(a), (inf,), inf, (1.0,)),
    ("leaky_relu(-inf)", lambda a: gradcalc.leaky_relu(a, 0.1), (-inf,), -inf, (0.1,)),
    ("clamp(inf, 0, 1)", lambda a, b, c: gradcalc.clamp(a, b, c), (inf, 0.0, 1.0), 1.0,
     (0.0, 0.0, 1.0)),
    ("clamp(-inf, 0, 1)", lambda a, b, c: gradcalc.clamp(a, b, c), (-inf, 0.0, 1.0), 0.0,
     (0.0, 1.0, 0.0)),
    ("clamp(0.5, -inf, inf)", lambda a, b, c: gradcalc.clamp(a, b, c), (0.5, -inf, inf), 0.5,
     (1.0, 0.0, 0.0)),
]


def same(x: float, y: float) -> bool:
    return x == y or (math.isnan(x) and math.isnan(y))


@pytest.mark.parametrize("case", IEEE_CASES, ids=[c[0] for c in IEEE_CASES])
def test_ieee_values_and_pytorch_gradients(case):
    _, build, point, value, expected = case
    args = [Value(x) for x in point]
    out = build(*args)
    assert same(out.data, value), out.data
    out.backward()
    got = tuple(a.grad for a in args)
    assert all(same(g, e) for g, e in zip(got, expected, strict=True)), got
    # numbers only: the same value, as a constant
    constant = build(*[Value(x, requires_grad=False) for x in point])
    assert same(constant.data, value) and not constant.requires_grad


def test_ieee_point_inside_a_larger_graph():
    """An infinity met along the way flows on as PyTorch's would: d/dx exp(-exp(x)) at 710."""
    x = Value(710.0)
    inner = x.exp()
    out = (-inner).exp()  # exp(-inf) = 0
    out.backward()
    assert out.data == 0.0 and inner.data == inf
    assert math.isnan(x.grad)  # 0 * inf, as in PyTorch
    assert inner.grad == -0.0
    y = Value(0.0)
    out = (1 / y).tanh()  # tanh(inf) = 1, gradient 0 * -inf
    out.backward()
    assert out.data == 1.0 and math.isnan(y.grad)


def test_finite_points_keep_the_registry_op():
    """Only nodes where an infinity or NaN was met hold the IEEE twin of their op."""
    a = Value(2.0)
    out = 1 / a + 1 / Value(0.0) * a
    dag = out.to_dag()
    registry = {op.name: op for op in gradcalc.ops.OPS}
    twins = [op for op in dag.ops if op is not registry[op.name]]
    assert [op.name for op in twins] == ["div", "mul", "add"]  # 1/0, inf*a, 1/a + inf
    assert all(op.label == registry[op.name].label for op in twins)


def test_overflow_and_domain_are_no_longer_errors():
    assert gradcalc.exp(Value(1000.0)).data == inf
    assert (Value(1.0) / 0).data == inf
    assert (Value(-1.0, requires_grad=False) / 0).data == -inf
    assert math.isnan(gradcalc.log(Value(-1.0)).data)
    assert (Value(0.0) ** -1).data == inf
    assert math.isnan(gradcalc.acos(Value(2.0)).data)


def test_a_graph_with_an_infinity_is_not_shown_or_written_as_text():
    a = Value(0.0, name="a")
    out = 1 / a
    with pytest.raises(EvaluationError, match="inf"):
        out.graph()
    with pytest.raises(EvaluationError, match="inf"):
        out.explain()
    out.to_program()  # the inputs are finite: the text is fine (and undefined at its point)
    with pytest.raises(InputError, match="inf"):
        (Value(inf) * 2).to_program()


def test_values_not_requiring_grad_record_no_graph():
    v = Value(2.0, requires_grad=False) * 3
    assert v._parents == ()
    assert v._op is None
    assert not v.requires_grad
    assert v.grad is None
    assert v.data == 6.0
    w = gradcalc.sin(Value(1.0, requires_grad=False)) + Value(2.0, requires_grad=False) ** 2
    assert w._parents == ()
    a = leaf(1.0)
    u = a * v
    assert u.requires_grad
    assert len(u._parents) == 2


# --- agreement with the program-text route -------------------------------------------------------

UNARY = ["sin", "cos", "tanh", "exp", "neg"]
BINARY = ["+", "-", "*"]
CONSTANTS = ["2", "0.5", "3", "1.5", "0.25"]
INPUTS = ["X0", "X1", "X2"]


@st.composite
def statement_lists(draw):
    """Statements (name, tree) over the inputs; trees are ('name', n) | ('const', text) |
    ('un', f, t) | ('bin', op, l, r) | ('sq', t) (a self-product). Earlier names are reused,
    so there are diamonds, self-products B*B and dead statements."""
    n_inputs = draw(st.integers(1, 3))
    names = INPUTS[:n_inputs]
    at = {n: draw(st.floats(-1.5, 1.5, allow_nan=False), label=n) for n in names}

    def pick_name() -> tuple:
        if draw(st.integers(0, 3)):
            return ("name", draw(st.sampled_from(names[-2:])))
        return ("name", draw(st.sampled_from(names)))

    def tree(depth: int, top: bool = False) -> tuple:
        kinds = ["un", "bin", "sq"] if top else (["leaf", "un", "bin", "sq", "leaf"]
                                                  if depth > 0 else ["leaf"])
        kind = draw(st.sampled_from(kinds))
        if kind == "leaf":
            if draw(st.integers(0, 5)) == 0:
                return ("const", draw(st.sampled_from(CONSTANTS)))
            return pick_name()
        if kind == "un":
            f = draw(st.sampled_from(UNARY[:-1] if top else UNARY))
            return ("un", f, tree(max(depth - 1, 0)))
        if kind == "sq":
            return ("sq", tree(max(depth - 1, 0)))
        return ("bin", draw(st.sampled_from(BINARY)), tree(max(depth - 1, 0)),
                tree(max(depth - 1, 0)))

    statements = []
    for i in range(draw(st.integers(1, 8))):
        name = f"S{i}"
        statements.append((name, tree(2, top=True)))
        names.append(name)
    statements.append(("OUT", ("bin", draw(st.sampled_from(BINARY)), ("name", names[-1]),
                               tree(1))))
    return statements, at


def tree_text(t: tuple) -> str:
    kind = t[0]
    if kind in ("name", "const"):
        return t[1]
    if kind == "un":
        inner = tree_text(t[2])
        return f"-({inner})" if t[1] == "neg" else f"{t[1]}({inner})"
    if kind == "sq":
        inner = tree_text(t[1])
        return f"({inner})*({inner})"
    return f"({tree_text(t[2])}) {t[1]} ({tree_text(t[3])})"


def program_of(statements) -> str:
    return "\n".join(f"{name} = {tree_text(t)}" for name, t in statements)


class Interpreter:
    """The same statements evaluated with Values. Identical unnamed sub-expressions are shared
    (as the program builder shares them); a statement's own node is never shared."""

    def __init__(self, at: dict[str, float]) -> None:
        self.env: dict[str, Value] = {n: leaf(x, n) for n, x in at.items()}
        self.memo: dict[tuple, Value] = {}

    def run(self, statements) -> dict[str, Value]:
        for name, t in statements:
            self.env[name] = self.value(t, top=True)
        return self.env

    def value(self, t: tuple, top: bool = False) -> Value:
        kind = t[0]
        if kind == "name":
            return self.env[t[1]]
        if kind == "const":
            key = ("const", float(t[1]))
            if key not in self.memo:
                self.memo[key] = Value(float(t[1]), requires_grad=False)
            return self.memo[key]
        if kind == "un":
            x = self.value(t[2])
            key = (t[1], id(x))
            make = (lambda: -x) if t[1] == "neg" else (lambda: getattr(gradcalc, t[1])(x))
        elif kind == "sq":
            x = self.value(t[1])
            key = ("*", id(x), id(x))
            make = lambda: x * x  # noqa: E731
        else:
            x, y = self.value(t[2]), self.value(t[3])
            key = (t[1], id(x), id(y))
            fs = {"+": lambda: x + y, "-": lambda: x - y, "*": lambda: x * y}
            make = fs[t[1]]
        if top:
            return make()
        if key not in self.memo:
            self.memo[key] = make()
        return self.memo[key]


def close(x: float, y: float, scale: float) -> bool:
    return math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-13 * scale)


@SETTINGS
@given(case=statement_lists())
def test_random_programs_agree_with_values(case):
    statements, at = case
    program = program_of(statements)
    try:
        env = Interpreter(at).run(statements)
    except EvaluationError:
        assume(False)  # an overflow somewhere (possibly in a dead statement)
    out = env["OUT"]
    assume(out.requires_grad)
    assume(all(abs(v.data) < 1e6 for v in env.values()))
    dag = gradcalc.compile_program(program)
    result = gradcalc.gradients(dag, at={n: x for n, x in at.items() if n in dag.inputs})
    steps = steps_of(out)

    assert result.value == out.data
    for name, value in result.values.items():
        assert value == env[name].data, name
    scale = (1.0 + max(abs(v.grad or 0.0) for v in env.values())) * (
        1.0 + max(abs(v.data) for v in env.values()))
    for name, gradient in result.gradients.items():
        value = env[name]
        if value.requires_grad:
            assert value.grad is not None, name
            assert close(gradient, value.grad, scale), (name, gradient, value.grad)
        else:
            assert value.grad is None
    # the values the output does not depend on kept the gradient they started with
    for name, value in env.items():
        if name not in result.gradients and name != "OUT":
            assert value.grad == (0.0 if value.requires_grad else None), name
    # each node of the Value graph stepped once
    nodes = [s.node for s in steps]
    assert len(nodes) == len(set(nodes))
    layout = out.to_dag()
    assert set(nodes) == {n for n in range(len(layout)) if layout.ops[n].name != "const"}


@SETTINGS
@given(case=statement_lists())
def test_the_pass_and_the_engine_give_the_same_gradients(case):
    """backward() and backward(on_step=...) (the engine's run on the laid-out Dag) agree, on
    the same random programs as the text route."""
    statements, at = case
    fast, stepped = Interpreter(at).run(statements), Interpreter(at).run(statements)
    assume(fast["OUT"].requires_grad)
    assume(all(math.isfinite(v.data) and abs(v.data) < 1e6 for v in fast.values()))
    fast["OUT"].backward()
    steps_of(stepped["OUT"])
    scale = (1.0 + max(abs(v.grad or 0.0) for v in fast.values())) * (
        1.0 + max(abs(v.data) for v in fast.values()))
    for name, value in fast.items():
        other = stepped[name].grad
        if value.grad is None or other is None:
            assert value.grad is other, name
        else:
            assert close(value.grad, other, scale), (name, value.grad, other)


@SETTINGS
@given(case=statement_lists(), name_them=st.booleans())
def test_to_program_reads_back_to_the_same_results(case, name_them):
    statements, at = case
    try:
        env = Interpreter(at).run(statements)
    except EvaluationError:
        assume(False)
    out = env["OUT"]
    assume(out.requires_grad)
    if name_them:  # intermediates named as in the statements become statements of the text
        for name, value in env.items():
            value.name = name
    out.backward()
    text = out.to_program()
    result = gradcalc.gradients(text)
    assert result.value == out.data
    leaves = out.inputs()
    assert {v.name for v in leaves} <= set(at)
    assert result.inputs == {v.name: v.data for v in leaves}
    scale = (1.0 + max(abs(v.grad or 0.0) for v in env.values())) * (
        1.0 + max(abs(v.data) for v in env.values()))
    for v in leaves:
        assert close(result.gradients[v.name], v.grad, scale), (v.name, text)
    if name_them:
        reached = {id(v) for v in out._layout()[1]}
        for name, value in env.items():
            if value.requires_grad and id(value) in reached and name != "OUT":
                assert f"\n{name} = " in "\n" + text
                assert close(result.gradients[name], value.grad, scale), (name, text)
                assert result.values[name] == value.data
    # the text is as large as the graph, not as the number of paths
    assert len(text) <= 200 * len(out.to_dag())


def text_route(out: Value, **options) -> tuple[str, str]:
    """What graph() and explain() used to give: :meth:`Value.to_program` read back by
    gradcalc.gradients and shown (the command line's route)."""
    from gradcalc import render
    from gradcalc.explain import explain, explanation_text

    result = gradcalc.gradients(out.to_program(), record=True)
    dag = result.dag
    view = render.graph_view(dag, dag.named[result.output], result.node_values,
                             result.node_gradients, width=100, **options)
    drawn = view if isinstance(view, str) else render.as_text(view)
    return drawn, explanation_text(explain(result))


@property_settings(40)
@given(case=statement_lists(), form=st.sampled_from(["auto", "compact", "tree", "table"]))
def test_graph_and_explain_show_what_the_text_route_shows(case, form):
    """graph() and explain() work on the recorded Dag itself and show what the command line
    shows for to_program()'s text when that text builds the same graph: here the statements are
    named, so the builder merges no two of them (it merges identical unnamed parts, which a
    recorded graph may hold twice: the picture then shows both, as recorded)."""
    statements, at = case
    env = Interpreter(at).run(statements)
    out = env["OUT"]
    assume(out.requires_grad)
    assume(all(math.isfinite(v.data) and abs(v.data) < 1e6 for v in env.values()))
    for name, value in env.items():
        value.name = name
    drawn, told = text_route(out, form=form)
    assert out.graph(form=form) == drawn
    assert out.explain() == told


def test_graph_and_explain_make_no_program_text(monkeypatch):
    a = Value(2.0)
    b = a * 3
    out = (b + 1) * (b + 2)
    drawn, told = text_route(out)
    ascii_drawn = out.graph(form="tree", ascii=True)

    def refuse(*args, **kwargs):
        raise AssertionError("graph() and explain() must not go through program text")

    import gradcalc.api
    import gradcalc.unparse

    for module, name in [(gradcalc.api, "parse"), (gradcalc.api, "build"),
                         (gradcalc.unparse, "program_text")]:
        monkeypatch.setattr(module, name, refuse)
    assert out.graph() == drawn
    assert out.explain() == told
    assert "(B + 1)" in told  # unnamed nodes told by their text, as the CLI tells them
    assert out.graph(form="tree", ascii=True) == ascii_drawn
    assert out.to_dag().names == ["A"] + [None] * 7  # the names shown are not kept


def test_graph_shows_each_recorded_node():
    """Two identical unnamed operations recorded twice are two nodes of the picture (the text
    route's builder would merge them into one)."""
    x = Value(0.5, name="x")
    out = gradcalc.sin(x) + gradcalc.sin(x)
    assert out.graph(form="table").count(" sin ") == 2
    assert text_route(out, form="table")[0].count(" sin ") == 1
    out.backward()
    assert x.grad == 2 * math.cos(0.5)


def test_graph_of_a_leaf_and_of_a_constant():
    a = Value(2.5)
    assert a.graph() == text_route(a)[0]
    k = Value(4.0, requires_grad=False)
    assert k.graph() == text_route(k)[0]
    assert "OUT" in k.graph()


def test_to_program_of_a_shared_chain_stays_short():
    a = leaf(0.3, "A")
    x = a
    for _ in range(60):  # 2^60 paths
        x = gradcalc.sin(x) + gradcalc.cos(x)
    x.backward()
    text = x.to_program()
    assert len(text) < 60 * 40
    result = gradcalc.gradients(text)
    assert result.value == x.data
    assert math.isclose(result.gradients["A"], a.grad, rel_tol=1e-12)


def test_to_program_of_a_leaf():
    a = leaf(2.5)
    text = a.to_program()
    assert text.startswith("A = 2.5\n")
    result = gradcalc.gradients(text, wrt=["A"])
    assert result.value == 2.5
    assert result.gradients == {"A": 1.0}


def test_to_program_names_leaves_and_keeps_given_names():
    x, y = leaf(1.5, "x"), leaf(-2.0)
    out = x * y + y
    text = out.to_program()
    assert text.startswith("x = 1.5\nA = -2\n")
    out.backward()
    result = gradcalc.gradients(text)
    assert result.gradients == {"x": y.data, "A": x.data + 1.0}
    assert (x.grad, y.grad) == (-2.0, 2.5)


def test_two_leaves_with_one_name_are_told_apart():
    a1, a2 = leaf(2.0, "A"), leaf(3.0, "A")
    out = a1 * a2 + a1
    out.backward()
    assert (a1.grad, a2.grad) == (4.0, 2.0)
    text = out.to_program()
    result = gradcalc.gradients(text)
    assert result.value == out.data == 8.0
    assert result.inputs["A"] == 2.0
    (other,) = set(result.inputs) - {"A"}
    assert result.inputs[other] == 3.0
    assert result.gradients == {"A": 4.0, other: 2.0}


def test_to_program_with_a_leaf_named_out():
    """A leaf may be called OUT; the output of its program must then get another name."""
    x = leaf(2.0, "OUT")
    y = x * 3
    text = y.to_program()
    result = gradcalc.gradients(text)  # was "OUT = 2\nOUT = OUT*3\n": OUT assigned twice
    assert result.value == 6.0
    assert result.gradients["OUT"] == 3.0


def test_to_program_keeps_the_sign_of_a_negative_zero_constant():
    """atan2 tells -0.0 from 0.0: the text must keep the constant's sign."""
    a = leaf(2.0, "A")
    out = gradcalc.atan2(a * -0.0, -1.0)
    assert out.data == -math.pi
    result = gradcalc.gradients(out.to_program())  # was "A*0": +pi
    assert result.value == out.data


# --- work linear in the graph: counted, not timed -------------------------------------------------

def traced_lines(call: Callable[[], object]) -> int:
    """How many lines of Python ``call`` runs (``sys.settrace``'s line events, in every
    function it calls): the work done, counted, so the same on every machine and every run."""
    count = 0

    def local(frame: object, event: str, arg: object) -> Callable[..., object]:
        nonlocal count
        count += event == "line"
        return local

    previous = sys.gettrace()
    sys.settrace(lambda frame, event, arg: local)
    try:
        call()
    finally:
        sys.settrace(previous)
    return count


def leaf_sum(count: int) -> tuple[list[Value], Value]:
    leaves = [Value(float(i % 7) - 3.0) for i in range(count)]
    return leaves, sum(v * v for v in leaves)


def test_backward_work_is_linear_in_unnamed_leaves(monkeypatch):
    """Unnamed leaves used to be named A..Z, X1, X2, ... by backward(), scanning the names
    taken: quadratic. backward() now neither names nor lays out a Dag, and ten times the
    leaves is ten times the lines of Python run (quadratic work would be a hundred times)."""
    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("backward() named values or laid the graph out")

    monkeypatch.setattr(value_module, "fresh", refused)
    monkeypatch.setattr(value_module, "Dag", refused)
    work = {}
    for count in (2_000, 20_000):
        leaves, out = leaf_sum(count)
        work[count] = traced_lines(out.backward)
        assert all(v.grad == 2 * v.data for v in leaves)
        assert work[count] < 40 * 3 * count  # some lines a node, three nodes a leaf
    assert 9 <= work[20_000] / work[2_000] <= 11, work


def test_names_are_made_when_shown_with_a_counter():
    """Names are for pictures and program text: to_dag() (behind to_program(), graph() and
    explain()) gives unnamed leaves A..Z, X1, X2, ... from a counter, in linear work."""
    work = {}
    for count in (2_000, 20_000):
        leaves, out = leaf_sum(count)
        dags: list[gradcalc.Dag] = []
        work[count] = traced_lines(lambda out=out, dags=dags: dags.append(out.to_dag()))
        names = [dags[0].names[i] for i in dags[0].inputs.values()]
        assert names[:3] == ["A", "B", "C"] and names[26:28] == ["X1", "X2"]
        assert len(set(names)) == count
        assert all(v.name is None for v in leaves)  # the values themselves stay unnamed
    assert 9 <= work[20_000] / work[2_000] <= 11, work


# --- deep graphs: no recursion anywhere ----------------------------------------------------------

C1, C2 = 1.0000001, 1.0000002


def chain(a: Value, steps: int) -> tuple[Value, float]:
    """``steps`` operations in a cycle of x*C1, x + 0.5, 1 - x, x/C2, built in a loop; returns
    the end and the gradient the backward pass must produce (the partials multiplied in the
    order backward multiplies them: from the output down)."""
    x = a
    partials = []
    for i in range(steps):
        k = i % 4
        if k == 0:
            x = x * C1
            partials.append(C1)
        elif k == 1:
            x = x + 0.5
            partials.append(1.0)
        elif k == 2:
            x = 1 - x
            partials.append(-1.0)
        else:
            x = x / C2
            partials.append(1.0 / C2)
    g = 1.0
    for p in reversed(partials):
        g *= p
    return x, g


def closed_form(steps: int) -> float:
    cycles, rest = divmod(steps, 4)
    g = (-C1 / C2) ** cycles
    for p in (C1, 1.0, -1.0)[:rest]:
        g *= p
    return g


@pytest.mark.slow
def test_million_step_chain():
    steps = 1_000_000
    a = leaf(0.25, "A")
    out, expected = chain(a, steps)
    out.backward()
    assert a.grad == expected
    assert math.isclose(a.grad, closed_form(steps), rel_tol=1e-8)
    dag = out.to_dag()
    assert sum(1 for op in dag.ops if op.name not in ("const", "input")) == steps


def test_hundred_thousand_step_chain_and_its_program():
    steps = 100_000
    a = leaf(0.25, "A")
    out, expected = chain(a, steps)
    out.backward()
    assert a.grad == expected
    assert math.isclose(a.grad, closed_form(steps), rel_tol=1e-9)
    text = out.to_program()
    assert len(text) < 100 * steps
    result = gradcalc.gradients(text)
    assert result.value == out.data
    assert result.gradients["A"] == a.grad


def test_long_chain_of_multiplications():
    steps = 100_000
    a = leaf(2.0, "A")
    x = a
    for _ in range(steps):
        x = x * 1.0000001
    x.backward()
    assert math.isclose(a.grad, 1.0000001**steps, rel_tol=1e-9)
    assert math.isclose(x.data, 2.0 * 1.0000001**steps, rel_tol=1e-9)
