"""Plans compiled to straight-line Python: the engine's results bit for bit, None exactly where
the engine raises or warns, and nothing of the program's text in the generated source."""

from __future__ import annotations

import ast
import math
import re

import pytest
from helpers import dag_programs, property_settings
from hypothesis import given
from hypothesis import strategies as st

import gradcalc
from gradcalc import engine
from gradcalc.api import default_targets, leaf_values
from gradcalc.codegen import compile_plan
from gradcalc.errors import EvaluationError


def engine_outcome(plan: engine.Plan, values: list[float | None]):  # type: ignore[no-untyped-def]
    try:
        vals = engine.forward(plan.dag, list(values), plan.needed)
    except EvaluationError:
        return None
    done = engine.run(plan, vals)
    if engine.diagnose(done):
        return None
    gradients = done.target_gradients()
    return (vals[plan.output] + 0.0, *(gradients[n] for n in plan.targets),
            *(vals[i] + 0.0 for i in plan.targets.values()))


def bits(outcome):  # type: ignore[no-untyped-def]
    return None if outcome is None else tuple(x.hex() for x in outcome)


def plans(text: str) -> list[engine.Plan]:
    dag = gradcalc.compile_program(text)
    output = dag.named[dag.output]
    within = engine.cone(dag, [output])
    return [engine.plan(dag, output, default_targets(dag, output, within), within),
            engine.plan(dag, output, dict(dag.named), within)]


VALUES = st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5, 2.0, -3.0, 1e-300, 1e300, 700.0, -700.0])


@given(text=dag_programs(), data=st.data())
@property_settings(150)
def test_compiled_plans_give_the_engines_results_bit_for_bit(text: str, data) -> None:
    for plan in plans(text):
        dag = plan.dag
        at = {name: data.draw(VALUES) for name in dag.inputs}
        values = leaf_values(dag, at)
        compiled = compile_plan(plan)
        expected = engine_outcome(plan, values)
        got = compiled.run(values)
        if got is None and expected is not None:
            # only where a sum of finite values overflowed the single finiteness test
            assert not math.isfinite(sum(expected[1:]) + sum(
                v for i, v in enumerate(engine.forward(dag, list(values), plan.needed))
                if plan.needed[i] and dag.args[i]))
            continue
        assert bits(got) == bits(expected)


@pytest.mark.parametrize("program", [
    "OUT = relu(A - 1)",  # a kink at A = 1
    "OUT = log(A)",  # a domain error at A <= 0
    "OUT = sqrt(A)",  # an infinite gradient at 0
    "OUT = exp(A)*1e300",  # an overflow
    "B = A*A; OUT = B + B*B + sin(B)",  # a node reached over several paths
    "OUT = clamp(A*A, A, 2)*A + leaky_relu(A, 0.5)",  # three operands; kinks at 0, 1 and 2
    "OUT = hypot(A, A - 1) + cbrt(A)",  # cbrt(0): a kink and an infinite gradient
])
@pytest.mark.parametrize("value", [-1.0, 0.0, 1.0, 2.0, 800.0])
def test_none_exactly_where_the_engine_raises_or_warns(program: str, value: float) -> None:
    for plan in plans(program):
        values = leaf_values(plan.dag, {"A": value})
        assert bits(compile_plan(plan).run(values)) == bits(engine_outcome(plan, values))


_ALLOWED_NAME = re.compile(r"[vgFPK][0-9]+|V|d|isfinite|sum|run|ValueError|"
                           r"ZeroDivisionError|OverflowError")


def test_no_text_of_the_program_reaches_the_generated_source() -> None:
    # Names that are Python builtins, keywords-to-be, or the generated code's own identifiers;
    # numbers written to look like code.
    hostile = ("__import__ = 2; exec = 3; os = 4; V = 5; d = 6; v0 = 7; g1 = 8; F2 = 9; "
               "isfinite = 1e-3; run = 007; _ = .5; OUT = __import__*exec + os*V - d/v0 "
               "+ g1*F2 + sin(isfinite)*run + _*1e2 + 12345678901234567890")
    for plan in plans(hostile):
        compiled = compile_plan(plan)
        tree = ast.parse(compiled.source)
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                assert _ALLOWED_NAME.fullmatch(node.id), node.id
            elif isinstance(node, ast.Constant):
                assert node.value in (0.0, 1.0, None) or type(node.value) is int, node.value
            elif isinstance(node, ast.arg):
                assert node.arg == "V"
            elif isinstance(node, ast.FunctionDef):
                assert node.name == "run"
        for name in plan.dag.named:
            if not _ALLOWED_NAME.fullmatch(name):
                assert name not in compiled.source
        assert "12345678901234567890" not in compiled.source
        values = leaf_values(plan.dag, {})
        assert bits(compiled.run(values)) == bits(engine_outcome(plan, values))
        inputs = list(plan.dag.inputs.values())
        with_inputs = compile_plan(plan, inputs).run(values)
        assert with_inputs is not None
        assert with_inputs[-len(inputs):] == tuple(values[i] for i in inputs)


def test_a_graph_of_thousands_of_nodes_compiles() -> None:
    # 5,150 nodes and as many targets: no operator chain for the compiler to recurse into
    text = "\n".join(["X0 = A"] + [f"X{i} = sin(X{i - 1})*1.0001 + B{i % 50}"
                                    for i in range(1, 1700)])
    dag = gradcalc.compile_program(text)
    output = dag.named[dag.output]
    plan = engine.plan(dag, output, dict(dag.named), engine.cone(dag, [output]))
    values = leaf_values(dag, {n: 0.5 for n in dag.inputs})
    assert bits(compile_plan(plan).run(values)) == bits(engine_outcome(plan, values))
