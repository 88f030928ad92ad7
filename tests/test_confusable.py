"""Names of any script (issue 14): NFKC as Python does, and warnings for names that look alike
(gradcalc.confusable), like rustc's confusable_idents lint."""

from __future__ import annotations

import json

import pytest
from helpers import run

import gradcalc
from gradcalc.errors import ParseError
from gradcalc.parse import parse


def warnings_of(program: str, **at: float) -> list[str]:
    return [w.message for w in gradcalc.gradients(program, at=at).warnings
            if w.kind == "confusable"]


def test_names_of_other_scripts_are_names() -> None:
    result = gradcalc.gradients("θ = 0.5; ω = 2; OUT = sin(ω*θ)")
    assert result.gradients["θ"] == pytest.approx(2 * 0.5403023058681398)
    assert result.gradients["ω"] == pytest.approx(0.5 * 0.5403023058681398)
    assert warnings_of("θ = 0.5; ω = 2; OUT = sin(ω*θ)") == []
    assert warnings_of("Δx = 2; OUT = Δx*3") == []  # a Greek letter like no Latin one


def test_names_are_nfkc_as_in_python() -> None:
    # the ligature "ﬁ" is "fi", a full-width "Ａ" is "A": one name each, as Python has it
    result = gradcalc.gradients("\ufb01 = 2; OUT = fi*3")
    assert result.gradients == {"fi": 3.0}
    assert gradcalc.gradients("\uff21 = 2; OUT = A*3").gradients == {"A": 3.0}
    program = parse("\ufb01 = 2; OUT = fi*3")
    span = program.name_span(program.statements[0])
    assert (span.start, span.end) == (0, 1)  # the name as written: one character


@pytest.mark.parametrize(("text", "column", "hint"), [
    ("OUT = x² + 1", 8, "write x^2 for a power"),
    ("OUT = x₁ + 1", 8, "write x^2 for a power, x2 or x_2 for a name"),
    ("OUT = ²", 7, "write x^2 for a power"),
])
def test_superscripts_and_subscripts_are_not_part_of_names(text: str, column: int,
                                                            hint: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse(text)
    assert caught.value.message.endswith("cannot be part of a name")
    assert caught.value.column == column and caught.value.hint is not None
    assert caught.value.hint.startswith(hint[:21])


def test_latin_and_cyrillic_twins_warn_with_both_places() -> None:
    found = warnings_of("A = 2; А = 3; OUT = A*А")
    assert found == ["А looks like A (at 1:1) but is another name: 'А' is Cyrillic, "
                     "'A' is Latin"]
    # whichever comes first
    found = warnings_of("А = 2; OUT = A*3", A=1.0)
    assert found == ["A looks like А (at 1:1) but is another name: 'A' is Latin, "
                     "'А' is Cyrillic"]
    # Greek capitals too
    assert len(warnings_of("Ρ = 2; P = 3; OUT = Ρ*P")) == 1


def test_a_name_mixing_scripts_through_a_lookalike_warns() -> None:
    assert warnings_of("dаta = 2; OUT = dаta*3") == ["dаta mixes scripts: 'а' is Cyrillic"]


def test_the_warning_reaches_the_command_line() -> None:
    done = run("A = 2; А = 3; OUT = A*А", "--format", "json")
    assert done.exit_code == 0
    kinds = [w["kind"] for w in json.loads(done.stdout)["warnings"]]
    assert "confusable" in kinds
    plain = run("A = 2; А = 3; OUT = A*А", "--format", "plain")
    assert "warning: А looks like A" in plain.stderr and "1 | A = 2; А = 3" in plain.stderr


def test_ascii_programs_pay_nothing() -> None:
    dag = gradcalc.compile_program("A = 2; B = A*3; OUT = B + 1")
    assert dag.warnings == []
