"""The ``--batch`` side of the command: reading many problems, writing one result per line in
the chosen format as each comes, progress on a terminal, and the exit code of the whole batch.
The solving itself is :mod:`gradcalc.batch`'s; this module only plumbs and prints."""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO

import typer

from gradcalc.cli import (
    Format,
    InputKind,
    _console,
    _fail,
    _file_size,
    _print_diagnostic,
    _print_rich,
    _unicode_stdout,
    _usage,
)
from gradcalc.errors import Diagnostic, GradcalcError, InputError
from gradcalc.serialize import flat
from gradcalc.status import ExitStatus

if TYPE_CHECKING:
    from rich.progress import Progress

__all__ = ["run_batch"]


def run_batch(path: str, kind: InputKind, at: dict[str, float], wrt: list[str] | None,
              of: str | None, output_format: Format | None, jobs: int, fail_fast: bool,
              limit: int) -> None:
    """``gradcalc --batch PATH``: every problem of the file (``-``: standard input) solved and
    written in input order; exit 1 when a line failed, 2 when the input is not text."""
    from gradcalc import batch

    fmt = output_format or (Format.table if sys.stdout.isatty() else Format.jsonl)
    if fmt is Format.json:
        raise _usage("--format json is for a single program", "with --batch use jsonl")
    jobs = _capped_jobs(jobs)
    stream = _open_batch(path)
    if jobs > 1 and fmt in (Format.jsonl, Format.plain):
        _run_parts(stream, path, kind, at, wrt, of, fmt, jobs, fail_fast, limit)
        return
    name = "<stdin>" if path == "-" else path
    size = None if path == "-" else _file_size(stream)
    failed = False
    stopped: GradcalcError | None = None
    unused = _Unused(at, wrt)  # options no line used are reported: a typo must not pass
    with stream, _progress(size) as progress, contextlib.ExitStack() as stack:
        writer = _batch_writer(fmt, progress, wrt, eager=not _regular_file(stream))
        counted = _Counted(stream, progress.advance) if progress is not None else stream
        results = batch.solve_stream(batch.problems(counted, kind is InputKind.jsonl, limit),
                                     at, wrt, of, jobs, limit)
        # Closed on the way out, also on Ctrl-C: worker processes end before this one does.
        stack.enter_context(contextlib.closing(results))
        try:
            for result in results:
                unused.update(result)
                if result["error"] is not None:
                    failed = True
                    if fmt in (Format.table, Format.plain):
                        _report_line_error(name, kind, result)
                writer.write(result)
                if failed and fail_fast:
                    break
        except batch.BinaryInput as exc:  # the lines before it are answered
            stopped = exc
        writer.close()
    _finish(unused, failed, stopped)


def _run_parts(stream: BinaryIO, path: str, kind: InputKind, at: dict[str, float],
               wrt: list[str] | None, of: str | None, fmt: Format, jobs: int, fail_fast: bool,
               limit: int) -> None:
    """:func:`run_batch` in ``jsonl`` or ``plain`` with several jobs: the workers solve and
    write parts of the input (of a regular file they also read them, each its own part) and
    this process passes their text on."""
    from gradcalc import batch

    failed = False
    stopped: GradcalcError | None = None
    unused = _Unused(at, wrt)
    out = sys.stdout
    regular = _regular_file(stream)
    by_parts = regular and path != "-"  # workers open the file by its name
    structured = kind is InputKind.jsonl
    name = "<stdin>" if path == "-" else path
    with stream, _progress(_file_size_of(path) if by_parts else None) as progress, \
            contextlib.ExitStack() as stack:
        if progress is not None:
            out = progress.stdout
        if by_parts:
            parts = batch.solve_parts(path, _line_form(fmt), structured, at, wrt, of, jobs, limit)
        else:
            parts = batch.solve_chunks(batch.problems(stream, structured, limit), _line_form(fmt),
                                       at, wrt, of, jobs, limit)
        stack.enter_context(contextlib.closing(parts))
        for part in parts:
            unused.update({"inputs": part.inputs, "gradients": part.gradients})
            if _write_part(part, out, name, kind, fmt, fail_fast):
                failed = True
            if progress is not None:
                progress.advance(part.size)
            if not regular:
                out.flush()  # a pipe's reader sees each chunk's answers as they come
            stopped = part.stopped
            if stopped is not None or (fail_fast and part.failures):
                break
        out.flush()
    _finish(unused, failed, stopped)


def _write_part(part: Any, out: TextIO, name: str, kind: InputKind, fmt: Format,
                fail_fast: bool) -> bool:
    """Write a part's texts (up to its first failure with ``fail_fast``); whether one failed."""
    if not part.failures:
        out.write("".join(part.texts))
        return False
    for index, text in enumerate(part.texts):
        failure = part.failures.get(index)
        if failure is not None and fmt is Format.plain:
            out.flush()  # the line's report on standard error comes after what came before
            _report_line_error(name, kind, failure)
        out.write(text)
        if failure is not None and fail_fast:
            break
    return True


def _file_size_of(path: str) -> int | None:
    try:
        return os.path.getsize(path)
    except OSError:
        return None


def _finish(unused: _Unused, failed: bool, stopped: GradcalcError | None) -> None:
    """The end of a batch: unused options reported; exit 2 when the input was not text,
    1 when a line failed."""
    unused.report(failed)
    if stopped is not None:
        _fail(stopped)
    if failed:
        raise typer.Exit(ExitStatus.FAILED)


def _capped_jobs(jobs: int) -> int:
    cpus = os.cpu_count() or 1
    if jobs <= cpus:
        return jobs
    _print_diagnostic(Diagnostic(
        "capped", f"--jobs {jobs} capped at {cpus}, the number of CPUs",
        hint="more workers than CPUs only add processes and memory"))
    return cpus


def _regular_file(stream: BinaryIO) -> bool:
    """Whether ``stream`` is a regular file (reading it never waits on another program)."""
    try:
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (OSError, ValueError, AttributeError):
        return False


def _open_batch(path: str) -> BinaryIO:
    if os.path.isdir(path):
        raise _usage(f"cannot read {path}: it is a directory", "give --batch a file, or '-'")
    if path == "-":
        if sys.stdin is None:
            raise _usage("standard input is closed", "give --batch a file")
        return sys.stdin.buffer
    try:
        return open(path, "rb")  # closed by the caller's with
    except OSError as exc:
        raise _usage(f"cannot read {path}: {exc.strerror}", "check the --batch path") from None


def _report_line_error(name: str, kind: InputKind, result: dict[str, Any]) -> None:
    """A failed line on standard error, ``FILE:LINE:COLUMN: message``, for people."""
    error = result["error"]
    where = str(result["line"])
    if error["column"] and kind is InputKind.text:
        where = f"{error['line']}:{error['column']}"
    elif error["column"]:  # a position inside the line's "program" string
        where += f": program {error['line']}:{error['column']}"
    hint = error.get("hint")
    if hint is None and error["kind"] == "limit":
        hint = "raise the limit with --max-size"
    _print_diagnostic(InputError(f"{name}:{where}: {error['message']}", hint=hint))


class _Unused:
    """The ``--at`` inputs and ``--wrt`` names that no line has used so far."""

    def __init__(self, at: dict[str, float], wrt: list[str] | None) -> None:
        self.at, self.wrt = set(at), set(wrt or ())

    def update(self, result: dict[str, Any]) -> None:
        if self.at:
            self.at.difference_update(result["inputs"])
        if self.wrt:  # (an array's gradients are grouped under its name)
            names = result["gradients"]  # (a set of names, from a worker's part)
            self.wrt.difference_update(names)
            if isinstance(names, dict):
                self.wrt.difference_update(flat(names))

    def report(self, failed: bool) -> None:
        for option, unused, what in (("--at", self.at, "input"), ("--wrt", self.wrt, "name")):
            if unused:
                # A line that failed tells nothing of its names: say what is known.
                lines = "the lines that succeeded" if failed else "any line"
                _print_diagnostic(Diagnostic(
                    "unused",
                    f"{option} {', '.join(sorted(unused))} matched no {what} of {lines}",
                    hint=f"check the spelling; {option} applies only to the lines that have "
                    f"that {what}"))


class _BatchWriter:
    """Writes each batch result as it comes; one subclass per format. With ``eager`` (input
    that may make the batch wait: a pipe, a terminal) each result is flushed, so a downstream
    command sees it at once; from a file, output is flushed as its buffer fills and at the
    end (a system call per line cost a tenth of the time)."""

    def __init__(self, out: TextIO, eager: bool = True) -> None:
        self.out = out
        self.eager = eager

    def write(self, result: dict[str, Any]) -> None:
        self.out.write(self.text(result))
        if self.eager:
            self.out.flush()

    def text(self, result: dict[str, Any]) -> str:
        raise NotImplementedError

    def close(self) -> None:
        self.out.flush()


class _Lines(_BatchWriter):
    """``jsonl`` and ``plain``: one line of text per result (:func:`batch.line_writer`)."""

    def __init__(self, out: TextIO, fmt: Format, eager: bool = True) -> None:
        from gradcalc.batch import line_writer

        super().__init__(out, eager)
        self.line = line_writer(_line_form(fmt))

    def text(self, result: dict[str, Any]) -> str:
        return self.line(result)


def _line_form(fmt: Format) -> str:
    """What :func:`batch.line_writer` calls the format: JSON escaped to ASCII where standard
    output could not write every character, the same bytes as ``cli._dumps``."""
    if fmt is Format.plain:
        return "plain"
    return "jsonl" if _unicode_stdout() else "jsonl-ascii"


class _Delimited(_BatchWriter):
    def __init__(self, out: TextIO, delimiter: str, wrt: list[str] | None,
                 eager: bool = True) -> None:
        from gradcalc import render

        super().__init__(out, eager)
        self.table = render.BatchTable(out, delimiter, wrt)

    def write(self, result: dict[str, Any]) -> None:
        self.table.write(result)
        if self.eager:
            self.out.flush()

    def close(self) -> None:
        self.table.close()
        self.out.flush()


class _Tables(_BatchWriter):
    """Rich tables in blocks of :data:`_TABLE_BLOCK` rows, so memory stays flat."""

    def __init__(self, out: TextIO, progress: _Progress | None) -> None:
        super().__init__(out)
        self.progress = progress
        self.rows: list[dict[str, Any]] = []

    def write(self, result: dict[str, Any]) -> None:
        self.rows.append(result)
        if len(self.rows) == _TABLE_BLOCK:
            self.close()

    def close(self) -> None:
        from gradcalc import render

        if self.rows:
            _print_batch_table(render.batch_table(self.rows), self.progress)
            self.rows = []
        self.out.flush()


def _batch_writer(fmt: Format, progress: _Progress | None, wrt: list[str] | None,
                  eager: bool) -> _BatchWriter:
    # Under a progress bar on the same terminal, results go through the bar's console
    # (above the bar); otherwise straight to standard output.
    out = progress.stdout if progress is not None else sys.stdout
    if fmt in (Format.jsonl, Format.plain):
        return _Lines(out, fmt, eager)
    if fmt in (Format.csv, Format.tsv):
        return _Delimited(out, "," if fmt is Format.csv else "\t", wrt, eager)
    return _Tables(out, progress)


def _print_batch_table(view: object, progress: _Progress | None) -> None:
    if progress is not None and progress.shares_terminal:
        progress.bar.console.print(view)
    else:
        _print_rich(view)


_TABLE_BLOCK = 200  # the terminal table is printed in blocks, so memory stays flat


@dataclass(slots=True)
class _Counted:
    """The stream, reporting the size of what is read to the progress bar."""

    stream: BinaryIO
    advance: Callable[[int], None]

    def readline(self, size: int = -1) -> bytes:
        raw = self.stream.readline(size)
        self.advance(len(raw))
        return raw


@dataclass(slots=True)
class _Progress:
    """A running progress bar: ``advance(n)`` after reading n bytes; ``stdout`` is where
    results go so that they print above the bar when standard output is the same terminal."""

    bar: Progress
    advance: Callable[[int], None]
    stdout: TextIO
    shares_terminal: bool  # results and the bar are on the same terminal


class _progress:
    """A Rich progress bar on stderr for an input of known size, only on a terminal."""

    def __init__(self, size: int | None) -> None:
        self.size = size
        self.running: _Progress | None = None

    def __enter__(self) -> _Progress | None:
        if self.size is None or not sys.stderr.isatty():
            return None
        from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

        # Rich redirects sys.stdout and sys.stderr while the bar runs: what is written through
        # them (results on the terminal, diagnostics) is printed above the bar instead of
        # tearing it. A results stream that is not the terminal is written directly.
        bar = Progress(BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                       console=_console(stderr=True), transient=True,
                       redirect_stdout=sys.stdout.isatty(), redirect_stderr=True)
        before = sys.stdout
        bar.start()
        task = bar.add_task("batch", total=self.size)
        self.running = _Progress(bar, lambda n: bar.advance(task, n), sys.stdout,
                                 shares_terminal=sys.stdout is not before)
        return self.running

    def __exit__(self, *exc: object) -> None:
        if self.running is not None:
            self.running.bar.stop()
