"""The builder: names, inputs, order, merging, topological ids, and the name errors."""

from __future__ import annotations

import pytest
from helpers import dag_programs, property_settings
from hypothesis import given
from hypothesis import strategies as st

import gradcalc
from gradcalc.errors import ArityError, CycleError, GradcalcError, ShapeError
from gradcalc.errors import NameResolutionError as Names


def build(text: str) -> gradcalc.Dag:
    return gradcalc.compile_program(text)


def test_ids_are_a_topological_order() -> None:
    dag = build("OUT = B*C + sin(B); C = B^2; B = A*3")
    for node, operands in enumerate(dag.args):
        assert all(operand < node for operand in operands)


def test_statements_in_any_order() -> None:
    r = gradcalc.gradients("OUT = (B+1)*(B+2); B = A*3", at={"A": 2}, of="OUT")
    assert (r.output, r.value, r.gradients) == ("OUT", 56.0, {"A": 45.0, "B": 15.0})


def test_output_is_the_last_assigned_name() -> None:
    assert build("B = A*3; OUT = B+1; C = B*2").output == "C"


def test_inputs_free_and_with_values() -> None:
    dag = build("A = 2; OUT = A*B + C")
    assert list(dag.inputs) == ["A", "B", "C"]
    assert [dag.values[dag.inputs[n]] for n in "ABC"] == [2.0, None, None]


def test_operands_keep_repetitions() -> None:
    dag = build("OUT = B*B; B = A+1")
    out = dag.named["OUT"]
    assert dag.args[out] == (dag.named["B"], dag.named["B"])


def test_unnamed_common_subexpressions_are_merged() -> None:
    dag = build("OUT = sin(A*3) + cos(A*3) + 3")
    muls = [i for i, op in enumerate(dag.ops) if op.name == "mul"]
    consts = [i for i, op in enumerate(dag.ops) if op.name == "const"]
    assert len(muls) == 1 and len(consts) == 1
    assert dag.merged == 1


def test_named_nodes_are_never_merged() -> None:
    dag = build("B = A*3; C = A*3; OUT = B*C")
    assert dag.named["B"] != dag.named["C"]
    r = gradcalc.gradients(dag, at={"A": 2})
    assert r.gradients == {"A": 36.0, "B": 6.0, "C": 6.0}


def test_alias_is_a_node_of_its_own() -> None:
    dag = build("C = B; B = A*2; OUT = C*B")
    assert dag.named["C"] != dag.named["B"]
    assert dag.ops[dag.named["C"]].name == "id"
    r = gradcalc.gradients(dag, at={"A": 1})
    # OUT = C*B with C = B: dOUT/dC = B = 2, dOUT/dB = C + (through C) B = 4.
    assert r.gradients == {"A": 8.0, "B": 4.0, "C": 2.0}


def test_constants_are_values_not_inputs() -> None:
    dag = build("OUT = pi*R^2")
    assert list(dag.inputs) == ["R"]
    gradient = gradcalc.gradients(dag, at={"R": 1}).gradients["R"]
    assert gradient == 2 * 3.141592653589793


def error(text: str, cls: type[GradcalcError]) -> GradcalcError:
    with pytest.raises(cls) as info:
        build(text)
    assert info.value.exit_code == 2
    return info.value


@pytest.mark.parametrize(
    ("text", "cls", "position", "message", "hint"),
    [
        ("A = 1\nA = 2", Names, (2, 1), "A is assigned twice", "first assigned at 1:1"),
        ("pi = 3", Names, (1, 1), "cannot assign to the constant pi", None),
        ("sin = 3", Names, (1, 1), "cannot assign to sin: it is a function", None),
        ("OUT = sine(A)", Names, (1, 7), "unknown function 'sine'", "did you mean sin?"),
        ("OUT = SIN(A)", Names, (1, 7), "unknown function 'SIN'", "did you mean sin?"),
        ("OUT = frobnicate(A)", Names, (1, 7), "unknown function 'frobnicate'",
         "known functions:"),
        ("OUT = sin + 1", Names, (1, 7), "sin is a function, not a value", "sin(...)"),
        ("B = 2; OUT = B(3)", Names, (1, 14), "B is a variable, not a function",
         "B*(...)"),
        ("OUT = pi(3)", Names, (1, 7), "pi is a constant, not a function", None),
        ("OUT = max(A, B, C)", ArityError, (1, 7), "max takes 2 arguments (or 1 array), got 3",
         "max(x, y)"),
        ("OUT = max(A)", ShapeError, (1, 11), "max takes a vector or matrix, not a number",
         "A is an input, a number unless its value is a vector or matrix"),
        ("OUT = max(2)", ShapeError, (1, 11), "max takes a vector or matrix, not a number",
         "max([1, 2, 3])"),
        ("OUT = sin(A, B)", ArityError, (1, 7), "sin takes 1 argument, got 2", "sin(x)"),
        ("A = A + 1", CycleError, (1, 5), "A is defined in terms of itself", "new name"),
        ("A = B*2\nB = C+1\nC = A", CycleError, (3, 5), "circular definition: A → B → C → A", None),
        ("OUT = B; B = OUT", CycleError, (1, 14), "circular definition: OUT → B → OUT", None),
    ],
)
def test_name_errors(text: str, cls: type[GradcalcError], position: tuple[int, int],
                     message: str, hint: str | None) -> None:
    err = error(text, cls)
    assert (err.line, err.column) == position
    assert err.message == message
    if hint is not None:
        assert err.hint is not None and hint in err.hint


def test_long_chains_of_statements_build_without_recursion() -> None:
    # 20,000 statements written in reverse order: the ordering pass is a loop, not recursion.
    n = 20_000
    lines = [f"X{i} = X{i - 1}*1 + 0" for i in range(n, 0, -1)]
    dag = build("\n".join(lines))
    # The output is the name nothing uses (written first here), not the last assigned.
    assert dag.output == f"X{n}" and dag.outputs == [f"X{n}"]
    r = gradcalc.gradients(dag, at={"X0": 2}, wrt=["X0"])
    assert r.gradients == {"X0": 1.0} and r.value == 2.0


@pytest.mark.parametrize(("program", "outputs", "output"), [
    ("OUT = B*2; B = A*3", ["OUT"], "OUT"),  # statements in any order: the sink is the output
    ("B = A*3; OUT = B*2", ["OUT"], "OUT"),
    ("U = A*B; V = A+B", ["U", "V"], "V"),  # several sinks: the last assigned of them
    ("V = A+B; U = A*B", ["V", "U"], "U"),
    ("OUT = A;; B = 2", ["OUT"], "OUT"),  # B = 2 is an input, not an output
    ("OUT = 5", [], "OUT"),  # only an input: it is its own output
    ("2+3", ["OUT"], "OUT"),
    ("X = 3*A; A*2", ["X", "OUT"], "OUT"),
    ("B = A; OUT = B", ["OUT"], "OUT"),
])
def test_default_output_is_the_name_nothing_uses(program: str, outputs: list[str],
                                                  output: str) -> None:
    dag = build(program)
    assert dag.outputs == outputs and dag.output == output


def test_operands_read_as_tuples_from_flat_arrays() -> None:
    dag = build("OUT = atan2(B, A) + B*B; B = -A")
    b, out = dag.named["B"], dag.named["OUT"]
    assert dag.args[b] == (dag.inputs["A"],)
    assert dag.args[-1] == dag.args[out] and dag.args[0] == ()
    assert dag.args[1:3] == [dag.args[1], dag.args[2]]
    assert list(dag.args) == [dag.args[i] for i in range(len(dag))]
    assert len(dag.args) == len(dag) and dag.edge_count == sum(map(len, dag.args))
    with pytest.raises(IndexError):
        dag.args[len(dag)]
    with pytest.raises(IndexError):
        dag.args[-len(dag) - 1]


@given(text=dag_programs(min_statements=10, max_statements=40), repeat=st.integers(1, 3))
@property_settings(100)
def test_merging_leaves_no_two_unnamed_nodes_alike(text: str, repeat: int) -> None:
    # The same statements again under new names: every unnamed sub-expression of the copies
    # must merge into the first one's (only named roots are new).
    lines = text.split("\n")
    copies = [line.replace(" = ", f"_{k} = ", 1) for k in range(1, repeat) for line in lines]
    dag = build("\n".join(lines + copies))
    seen: dict[tuple[str, tuple[int, ...]], int] = {}
    for node in range(len(dag)):
        if dag.names[node] is not None or not dag.args[node]:
            continue
        key = (dag.ops[node].name, dag.args[node])
        assert key not in seen, f"nodes {seen[key]} and {node} are both {key}"
        seen[key] = node


def test_merging_a_large_program_matches_a_dictionary() -> None:
    # 30,000 nodes make the table grow many times; terms repeat every 97 statements.
    lines = ["X0 = 0.5"] + [f"X{i} = sin(X{i - 1}*{i % 97}) + cos(A*{i % 97})"
                            for i in range(1, 6000)]
    dag = build("\n".join(lines))
    reference: dict[tuple[str, tuple[int, ...]], int] = {}
    duplicates = 0
    for node in range(len(dag)):
        if dag.names[node] is None and dag.args[node]:
            key = (dag.ops[node].name, dag.args[node])
            duplicates += key in reference
            reference.setdefault(key, node)
    assert duplicates == 0
    # cos(A*k) and A*k repeat: 97 distinct of each, everything else is new
    assert sum(1 for op in dag.ops if op.name == "cos") == 97
    assert dag.merged == 2 * (5999 - 97)
