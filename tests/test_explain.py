"""``--explain``: the backward pass told step by step must be the engine's own computation (sums
equal gradients, counts equal consumers, paths multiply out to the gradient), plus the graph
views through the command line (``--graph``, ``--dot``, ``--mermaid``) and ``Value.graph()``."""

from __future__ import annotations

import json
import math
from collections import Counter

import helpers
import pytest
from helpers import HARDER, SEED, close, property_settings
from helpers import dag_programs as programs
from hypothesis import assume, example, given

import gradcalc
from gradcalc import cli, render
from gradcalc.engine import cone
from gradcalc.errors import EvaluationError
from gradcalc.explain import Explanation, explain, explanation_text
from gradcalc.ops import CONST

SETTINGS = property_settings(60)


def run(*args: str, env: dict[str, str | None] | None = None):
    """The command line with ``COLUMNS`` unset unless ``env`` sets it (the drawings then
    take the default width)."""
    return helpers.run(*args, env={"COLUMNS": None, **(env or {})})


def result_of(text: str):
    try:
        return gradcalc.gradients(text)
    except EvaluationError:
        assume(False)
        raise


# --- checks on one explanation -----------------------------------------------------------------


def node_names(dag, output: int) -> dict[str, int]:
    """Story names back to node ids (names are unique: a node's name or its source text)."""
    from gradcalc.explain import _names

    names = _names(dag, output)
    assert len(set(names.values())) == len(names), "two nodes share a name in the story"
    return {name: node for node, name in names.items()}


def brute_force_paths(dag, output: int, target: int, partial) -> list[tuple[list[int], float]]:
    """Every path from output down to target (parallel edges separately) with the product of
    the local derivatives along it, by plain enumeration."""
    found = []
    stack = [(output, [output], 1.0)]
    while stack:
        node, path, product = stack.pop()
        if node == target:
            found.append((path, product))
            continue
        for position, operand in enumerate(dag.args[node]):
            if dag.ops[operand] is not CONST and (node, position) in partial:
                stack.append((operand, [*path, operand], product * partial[(node, position)]))
    return found


def check_explanation(text: str, brute_force: bool = False) -> Explanation:
    r = gradcalc.gradients(text)
    dag, output = r.dag, r.dag.named[r.output]
    story = explain(r)
    by_name = node_names(dag, output)
    name_of = {node: name for name, node in by_name.items()}
    recorded = []
    gradcalc.gradients(text, on_step=lambda s: recorded.append((s.node, s.operands, s.partials)))
    assert story.output == r.output

    # Each node is one step; the output comes first; every step's gradient is the engine's.
    names = [s.node for s in story.steps]
    assert len(names) == len(set(names)), f"a node appears twice: {names}"
    assert names[0] == r.output and story.steps[0].gradient == 1 and not story.steps[0].received
    for step in story.steps:
        node = by_name[step.node]
        assert close(step.gradient, r.node_gradients[node]), step
        # the sum of what it received is its gradient
        if step.received:
            assert close(math.fsum(x.value for x in step.received), step.gradient), step
            assert len(step.received) == step.waited_for
        # what it sends is its gradient times the local derivative, one per operand edge
        assert Counter(t.target for t in step.sent) == Counter(
            name_of[a] for a in dag.args[node] if dag.ops[a] is not CONST and name_of[a] in names)
        for sent in step.sent:
            assert close(sent.contribution, sent.local * step.gradient)
    # Every contribution sent arrives: what each node received is what was sent to it.
    sent_to = Counter((s.node, t.target, t.contribution) for s in story.steps for t in s.sent)
    got = Counter((x.source, s.node, x.value) for s in story.steps for x in s.received)
    assert sent_to == got

    # Final gradients are the requested ones.
    for name, gradient in r.gradients.items():
        if name in names:
            assert close(story.steps[names.index(name)].gradient, gradient)
        else:
            assert gradient == 0 and story.paths.get(name, 0) == 0

    # The counting pass: a count per node, as many consumers listed as counted.
    for name, count, consumers in story.counts:
        assert count == len(consumers), (name, count, consumers)
        step = story.steps[names.index(name)]
        assert step.waited_for == count
        assert Counter(consumers) == Counter(x.source for x in step.received)
    assert sorted(n for n, _, _ in story.counts) == sorted(names[1:])
    assert story.edges_visited == sum(c for _, c, _ in story.counts)

    # Paths: counts exact; listed products multiply out and sum to the gradient.
    assert set(story.paths) == set(r.gradients)
    partial = {(node, position): local for node, operands, partials in recorded
               for position, local in enumerate(partials)}
    for name, count in story.paths.items():
        if brute_force:
            enumerated = brute_force_paths(dag, output, dag.named[name], partial)
            assert count == len(enumerated), (name, count, len(enumerated))
            if count:
                assert close(math.fsum(p for _, p in enumerated), r.gradients[name])
        listed = story.path_products.get(name)
        if listed is None:
            assert sum(story.paths.values()) > 16 or count == 0
            continue
        assert len(listed) == count
        for path, factors in listed:
            assert path[0] == r.output and path[-1] == name and len(factors) == len(path) - 1
        total = math.fsum(math.prod(factors) for _, factors in listed)
        assert close(total, r.gradients[name]), (
            f"paths to {name} sum to {total}, gradient is {r.gradients[name]}\n"
            + explanation_text(story))
        if brute_force:
            expected = Counter((tuple(name_of[n] for n in p), product) for p, product in
                               brute_force_paths(dag, output, dag.named[name], partial))
            assert Counter((tuple(path), math.prod(f)) for path, f in listed) == expected
    return story


def test_seed_explanation_sums() -> None:
    story = check_explanation(SEED, brute_force=True)
    steps = {s.node: s for s in story.steps}
    assert [(x.source, x.value) for x in steps["B"].received] == [("(B+2)", 7.0), ("(B+1)", 8.0)]
    assert steps["B"].gradient == 15 and steps["A"].gradient == 45
    assert [(t.target, t.local, t.contribution) for t in steps["B"].sent] == [("A", 3.0, 45.0)]
    assert story.paths == {"A": 2, "B": 2}
    assert story.edges_visited == 5
    assert story.counts == [("(B+2)", 1, ["OUT"]), ("(B+1)", 1, ["OUT"]),
                            ("B", 2, ["(B+2)", "(B+1)"]), ("A", 1, ["B"])]


def test_harder_explanation_sums() -> None:
    story = check_explanation(HARDER, brute_force=True)
    assert story.paths == {"A": 6, "B": 5, "C": 3, "D": 2}
    assert len(story.path_products["A"]) == 6


def test_explanation_text_of_the_seed(golden) -> None:
    text = explanation_text(explain(gradcalc.gradients(SEED)))
    golden("seed_explain.txt", text)
    assert "sum ∂OUT/∂B = 15" in text
    assert "∂OUT/∂A = 45" in text
    assert "received from (B+2): 7, from (B+1): 8; sum ∂OUT/∂B = 15" in text
    assert "sum over paths = 45" in text and "sum over paths = 15" in text


@pytest.mark.parametrize(("text", "name"), [("A = 2; OUT = A - A", "A"),
                                            ("A = 2; B = A*3; OUT = B/B + A", "B")],
                         ids=["A-A", "B/B"])
def test_path_products_with_a_repeated_operand(text: str, name: str) -> None:
    """``OUT = A - A`` uses A twice with local derivatives 1 and -1: the two listed paths
    carry one each and sum to dOUT/dA = 0. (Looking the partial up by (node, operand) once
    gave both paths -1, a sum of -2.) Same for B/B: partials 1/B and -B/B^2, sum 0."""
    r = gradcalc.gradients(text)
    story = explain(r)
    listed = story.path_products[name]
    assert len(listed) == story.paths[name] == 2
    assert r.gradients[name] == 0
    products = sorted(math.prod(f) for _, f in listed)
    assert products[0] == -products[1] != 0, listed  # one path per use, each its own factor
    total = math.fsum(math.prod(f) for _, f in listed)
    assert close(total, r.gradients[name]), (
        f"{text}: listed paths to {name} sum to {total}, but d{r.output}/d{name} = "
        f"{r.gradients[name]}\n{explanation_text(story)}")


@SETTINGS
@given(programs())
@example("A = 0.5\nB = 2\nN0 = (A - A)\nN1 = (B / B)\nOUT = ((N0 * N1)) + N0")  # repeats
def test_random_explanations_match_the_engine(text: str) -> None:
    result_of(text)
    check_explanation(text)


@property_settings(40)
@given(programs(3, 8))
def test_random_path_counts_match_brute_force(text: str) -> None:
    result_of(text)
    story = check_explanation(text, brute_force=True)
    assert all(count >= 0 for count in story.paths.values())


# --- JSON ----------------------------------------------------------------------------------------

STEP_KEYS = {"node", "gradient", "waited_for", "received", "sends"}


def check_json(data: dict) -> None:
    assert set(data) == {"output", "counts", "steps", "paths", "edges_visited", "path_products"}
    for count in data["counts"]:
        assert set(count) == {"node", "waits_for", "consumers"}
        assert count["waits_for"] == len(count["consumers"])
    for step in data["steps"]:
        assert set(step) == STEP_KEYS
        for received in step["received"]:
            assert set(received) == {"from", "value"}
        for sent in step["sends"]:
            assert set(sent) == {"to", "local_derivative", "contribution"}
    for listed in data["path_products"].values():
        for item in listed:
            assert set(item) == {"path", "factors"}
    assert isinstance(data["edges_visited"], int)
    json.dumps(data, allow_nan=False)


def test_json_form_has_the_documented_keys() -> None:
    for text in (SEED, HARDER):
        story = explain(gradcalc.gradients(text))
        data = story.to_json()
        check_json(data)
        assert json.loads(json.dumps(data)) == data
    data = explain(gradcalc.gradients(SEED)).to_json()
    assert data["output"] == "OUT" and data["paths"] == {"A": 2, "B": 2}
    b = next(s for s in data["steps"] if s["node"] == "B")
    assert b == {"node": "B", "gradient": 15.0, "waited_for": 2,
                 "received": [{"from": "(B+2)", "value": 7.0}, {"from": "(B+1)", "value": 8.0}],
                 "sends": [{"to": "A", "local_derivative": 3.0, "contribution": 45.0}]}


def test_json_huge_path_counts_are_text() -> None:
    levels = "\n".join(f"X{i} = sin(X{i - 1}) + cos(X{i - 1})" for i in range(1, 61))
    data = explain(gradcalc.gradients("X0 = 0.3\n" + levels, wrt=["X0"])).to_json()
    check_json(data)
    assert data["paths"] == {"X0": "2^60"} and data["path_products"] == {}


@property_settings(20)
@given(programs())
def test_random_json_forms(text: str) -> None:
    check_json(explain(result_of(text)).to_json())


# --- the command line ----------------------------------------------------------------------------


def test_cli_explain_text(golden) -> None:
    r = run(SEED, "--explain")
    assert r.exit_code == 0, r.stderr
    golden("seed_explain.txt", r.stdout)
    assert "sum ∂OUT/∂B = 15" in r.stdout and "∂OUT/∂A = 45" in r.stdout


def test_cli_explain_json() -> None:
    r = run(SEED, "--explain", "--format", "json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    check_json(data)
    assert data == json.loads(json.dumps(explain(gradcalc.gradients(SEED)).to_json()))


def test_cli_graph_views_match_the_goldens(golden) -> None:
    cases = [
        (("--graph=auto",), "seed_full_unicode.txt"),
        (("--graph=full",), "seed_full_unicode.txt"),
        (("--graph=auto", "--ascii"), "seed_full_ascii.txt"),
        (("--graph=compact",), "seed_compact_unicode.txt"),
        (("--graph=tree", "--ascii"), "seed_tree_ascii.txt"),
        (("--graph=tree",), "seed_tree_unicode.txt"),
        (("--dot",), "seed.dot"),
        (("--mermaid",), "seed.mmd"),
    ]
    for args, name in cases:
        r = run(SEED, *args)
        assert r.exit_code == 0, (args, r.stderr)
        golden(name, r.stdout)


def test_cli_graph_auto_follows_columns(golden) -> None:
    for columns, name in (("200", "harder_full_unicode.txt"), ("100", "harder_compact_unicode.txt"),
                          ("60", "harder_tree_unicode.txt")):
        r = run(HARDER, "--graph=auto", env={"COLUMNS": columns})
        assert r.exit_code == 0, r.stderr
        golden(name, r.stdout)


def test_cli_graph_json_carries_the_drawing(golden) -> None:
    r = run(SEED, "--graph=auto", "--format", "json")
    assert r.exit_code == 0
    data = json.loads(r.stdout)
    golden("seed_full_unicode.txt", data["graph"])
    assert data["gradients"] == {"A": 45.0, "B": 15.0}


def test_cli_views_cannot_be_combined() -> None:
    for args in (("--graph=auto", "--dot"), ("--explain", "--mermaid"), ("--dot", "--mermaid"),
                 ("--graph=tree", "--explain")):
        r = run(SEED, *args)
        assert r.exit_code == 2, args
        assert "cannot be combined" in r.stderr and r.stdout == ""


def test_cli_unknown_graph_form() -> None:
    r = run(SEED, "--graph=bogus")
    assert r.exit_code == 2
    assert "--graph=bogus: unknown form" in r.stderr and r.stdout == ""


def test_bare_graph_option_means_auto() -> None:
    assert cli.normalize_args(["x", "--graph"]) == ["x", "--graph=auto"]
    assert cli.normalize_args(["x", "--graph=tree", "--ascii"]) == ["x", "--graph=tree", "--ascii"]
    r = run(*cli.normalize_args([SEED, "--graph"]))
    assert r.exit_code == 0 and r.stdout == run(SEED, "--graph=auto").stdout


def test_value_graph_is_the_cli_drawing(golden) -> None:
    a = gradcalc.Value(2.0, requires_grad=True)
    b = a * 3
    out = (b + 1) * (b + 2)
    out.backward()
    assert (a.grad, b.grad) == (45.0, 15.0)
    program = out.to_program()
    r = run(program, "--graph=auto", env={"COLUMNS": "100"})
    assert r.exit_code == 0, r.stderr
    assert out.graph() == r.stdout
    golden("seed_full_unicode.txt", out.graph())
    assert out.graph(form="tree", ascii=True) == run(program, "--graph=tree", "--ascii").stdout
    assert out.explain() == run(program, "--explain").stdout


def test_cli_table_view_has_every_node() -> None:
    r = run(HARDER, "--graph=table", env={"COLUMNS": "120"})
    assert r.exit_code == 0, r.stderr
    for node in ("A", "B", "C", "D", "t1", "t2", "OUT"):
        assert f" {node} " in r.stdout
    view = render.graph_view(*_evaluated(HARDER), form="table")
    assert not isinstance(view, str)


def _evaluated(text: str):
    r = gradcalc.gradients(text)
    return r.dag, r.dag.named[r.output], r.node_values, r.node_gradients


def test_explanation_covers_only_the_cone() -> None:
    r = gradcalc.gradients("A = 2; B = 5; U = B*B; OUT = A*3", wrt=["A", "B"])
    story = check_explanation("A = 2; B = 5; U = B*B; OUT = A*3")
    dag = r.dag
    inside = cone(dag, [dag.named["OUT"]])
    assert not inside[dag.named["U"]]
    assert [s.node for s in story.steps] == ["OUT", "A"]
    assert explain(r).paths == {"A": 1, "B": 0}
