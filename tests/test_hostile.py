"""Hostile inputs (issue 11): a bad line, value or environment gives a clear error with the
documented exit code, never a traceback or exit 70, and never takes the other lines with it."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from helpers import console_script

import gradcalc
from gradcalc.batch import solve_line


def gradcalc_run(*args: str, stdin: str = "", env: dict[str, str] | None = None,
                 ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([console_script(), *args], input=stdin, capture_output=True,
                          text=True, timeout=60, env={**os.environ, **(env or {})})


def test_a_hostile_jsonl_line_fails_alone_and_the_batch_goes_on():
    lines = [
        json.dumps({"program": "OUT = A*2", "at": {"A": 0}}).replace("0}", "1" + "0" * 400 + "}"),
        '{"program": "OUT = A*2", "at": {"A": 1' + "0" * 5000 + "}}",
        "[" * 100_000,
        json.dumps({"program": "OUT = A*3", "at": {"A": 1}}),
    ]
    r = gradcalc_run("--batch", "-", "--input", "jsonl", "--format", "jsonl",
                     stdin="\n".join(lines) + "\n")
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr
    results = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["line"] for x in results] == [1, 2, 3, 4]
    messages = [x["error"]["message"] if x["error"] else None for x in results]
    assert "too large for a 64-bit float" in messages[0]
    assert "over 4,300 digits" in messages[1]
    assert "too deeply" in messages[2]
    assert messages[3] is None and results[3]["gradients"] == {"A": 3.0}


def test_a_value_beyond_float_range_is_an_input_error_everywhere():
    with pytest.raises(gradcalc.InputError, match="too large for a 64-bit float"):
        gradcalc.gradients("OUT = A*2", at={"A": 10**400})
    with pytest.raises(gradcalc.InputError, match="too large for a 64-bit float"):
        gradcalc.Value(10**400)
    with pytest.raises(gradcalc.InputError, match="too large for a 64-bit float"):
        gradcalc.hessian("OUT = A*2", at={"A": 10**400})
    result = solve_line("OUT = A*2", {"A": 10**400})  # documented never to raise
    assert "too large" in result["error"]["message"]


def test_jobs_above_the_cpu_count_are_capped_with_a_note():
    r = gradcalc_run("--batch", "-", "--jobs", "99999999999999999999", "--at", "A=1",
                     "--format", "jsonl", stdin="OUT = A*2\nOUT = A*3\n")
    assert r.returncode == 0, r.stderr
    cpus = os.cpu_count() or 1
    assert r.stderr.startswith(f"note: --jobs 99999999999999999999 capped at {cpus}")
    assert [json.loads(x)["value"] for x in r.stdout.splitlines()] == [2.0, 3.0]


@pytest.mark.parametrize("columns", ["²", "٣", "-5", "abc", "99999999999999999999"])
def test_an_unusable_columns_is_ignored(columns):
    r = gradcalc_run("OUT=A*2", "--at", "A=1", "--graph", env={"COLUMNS": columns})
    assert r.returncode == 0, r.stderr
    assert "OUT=2" in r.stdout


# --- the grammar cache is untrusted -----------------------------------------------------------

def _cache_file(folder) -> tuple:
    import importlib

    parse = importlib.import_module("gradcalc.parse")
    r = gradcalc_run("OUT = A*2", "--at", "A=1", env={"XDG_CACHE_HOME": str(folder)})
    assert r.returncode == 0, r.stderr
    [path] = (folder / "gradcalc").glob("tables-*.json")
    return path, parse


def _crafted(parse, tables_of) -> str:
    """A cache file with a valid checksum around tables changed by ``tables_of``."""
    return json.dumps({"checksum": parse._checksum(tables_of), "tables": tables_of})


@pytest.mark.parametrize("damage", ["null", "list", "missing", "checksum", "empty-states",
                                    "empty-token", "fifo", "symlink-zero", "huge"])
def test_a_damaged_or_hostile_cache_is_rebuilt(tmp_path, damage):
    path, parse = _cache_file(tmp_path)
    good = json.loads(path.read_text())["tables"]
    path.unlink()
    if damage == "null":
        path.write_text("null")
    elif damage == "list":
        path.write_text("[1, 2]")
    elif damage == "missing":
        path.write_text(_crafted(parse, {"format": good["format"]}))
    elif damage == "checksum":
        path.write_text(json.dumps({"checksum": "0" * 8, "tables": good}))
    elif damage == "empty-states":
        path.write_text(_crafted(parse, {**good, "states": []}))
    elif damage == "empty-token":
        path.write_text(_crafted(parse, {**good, "tokens": "(?P<X>a*)"}))
    elif damage == "fifo":
        os.mkfifo(path)
    elif damage == "symlink-zero":
        path.symlink_to("/dev/zero")
    else:
        path.write_bytes(b" " * (5 * 1024 * 1024))
    r = gradcalc_run("OUT = A*2", "--at", "A=1", env={"XDG_CACHE_HOME": str(tmp_path)})
    assert (r.returncode, r.stdout) == (0, "A 2\n"), r.stderr
    # the file was replaced by a good one: the next run reads it
    assert path.is_file() and not path.is_symlink()
    assert parse._read_cache(path, good["grammar"]) is not None


@pytest.mark.parametrize(("home", "xdg"), [("", ""), ("/", ""), ("", "relative/cache")])
def test_no_usable_cache_folder_means_no_cache(tmp_path, home, xdg):
    r = subprocess.run([console_script(), "OUT = A*2", "--at", "A=1"], capture_output=True,
                       text=True, timeout=60, cwd=tmp_path,
                       env={**os.environ, "HOME": home, "XDG_CACHE_HOME": xdg})
    assert (r.returncode, r.stdout) == (0, "A 2\n"), r.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written under the current directory


# --- output that cannot be written ------------------------------------------------------------

@pytest.mark.parametrize("args", [["OUT = A*2", "--at", "A=1"],
                                  ["OUT = A*2", "--at", "A=1", "--format", "json"],
                                  ["--version"],
                                  ["--batch", "-", "--at", "A=1"]])
def test_a_full_output_is_an_io_error_not_a_bug(args):
    with open("/dev/full", "w") as full:
        r = subprocess.run([console_script(), *args], input="OUT = A*3\n", stdout=full,
                           stderr=subprocess.PIPE, text=True, timeout=60)
    assert r.returncode == 74, r.stderr
    assert r.stderr == ("error: cannot write the results to standard output: "
                        "No space left on device\n")


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["OUT = A*2", "--at", "A=1"]])
def test_a_closed_pipe_is_141_for_help_and_version_too(args):
    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written: deterministic EPIPE
    try:
        r = subprocess.run([console_script(), *args], stdout=write, stderr=subprocess.PIPE,
                           text=True, timeout=60)
    finally:
        os.close(write)
    assert r.returncode == 141, r.stderr
    assert r.stderr == ""


# --- Ctrl-C -----------------------------------------------------------------------------------

def _interrupted_batch(tmp_path, jobs: str, interrupts: int) -> tuple[int, bytes, bytes]:
    """Start a long batch in a process group of its own (as a shell starts a foreground job),
    wait for its first result line, then send SIGINT to the whole group, as Ctrl-C on a
    terminal does. Returns the exit code, the output and the diagnostics; fails if a process
    of the group outlives the command."""
    import signal
    import time

    problems = tmp_path / "problems.txt"
    problems.write_text("".join(f"B = A*{i}; OUT = tanh(B+1)*(B+2)^2 + sin(B*{i})\n"
                                for i in range(100_000)))
    out_path = tmp_path / "out.jsonl"
    with open(out_path, "wb") as out:
        child = subprocess.Popen([console_script(), "--batch", str(problems), "--jobs", jobs,
                                  "--at", "A=1", "--format", "jsonl"],
                                 stdout=out, stderr=subprocess.PIPE, start_new_session=True)
        try:
            while out_path.stat().st_size == 0 and child.poll() is None:
                time.sleep(0.01)
            for _ in range(interrupts):
                os.killpg(child.pid, signal.SIGINT)
            _, err = child.communicate(timeout=60)
        finally:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
    survivors = True
    for _ in range(500):  # the workers must be gone once the command has ended
        try:
            os.killpg(child.pid, 0)
        except ProcessLookupError:
            survivors = False
            break
        time.sleep(0.01)
    assert not survivors, "worker processes outlived the interrupted command"
    return child.returncode, out_path.read_bytes(), err


@pytest.mark.parametrize(("jobs", "interrupts"), [("2", 1), ("2", 2), ("1", 1)])
def test_ctrl_c_stops_a_batch_cleanly(tmp_path, jobs, interrupts):
    code, out, err = _interrupted_batch(tmp_path, jobs, interrupts)
    assert code == 130, err
    assert b"Traceback" not in err and b"KeyboardInterrupt" not in err, err
    assert out.endswith(b"\n")  # the lines written are complete, in order
    lines = [json.loads(line) for line in out.splitlines()]
    assert [x["line"] for x in lines] == list(range(1, len(lines) + 1))
    assert 0 < len(lines) < 100_000


# --- the size of a program or a batch line ------------------------------------------------------

def test_an_endless_standard_input_is_refused_at_once():
    with open("/dev/zero", "rb") as zero:
        r = subprocess.run([console_script(), "-"], stdin=zero, capture_output=True,
                           text=True, timeout=60)
    assert r.returncode == 1, r.stderr
    assert r.stderr == ("error: <stdin> is more than 1 MiB, over the limit of 1 MiB per "
                        "program\nhint: raise the limit with --max-size\n")


def test_an_endless_batch_line_of_nul_bytes_stops_the_batch():
    r = subprocess.run([console_script(), "--batch", "/dev/zero", "--format", "jsonl"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    [line] = [json.loads(x) for x in r.stdout.splitlines()]
    assert line["line"] == 1 and line["error"]["kind"] == "limit"
    assert "the input is not text" in r.stderr


def test_a_program_file_over_the_limit_names_its_size_and_the_option(tmp_path):
    program = tmp_path / "big.gc"
    program.write_text("OUT = " + "+".join(["A"] * 100))  # 205 bytes
    r = gradcalc_run(str(program), "--at", "A=1", "--max-size", "200")
    assert r.returncode == 1
    assert r.stderr == (f"error: {program} is 205 bytes, over the limit of 200 bytes per "
                        "program\nhint: raise the limit with --max-size 1K\n")
    r = gradcalc_run(str(program), "--at", "A=1", "--max-size", "205", "--format", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["gradients"] == {"A": 100}
    r = gradcalc_run("-", "--at", "A=1", "--max-size", "204", stdin=program.read_text())
    assert (r.returncode, r.stdout) == (1, "")
    assert "<stdin> is more than 204 bytes" in r.stderr
    r = gradcalc_run(program.read_text(), "--at", "A=1", "--max-size", "200")
    assert r.returncode == 1 and "the program is 205 bytes" in r.stderr


def test_a_batch_line_over_the_limit_fails_alone(tmp_path):
    lines = ["OUT = A*2", "OUT = " + "+".join(["A"] * 100), "OUT = A*3\r", "OUT = A*" + "4" * 22]
    r = gradcalc_run("--batch", "-", "--at", "A=1", "--max-size", "30", "--format", "jsonl",
                     stdin="\n".join(lines) + "\n")
    assert r.returncode == 1, r.stderr
    results = [json.loads(x) for x in r.stdout.splitlines()]
    assert [x["line"] for x in results] == [1, 2, 3, 4]
    assert results[1]["error"] == {"message": "the line is longer than the limit of 30 bytes",
                                   "line": None, "column": None, "kind": "limit", "hint": None}
    # a CR LF ending does not count, and a line of exactly the limit is read
    assert [x["value"] for x in results[::2]] == [2.0, 3.0]
    assert results[3]["value"] == float("4" * 22)


@pytest.mark.parametrize(("option", "message"), [
    ("2T", "--max-size '2T' is not a size"), ("0", "--max-size 0 is out of range"),
    ("2G", "--max-size 2G is out of range"), ("-1", "--max-size '-1' is not a size")])
def test_a_bad_max_size_is_a_usage_error(option, message):
    r = gradcalc_run("OUT = A*2", "--at", "A=1", "--max-size", option)
    assert r.returncode == 2
    assert r.stderr.startswith(f"error: {message}\n")


def test_the_library_refuses_a_program_over_the_limit_unless_raised():
    text = "OUT = " + "+".join(["A"] * 600_000)
    with pytest.raises(gradcalc.LimitError, match="over the limit of 1 MiB per program"):
        gradcalc.parse(text)
    with pytest.raises(gradcalc.LimitError) as refused:
        gradcalc.gradients(text, at={"A": 1})
    assert "compile_program(text, max_size=" in str(refused.value.hint)
    dag = gradcalc.compile_program(text, max_size=2 << 20)
    assert gradcalc.gradients(dag, at={"A": 1}).gradients == {"A": 600_000}
    wide = "OUT = A*1" + "\u00b7" * 10  # 20 bytes of UTF-8 for 10 characters
    with pytest.raises(gradcalc.LimitError):
        gradcalc.parse(wide, max_size=25)
    with pytest.raises(gradcalc.LimitError, match="ceiling of 1 GiB"):
        gradcalc.parse("OUT = A", max_size=(1 << 30) + 1)


def _chain(length: int) -> str:
    return "\n".join(["X0 = A", *(f"X{i} = sin(X{i - 1})" for i in range(1, length)),
                      f"OUT = X{length - 1}*2"])


def test_formulas_for_every_name_of_a_long_chain_stop_at_the_budget():
    # Every gradient of an 8,000-step chain is a product over the rest of the chain: the names
    # each formula uses add up to 32 million. This took 33 s and 1.7 GB; the budget counts
    # them and stops at once (about 200 MB), with the hint to ask for fewer gradients.
    dag = gradcalc.compile_program(_chain(8000))
    with pytest.raises(gradcalc.LimitError, match="grew past 4,000,000 parts") as stopped:
        gradcalc.gradients(dag, symbolic=True)
    assert "--wrt" in str(stopped.value.hint) or "wrt=" in str(stopped.value.hint)
    # the same chain, one gradient asked for: a short formula
    r = gradcalc.gradients(dag, symbolic=True, wrt=["X7990"])
    assert r.formulas["X7990"].expression.count("cos(") == 9
