"""Every examples/*.gc states its results in `# expect:` lines; run each through the library
and the command line and check them. The README's Python session runs as a doctest."""

from __future__ import annotations

import doctest
import math
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import gradcalc
from gradcalc import cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.gc"))
EXPECT = re.compile(
    r"#\s*expect:\s*(?:d/d(?P<wrt>\w+(?:\[-?\d+\])*)|(?P<out>\w+))\s*=\s*(?P<value>\S+)\s*$")


def expectations(path: Path) -> tuple[tuple[str, float] | None, dict[str, float]]:
    output, grads = None, {}
    for line in path.read_text("utf-8").splitlines():
        m = EXPECT.search(line)
        if m is None:
            continue
        if m["wrt"]:
            grads[m["wrt"]] = float(m["value"])
        else:
            output = (m["out"], float(m["value"]))
    return output, grads


def test_there_are_examples() -> None:
    names = {p.name for p in EXAMPLES}
    assert {"seed.gc", "neuron.gc", "projectile.gc"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example(path: Path) -> None:
    output, grads = expectations(path)
    assert output is not None and grads, f"{path.name} has no '# expect:' lines"
    result = gradcalc.gradients(path.read_text("utf-8"), wrt=list(grads))
    assert result.output == output[0]
    assert math.isclose(result.value, output[1], rel_tol=1e-12)
    for name, expected in grads.items():
        assert math.isclose(result.gradients[name], expected, rel_tol=1e-12, abs_tol=1e-15), name

    printed = CliRunner().invoke(cli.app, [str(path), "--wrt", ",".join(grads)])
    assert printed.exit_code == 0, printed.stderr
    for line, (name, expected) in zip(printed.stdout.splitlines(), grads.items(), strict=True):
        shown_name, shown = line.split()
        assert shown_name == name
        assert math.isclose(float(shown), expected, rel_tol=1e-12, abs_tol=1e-15)


def test_readme_python_session() -> None:
    text = (ROOT / "README.md").read_text("utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "the README has no Python example"
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for i, block in enumerate(blocks):
        test = parser.get_doctest(block, {"gradcalc": gradcalc}, f"README[{i}]", "README.md", 0)
        assert test.examples, f"README Python block {i} has no >>> examples"
        runner.run(test)
    summary = runner.summarize(verbose=False)
    assert summary.failed == 0 and summary.attempted > 0


def test_package_docstrings() -> None:
    import gradcalc.api

    for module in (gradcalc, gradcalc.api):
        failed, attempted = doctest.testmod(module)
        assert failed == 0 and attempted > 0


def test_public_api_is_complete() -> None:
    """Everything the README documents for Python users is exported (``__all__``) and
    resolves, the lazily loaded functions included."""
    documented = {"gradients", "jacobian", "hessian", "check_gradients", "solve_line", "parse",
                  "build", "compile_program", "Value", "zero_grad", "Result", "Stats",
                  "GradcalcError", "ParseError", "NameResolutionError", "CycleError",
                  "ArityError", "InputError", "EvaluationError"}
    assert documented <= set(gradcalc.__all__)
    assert all(callable(getattr(gradcalc, name)) for name in gradcalc.__all__)
