"""The exit statuses: one table (gradcalc.status) that --help, the errors and the README agree
with."""

from __future__ import annotations

import re

from gradcalc import errors
from gradcalc.cli import EPILOG
from gradcalc.status import ExitStatus, help_text


def test_help_lists_every_status_in_order(root):
    text = help_text()
    assert text in EPILOG
    positions = [text.index(f"{status.value} {status.meaning}") for status in ExitStatus]
    assert positions == sorted(positions)


def test_the_readme_table_has_exactly_the_statuses(root):
    readme = (root / "README.md").read_text("utf-8")
    table = readme[readme.index("| code | meaning |"):]
    table = table[:table.index("\n\n")]
    codes = [int(code) for code in re.findall(r"^\| (\d+) \|", table, re.MULTILINE)]
    assert codes == [status.value for status in ExitStatus]


def test_every_error_class_exits_with_a_documented_status():
    classes = [getattr(errors, name) for name in errors.__all__]
    codes = {cls.exit_code for cls in classes
             if isinstance(cls, type) and issubclass(cls, errors.GradcalcError)}
    assert codes == {ExitStatus.FAILED, ExitStatus.USAGE}
