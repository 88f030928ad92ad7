"""The command line end to end: Typer's CliRunner for most cases, the installed console script
as a real subprocess for the rest."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import console_script, run

import gradcalc
from gradcalc import cli
from gradcalc.fmt import format_number

SEED = "B = A*3; OUT = (B+1)*(B+2)"


def test_seed_plain_output() -> None:
    r = run(SEED, "--at", "A=2")
    assert (r.exit_code, r.stdout, r.stderr) == (0, "A 45\nB 15\n", "")


def test_wrt_selects_and_orders() -> None:
    assert run("OUT = A*2 + B*3", "--at", "A=1", "--at", "B=1", "--wrt", "A").stdout == "A 2\n"
    assert run("OUT = A*2 + B*3", "--at", "A=1,B=1", "--wrt", "B,A").stdout == "B 3\nA 2\n"
    assert run(SEED, "--at", "A=2", "--wrt", "B", "--wrt", "OUT").stdout == "B 15\nOUT 1\n"


def test_at_overrides_a_value_in_the_program() -> None:
    assert run("A = 5; OUT = A*A", "--at", "A=3").stdout == "A 6\n"
    assert run("A = 5; OUT = A*A").stdout == "A 10\n"


def test_of_picks_another_output() -> None:
    r = run("U = A*B; V = A+B", "--at", "A=2,B=3", "--of", "U")
    assert r.stdout == "A 3\nB 2\n"


def test_program_file_and_stdin(tmp_path: Path) -> None:
    path = tmp_path / "prog.gc"
    path.write_text("\ufeff# with a byte order mark\r\nA = 2\r\nOUT = sin(A)*A\r\n", "utf-8")
    from_file = run(str(path), "--format", "json")
    from_stdin = run("-", "--format", "json", stdin=path.read_text("utf-8"))
    assert from_file.exit_code == from_stdin.exit_code == 0
    assert json.loads(from_file.stdout)["gradients"] == json.loads(from_stdin.stdout)["gradients"]


def test_stdin_example_from_the_issue() -> None:
    r = run("-", "--at", "X=0.5", "--format", "json", stdin="OUT = sin(X)*X\n")
    data = json.loads(r.stdout)
    assert data["output"] == "OUT" and data["inputs"] == {"X": 0.5}
    import math

    assert data["value"] == math.sin(0.5) * 0.5
    assert data["gradients"]["X"] == math.cos(0.5) * 0.5 + math.sin(0.5)


def test_json_keys_and_nonfinite_numbers() -> None:
    data = json.loads(run("OUT = sqrt(A)", "--at", "A=0", "-F", "json", "--stats").stdout)
    assert set(data) == {"output", "value", "gradients", "values", "inputs", "warnings", "stats"}
    assert data["gradients"] == {"A": "inf"}
    assert {w["kind"] for w in data["warnings"]} == {"kink", "nonfinite"}
    assert data["warnings"][0]["line"] == 1 and data["warnings"][0]["column"] == 7


def test_stats_in_plain_and_json() -> None:
    text = "X0 = 0.5\n" + "\n".join(f"X{i} = sin(X{i-1}) + cos(X{i-1})" for i in range(1, 61))
    r = run(text, "--stats", "--wrt", "X0")
    assert "stats.paths.X0 2^60" in r.stdout.splitlines()
    data = json.loads(run(text, "--stats", "--wrt", "X0", "-F", "json").stdout)
    assert data["stats"]["paths"]["X0"] == "2^60"
    assert data["stats"]["visited_edges"] == 4 * 60
    small = json.loads(run(SEED, "--at", "A=2", "--stats", "-F", "json").stdout)["stats"]
    assert small["paths"] == {"A": 2, "B": 2}


def test_table_format() -> None:
    r = run(SEED, "--at", "A=2", "--format", "table", "--stats")
    assert r.exit_code == 0
    assert "OUT = 56" in r.stdout
    assert "∂OUT/∂name" in r.stdout
    rows = [line.split() for line in r.stdout.splitlines()]
    assert ["A", "2", "45"] in rows and ["B", "6", "15"] in rows
    assert "\x1b[" not in r.stdout  # not a terminal: no colour


def test_warnings_go_to_stderr() -> None:
    r = run("OUT = relu(A)", "--at", "A=0")
    assert r.stdout == "A 0\n"
    assert r.stderr.startswith("warning: relu is not differentiable at relu(0)")
    assert "relu'(0) = 0" in r.stderr


@pytest.mark.parametrize(
    ("args", "code", "first_line", "location"),
    [
        (["OUT = (A+ * 2"], 2, "error: missing operand before '*'", "<program>:1:11"),
        (["OUT = sine(A)", "--at", "A=1"], 2, "error: unknown function 'sine'", "<program>:1:7"),
        (["A = B; B = A"], 2, "error: circular definition: A → B → A", "<program>:1:12"),
        (["OUT = max(A, B, C)"], 2, "error: max takes 2 arguments (or 1 array), got 3",
         "<program>:1:7"),
        (["OUT = max(A)"], 2, "error: max takes a vector or matrix, not a number",
         "<program>:1:11"),
        (["OUT = log(A)", "--at", "A=-1"], 1, "error: log(-1) is undefined: log needs a positive "
         "argument", "<program>:1:7"),
        (["OUT = sqrt(A - 2)", "--at", "A=1"], 1, "error: sqrt(-1) is undefined: sqrt needs a "
         "non-negative argument", "<program>:1:7"),
        (["OUT = 1/(A-A)", "--at", "A=3"], 1, "error: 1 / 0 is undefined: division by zero",
         "<program>:1:7"),
        (["OUT = exp(A)", "--at", "A=1000"], 1, "error: exp(1000) overflows a 64-bit float",
         "<program>:1:7"),
        (["OUT = acosh(A)", "--at", "A=0.5"], 1, "error: acosh(0.5) is undefined: acosh needs an "
         "argument of at least 1", "<program>:1:7"),
        (["B = 2*A; OUT = B + atanh(B)", "--at", "A=0.5"], 1, "error: atanh(1) is undefined: "
         "atanh needs an argument between -1 and 1 (both excluded)", "<program>:1:20"),
        (["OUT = 1 + log1p(A)", "--at", "A=-1"], 1, "error: log1p(-1) is undefined: log1p needs "
         "an argument above -1", "<program>:1:11"),
        (["OUT = ln(A)", "--at", "A=0"], 1, "error: log(0) is undefined: log needs a positive "
         "argument", "<program>:1:7"),  # ln is log, and says so
        (["OUT = expm1(A)", "--at", "A=710"], 1, "error: expm1(710) overflows a 64-bit float",
         "<program>:1:7"),
        (["OUT = clamp(A, 1)"], 2, "error: clamp takes 3 arguments, got 2", "<program>:1:7"),
        (["OUT = clamp(A, 1, 2, 3)"], 2, "error: clamp takes 3 arguments, got 4",
         "<program>:1:7"),
        (["ln = 2; OUT = ln*A"], 2, "error: cannot assign to ln: it is a function",
         "<program>:1:1"),
        (["OUT = A*B", "--at", "A=1", "--graph=auto"], 2,
         "error: no value for input B (needed to evaluate OUT)", "<program>:1:9"),
        (["OUT = A", "--at", "A=nan"], 2, "error: --at A: 'nan' is not a finite number", None),
        (["OUT = A", "--at", "A=1e999"], 2, "error: --at A: '1e999' is not a finite number", None),
        (["OUT = A", "--at", "A"], 2, "error: --at expects NAME=VALUE, got 'A'", None),
        (["OUT = A", "--at", "Z=1"], 2, "error: the input 'Z' is not a name in the program", None),
        (["B = A*2; OUT = B", "--at", "B=1"], 2, "error: B is not an input: the program computes "
         "it (at 1:1)", None),
        (["OUT = A", "--at", "A=1", "--wrt", "Q"], 2, "error: the gradient 'Q' is not a name in "
         "the program", None),
        (["OUT = A", "--at", "A=1", "--of", "OTU"], 2, "error: the output 'OTU' is not a name in "
         "the program", None),
        (["no/such/file.gc"], 2, "error: no such file: no/such/file.gc", None),
    ],
)
def test_errors(args: list[str], code: int, first_line: str, location: str | None) -> None:
    r = run(*args)
    assert r.exit_code == code
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert lines[0] == first_line
    if location is not None:
        assert lines[1] == f"  --> {location}"
        assert "^" in lines[4]
    assert "Traceback" not in r.stderr


CLAMPED = "L = 0; H = 1; X = 2*A; OUT = 3*clamp(X, L, H)"


@pytest.mark.parametrize(("a", "value", "gradients"), [
    # A, then d/dL, d/dH, d/dA, d/dX: torch.clamp's conventions (tests/test_ops.py)
    ("0.25", 1.5, (0.0, 0.0, 6.0, 3.0)),  # inside: X gets it
    ("-1", 0.0, (3.0, 0.0, 0.0, 0.0)),  # below: L is the result
    ("1", 3.0, (0.0, 3.0, 0.0, 0.0)),  # above: H is the result
    ("0", 0.0, (0.0, 0.0, 6.0, 3.0)),  # on L: X gets it (a kink warning)
    ("0.5", 3.0, (0.0, 0.0, 6.0, 3.0)),  # on H: X gets it (a kink warning)
])
def test_clamp_end_to_end(a: str, value: float, gradients: tuple[float, ...]) -> None:
    """A function of three operands through the command line: plain, JSON, a batch line, and
    the symbolic formulas evaluated at the point."""
    r = run(CLAMPED, "--at", f"A={a}")
    assert r.exit_code == 0
    assert r.stdout.splitlines() == [f"{n} {format_number(g)}" for n, g in
                                     zip("LHAX", gradients, strict=True)]
    on_bound = a in ("0", "0.5")
    assert ("clamp is not differentiable at" in r.stderr) == on_bound
    data = json.loads(run(CLAMPED, "--at", f"A={a}", "--format", "json").stdout)
    assert data["value"] == value
    assert data["gradients"] == dict(zip("LHAX", gradients, strict=True))
    assert [w["kind"] for w in data["warnings"]] == (["kink"] if on_bound else [])
    if on_bound:
        assert (data["warnings"][0]["line"], data["warnings"][0]["column"]) == (1, 32)
    batch = json.loads(run("--batch", "-", "--format", "jsonl",
                           stdin=f"{CLAMPED}; A = {a}\n").stdout)
    assert batch["gradients"] == data["gradients"] and batch["value"] == value
    symbolic = json.loads(run(CLAMPED, "--symbolic", "--format", "json").stdout)["gradients"]
    assert symbolic["X"] == "3*heaviside(2*A - L, 1)*heaviside(H - 2*A, 1)"  # X = 2*A
    for name, expected in zip("LHX", (gradients[0], gradients[1], gradients[3]), strict=True):
        at = {"A": float(a), "L": 0.0, "H": 1.0, "X": 2 * float(a)}
        got = gradcalc.gradients(symbolic[name], at={n: v for n, v in at.items()
                                                      if n in symbolic[name]}).value
        assert got == expected, (name, symbolic[name])


def test_formulas_of_the_newer_functions() -> None:
    r = run("OUT = gelu(A) + log1p(B)*ln(B) + leaky_relu(C, 0.1)", "--symbolic")
    assert r.stdout == ("A A*exp(-A^2/2)/sqrt(2*pi) + erfc(-A/sqrt(2))/2\n"
                        "B log(B)/(B + 1) + log1p(B)/B\n"
                        "C (9*heaviside(C, 0) + 1)/10\n")
    data = json.loads(run("OUT = erf(A)*hypot(A, B)", "--symbolic", "--at", "A=0,B=1",
                          "--format", "json").stdout)
    assert data["gradients"] == {"A": "A*erf(A)/hypot(A, B) + 2*exp(-A^2)*hypot(A, B)/sqrt(pi)",
                                 "B": "B*erf(A)/hypot(A, B)"}
    assert data["gradient_values"] == {"A": 2 / math.sqrt(math.pi), "B": 0.0}


def test_missing_values_give_formulas() -> None:
    assert run("OUT = A*B", "--at", "A=1").stdout == "A B\nB 1\n"
    assert run("OUT = A*2 + B*3").stdout == "A 2\nB 3\n"
    assert run("B = A*3; OUT = (B+1)*(B+2)", "--wrt", "A").stdout == "A 18*A + 9\n"


def test_caret_under_the_spot() -> None:
    r = run("OUT = (A+ * 2")
    assert r.stderr.splitlines()[3:5] == ["1 | OUT = (A+ * 2", "  |           ^"]


def test_unreadable_input_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.gc"
    path.write_bytes(b"OUT = A\xff")
    r = run(str(path))
    assert r.exit_code == 2 and "not UTF-8" in r.stderr


def test_internal_errors_exit_70_without_traceback(monkeypatch, capsys) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(cli, "gradients", broken)
    monkeypatch.setattr(sys, "argv", ["gradcalc", "OUT = A", "--at", "A=1"])
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 70
    err = capsys.readouterr().err
    assert "internal error" in err and "boom" in err and "Traceback" not in err


def test_version_and_help() -> None:
    assert run("--version").stdout.startswith("gradcalc ")
    help_text = run("--help").stdout
    assert "Exit codes" in help_text and "--at" in help_text


# --- the installed console script, as a real process -------------------------------------


def test_console_script_as_a_subprocess(tmp_path: Path) -> None:
    env = {**os.environ, "NO_COLOR": "1"}
    ok = subprocess.run([console_script(), SEED, "--at", "A=2"], capture_output=True, text=True,
                        cwd=tmp_path, env=env, check=False)
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "A 45\nB 15\n", "")
    bad = subprocess.run([console_script(), "OUT = log(A)", "--at", "A=-1"], capture_output=True,
                         text=True, cwd=tmp_path, env=env, check=False)
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.startswith("error: log(-1) is undefined") and "Traceback" not in bad.stderr
    module = subprocess.run([sys.executable, "-m", "gradcalc", "-", "--at", "X=2"],
                            input="OUT = X^3", capture_output=True, text=True, cwd=tmp_path,
                            env=env, check=False)
    assert (module.returncode, module.stdout) == (0, "X 12\n")


def test_closed_pipe_is_quiet(tmp_path: Path) -> None:
    program = tmp_path / "wide.gc"
    lines = [f"A{i} = 1" for i in range(20000)]
    program.write_text("\n".join([*lines, "OUT = " + " + ".join(f"A{i}" for i in range(20000))]))
    cmd = f'"{console_script()}" "{program}" | head -1'
    done = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, cwd=tmp_path,
                          check=False)
    assert done.stdout == "A0 1\n"
    assert "Traceback" not in done.stderr and "Error" not in done.stderr


@pytest.mark.parametrize("unbuffered", ["", "1"])
@pytest.mark.parametrize("form", [[], ["--format", "json"], ["--format", "table"],
                                  ["--graph=table"], ["--explain"], ["--dot"]])
def test_closed_pipe_exits_141(tmp_path: Path, form: list[str], unbuffered: str) -> None:
    """A reader that goes away early (``| head -1``) ends every view with 141, also under
    PYTHONUNBUFFERED, where a short write used to drop the rest silently and exit 0."""
    program = tmp_path / "wide.gc"
    n = 20000
    program.write_text("\n".join([*(f"A{i} = {i}" for i in range(n)),
                                   "OUT = " + " + ".join(f"A{i}" for i in range(n))]))
    env = {**os.environ, "PYTHONUNBUFFERED": unbuffered}
    args = " ".join(f"'{a}'" for a in form)
    done = subprocess.run(["bash", "-c", f'"{console_script()}" "{program}" {args} | head -c 1;'
                           ' echo " ${PIPESTATUS[0]}"'], capture_output=True, text=True,
                          cwd=tmp_path, env=env, check=False)
    assert done.stdout.endswith(" 141\n"), (done.stdout[-40:], done.stderr)
    assert done.stderr == ""


def test_no_color_on_a_real_terminal_sends_no_escape_codes(tmp_path: Path) -> None:
    """Through a real pseudo-terminal: styled output without NO_COLOR, none at all with it."""
    args = ["OUT = relu(A)*B", "--at", "A=0,B=2"]
    styled = on_terminal(args, tmp_path)
    assert b"\x1b[" in styled and b"relu is not differentiable" in styled
    plain = on_terminal(args, tmp_path, NO_COLOR="1")
    assert b"\x1b[" not in plain
    assert b"OUT = 0" in plain and b"warning: relu is not differentiable" in plain


class _Terminal:
    """A stand-in for a terminal stream: collects text, says it is a TTY."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch) -> None:
    error = cli.InputError("bad value", hint="a hint")
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.delenv("NO_COLOR", raising=False)
    cli._print_diagnostic(error)
    assert terminal.text.startswith("\x1b[1;31merror\x1b[0m: bad value")

    terminal.text = ""
    monkeypatch.setenv("NO_COLOR", "1")
    cli._print_diagnostic(error)
    assert terminal.text.startswith("error: bad value") and "\x1b[" not in terminal.text


def test_default_format_is_table_on_a_terminal(monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setattr(sys, "argv", ["gradcalc", SEED, "--at", "A=2"])
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 0
    out = capsys.readouterr().out

    assert "OUT = 56" in out and "∂OUT/∂name" in out
    # NO_COLOR means no styling at all: no colour, and no bold, dim or italic either.
    assert "\x1b[" not in out


# --- what the user asked: the output, the value, options that would do nothing -------------


def test_default_output_is_the_sink_not_the_last_statement() -> None:
    r = run("OUT = B*2; B = A*3", "--at", "A=1", "--format", "json")
    data = json.loads(r.stdout)
    assert (data["output"], data["value"], data["gradients"]) == ("OUT", 6.0,
                                                                  {"A": 6.0, "B": 2.0})
    assert r.stderr == ""


def test_several_outputs_say_which_one_is_differentiated() -> None:
    r = run("U = A*B; V = A+B", "--at", "A=2,B=3", "--value")
    assert r.stdout == "V = 5\nA 1\nB 1\n"
    assert r.stderr.splitlines() == [
        "note: several outputs (U, V); differentiating V, the last assigned",
        "hint: choose the output with --of NAME; give several for the Jacobian"]
    data = json.loads(run("U = A*B; V = A+B", "--at", "A=2,B=3", "-F", "json").stdout)
    assert data["output"] == "V" and data["warnings"][0]["kind"] == "outputs"
    # naming the output (or asking for the Jacobian) leaves nothing to note
    assert run("U = A*B; V = A+B", "--at", "A=2,B=3", "--of", "U").stderr == ""
    hessian = run("U = A*B; V = A*A*B", "--at", "A=2,B=3", "--hessian")
    assert hessian.stderr.startswith("note: several outputs (U, V); differentiating V")
    assert hessian.stdout.splitlines()[0] == "A A 6"


@pytest.mark.parametrize("program", ["2+3", "OUT = 5", "C = 2; OUT = 2 + 3"])
def test_nothing_to_differentiate_still_answers(program: str) -> None:
    plain = run(program)
    assert (plain.exit_code, plain.stdout) == (0, "OUT = 5\n")
    assert plain.stderr.startswith("note: nothing to differentiate: OUT ")
    data = json.loads(run(program, "-F", "json").stdout)
    assert data["value"] == 5.0 and data["gradients"] == {}
    assert [w["kind"] for w in data["warnings"]] == ["constant"]
    table = run(program, "-F", "table", env={"NO_COLOR": "1"})
    assert table.stdout.startswith("OUT = 5")


def test_empty_line_statement_and_literal_input() -> None:
    r = run("OUT = A;; B = 2")  # B = 2 is an input: OUT is the only output
    assert (r.exit_code, r.stdout) == (0, "A 1\n")


def test_value_line_in_plain() -> None:
    assert run(SEED, "--at", "A=2", "--value").stdout == "OUT = 56\nA 45\nB 15\n"
    assert run("OUT = A*B", "--at", "A=2", "--value").stdout == "OUT = ?\nA B\nB 2\n"


def test_program_from_a_pipeline_without_dash() -> None:
    r = run("--at", "A=1", stdin="OUT = A*2\n")
    assert (r.exit_code, r.stdout) == (0, "A 2\n")


@pytest.mark.parametrize(("args", "message", "hint"), [
    (["OUT = A*2", "--wrt", ""], "--wrt was given an empty name", "write --wrt NAME"),
    (["OUT = A*2", "--wrt", "A,"], "--wrt was given an empty name", None),
    (["OUT = A*2", "--of", ""], "--of was given an empty name", None),
    (["OUT = A*2", "--at", ""], "--at was given an empty item", "write --at A=2"),
    (["examples"], "examples is a directory", "give a program file"),
    (["OUT = A", "--graph", "tree"], "got unexpected extra argument(s) (tree)",
     "write --graph=tree: the form is attached with '='"),
    (["-A*2"], "no such option: -A", "end the options with --: gradcalc [OPTIONS] -- '-A*2'"),
    (["--", "-A*2", "--at", "A=1"], "got unexpected extra argument(s) (--at A=1)",
     "put the options before --"),
    (["OUT = A", "--wtr", "A"], "no such option: --wtr", "did you mean --wrt?"),
    (["OUT = A", "--at", "A=1", "--graph", "--stats"], "--stats does not apply to --graph", None),
    (["OUT = A", "--at", "A=1", "--explain", "--value"], "--value does not apply to --explain",
     None),
    (["OUT = A", "--at", "A=1", "--dot", "--symbolic"], "--symbolic does not apply to --dot",
     None),
    (["OUT = A", "--at", "A=1", "--hessian", "--symbolic"],
     "--symbolic does not apply to --hessian", "formulas wherever an input has no value"),
    (["OUT = A", "--at", "A=1", "--ascii"], "--ascii only applies to --graph and --explain",
     None),
    (["OUT = A", "--at", "A=1", "--check", "--ascii"], "--ascii does not apply to --check", None),
    (["OUT = A", "--at", "A=1", "--graph", "--wrt", "A"], "--wrt does not apply to --graph",
     "the graph shows the gradient of every node"),
    (["OUT = A", "--at", "A=1", "--mermaid", "-F", "json"], "--format does not apply to "
     "--mermaid", None),
    (["OUT = A", "--jobs", "2"], "--jobs only applies to --batch", None),
    (["OUT = A", "--input", "jsonl", "--fail-fast"], "--input, --fail-fast only apply to --batch",
     None),
    (["--batch", "-", "--symbolic"], "--batch cannot be combined with --symbolic", None),
    (["--batch", "-", "--graph"], "--batch cannot be combined with --graph", None),
    (["--batch", "examples"], "cannot read examples: it is a directory", None),
])
def test_bad_invocations_are_refused_with_a_hint(args: list[str], message: str,
                                                 hint: str | None, root: Path,
                                                 monkeypatch) -> None:
    monkeypatch.chdir(root)
    r = run(*args)
    assert (r.exit_code, r.stdout) == (2, "")
    lines = r.stderr.splitlines()
    assert lines[0] == f"error: {message}"
    assert lines[-1].startswith("hint: ")
    if hint is not None:
        assert hint in lines[-1]


def on_terminal(args: list[str], cwd: Path, columns: int = 100, rows: int = 30,
                **env: str) -> bytes:
    """The bytes the console script writes to a real pseudo-terminal (standard output and
    error both), run with ``args`` in ``cwd``, the terminal ``columns`` x ``rows``."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    inherited = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS", "LINES")}
    proc = subprocess.Popen([console_script(), *args], stdin=subprocess.DEVNULL,
                            stdout=follower, stderr=follower, cwd=cwd,
                            env={**inherited, "TERM": "xterm", **env})
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the program ended
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    proc.wait(timeout=60)
    return b"".join(chunks)


def _screen_of(args: list[str], cwd: Path, columns: int = 100, rows: int = 30) -> list[str]:
    """What a person sees: :func:`on_terminal`'s bytes played through a terminal emulator
    (pyte), the screen's non-empty lines."""
    import pyte

    screen = pyte.Screen(columns, rows)
    pyte.ByteStream(screen).feed(on_terminal(args, cwd, columns, rows))
    return [line.rstrip() for line in screen.display if line.strip()]


def test_batch_progress_bar_leaves_a_clean_screen(tmp_path: Path) -> None:
    """A failing line's diagnostic and the results table print above the progress bar, which
    goes away at the end; they used to land on the bar's own line ("0/43 bytes -:--:--line")."""
    (tmp_path / "p.txt").write_text("OUT = A*2\nOUT = log(A)\nOUT = (A+\nOUT = A*3\n")
    screen = _screen_of(["--batch", "p.txt", "--at", "A=2"], tmp_path)
    assert screen[:2] == ["error: p.txt:3:10: the '(' at 3:7 is never closed",
                          "hint: add the missing ')'"]
    assert screen[2].split() == ["line", "output", "value", "gradients", "error"]
    assert [row.split()[0] for row in screen[3:]] == ["1", "2", "3", "4"]
    assert not any("bytes" in line for line in screen)


def test_unused_batch_options_are_named_and_failed_lines_are_not_counted() -> None:
    r = run("--batch", "-", "--at", "A=1,Q=2", stdin="OUT = A*2\n")
    assert r.exit_code == 0
    assert r.stderr.startswith("warning: --at Q matched no input of any line\n")
    failing = run("--batch", "-", "--at", "A=-1,B=1", "--wrt", "B",
                  stdin="OUT = log(A)*B\n")
    assert failing.exit_code == 1
    assert "matched no input of the lines that succeeded" in failing.stderr


@pytest.mark.parametrize(("redirect", "code", "message"), [
    ("<&-", 2, "error: missing PROGRAM"),
    ("- <&-", 2, "error: standard input is closed"),
    ("--batch - <&-", 2, "error: standard input is closed"),
    ("'OUT = A' --at A=1 >&-", 141, ""),
    ("'OUT = (' 2>&-", 2, None),
])
def test_closed_standard_streams(redirect: str, code: int, message: str | None,
                                 tmp_path: Path) -> None:
    """A closed stdin, stdout or stderr is a clear outcome, never an internal error (70)."""
    done = subprocess.run(["bash", "-c", f'"{console_script()}" {redirect}'],
                          capture_output=True, text=True, cwd=tmp_path, check=False)
    assert done.returncode == code, done.stderr
    if message is not None:
        assert done.stderr.splitlines()[:1] == ([message] if message else [])


@pytest.mark.parametrize("view", ["--check", "--hessian"])
def test_nothing_to_differentiate_in_the_matrix_views(view: str) -> None:
    r = run("2+3", view)
    assert (r.exit_code, r.stdout) == (0, "OUT = 5\n")
    assert r.stderr.startswith("note: nothing to differentiate")


def test_check_refuses_a_named_intermediate() -> None:
    r = run(SEED, "--at", "A=2", "--check", "--wrt", "A,B")
    assert (r.exit_code, r.stdout) == (2, "")
    assert r.stderr.startswith("error: B is not an input: only inputs can be checked")


# --- --at takes constant expressions (issue 14) ---------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    ("pi/4", 0.7853981633974483),  # math.pi / 4
    ("1/3", 1 / 3),
    ("2^-10", 2.0 ** -10),
    ("-pi", -3.141592653589793),
    ("sqrt(2)*e", 2 ** 0.5 * 2.718281828459045),
    ("atan2(1, 2)", 0.4636476090008061),  # math.atan2(1, 2): a comma inside parentheses
    ("(2)", 2.0),
    ("-(0.5)", -0.5),
])
def test_at_takes_constant_expressions(value: str, expected: float) -> None:
    done = run("OUT = A*1", "--at", f"A={value},B=1", "--of", "OUT", "--format", "json")
    assert done.exit_code == 2  # B is not in the program: the value itself was fine
    assert "'B' is not a name in the program" in done.stderr
    done = run("OUT = A*1", "--at", f"A={value}", "--format", "json")
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout)["value"] == expected


@pytest.mark.parametrize(("value", "code", "message", "caret"), [
    ("B*2", 2, "a value cannot use names: B", "1 | B*2\n  | ^"),
    ("1/0", 1, "1 / 0 is undefined: division by zero", "1 | 1/0\n  | ^^^"),
    ("2*", 2, "missing operand after '*'", "1 | 2*\n  |   ^"),
    ("log(-1)", 1, "log needs a positive argument", "1 | log(-1)\n  | ^^^^^^^"),
    ("C = 2", 2, "a value is one expression, not statements", "1 | C = 2\n  | ^^^^^"),
    ("f(x) = x", 2, "a value is one expression, not statements", "1 | f(x) = x"),
    ("sin(1, 2)", 2, "sin takes 1 argument, got 2", "1 | sin(1, 2)"),
])
def test_at_expression_errors_are_the_programs_with_their_place(
        value: str, code: int, message: str, caret: str) -> None:
    done = run("OUT = A*3", "--at", f"A={value}")
    assert done.exit_code == code
    assert message in done.stderr and "--> --at A:1:" in done.stderr, done.stderr
    assert caret in done.stderr, done.stderr


def test_at_expressions_apply_to_a_batch(tmp_path: Path) -> None:
    path = tmp_path / "lines.txt"
    path.write_text("OUT = sin(T)\nOUT = cos(T)\n", "utf-8")
    done = run("--batch", str(path), "--at", "T=pi/2", "--format", "plain")
    assert done.exit_code == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith("1 OUT 1 T=6.12")


def test_constant_value_from_python() -> None:
    import gradcalc

    assert gradcalc.constant_value("2^-10") == 2.0 ** -10
    with pytest.raises(gradcalc.InputError):
        gradcalc.constant_value("A + 1")


# --- shell completion ----------------------------------------------------------------------


@pytest.mark.parametrize(("shell", "marker"), [
    ("bash", "complete -o default -F _gradcalc_completion gradcalc"),
    ("zsh", "compdef _gradcalc_completion gradcalc"),
    ("fish", "complete --command gradcalc"),
])
def test_show_completion_prints_the_script_for_each_shell(shell: str, marker: str) -> None:
    # The shell is detected from the parent process; the tests name it instead, which Typer
    # allows when detection is off as the command starts (a fresh process).
    code = "import sys; sys.argv[0] = 'gradcalc'; from gradcalc.__main__ import main; main()"
    r = subprocess.run([sys.executable, "-c", code, "--show-completion", shell],
                       capture_output=True, text=True, timeout=60,
                       env={**os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"})
    assert r.returncode == 0, r.stderr
    assert marker in r.stdout and "_GRADCALC_COMPLETE" in r.stdout


@pytest.mark.parametrize(("env", "expected"), [
    ({"_GRADCALC_COMPLETE": "complete_bash", "COMP_WORDS": "gradcalc --for", "COMP_CWORD": "1"},
     ["--format"]),
    ({"_GRADCALC_COMPLETE": "complete_bash", "COMP_WORDS": "gradcalc --format j",
      "COMP_CWORD": "2"}, ["json", "jsonl"]),
    ({"_GRADCALC_COMPLETE": "complete_bash", "COMP_WORDS": "gradcalc --input ",
      "COMP_CWORD": "2"}, ["text", "jsonl"]),
])
def test_completion_offers_options_and_their_values(env: dict[str, str],
                                                    expected: list[str]) -> None:
    r = run(env=env)
    assert r.exit_code == 0, r.stderr
    assert r.stdout.split() == expected


# --- --plot ----------------------------------------------------------------------------------


def test_plot_draws_the_output_and_its_derivative() -> None:
    r = run("OUT = X^2", "--plot", "X=-1:1", "--ascii", env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert lines[-1].startswith("** OUT (left axis)") and "dOUT/dX (right axis)" in lines[-1]
    assert "-1.0" in r.stdout and "1.0" in r.stdout


def test_plot_marks_the_points_that_failed() -> None:
    r = run("OUT = log(X)", "--plot", "X=-1:1/9", "--ascii", env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.stderr
    assert "x failed (5)" in r.stdout


def test_two_plots_draw_a_heat_map() -> None:
    r = run("OUT = X^2 - Y^2", "--plot", "X=-2:2", "--plot", "Y=-1:1", "--ascii",
            env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.stderr
    assert "gradient: steepest ascent" in r.stdout and "OUT from" in r.stdout


def test_plot_to_an_svg_file(tmp_path: Path) -> None:
    import xml.etree.ElementTree as ElementTree

    path = tmp_path / "plot.svg"
    r = run("OUT = relu(X)*X", "--plot", "X=-1:1:0.25", "--output", str(path))
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "" and r.stderr == f"wrote {path} ({path.stat().st_size:,} bytes)\n"
    root = ElementTree.fromstring(path.read_text("utf-8"))
    assert root.tag.endswith("svg")


@pytest.mark.parametrize(("args", "message"), [
    (("--plot", "X=0:1", "--wrt", "X"), "--plot cannot be combined with --wrt"),
    (("--plot", "X=0:1", "--graph"), "--plot cannot be combined with --graph"),
    (("--plot", "X=0:1", "--format", "json"), "--plot cannot be combined with --format"),
    (("--plot", "X=0:1", "--at", "X=0:1:0.5"), "--plot cannot be combined with a range"),
    (("--output", "p.svg"), "--output writes a --plot"),
    (("--plot", "X=0:1", "--output", "p.pdf"), "a plot is written as .svg or .png"),
    (("--plot", "X"), "--plot expects NAME=START:STOP"),
    (("--plot", "X=0:1", "--plot", "Y=0:1", "--plot", "Z=0:1"), "one range (curves) or two"),
    (("--plot", "Q=0:1"), "'Q' is not a name in the program"),
])
def test_plot_refusals(args: tuple[str, ...], message: str) -> None:
    r = run("OUT = X*Y + Z", "--at", "Y=1,Z=2", *args)
    assert r.exit_code == 2, r.stdout
    assert message in r.stderr
