"""The interactive session (``gradcalc --repl``): :class:`gradcalc.repl.Session` line by line,
then the real thing through a pseudo-terminal (pexpect): the prompt, answers, errors under the
line typed, Ctrl-C, ``\\`` continuation, completion, history kept between sessions, Ctrl-D."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest
from helpers import console_script, run

import gradcalc
from gradcalc.errors import GradcalcError
from gradcalc.repl import COMMANDS, Reply, Session, history_path


def feed(session: Session, *lines: str) -> Reply:
    reply = Reply()
    for line in lines:
        reply = session.feed(line)
    return reply


def errors(reply: Reply) -> list[GradcalcError]:
    return [d for d in reply.diagnostics if isinstance(d, GradcalcError)]


# --- the session, line by line -------------------------------------------------------------


def test_statements_then_an_expression() -> None:
    session = Session()
    reply = feed(session, "B = A*3", "A = 2", "(B+1)*(B+2)")
    assert reply.result is not None and not reply.diagnostics
    assert reply.result.value == 56.0
    assert reply.result.gradients["A"] == 45.0 and reply.result.gradients["B"] == 15.0


def test_a_redefinition_replaces_and_dependents_follow() -> None:
    session = Session()
    feed(session, "A = 2", "B = A*3", "C = B + 1")
    assert feed(session, "C").result.value == 7.0  # type: ignore[union-attr]
    feed(session, "B = A*10")
    assert feed(session, "C").result.value == 21.0  # type: ignore[union-attr]
    assert list(session.statements) == ["A", "C", "B"]  # a redefinition goes last


def test_several_statements_on_one_line() -> None:
    session = Session()
    reply = feed(session, "A = 2; B = A*A; B + 1")
    assert reply.result is not None and reply.result.value == 5.0


def test_an_error_points_into_the_line_typed() -> None:
    session = Session()
    feed(session, "A = 2", "B = A*3")
    (error,) = errors(session.feed("B*2 + foo(A)"))
    assert error.message == "unknown function 'foo'"
    assert error.source is not None and error.source.name == "<input>"
    assert (error.span.line, error.span.column) == (1, 7)  # type: ignore[union-attr]
    assert "1 | B*2 + foo(A)" in error.render()


def test_a_statement_that_breaks_the_program_is_refused_and_forgotten() -> None:
    session = Session()
    feed(session, "A = 2", "B = A*3")
    (error,) = errors(session.feed("A = B + 1"))
    assert error.message == "circular definition: A → B → A" or "circular" in error.message
    assert session.statements == {"A": "A = 2", "B": "B = A*3"}
    (error,) = errors(session.feed("C = C + 1"))
    assert (error.span.line, error.span.column) == (1, 5)  # type: ignore[union-attr]
    assert "C" not in session.statements


def test_a_syntax_error_keeps_the_session() -> None:
    session = Session()
    feed(session, "A = 2")
    (error,) = errors(session.feed("1 +"))
    assert error.message == "missing operand after '+'"
    assert feed(session, "A*3").result.value == 6.0  # type: ignore[union-attr]


def test_at_wrt_and_of() -> None:
    session = Session()
    feed(session, "U = A*B", "V = A + B", ":at A=2, B=pi/2", ":wrt B")
    reply = feed(session, "U*V")
    assert reply.result is not None and list(reply.result.gradients) == ["B"]
    assert reply.result.gradients["B"] == pytest.approx(2 * (2 + 3.141592653589793 / 2)
                                                        + 2 * 3.141592653589793 / 2 * 1)
    feed(session, ":of U")
    assert feed(session, "U*V").result.output == "U"  # type: ignore[union-attr]
    assert feed(session, ":at").text == "A=2.0, B=1.5707963267948966\n"


def test_values_for_names_the_program_does_not_use_wait() -> None:
    session = Session()
    feed(session, ":at A=1, W=[1, 2]")
    reply = feed(session, "sigmoid(A)")
    assert reply.result is not None and not errors(reply)
    assert feed(session, "sum(W*A)").result.value == 3.0  # type: ignore[union-attr]


def test_views_of_the_last_expression() -> None:
    session = Session()
    assert errors(session.feed(":graph"))[0].message == ":graph needs an expression first"
    feed(session, "A = 2", "A^3")
    for view in (":graph", ":explain", ":symbolic", ":hessian", ":check"):
        reply = session.feed(view)
        assert reply.view == view and reply.result is not None, view
    formula = session.feed(":symbolic").result.formulas["A"]  # type: ignore[union-attr]
    assert formula.text == "A = 2; 3*A^2"  # A is set in the program: the formula says so


def test_save_writes_a_program_gradcalc_reads_back(tmp_path: Path) -> None:
    session = Session()
    path = tmp_path / "model.gc"
    feed(session, ":at X=0.5", "B = X*3", "sin(B)*X")
    assert session.feed(f":save {path}").text == f"saved 3 lines to {path}\n"
    assert path.read_text("utf-8") == "X = 0.5\nB = X*3\nsin(B)*X\n"
    r = run(str(path), "--format", "json")
    assert r.exit_code == 0, r.stderr
    want = gradcalc.gradients("B = X*3; OUT = sin(B)*X", at={"X": 0.5})
    assert f'"value": {want.value!r}' in r.stdout


def test_load_reads_statements(tmp_path: Path) -> None:
    path = tmp_path / "m.gc"
    path.write_text("A = 2\nB = A*3\n", "utf-8")
    session = Session()
    assert session.feed(f":load {path}").text == f"loaded 2 statements from {path}\n"
    assert feed(session, "B + 1").result.value == 7.0  # type: ignore[union-attr]
    (error,) = errors(session.feed(f":load {tmp_path / 'missing.gc'}"))
    assert error.message.startswith("cannot read")


def test_clear_help_quit_and_unknown_commands() -> None:
    session = Session()
    feed(session, "A = 2", ":at B=1")
    assert session.feed(":clear").text == "cleared\n"
    assert not session.statements and not session.at
    text = session.feed(":help").text
    assert all(command in text for command in COMMANDS)
    assert session.feed(":quit").done
    (error,) = errors(session.feed(":grpah"))
    assert error.message == "unknown command :grpah" and error.hint == "did you mean :graph?"


def test_blank_lines_and_comments_do_nothing() -> None:
    session = Session()
    for line in ("", "   ", "# a comment"):
        reply = session.feed(line)
        assert reply.result is None and not reply.diagnostics and not reply.text


def test_history_lives_under_the_data_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", "/tmp/data")
    assert history_path() == Path("/tmp/data/gradcalc/history")
    monkeypatch.setenv("XDG_DATA_HOME", "relative")  # ignored, as the XDG specification says
    monkeypatch.setenv("HOME", "/home/someone")
    assert history_path() == Path("/home/someone/.local/share/gradcalc/history")


# --- the command line ----------------------------------------------------------------------


def test_repl_with_a_program_is_refused() -> None:
    r = run("--repl", "A*2")
    assert r.exit_code == 2 and "--repl cannot be combined with PROGRAM" in r.stderr
    r = run("--repl", "--graph")
    assert r.exit_code == 2 and "--repl cannot be combined with --graph" in r.stderr


def test_no_program_off_a_terminal_reads_standard_input_as_before() -> None:
    r = subprocess.run([console_script()], stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.startswith("error: the program is empty")
    r = subprocess.run([console_script(), "--at", "A=2"], input="OUT = A*3\n",
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout == "A 3\n"


# --- through a pseudo-terminal -------------------------------------------------------------


def spawn(tmp_path: Path, *args: str) -> pexpect.spawn:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "NO_COLOR": "1",
           "COLUMNS": "100", "LINES": "40", "TERM": "dumb"}
    child = pexpect.spawn(console_script(), list(args), env=env, encoding="utf-8",
                          timeout=30, dimensions=(40, 100))
    child.expect_exact(">>> ")
    return child


def interrupt(child: pexpect.spawn) -> None:
    """Ctrl-C, and the new prompt. CPython's readline acts on a SIGINT only when it next
    waits for a key: one that lands while a key is being handled waits for the next event, so
    the test presses Ctrl-C again if no prompt came (a person never types that fast)."""
    for _ in range(10):
        child.sendcontrol("c")
        if child.expect_exact([">>> ", pexpect.TIMEOUT], timeout=2) == 0:
            return
    raise AssertionError("Ctrl-C did not bring a new prompt")


def ask(child: pexpect.spawn, line: str) -> str:
    child.sendline(line)
    child.expect_exact(">>> ")
    return child.before.replace("\r\n", "\n")


def test_a_session_through_a_terminal(tmp_path: Path) -> None:
    child = spawn(tmp_path, "--repl", "--at", "A=2")
    assert "B = A*3" in ask(child, "B = A*3")
    answer = ask(child, "(B+1)*(B+2)")
    assert "OUT = 56" in answer and "45" in answer and "15" in answer
    error = ask(child, "B*2 + foo(A)")
    assert "error: unknown function 'foo'" in error
    assert "1 | B*2 + foo(A)\n  |       ^^^" in error
    child.send("A*")  # Ctrl-C drops the line being typed, and the session goes on
    child.expect_exact("A*")
    interrupt(child)
    child.sendline("A + \\")  # a line ending with \\ goes on
    child.expect_exact("... ")
    child.sendline("B")
    child.expect_exact(">>> ")
    assert "OUT = 8" in child.before
    child.send("sigm\t")  # completion of a function's name
    child.expect_exact("sigmoid")
    assert "0.9975273768433653" in ask(child, "(A*3)")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    history = (tmp_path / "data" / "gradcalc" / "history").read_text("utf-8")
    assert "(B+1)*(B+2)" in history and "sigmoid(A*3)" in history


def test_history_is_there_in_the_next_session(tmp_path: Path) -> None:
    first = spawn(tmp_path, "--repl")
    ask(first, "2*21")
    first.sendeof()
    first.expect(pexpect.EOF)
    second = spawn(tmp_path, "--repl")
    second.send("\x1b[A")  # the up arrow recalls the last line of the last session
    second.sendline("")
    second.expect_exact(">>> ")
    assert "OUT = 42" in second.before
    second.sendline(":quit")
    second.expect(pexpect.EOF)


def test_gradcalc_alone_on_a_terminal_starts_a_session(tmp_path: Path) -> None:
    child = spawn(tmp_path)
    assert "OUT = 6" in ask(child, "2*3")
    child.sendline(":quit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_a_one_shot_command_never_loads_the_session() -> None:
    # readline and the session are imported only when a session starts
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "gradcalc", "OUT = A*2",
                        "--at", "A=1"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    imported = {line.split("|")[-1].strip() for line in r.stderr.splitlines()}
    assert "gradcalc.cli" in imported
    assert "readline" not in imported and "gradcalc.repl" not in imported


def test_plot_in_a_session(tmp_path: Path) -> None:
    child = spawn(tmp_path, "--repl")
    assert ":plot needs an expression first" in ask(child, ":plot X=0:1")
    ask(child, "sin(3*X)*Y")
    ask(child, ":at Y=2")
    drawn = ask(child, ":plot X=-1:1")
    assert "OUT (left axis)" in drawn and "∂OUT/∂X (right axis)" in drawn
    assert "error: no value for input X" in ask(child, ":plot Y=0:1")
    ask(child, ":at X=0.5")
    drawn = ask(child, ":plot Y=0:1")  # a range replaces the value given to the name
    assert "OUT (left axis)" in drawn and "∂OUT/∂Y (right axis)" in drawn
    child.sendline(":quit")
    child.expect(pexpect.EOF)


@pytest.mark.parametrize(("line", "message"), [
    (":load /", "cannot read '/': not a regular file"),
    (":load /dev/null", "not a regular file"),
    (":load a\x00b", "embedded null byte"),
    (":save a\x00b", "cannot write 'a\\x00b'"),
    (":load", ":load needs a file name"),
    (":save", ":save needs a file name"),
])
def test_files_that_cannot_be_read_or_written(line: str, message: str) -> None:
    (error,) = errors(Session().feed(line))
    assert message in error.message


def test_load_refuses_a_file_over_the_program_limit(tmp_path: Path) -> None:
    from gradcalc.parse import PROGRAM_LIMIT

    path = tmp_path / "big.gc"
    path.write_text("A = 1\n" * (PROGRAM_LIMIT // 6 + 1), "utf-8")
    (error,) = errors(Session().feed(f":load {path}"))
    assert "over the" in error.message
