"""The engine (forward, counting pass, backward) and the library API, against independent oracles.

Random small programs are checked against a brute-force enumeration of every path from the
output to every node (multiplying the registry's local partials along each path, parallel edges
counted separately) and against central finite differences. Known cases come from the task
statement; deep and wide programs check that nothing recurses.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict

import pytest
from helpers import close, property_settings, run
from hypothesis import assume, given
from hypothesis import strategies as st

import gradcalc
from gradcalc import engine
from gradcalc.api import compile_program

SETTINGS = property_settings(150)


# --- helpers (independent of the engine) -------------------------------------------------------

def node_of(dag: gradcalc.Dag, name: str) -> int:
    return dag.named[name]


def is_const(dag: gradcalc.Dag, node: int) -> bool:
    return dag.ops[node].name == "const"


def reachable(dag: gradcalc.Dag, root: int) -> set[int]:
    """Every node some path from ``root`` reaches, by an explicit stack."""
    seen = {root}
    stack = [root]
    while stack:
        for operand in dag.args[stack.pop()]:
            if operand not in seen:
                seen.add(operand)
                stack.append(operand)
    return seen


def evaluate(dag: gradcalc.Dag, at: dict[str, float], root: int) -> list[float | None]:
    """Every node ``root`` depends on, evaluated with the registry's forward rules."""
    vals: list[float | None] = list(dag.values)
    for name, value in at.items():
        vals[dag.inputs[name]] = float(value)
    needed = reachable(dag, root)
    for node in sorted(needed):
        operands = dag.args[node]
        if operands:
            vals[node] = dag.ops[node].forward(*[vals[j] for j in operands])
    return vals


def enumerate_paths(dag: gradcalc.Dag, vals: list, output: int):
    """Brute force: walk every path from ``output`` (explicit stack, no recursion), multiplying
    local partials. Returns, per node, the sum over paths of the products (the gradient), the
    number of paths, and the sum of the products' magnitudes (a scale for rounding)."""
    total: dict[int, float] = defaultdict(float)
    magnitude: dict[int, float] = defaultdict(float)
    paths: Counter[int] = Counter()
    stack = [(output, 1.0)]
    while stack:
        node, product = stack.pop()
        total[node] += product
        magnitude[node] += abs(product)
        paths[node] += 1
        operands = dag.args[node]
        if operands:
            partials = dag.ops[node].partials(*[vals[j] for j in operands], vals[node])
            assert len(partials) == len(operands)
            for operand, partial in zip(operands, partials, strict=True):
                stack.append((operand, product * partial))
    return total, paths, magnitude


def count_paths(dag: gradcalc.Dag, output: int) -> int:
    """Total number of root-to-leaf paths, to keep brute-force enumeration affordable."""
    reach = reachable(dag, output)
    ways = dict.fromkeys(reach, 0)
    ways[output] = 1
    for node in sorted(reach, reverse=True):
        for operand in dag.args[node]:
            ways[operand] += ways[node]
    return sum(ways.values())


def depends_on(dag: gradcalc.Dag, targets: set[int], nodes: set[int]) -> set[int]:
    """The nodes among ``nodes`` from which some target is reachable (targets included)."""
    return {n for n in nodes if reachable(dag, n) & targets}


def default_targets(dag: gradcalc.Dag, output: int) -> dict[str, int]:
    reach = reachable(dag, output)
    return {name: i for name, i in dag.named.items() if i in reach and i != output}


def run_engine(dag: gradcalc.Dag, at: dict[str, float], targets: list[int]):
    """The engine's passes called one by one, with every backward step recorded."""
    output = node_of(dag, dag.output)
    values = list(dag.values)
    for name, value in at.items():
        values[dag.inputs[name]] = float(value)
    question = engine.plan(dag, output, {str(t): t for t in targets})
    vals = engine.forward(dag, values, question.needed)
    done = engine.run(question, vals, record=True)
    assert done.steps is not None
    # what each node received: one delivery per counted edge (the pass waits on the counts)
    delivered = [0] * (output + 1)
    for step in done.steps:
        for operand in step.operands:
            delivered[operand] += 1
    return (output, vals, question.active, list(question.counts), delivered, done.gradients,
            done.steps)


def steps_by_name(result: gradcalc.Result, steps: list[engine.Step]) -> Counter[str]:
    return Counter(result.dag.describe(s.node) for s in steps)


# --- known cases ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("program", "at", "expected"),
    [
        ("OUT = A*2 + B*3", {"A": 1, "B": 1}, {"A": 2.0, "B": 3.0}),
        ("B = A*3; OUT = (B+1)*(B+2)", {"A": 2}, {"A": 45.0, "B": 15.0}),
        ("OUT = A - B + C*D", {"A": 2, "B": 3, "C": 4, "D": 5},
         {"A": 1.0, "B": -1.0, "C": 5.0, "D": 4.0}),
        ("OUT = (A+3)*(A*4)", {"A": 2}, {"A": 28.0}),
        ("B = A; OUT = (B+4)*(B+5)", {"A": 2}, {"A": 13.0, "B": 13.0}),
        ("B = A*1; OUT = B*3 + B*4", {"A": 2}, {"A": 7.0, "B": 7.0}),
        ("B = A*3; C = A*3; OUT = B*C", {"A": 2}, {"A": 36.0, "B": 6.0, "C": 6.0}),
    ],
)
def test_seed_cases(program, at, expected):
    steps: list[engine.Step] = []
    result = gradcalc.gradients(program, at=at, on_step=steps.append)
    assert result.gradients == expected
    assert list(result.gradients) == list(expected)
    nodes = [s.node for s in steps]
    assert len(nodes) == len(set(nodes)), "a node's backward step ran twice"


def test_seed_value_56():
    result = gradcalc.gradients("B = A*3; OUT = (B+1)*(B+2)", at={"A": 2})
    assert result.value == 56.0
    assert result.gradients == {"A": 45.0, "B": 15.0}
    assert result.values == {"A": 2.0, "B": 6.0}


def test_alias_node_steps_exactly_once():
    """B = A; B feeds two consumers: its step runs once, after both have delivered."""
    steps: list[engine.Step] = []
    result = gradcalc.gradients("B = A; OUT = (B+4)*(B+5)", at={"A": 2}, on_step=steps.append)
    assert result.gradients == {"A": 13.0, "B": 13.0}
    dag = result.dag
    b = node_of(dag, "B")
    b_steps = [s for s in steps if s.node == b]
    assert len(b_steps) == 1
    assert b_steps[0].gradient == 13.0
    assert b_steps[0].operands == (node_of(dag, "A"),)
    assert b_steps[0].partials == (1.0,)
    # both consumers of B stepped before B
    position = {s.node: i for i, s in enumerate(steps)}
    consumers = [n for n in range(len(dag)) if b in dag.args[n]]
    assert len(consumers) == 2
    assert all(position[c] < position[b] for c in consumers)


def test_named_nodes_are_never_merged():
    result = gradcalc.gradients("B = A*3; C = A*3; OUT = B*C", at={"A": 2})
    dag = result.dag
    assert node_of(dag, "B") != node_of(dag, "C")
    assert result.values["C"] == 6.0
    assert result.gradients["B"] == result.values["C"]
    assert result.gradients["C"] == 6.0
    assert result.gradients["A"] == 36.0


# --- counting ------------------------------------------------------------------------------------

def _counts(program: str, at: dict[str, float]) -> tuple[gradcalc.Dag, list[int]]:
    dag = gradcalc.build(gradcalc.parse(program))
    output = node_of(dag, dag.output)
    return dag, list(engine.plan(dag, output, default_targets(dag, output)).counts)


def test_self_product_counts_edges_not_consumers():
    dag, counts = _counts("OUT = B*B", {"B": 3})
    assert counts[node_of(dag, "B")] == 2
    dag, counts = _counts("OUT = B*B + B", {"B": 3})
    assert counts[node_of(dag, "B")] == 3
    dag, counts = _counts("C = B*B; OUT = C*C", {"B": 3})
    assert counts[node_of(dag, "B")] == 2
    assert counts[node_of(dag, "C")] == 2
    result = gradcalc.gradients("OUT = B*B", at={"B": 3}, stats=True)
    assert result.gradients == {"B": 6.0}
    assert result.stats.paths == {"B": 2}


def test_dead_assignment_does_not_change_counts():
    live_dag, live = _counts("OUT = A*2", {"A": 1})
    dead_dag, dead = _counts("C = A*100; OUT = A*2", {"A": 1})
    assert live[node_of(live_dag, "A")] == dead[node_of(dead_dag, "A")] == 1
    steps: list[engine.Step] = []
    result = gradcalc.gradients("C = A*100; OUT = A*2", at={"A": 1}, on_step=steps.append)
    assert result.gradients == {"A": 2.0}
    visited = {s.node for s in steps}
    assert node_of(result.dag, "C") not in visited
    assert visited == {node_of(result.dag, "OUT"), node_of(result.dag, "A")}


def test_dead_code_is_not_evaluated():
    result = gradcalc.gradients("C = log(A); OUT = A*2", at={"A": -1})
    assert result.value == -2.0
    assert result.gradients == {"A": 2.0}
    assert "C" not in result.gradients


def test_wrt_subset_visits_only_paths_to_it():
    program = "B = A*3; C = D*2; E = sin(D); OUT = B*C + A + E"
    at = {"A": 1.5, "D": 0.5}
    all_steps: list[engine.Step] = []
    full = gradcalc.gradients(program, at=at, on_step=all_steps.append)
    steps: list[engine.Step] = []
    result = gradcalc.gradients(program, at=at, wrt=["A"], on_step=steps.append)
    dag = result.dag
    assert list(result.gradients) == ["A"]
    assert result.gradients["A"] == full.gradients["A"] == 3 * 1.0 + 1.0  # C = 1, plus 1
    visited = {s.node for s in steps}
    a = node_of(dag, "A")
    on_paths_to_a = depends_on(dag, {a}, reachable(dag, node_of(dag, "OUT")))
    assert visited == on_paths_to_a
    for name in ("C", "D", "E"):
        assert node_of(dag, name) not in visited
    assert node_of(full.dag, "D") in {s.node for s in all_steps}
    assert len(steps) < len(all_steps)


# --- random programs -----------------------------------------------------------------------------

UNARY = ["sin", "cos", "tanh", "exp", "sigmoid", "atan", "-"]
BINARY = ["+", "-", "*"]
CONSTANTS = ["2", "0.5", "3", "1.5"]


@st.composite
def programs(draw):
    """A random program of 2..12 statements over 1..3 inputs, operands drawn from earlier
    names (so names are reused: diamonds, self-products, dead assignments, merged unnamed
    sub-expressions)."""
    n_inputs = draw(st.integers(1, 3))
    names = [f"X{i}" for i in range(n_inputs)]
    at = {name: draw(st.floats(-1.5, 1.5, allow_nan=False), label=name) for name in names}
    n_statements = draw(st.integers(2, 12))

    def leaf(allow_constant: bool) -> str:
        if allow_constant and draw(st.integers(0, 7)) == 0:
            return draw(st.sampled_from(CONSTANTS))
        # favour recent names, so chains form, but keep every earlier name possible
        if draw(st.integers(0, 3)):
            return draw(st.sampled_from(names[-2:]))
        return draw(st.sampled_from(names))

    def expr(depth: int, top: bool = False) -> str:
        kinds = ["leaf", "unary", "binary", "square"] if depth > 0 else ["leaf"]
        kind = draw(st.sampled_from(kinds))
        if kind == "leaf":
            return leaf(allow_constant=not top)
        if kind == "unary":
            f = draw(st.sampled_from(UNARY))
            inner = expr(depth - 1)
            return f"-({inner})" if f == "-" else f"{f}({inner})"
        if kind == "square":
            inner = expr(depth - 1)
            return f"({inner}) * ({inner})"
        op = draw(st.sampled_from(BINARY))
        return f"({expr(depth - 1)}) {op} ({expr(depth - 1)})"

    lines = []
    for i in range(n_statements - 1):
        name = f"S{i}"
        lines.append(f"{name} = {expr(2, top=True)}")
        names.append(name)
    op = draw(st.sampled_from(BINARY))
    # usually build on the last statement, so long chains and diamonds reach the output
    first = names[-1] if draw(st.integers(0, 4)) else expr(1)
    lines.append(f"OUT = ({first}) {op} ({expr(1)})")
    return "\n".join(lines), at


def prepared(program: str, at: dict[str, float]):
    """Build the program and evaluate it independently; reject overflowing or huge cases."""
    dag = compile_program(program)
    output = node_of(dag, dag.output)
    at = {k: v for k, v in at.items() if k in dag.inputs}
    try:
        vals = evaluate(dag, at, output)
    except OverflowError:
        assume(False)
    cone = reachable(dag, output)
    assume(all(abs(vals[i]) < 1e3 for i in cone))
    assume(count_paths(dag, output) <= 20_000)
    return dag, output, at, vals


@SETTINGS
@given(case=programs())
def test_random_dag_matches_path_enumeration(case):
    program, at = case
    dag, output, at, vals = prepared(program, at)
    result = gradcalc.gradients(dag, at=at, stats=True)
    total, paths, magnitude = enumerate_paths(dag, vals, output)
    assert result.value == vals[output]
    expected_names = {n for n, i in dag.named.items() if paths[i] and i != output}
    assert set(result.gradients) == expected_names
    for name, gradient in result.gradients.items():
        i = node_of(dag, name)
        # abs_tol scaled by the sum of |path products| (the size of what was summed)
        assert close(gradient, total[i], abs_tol=1e-12 * max(1.0, magnitude[i])), (
            name, gradient, total[i])
        assert result.stats.paths[name] == paths[i]
    # the engine's own path counts, node by node, over the nodes a gradient flows through
    targets = set(default_targets(dag, output).values())
    counted = engine.path_counts(engine.plan(dag, output, {str(t): t for t in targets}))
    live = depends_on(dag, targets, set(paths))  # the output too, unless it is constant
    for node in range(output + 1):
        assert counted[node] == (paths[node] if node in live else 0)


@SETTINGS
@given(case=programs())
def test_random_dag_matches_finite_differences(case):
    program, at = case
    dag, output, at, vals = prepared(program, at)
    assume(at)
    result = gradcalc.gradients(dag, at=at, wrt=list(at))
    for name, x in at.items():
        h = 1e-6 * max(1.0, abs(x))
        hi = evaluate(dag, {**at, name: x + h}, output)[output]
        lo = evaluate(dag, {**at, name: x - h}, output)[output]
        step = (x + h) - (x - h)
        estimate = (hi - lo) / step
        gradient = result.gradients[name]
        scale = max(abs(v) for i, v in enumerate(vals) if v is not None and i <= output)
        tolerance = 1e-5 * max(abs(gradient), abs(estimate)) + 1e-12 * (1.0 + scale) / step
        assert abs(gradient - estimate) <= tolerance, (name, gradient, estimate)


@SETTINGS
@given(case=programs())
def test_random_dag_backward_visits_each_live_node_once(case):
    program, at = case
    dag, output, at, _ = prepared(program, at)
    targets = set(default_targets(dag, output).values())
    out, _vals, _active, counts, delivered, grads, steps = run_engine(dag, at, sorted(targets))
    assert out == output
    # every count is consumed: each node received exactly as many contributions as it waited for
    assert delivered == counts
    # nodes are in topological order (operands before consumers)
    assert all(j < i for i in range(len(dag)) for j in dag.args[i])

    visited = [s.node for s in steps]
    assert len(visited) == len(set(visited)), "a backward step ran twice"
    reach = reachable(dag, output)
    live = depends_on(dag, targets, reach)  # the output too, unless it is constant
    assert set(visited) == live
    # dead assignments and constants are never visited; constants never receive gradient
    for step in steps:
        assert not is_const(dag, step.node)
        assert not any(is_const(dag, j) for j in step.operands)
        assert len(step.partials) == len(step.operands)
    # counts are consumer edges from live nodes into active operands
    expected = [0] * (output + 1)
    for node in live:
        for operand in dag.args[node]:
            if operand in live:
                expected[operand] += 1
    assert counts == expected
    # a node steps only after all of its counted consumers, with its final gradient
    position = {s.node: k for k, s in enumerate(steps)}
    for step in steps:
        assert step.gradient == grads[step.node]
        for operand in step.operands:
            assert position[operand] > position[step.node]


@SETTINGS
@given(case=programs(), data=st.data())
def test_random_dag_wrt_subset(case, data):
    program, at = case
    dag, output, at, _ = prepared(program, at)
    everything = default_targets(dag, output)
    assume(everything)
    wanted = data.draw(st.lists(st.sampled_from(sorted(everything)), min_size=1, unique=True),
                       label="wrt")
    full = gradcalc.gradients(dag, at=at)
    steps: list[engine.Step] = []
    result = gradcalc.gradients(dag, at=at, wrt=wanted, on_step=steps.append)
    assert list(result.gradients) == wanted
    for name in wanted:
        assert math.isclose(result.gradients[name], full.gradients[name],
                            rel_tol=1e-12, abs_tol=1e-300)
    targets = {everything[n] for n in wanted}
    expected = depends_on(dag, targets, reachable(dag, output)) | {output}
    assert {s.node for s in steps} == expected


# --- deep and wide --------------------------------------------------------------------------

N = 100_000


def test_wide_sum_of_100000_inputs():
    names = [f"A{i}" for i in range(N)]
    result = gradcalc.gradients("OUT = " + " + ".join(names), at=dict.fromkeys(names, 1),
                                stats=True)
    assert result.value == float(N)
    assert len(result.gradients) == N
    assert all(result.gradients[n] == 1.0 for n in names)
    assert all(result.stats.paths[n] == 1 for n in names)


def test_100000_nested_parentheses():
    result = gradcalc.gradients("OUT = " + "(" * N + "A" + ")" * N, at={"A": 2.5})
    assert result.value == 2.5
    assert result.gradients == {"A": 1.0}


def test_100000_nested_unary_minus():
    result = gradcalc.gradients("OUT = " + "-" * (N + 1) + "A", at={"A": 2.5})
    assert result.value == -2.5
    assert result.gradients == {"A": -1.0}


def test_100000_nested_function_calls():
    x0 = 1.0
    result = gradcalc.gradients("OUT = " + "sin(" * N + "A" + ")" * N, at={"A": x0})
    # closed form: d sin^n(x)/dx = prod_k cos(sin^k(x))
    x, derivative = x0, 1.0
    for _ in range(N):
        derivative *= math.cos(x)
        x = math.sin(x)
    assert math.isclose(result.value, x, rel_tol=1e-12)
    assert math.isclose(result.gradients["A"], derivative, rel_tol=1e-9)


def test_100000_chained_statements():
    lines = ["X0 = A"] + [f"X{i} = X{i - 1} + A" for i in range(1, N)]
    dag = gradcalc.compile_program("\n".join(lines), max_size=4 << 20)  # 2 MB of program
    result = gradcalc.gradients(dag, at={"A": 0.5}, wrt=["A", "X0"])
    assert result.value == N * 0.5
    assert result.gradients == {"A": float(N), "X0": 1.0}


@pytest.mark.slow
def test_million_node_chain():
    n, c = 1_000_000, 1.0000001
    dag = gradcalc.compile_program("OUT = A" + "*1.0000001" * n, max_size=16 << 20)
    result = gradcalc.gradients(dag, at={"A": 1.5})
    assert len(result.dag) >= n
    assert math.isclose(result.gradients["A"], c**n, rel_tol=1e-9)
    assert math.isclose(result.value, 1.5 * c**n, rel_tol=1e-9)


# --- evaluation errors ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("program", "at", "culprit", "kind"),
    [
        ("OUT = log(-1)", {}, "log(-1)", "domain"),
        ("OUT = 2 + sqrt(-1)", {}, "sqrt(-1)", "domain"),
        ("OUT = 1/(A-A)", {"A": 1}, "1/(A-A)", "domain"),
        ("OUT = A * exp(1000)", {"A": 1}, "exp(1000)", "overflow"),
        ("OUT = A*A", {"A": 1e200}, "A*A", "overflow"),
        ("A = 3\nB = A - 4\nOUT = B + sqrt(B)", {}, "sqrt(B)", "domain"),
        ("B = A + 1\n\n  C = log(B) * 2", {"A": -3}, "log(B)", "domain"),
    ],
)
def test_evaluation_errors_point_at_the_culprit(program, at, culprit, kind):
    with pytest.raises(gradcalc.EvaluationError) as info:
        gradcalc.gradients(program, at=at)
    error = info.value
    start = program.index(culprit)
    line = program.count("\n", 0, start) + 1
    column = start - (program.rfind("\n", 0, start) + 1) + 1
    assert error.span is not None
    assert (error.span.line, error.span.column) == (line, column)
    assert (error.span.start, error.span.end) == (start, start + len(culprit))
    assert error.exit_code == 1
    assert error.kind == kind
    assert isinstance(error, gradcalc.GradcalcError)


def test_missing_input_value():
    # Numbers required: a missing value is an error naming the input.
    with pytest.raises(gradcalc.InputError) as info:
        gradcalc.gradients("OUT = A*B", at={"A": 1}, symbolic=False)
    assert info.value.message == "no value for input B (needed to evaluate OUT)"
    # By default the gradients come out as formulas where a value is missing.
    r = gradcalc.gradients("OUT = A*B", at={"A": 1})
    assert r.value is None and r.formulas["A"].text == "B"
    assert r.gradients == {"B": 1.0}


# --- warnings ------------------------------------------------------------------------------------

def test_relu_kink_warning():
    result = gradcalc.gradients("OUT = relu(A)", at={"A": 0})
    assert result.gradients == {"A": 0.0}
    assert [w.kind for w in result.warnings] == ["kink"]


def test_sqrt_at_zero_is_infinite_with_warning():
    result = gradcalc.gradients("OUT = sqrt(A)", at={"A": 0})
    assert result.gradients["A"] == math.inf
    kinds = [w.kind for w in result.warnings]
    assert "nonfinite" in kinds
    assert "kink" in kinds


def test_max_tie_splits_gradient():
    result = gradcalc.gradients("OUT = max(A, B)", at={"A": 1, "B": 1})
    assert result.gradients == {"A": 0.5, "B": 0.5}
    assert [w.kind for w in result.warnings] == ["kink"]


def test_no_warnings_at_smooth_points():
    result = gradcalc.gradients("OUT = relu(A) + sqrt(A) + abs(A)", at={"A": 4})
    assert result.gradients == {"A": 1.0 + 0.25 + 1.0}
    assert result.warnings == []


# --- where an infinite or NaN gradient arose ----------------------------------------------------

def diagnosed(program: str, at: dict[str, float], wrt: list[str] | None = None):
    """The engine's passes, then :func:`engine.diagnose` on the requested names (default:
    every input the output depends on)."""
    dag = compile_program(program)
    output = node_of(dag, dag.output)
    values = list(dag.values)
    for name, value in at.items():
        values[dag.inputs[name]] = float(value)
    within = engine.cone(dag, [output])
    names = wrt if wrt is not None else [n for n, i in dag.inputs.items() if within[i]]
    question = engine.plan(dag, output, {n: dag.named[n] for n in names})
    done = engine.run(question, engine.forward(dag, values, question.needed))
    warnings = engine.diagnose(done)
    return dag, {n: done.gradients[dag.named[n]] for n in names}, warnings


def pointed_at(program: str, warning) -> str:
    """The source text a warning's span covers."""
    return program[warning.span.start:warning.span.end]


@pytest.mark.parametrize(
    ("program", "at", "gradient", "culprit", "message", "hint"),
    [
        # inf from sqrt'(0), then times 2*A = 0 at the power: the NaN arose at A^2
        ("OUT = sqrt(A^2)", {"A": 0}, "nan", "A^2", "the gradient through 0 ^ 2 is nan: inf × 0",
         "the incoming gradient inf arose in sqrt(0) at 1:7; the local derivative with "
         "respect to A is 0"),
        ("OUT = sqrt(A*A)", {"A": 0}, "nan", "A*A", "the gradient through 0 * 0 is nan: inf × 0",
         "arose in sqrt(0) at 1:7"),
        # the other order: a gradient of 0 (the factor 0) reaches sqrt'(0) = inf
        ("OUT = sqrt(A)*0", {"A": 0}, "nan", "sqrt(A)",
         "the gradient through sqrt(0) is nan: 0 × inf",
         "the incoming gradient is 0 and the local derivative with respect to A is inf "
         "(sqrt'(0) = inf)"),
        ("OUT = log(sqrt(A) + 1)*0", {"A": 0}, "nan", "sqrt(A)",
         "the gradient through sqrt(0) is nan: 0 × inf", "(sqrt'(0) = inf)"),
        ("OUT = (A - A)*sqrt(A)", {"A": 0}, "nan", "sqrt(A)",
         "the gradient through sqrt(0) is nan: 0 × inf", None),
        # an infinity arises where the local derivative is infinite, not where it travels on
        ("OUT = 3*sqrt(A) + 1", {"A": 0}, "inf", "sqrt(A)", "the gradient through sqrt(0) is inf",
         "the local derivative with respect to A is inf (sqrt'(0) = inf); the incoming "
         "gradient is 3"),
        ("OUT = exp(sin(-sqrt(A)))", {"A": 0}, "-inf", "sqrt(A)",
         "the gradient through sqrt(0) is -inf", None),
        ("OUT = A^0.5", {"A": 0}, "inf", "A^0.5", "the gradient through 0 ^ 0.5 is inf", None),
        ("OUT = asin(A)", {"A": 1}, "inf", "asin(A)", "the gradient through asin(1) is inf",
         None),
        # a local derivative that is NaN
        ("OUT = atan2(A, A)", {"A": 0}, "nan", "atan2(A, A)",
         "the gradient through atan2(0, 0) is nan",
         "the local derivative with respect to A is nan"),
        ("OUT = (-2)^B", {"B": 2}, "nan", "(-2)^B", "the gradient through -2 ^ 2 is nan", None),
        # a NaN that travels on keeps its origin
        ("B = sqrt(A^2); OUT = sin(B*3) + 1", {"A": 0}, "nan", "A^2",
         "the gradient through 0 ^ 2 is nan: inf × 0", None),
        # where paths meet: inf + -inf
        ("B = sqrt(A); C = sqrt(A); OUT = B - C", {"A": 0}, "nan", "A",
         "the gradient of A is nan: inf + -inf where paths meet",
         "A receives inf from B (the inf arose in sqrt(0) at 1:5) and -inf from C (the -inf "
         "arose in sqrt(0) at 1:18)"),
    ],
)
def test_nonfinite_gradient_traced_to_its_origin(program, at, gradient, culprit, message, hint):
    _, grads, warnings = diagnosed(program, at)
    name = next(iter(grads))
    assert format_value(grads[name]) == gradient
    nonfinite = [w for w in warnings if w.kind == "nonfinite"]
    assert len(nonfinite) == 1, [w.render() for w in warnings]
    [w] = nonfinite
    assert pointed_at(program, w) == culprit, w.render()
    assert w.message == message
    if hint is not None:
        assert hint in w.hint
    # the library reports it the same way
    result = gradcalc.gradients(program, at=at)
    assert [d for d in result.warnings if d.kind == "nonfinite"] == [w]


def format_value(x: float) -> str:
    return "nan" if math.isnan(x) else repr(x) if math.isinf(x) else "finite"


def test_sqrt_of_a_square_at_zero_on_the_command_line():
    """The issue: both warnings talked about inf at sqrt; the NaN arose at A^2."""
    r = run("OUT = sqrt(A^2)", "--at", "A=0")
    assert r.stdout == "A nan\n"
    assert "warning: sqrt is not differentiable at sqrt(0)" in r.stderr
    assert "warning: the gradient through 0 ^ 2 is nan: inf × 0\n  --> <program>:1:12" in r.stderr


def test_product_overflow_is_an_origin():
    """Finite local derivatives whose product overflows: the infinity arises at that step."""
    program = "OUT = sqrt(sqrt(sqrt(sqrt(sqrt(A)))))"
    at = {"A": 5e-324}
    _, grads, warnings = diagnosed(program, at)
    assert grads["A"] == math.inf
    [w] = [w for w in warnings if w.kind == "nonfinite"]
    assert w.message.startswith("the gradient through sqrt(5e-324) overflows to inf: ")
    assert pointed_at(program, w) == "sqrt(A)"


def test_sum_overflow_where_paths_meet():
    # each path carries a finite gradient, 1e308; their sum is not finite
    program = "B = A*1e308; C = A*1e308; OUT = B + C"
    _, grads, warnings = diagnosed(program, {"A": 1e-300})
    assert grads["A"] == math.inf
    [w] = [w for w in warnings if w.kind == "nonfinite"]
    assert w.message == "the gradient of A overflows to inf where paths meet"
    assert pointed_at(program, w) == "A"


def test_each_origin_reported_once_in_processing_order():
    program = "OUT = sqrt(B)*0 + sqrt(A) + sqrt(A)*5"
    _, grads, warnings = diagnosed(program, {"A": 0, "B": 0})
    assert math.isnan(grads["B"]) and grads["A"] == math.inf
    nonfinite = [w for w in warnings if w.kind == "nonfinite"]
    # A's infinity arose at sqrt(A) (one node, merged), B's NaN at sqrt(B)
    assert sorted(pointed_at(program, w) for w in nonfinite) == ["sqrt(A)", "sqrt(B)"]
    # only what the requested gradients need
    _, _, warnings = diagnosed(program, {"A": 0, "B": 0}, wrt=["A"])
    assert [pointed_at(program, w) for w in warnings if w.kind == "nonfinite"] == ["sqrt(A)"]


def test_many_origins_are_capped():
    names = [f"A{i}" for i in range(engine.MAX_ORIGINS + 5)]
    program = "OUT = " + " + ".join(f"sqrt({n})" for n in names)
    _, grads, warnings = diagnosed(program, dict.fromkeys(names, 0))
    assert all(g == math.inf for g in grads.values())
    nonfinite = [w for w in warnings if w.kind == "nonfinite"]
    assert len(nonfinite) == engine.MAX_ORIGINS + 1
    assert nonfinite[-1].message == "infinite or NaN gradients arose in 5 more places"


def test_no_nonfinite_warning_when_the_requested_gradients_are_finite():
    # B's gradient would be NaN, but only A is asked for: sqrt is not even visited
    _, grads, warnings = diagnosed("OUT = A + sqrt(B^2)", {"A": 1, "B": 0}, wrt=["A"])
    assert grads == {"A": 1.0}
    assert warnings == []
    _, grads, warnings = diagnosed("OUT = A*sqrt(B)", {"A": 1, "B": 0}, wrt=["A"])
    assert grads == {"A": 0.0}
    assert [w.kind for w in warnings] == []  # sqrt(B) is not differentiated either


RISKY_UNARY = ["sqrt", "relu", "abs", "sin", "exp", "-", "^2", "*0"]


@st.composite
def risky_programs(draw):
    """Small programs that meet sqrt'(0) = inf and zero local derivatives often: inputs are 0
    or small whole numbers, and factors of 0 and squares are common."""
    n_inputs = draw(st.integers(1, 3))
    names = [f"X{i}" for i in range(n_inputs)]
    at = {n: draw(st.sampled_from([0.0, 0.0, 1.0, 2.0]), label=n) for n in names}

    def expr(depth: int) -> str:
        if depth == 0 or draw(st.integers(0, 3)) == 0:
            return draw(st.sampled_from(names))
        kind = draw(st.sampled_from(["unary", "unary", "binary"]))
        if kind == "unary":
            f, inner = draw(st.sampled_from(RISKY_UNARY)), expr(depth - 1)
            if f == "-":
                return f"-({inner})"
            if f.startswith(("^", "*")):
                return f"({inner}){f}"
            return f"{f}({inner})"
        op = draw(st.sampled_from(["+", "-", "*"]))
        return f"({expr(depth - 1)}) {op} ({expr(depth - 1)})"

    lines = []
    for i in range(draw(st.integers(0, 3))):
        lines.append(f"S{i} = {expr(3)}")
        names.append(f"S{i}")
    lines.append(f"OUT = ({names[-1]}) + ({expr(3)})")
    return "\n".join(lines), at


@property_settings(200)
@given(case=risky_programs())
def test_random_nonfinite_origins_are_where_the_value_first_went_wrong(case):
    """Every infinite or NaN requested gradient gets a warning; a warning about a NaN made at
    an operation points at a node whose own gradient is not NaN (the NaN arose in what it hands
    on, not above it), and one about paths meeting at a node whose gradient is."""
    program, at = case
    dag = compile_program(program)
    at = {n: v for n, v in at.items() if n in dag.inputs}
    try:
        result = gradcalc.gradients(dag, at=at)
    except gradcalc.EvaluationError:
        assume(False)
    output = node_of(dag, dag.output)
    targets = [dag.named[n] for n in result.gradients if dag.named[n] <= output]
    grads = result.node_gradients
    visited = engine.plan(dag, output, {str(t): t for t in targets}).visited
    warnings = engine.nonfinite_origins(dag, result.node_values, grads, visited, targets)
    bad = [t for t in targets if not math.isfinite(grads[t])]
    assert bool(warnings) == bool(bad)
    by_span: dict = defaultdict(list)
    for node in visited:
        by_span[dag.span(node)].append(node)
    for w in warnings:
        nodes = by_span[w.span]
        assert nodes, w.render()
        if "where paths meet" in w.message:
            assert any(not math.isfinite(grads[n]) for n in nodes), w.render()
        elif w.message.endswith(("nan", "× 0")) or "nan: 0 ×" in w.message:
            assert any(not math.isnan(grads[n]) for n in nodes), w.render()
