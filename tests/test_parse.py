"""The grammar and the parser: structure, precedence, spans, deep input, syntax errors."""

from __future__ import annotations

import pytest

import gradcalc
from gradcalc.ast import Apply, Assign, Name, Num, Output, walk
from gradcalc.errors import ParseError


def value(program: str, **at: float) -> float:
    dag = gradcalc.compile_program(program)
    return gradcalc.gradients(dag, at={k: v for k, v in at.items() if k in dag.inputs}).value


def only_expr(text: str):
    (statement,) = gradcalc.parse(text).tree()
    return statement.expr


@pytest.mark.parametrize(
    ("program", "expected"),
    [
        ("OUT = -A^2", -9.0),  # power binds tighter than unary minus
        ("OUT = 2^-1", 0.5),  # a signed exponent
        ("OUT = 2^3^2", 512.0),  # right-associative
        ("OUT = 2**3**2", 512.0),
        ("OUT = A - 1 - 1", 1.0),  # left-associative
        ("OUT = 12 / A / 2", 2.0),
        ("OUT = 1 + 2*A", 7.0),
        ("OUT = (1 + 2)*A", 9.0),
        ("OUT = -A*-A", 9.0),
        ("OUT = +A", 3.0),
        ("OUT = --A", 3.0),
        ("OUT = A×2 − 1 ÷ 2 · 2", 5.0),  # typographic operators
    ],
)
def test_precedence_and_associativity(program: str, expected: float) -> None:
    assert value(program, A=3) == expected


@pytest.mark.parametrize(
    ("text", "number"),
    [("2", 2.0), ("2.5", 2.5), (".5", 0.5), ("5.", 5.0), ("1e-3", 0.001), ("2.5E+4", 25000.0)],
)
def test_number_forms(text: str, number: float) -> None:
    expr = only_expr(f"OUT = {text}")
    assert isinstance(expr, Num) and expr.value == number and expr.text == text


def test_statement_separators_comments_and_blank_lines() -> None:
    text = "# header\n\nA = 2 ; B = A*3  # trailing comment\r\n\n\\\nOUT = (B+1)*\\\n (B+2)\n"
    program = gradcalc.parse(text)
    assert [s.name for s in program.statements] == ["A", "B", "OUT"]
    assert gradcalc.gradients(program).value == 56.0


def test_bare_expression_is_the_output_named_out() -> None:
    program = gradcalc.parse("B = A*3\n(B+1)*(B+2)")
    assert isinstance(program.tree()[-1], Output)
    r = gradcalc.gradients(program, at={"A": 2})
    assert (r.output, r.value) == ("OUT", 56.0)


def test_bare_output_avoids_a_taken_name() -> None:
    r = gradcalc.gradients("OUT = A*2; OUT*3", at={"A": 1})
    assert (r.output, r.value) == ("OUT2", 6.0)


def test_spans_are_one_based_and_cover_the_expression() -> None:
    text = "A = 2\nOUT = log(A) + B*3"
    (_, out) = gradcalc.parse(text).tree()
    assert isinstance(out, Assign)
    add = out.expr
    assert isinstance(add, Apply) and add.op == "add"
    assert (add.span.line, add.span.column) == (2, 7)
    assert text[add.span.start : add.span.end] == "log(A) + B*3"
    log, mul = add.args
    assert text[log.span.start : log.span.end] == "log(A)"
    assert text[log.op_span.start : log.op_span.end] == "log"
    assert text[mul.span.start : mul.span.end] == "B*3"
    assert (mul.span.line, mul.span.column) == (2, 16)
    assert text[out.name_span.start : out.name_span.end] == "OUT"


def test_negative_literals_fold_so_that_assignments_are_inputs() -> None:
    dag = gradcalc.build(gradcalc.parse("A = -0.5; B = -(2); OUT = A*B"))
    assert dag.inputs.keys() == {"A", "B"}
    assert dag.values[dag.inputs["A"]] == -0.5
    assert dag.values[dag.inputs["B"]] == -2.0


def test_deep_parentheses_do_not_recurse() -> None:
    depth = 100_000
    expr = only_expr("OUT = " + "(" * depth + "A" + ")" * depth)
    assert isinstance(expr, Name) and expr.id == "A"
    assert gradcalc.gradients("OUT = " + "(" * depth + "A*2" + ")" * depth,
                              at={"A": 1}).gradients == {"A": 2.0}


def test_deep_unary_and_calls_do_not_recurse() -> None:
    depth = 50_000
    expr = only_expr("OUT = " + "-" * depth + "A")
    assert sum(1 for node in walk(expr) if isinstance(node, Apply)) == depth
    assert gradcalc.gradients("OUT = " + "-" * (depth + 1) + "A", at={"A": 2}).value == -2.0
    expr = only_expr("OUT = " + "sin(" * depth + "A" + ")" * depth)
    assert sum(1 for _ in walk(expr)) == depth + 1


def test_long_sum_parses() -> None:
    n = 100_000
    expr = only_expr("OUT = " + " + ".join(f"A{i}" for i in range(n)))
    assert sum(1 for node in walk(expr) if isinstance(node, Name)) == n


def syntax_error(text: str) -> ParseError:
    with pytest.raises(ParseError) as info:
        gradcalc.parse(text)
    return info.value


@pytest.mark.parametrize(
    ("text", "line", "column", "message", "hint"),
    [
        ("OUT = (A+ * 2", 1, 11, "missing operand before '*'", "two operators"),
        ("OUT = A+*2", 1, 9, "missing operand before '*'", None),
        ("OUT = A +", 1, 10, "missing operand after '+'", None),
        ("OUT = (A+2", 1, 11, "the '(' at 1:7 is never closed", "add the missing ')'"),
        ("A = 1\nOUT = (A+2\nC = 3", 2, 11, "the '(' at 2:7 is never closed", None),
        ("OUT = A+2)", 1, 10, "unmatched ')'", None),
        ("OUT = 2A", 1, 8, "unexpected name A", "write 2*A to multiply"),
        ("OUT = A B", 1, 9, "unexpected name B", "operator"),
        ("OUT = A == B", 1, 9, "unexpected '='", "no comparisons"),
        ("A = B = 2", 1, 7, "unexpected '='", "only one '='"),
        ("2 = A", 1, 3, "unexpected '='", "left side"),
        ("OUT = A $ 2", 1, 9, "unexpected character '$'", None),
        ("OUT = x² + 1", 1, 8, "'²' cannot be part of a name", "write x^2 for a power"),
        ("OUT = sin()", 1, 11, "missing operand before ')'", None),
        ("A + 1; OUT = 2", 1, 1, "a bare expression can only be the last statement", None),
        ("OUT = 1e999", 1, 7, "the number 1e999 is too large", None),
    ],
)
def test_syntax_errors_point_at_the_problem(
    text: str, line: int, column: int, message: str, hint: str | None
) -> None:
    err = syntax_error(text)
    assert (err.line, err.column) == (line, column)
    assert err.message == message
    if hint is not None:
        assert err.hint is not None and hint in err.hint
    lines = err.render().splitlines()
    source_line = text.splitlines()[line - 1]
    assert lines[0] == f"error: {message}"
    assert lines[1] == f"  --> <program>:{line}:{column}"
    assert lines[3] == f"{line} | {source_line}"
    assert lines[4].index("^") - lines[4].index("|") - 2 == column - 1
    assert err.kind == "syntax" and err.exit_code == 2


@pytest.mark.parametrize("text", ["", "   \n\n# only a comment\n", ";;"])
def test_empty_programs_are_errors(text: str) -> None:
    assert syntax_error(text).message == "the program is empty"


def test_caret_stays_visible_on_a_very_long_line() -> None:
    text = "OUT = " + " + ".join(f"A{i}" for i in range(5000)) + " + * 2"
    rendered = syntax_error(text).render()
    assert max(len(line) for line in rendered.splitlines()) < 200
    excerpt, carets = rendered.splitlines()[3:5]
    assert excerpt[carets.index("^")] == "*"


def test_no_eval_of_python() -> None:
    err = syntax_error("OUT = __import__('os').system('echo hacked')")
    assert err.kind == "syntax"


@pytest.mark.parametrize(("text", "column", "name"), [
    ("OUT = A\u200d", 8, "ZERO WIDTH JOINER"),
    ("OUT = A \u202e+ 1", 9, "RIGHT-TO-LEFT OVERRIDE"),
    ("OUT = \u2066A", 7, "LEFT-TO-RIGHT ISOLATE"),
])
def test_invisible_and_bidirectional_characters_stay_errors(text: str, column: int,
                                                            name: str) -> None:
    err = syntax_error(text)
    assert err.column == column and err.message.startswith("unexpected character")
    assert err.hint is not None and name in err.hint and "delete it" in err.hint
