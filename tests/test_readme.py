"""Every ``$ gradcalc ...`` example in README.md is run, and what it prints must be exactly the
text the README shows under it, so the README cannot drift from what really happens.

The examples run through bash (pipes and redirections included) in a scratch folder that sees
the repository's ``examples/``,
with standard output and standard error together as a person sees them, off a terminal (so
the formats are the pipeline defaults) and with ``NO_COLOR``. A last line ``...`` in the README
stands for the rest of a long output: what is shown must then be a prefix of what is printed.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import console_script

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Example:
    line: int  # where the command is in README.md
    command: str
    expected: list[str]
    elided: bool  # the README shows only the beginning (a last line "...")


def readme_examples(text: str) -> list[Example]:
    """The ``$ `` commands of the README's fenced blocks, each with the lines under it (up to
    the next command or the end of the block)."""
    examples: list[Example] = []
    in_block = False
    current: tuple[int, str] | None = None
    output: list[str] = []

    def close() -> None:
        nonlocal current, output
        if current is not None:
            elided = bool(output) and output[-1] == "..."
            examples.append(Example(current[0], current[1],
                                    output[:-1] if elided else output, elided))
        current, output = None, []

    indent = 0  # a block inside a list item is indented: so are its lines
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.lstrip(" ")
        if stripped.startswith("```"):
            close()
            in_block = not in_block
            indent = len(line) - len(stripped)
        elif in_block and stripped.startswith("$ "):
            close()
            current = (number, stripped[2:])
        elif current is not None:
            output.append(line[indent:])
    return examples


EXAMPLES = readme_examples((ROOT / "README.md").read_text("utf-8"))


def test_the_readme_has_examples() -> None:
    assert len(EXAMPLES) >= 10
    # every example is a gradcalc command (possibly in a pipeline)
    assert all(re.search(r"(^|\| )gradcalc ", e.command) for e in EXAMPLES), EXAMPLES


def session_transcript(example: Example, tmp_path: Path) -> list[str]:
    """A ``$ gradcalc --repl`` example is a session: its ``>>> `` lines are typed into the real
    thing on a pseudo-terminal (100 columns, ``NO_COLOR``, ``TERM=dumb``), and what the
    terminal shows, typed lines included, is the transcript."""
    import io

    import pexpect

    env = {**os.environ, "NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "100", "LINES": "40",
           "XDG_DATA_HOME": str(tmp_path / "data")}
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    arguments = example.command.split()[1:]
    child = pexpect.spawn(console_script(), arguments, cwd=str(tmp_path), env=env,
                          encoding="utf-8", timeout=60, dimensions=(40, 100))
    shown = io.StringIO()
    child.logfile_read = shown
    child.expect_exact(">>> ")
    for line in example.expected:
        if line.startswith(">>> "):
            child.sendline(line[4:])
            child.expect_exact(">>> ")
    child.sendeof()
    child.expect(pexpect.EOF)
    lines = shown.getvalue().replace("\r\n", "\n").split("\n")
    while lines and lines[-1].strip() in ("", ">>>"):
        lines.pop()  # the last prompt, left by Ctrl-D
    return [line.rstrip() for line in lines]


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"README:{e.line}" for e in EXAMPLES])
def test_readme_example_prints_what_the_readme_shows(example: Example, tmp_path: Path) -> None:
    if example.command.startswith("gradcalc --repl"):
        expected = [line.rstrip() for line in example.expected]
        printed = session_transcript(example, tmp_path)
        assert printed == expected, (
            f"README.md:{example.line}: $ {example.command}\n--- README shows\n"
            + "\n".join(expected) + "\n--- the session shows\n" + "\n".join(printed))
        return
    bin_dir = str(Path(console_script()).parent)
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update(NO_COLOR="1", PATH=bin_dir + os.pathsep + env.get("PATH", ""))
    (tmp_path / "examples").symlink_to(ROOT / "examples")  # files the examples write stay here
    done = subprocess.run(["bash", "-c", example.command + " 2>&1"], cwd=tmp_path, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=120, check=False)
    printed = [line.rstrip() for line in done.stdout.splitlines()]
    expected = [line.rstrip() for line in example.expected]
    if example.elided:
        printed = printed[: len(expected)]
    assert printed == expected, (
        f"README.md:{example.line}: $ {example.command}\n--- README shows\n"
        + "\n".join(expected) + "\n--- gradcalc prints\n" + "\n".join(printed))
