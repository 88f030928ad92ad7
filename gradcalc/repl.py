"""The interactive session: ``gradcalc --repl``, or ``gradcalc`` alone on a terminal.

A :class:`Session` is the program being written, as plain data: its statements (by name, in
the order they were first given; a later definition replaces an earlier one, and the names
that use it follow, since the program is built afresh for each answer), the values given with
``:at``, and the question (``:wrt``, ``:of``). :meth:`Session.feed` takes one line, a statement,
an expression or a ``:command``, and returns what to show; nothing in it reads or writes the
terminal, so the tests drive it directly. :func:`run` is the terminal around it: line editing,
history and completion from the standard library's ``readline`` (imported only when a session
starts, so a one-shot command does not pay for it), ``\\`` to continue a line, Ctrl-C to drop
the line, Ctrl-D to leave. An error shows the caret under the line just typed and never ends
the session.
"""

from __future__ import annotations

import contextlib
import functools
import os
import stat
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gradcalc.api import (
    ArrayValue,
    Result,
    array_shapes,
    compile_program,
    gradients,
    split_items,
)
from gradcalc.ast import Program
from gradcalc.dag import Dag
from gradcalc.errors import Diagnostic, GradcalcError, InputError, Source, Span
from gradcalc.parse import parse

__all__ = ["COMMANDS", "HISTORY_LIMIT", "Reply", "Session", "history_path", "run"]

#: Lines kept in the history file between sessions.
HISTORY_LIMIT = 1000
#: A session's program is at most this many statements.
STATEMENT_LIMIT = 10_000

#: The commands, each with what it does (``:help`` prints them).
COMMANDS = {
    ":at": "NAME=VALUE[, ...]: give inputs values (a value is an expression, or [1, 2])",
    ":wrt": "NAME[, ...]: the gradients to show (no names: every input and named value)",
    ":of": "NAME: the output (no name: the last expression)",
    ":graph": "draw the last expression's graph with values and gradients",
    ":explain": "the backward pass of the last expression, step by step",
    ":symbolic": "the last expression's gradients as formulas",
    ":hessian": "the second derivatives of the last expression",
    ":check": "the gradients against finite differences",
    ":plot": "NAME=START:STOP: the output and its derivative over a range",
    ":list": "the program so far",
    ":clear": "forget every statement, value and choice",
    ":save": "FILE: write the program (and the values given) as a file gradcalc reads",
    ":load": "FILE: read a program's statements into the session",
    ":help": "this list",
    ":quit": "leave (Ctrl-D too)",
}


@dataclass(slots=True)
class Reply:
    """What one line gave: a ``result`` to print (with the ``view`` asked: None, ``:graph``,
    ``:explain``, ``:symbolic``, ...), ``text`` to print as it is, ``diagnostics`` (errors and
    warnings, for standard error), and ``done`` to end the session."""

    result: Result | None = None
    view: str | None = None
    text: str = ""
    diagnostics: list[GradcalcError | Diagnostic] = field(default_factory=list)
    done: bool = False
    extra: Any = None


@dataclass(slots=True)
class Session:
    """The program of a session and the question asked of it (see the module's docstring)."""

    statements: dict[str, str] = field(default_factory=dict)
    at: dict[str, ArrayValue] = field(default_factory=dict)
    wrt: list[str] | None = None
    of: str | None = None
    last: str | None = None  # the last expression typed

    def compiled(self, program: str) -> Dag:
        """``program`` (this session's, possibly with an expression) built as a graph, with
        the array values given making their names arrays."""
        return compile_program(program, "<session>", shapes=array_shapes(self.at))

    def program(self, expression: str | None = None) -> str:
        """The session's program text, with ``expression`` as its last line."""
        lines = list(self.statements.values())
        if expression is not None:
            lines.append(expression)
        return "\n".join(lines)

    def feed(self, line: str) -> Reply:
        """One line of input: a ``:command``, statements, or an expression to evaluate."""
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            return Reply()
        if stripped.startswith(":"):
            return self._command(stripped)
        try:
            parsed = parse(line, "<input>")
        except GradcalcError as exc:
            return Reply(diagnostics=[exc])
        return self._statements(line, parsed)

    # --- statements and expressions --------------------------------------------------------

    def _statements(self, line: str, parsed: Program) -> Reply:
        reply = Reply()
        for statement in parsed.statements:
            start = statement.name_start
            text = line[start : parsed.nodes.ends[statement.root]]
            if statement.name is None:
                self.last = text
                return self._answer(text, start, line)
            before = dict(self.statements)
            self.statements.pop(statement.name, None)  # (redefined: it goes to the end)
            self.statements[statement.name] = text
            problem = self._check(text, start, line)
            if problem is not None:
                self.statements = before
                reply.diagnostics.append(problem)
                return reply
            if len(self.statements) > STATEMENT_LIMIT:
                self.statements = before
                reply.diagnostics.append(InputError(
                    f"a session holds at most {STATEMENT_LIMIT:,} statements",
                    hint=":save the program and run it as a file"))
                return reply
        return reply

    def _check(self, text: str, start: int, line: str) -> GradcalcError | None:
        """The program with the new statement ``text`` last must build; an error in it is
        shown under the line typed."""
        program = self.program()
        try:
            self.compiled(program)
        except GradcalcError as exc:
            return _relocated(exc, program, len(program) - len(text), line, start)
        return None

    def _answer(self, text: str, start: int, line: str, view: str | None = None) -> Reply:
        program = self.program(text)
        try:
            dag = self.compiled(program)
            # values given for names the program does not use (any more) wait for their use
            at = {n: v for n, v in self.at.items() if n in dag.inputs or n in dag.tensors}
            result = gradients(dag, at=at, wrt=self.wrt, of=self.of,
                               symbolic=True if view == ":symbolic" else
                               False if view in (":graph", ":explain") else None,
                               record=view == ":explain")
        except GradcalcError as exc:
            return Reply(diagnostics=[_relocated(exc, program, len(program) - len(text), line,
                                                 start)])
        # (the session's other names are candidates too: the expression is what was asked)
        notes = [w for w in result.warnings if w.kind != "outputs"]
        return Reply(result=result, view=view, diagnostics=list(notes), extra=at)

    # --- commands --------------------------------------------------------------------------

    def _command(self, line: str) -> Reply:
        word, _, rest = line.partition(" ")
        rest = rest.strip()
        handler = _HANDLERS.get(word)
        if handler is None:
            from gradcalc.errors import closest

            close = closest(word, list(COMMANDS))
            return Reply(diagnostics=[InputError(
                f"unknown command {word}",
                hint=f"did you mean {close}?" if close else ":help lists the commands")])
        try:
            return handler(self, rest)
        except GradcalcError as exc:
            return Reply(diagnostics=[exc])

    def _on_last(self, view: str) -> Reply:
        if self.last is None:
            raise InputError(f"{view} needs an expression first",
                             hint="type one, such as A*B + sin(A)")
        return self._answer(self.last, 0, self.last, view)

    def _at(self, rest: str) -> Reply:
        if not rest:
            shown = ", ".join(f"{n}={v}" for n, v in self.at.items()) or "no values given"
            return Reply(text=shown + "\n")
        from gradcalc.api import constant_value

        given: dict[str, ArrayValue] = {}
        for item in split_items(rest):
            name, sep, value = item.partition("=")
            if not sep or not name.strip() or not value.strip():
                raise InputError(f":at expects NAME=VALUE, got {item.strip()!r}",
                                 hint=":at A=2, B=pi/4")
            given[name.strip()] = constant_value(value.strip(), f":at {name.strip()}")
        self.at.update(given)
        return Reply()

    def _wrt(self, rest: str) -> Reply:
        self.wrt = [n.strip() for n in split_items(rest) if n.strip()] or None
        return Reply()

    def _of(self, rest: str) -> Reply:
        self.of = rest or None
        return Reply()

    def _list(self, rest: str) -> Reply:
        return Reply(text="".join(text + "\n" for text in self.statements.values()))

    def _clear(self, rest: str) -> Reply:
        self.statements.clear()
        self.at.clear()
        self.wrt = self.of = self.last = None
        return Reply(text="cleared\n")

    def _save(self, rest: str) -> Reply:
        if not rest:
            raise InputError(":save needs a file name", hint=":save model.gc")
        values = [f"{name} = {_written(value)}" for name, value in self.at.items()
                  if name not in self.statements]
        text = "\n".join([*values, *self.statements.values(),
                          *([self.last] if self.last is not None else [])]) + "\n"
        try:
            Path(rest).expanduser().write_text(text, "utf-8")
        except (OSError, ValueError) as exc:  # (ValueError: a NUL in the name)
            raise InputError(f"cannot write {rest!r}: {getattr(exc, 'strerror', exc)}"
                             ) from None
        return Reply(text=f"saved {len(text.splitlines())} lines to {rest}\n")

    def _load(self, rest: str) -> Reply:
        if not rest:
            raise InputError(":load needs a file name", hint=":load model.gc")
        from gradcalc.parse import PROGRAM_LIMIT

        try:
            path = Path(rest).expanduser()
            info = path.stat()
            if not stat.S_ISREG(info.st_mode):
                raise InputError(f"cannot read {rest!r}: not a regular file")
            if info.st_size > PROGRAM_LIMIT:
                raise InputError(f"cannot read {rest!r}: {info.st_size:,} bytes, over the "
                                 f"{PROGRAM_LIMIT:,} a program may have",
                                 hint="run a larger program as gradcalc FILE --max-size ...")
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise InputError(f"cannot read {rest!r}: {getattr(exc, 'strerror', None) or exc}"
                             ) from None
        parsed = parse(text, rest)
        before = dict(self.statements)
        reply = Reply()
        for statement in parsed.statements:
            piece = text[statement.name_start : parsed.nodes.ends[statement.root]]
            if statement.name is None:
                self.last = piece
                continue
            self.statements.pop(statement.name, None)
            self.statements[statement.name] = piece
        try:
            self.compiled(self.program())
        except GradcalcError as exc:
            self.statements = before
            reply.diagnostics.append(exc)
            return reply
        reply.text = f"loaded {len(parsed.statements)} statements from {rest}\n"
        return reply

    def _help(self, rest: str) -> Reply:
        width = max(map(len, COMMANDS))
        lines = ["Type a statement (B = A*3, f(x) = x^2) to define or redefine a name, or an",
                 "expression (B*2 + 1) to see its value and gradients. Commands:"]
        lines += [f"  {name.ljust(width)}  {what}" for name, what in COMMANDS.items()]
        return Reply(text="\n".join(lines) + "\n")

    def _quit(self, rest: str) -> Reply:
        return Reply(done=True)

    def _plot(self, rest: str) -> Reply:
        if self.last is None:
            raise InputError(":plot needs an expression first", hint="type one, such as sin(X)")
        if not rest:
            raise InputError(":plot needs a range", hint=":plot X=-3:3")
        return Reply(view=":plot", extra=(self.program(self.last), rest))


def _written(value: ArrayValue) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_written(v) for v in value) + "]"
    return repr(float(value))  # type: ignore[arg-type]


_HANDLERS: dict[str, Callable[[Session, str], Reply]] = {
    ":at": Session._at, ":wrt": Session._wrt, ":of": Session._of, ":list": Session._list,
    ":clear": Session._clear, ":save": Session._save, ":load": Session._load,
    ":help": Session._help, ":quit": Session._quit, ":plot": Session._plot,
    **{view: functools.partial(lambda view, session, rest: session._on_last(view), view)
       for view in (":graph", ":explain", ":symbolic", ":hessian", ":check")},
}


def _relocated(exc: GradcalcError, program: str, offset: int, line: str, start: int
               ) -> GradcalcError:
    """``exc`` with its place in the line typed (``<input>``) when it lies there; an error
    in an earlier statement keeps its place in the session's program (``<session>``)."""
    span = exc.span
    if span is None or span.start < offset:
        if span is not None and exc.source is not None:
            exc.source = Source(program, "<session>")
            exc.span = exc.source.span_at(span.start, span.end)
        return exc
    source = Source(line, "<input>")
    moved = source.span_at(span.start - offset + start, span.end - offset + start)
    exc.source, exc.span = source, Span(moved.start, moved.end, moved.line, moved.column)
    return exc


# --- the terminal --------------------------------------------------------------------------


def history_path() -> Path | None:
    """``$XDG_DATA_HOME/gradcalc/history``, else ``~/.local/share/gradcalc/history``; None
    without an absolute home (no history is kept then)."""
    base = os.environ.get("XDG_DATA_HOME", "")
    if os.path.isabs(base):
        return Path(base) / "gradcalc" / "history"
    home = os.path.expanduser("~")
    if not home or home == "~" or not os.path.isabs(home) or home == "/":
        return None
    return Path(home) / ".local" / "share" / "gradcalc" / "history"


def _lines(prompt: str, more: str, read: Callable[[str], str]) -> Iterator[str]:
    """Lines as typed, a ``\\`` at the end continuing onto the next; Ctrl-C drops the line."""
    while True:
        try:
            line = read(prompt)
            while line.rstrip(" \t").endswith("\\"):  # (the grammar reads `\` + newline)
                line = line.rstrip(" \t") + "\n" + read(more)
        except KeyboardInterrupt:
            sys.stdout.write("\n")
            continue
        except EOFError:
            sys.stdout.write("\n")
            return
        yield line


def _completer(session: Session) -> Callable[[str, int], str | None]:
    from gradcalc.ops import CONSTANTS, FUNCTIONS
    from gradcalc.tensor import ARRAY_FUNCTIONS

    found: list[str] = []

    def complete(text: str, state: int) -> str | None:
        if state == 0:
            words = [*COMMANDS, *session.statements, *session.at, *FUNCTIONS,
                     *ARRAY_FUNCTIONS, *CONSTANTS]
            found[:] = sorted({w for w in words if w.startswith(text)})
        return found[state] if state < len(found) else None

    return complete


def _readline(session: Session) -> Callable[[], None]:
    """Line editing, history and completion; returns what saves the history."""
    try:
        import readline
    except ImportError:  # (no readline on this platform: plain input() still works)
        return lambda: None
    readline.set_completer(_completer(session))
    readline.set_completer_delims(" \t\n;,()[]=+-*/^@")
    readline.parse_and_bind("tab: complete")
    path = history_path()
    if path is not None:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            readline.read_history_file(path)
    readline.set_history_length(HISTORY_LIMIT)

    def save() -> None:
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            readline.write_history_file(path)
        except OSError:
            pass  # a history that cannot be written is not worth an error at exit

    return save


def run(session: Session, show: Callable[[Reply], None], banner: str) -> None:
    """``session`` on the terminal: read lines until Ctrl-D or ``:quit``; ``show`` prints
    each reply (the CLI's printers)."""
    import signal

    save = _readline(session)
    # Every Ctrl-C drops the line being typed (the one-shot command's handler ignores a
    # second one, to finish its cleanup: a session has none to finish).
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.stdout.write(banner)
    try:
        for line in _lines(">>> ", "... ", input):
            reply = session.feed(line)
            show(reply)
            if reply.done:
                break
    finally:
        save()
