"""Source positions and the errors a user can cause.

Everything a user can get wrong is a :class:`GradcalcError` carrying a :class:`Span` into the
:class:`Source` it came from, so that library users and the CLI get the same message: what is
wrong, where (``line:column``, both 1-based), the source line with carets under the spot, and a
hint where one helps. Rendering is plain text; the CLI only adds colour.
"""

from __future__ import annotations

import bisect
import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from gradcalc.status import ExitStatus

__all__ = [
    "ArityError",
    "CycleError",
    "Diagnostic",
    "EvaluationError",
    "GradcalcError",
    "InputError",
    "LimitError",
    "NameResolutionError",
    "ParseError",
    "ShapeError",
    "Source",
    "Span",
    "argument",
    "closest",
    "on_command_line",
    "speaking_as_command_line",
    "values_example",
]

# An excerpt never shows more than this many characters of a source line: a 100,000-term sum
# on one line must not flood the terminal with its error message.
_EXCERPT_WIDTH = 100


@dataclass(frozen=True, slots=True)
class Span:
    """A range of source text: offsets ``start``..``end`` (end exclusive, 0-based) and the
    1-based ``line`` and ``column`` of its first character."""

    start: int
    end: int
    line: int
    column: int


@dataclass(slots=True, eq=False)
class Source:
    """Program text with a name for messages (a file path, ``<stdin>`` or ``<program>``).

    ``first_line`` is the number of the text's first line in its file: a batch problem on
    line 12 of a file reports its positions as 12:col, in messages and excerpts alike."""

    text: str
    name: str = "<program>"
    first_line: int = 1
    _line_starts: list[int] | None = field(default=None, repr=False)

    def line_starts(self) -> list[int]:
        if self._line_starts is None:
            starts = [0]
            find = self.text.find
            pos = find("\n")
            while pos >= 0:
                starts.append(pos + 1)
                pos = find("\n", pos + 1)
            self._line_starts = starts
        return self._line_starts

    def span_at(self, start: int, end: int | None = None) -> Span:
        """The span of offsets ``start``..``end`` with its line and column worked out."""
        starts = self.line_starts()
        index = bisect.bisect_right(starts, start)
        return Span(start, start + 1 if end is None else end, index + self.first_line - 1,
                    start - starts[index - 1] + 1)

    def line_start(self, line: int) -> int:
        """The offset at which line ``line`` (numbered as in the file) starts."""
        return self.line_starts()[line - self.first_line]

    def line_text(self, line: int) -> str:
        starts = self.line_starts()
        index = line - self.first_line + 1
        begin = starts[index - 1]
        stop = starts[index] - 1 if index < len(starts) else len(self.text)
        return self.text[begin:stop].rstrip("\r")


def excerpt(source: Source, span: Span) -> str:
    """The source line of ``span`` with carets under it, as plain text (several lines)."""
    text = source.line_text(span.line)
    start_col = span.column - 1
    line_end = source.line_start(span.line) + len(text)
    width = max(1, min(span.end, line_end) - span.start)
    # Keep the caret in view on very long lines: show a window around it.
    left = 0
    if len(text) > _EXCERPT_WIDTH:
        left = max(0, min(start_col - _EXCERPT_WIDTH // 3, len(text) - _EXCERPT_WIDTH))
    shown = text[left : left + _EXCERPT_WIDTH]
    prefix = "…" if left > 0 else ""
    suffix = "…" if left + _EXCERPT_WIDTH < len(text) else ""
    # Control characters (a stray NUL, a form feed) would garble the terminal: show them as
    # one visible character each, so the caret stays aligned.
    shown = prefix + "".join(ch if ch.isprintable() else "\ufffd" for ch in shown.replace(
        "\t", " ")) + suffix
    caret_col = start_col - left + len(prefix)
    width = max(1, min(width, len(shown) - caret_col))
    gutter = str(span.line)
    pad = " " * len(gutter)
    return (
        f"{pad} |\n"
        f"{gutter} | {shown}\n"
        f"{pad} | {' ' * caret_col}{'^' * width}"
    )


# How messages name the parts of a question. The library speaks of its functions' arguments
# (``at=``, ``wrt=``); the command line, which asks the same questions with flags, switches
# the vocabulary once at start-up (:func:`speaking_as_command_line`).
_FLAGS = {"at": "--at", "wrt": "--wrt", "of": "--of", "max_size": "--max-size",
          "form": "--graph="}
_command_line = False


def argument(name: str, value: str = "") -> str:
    """How messages name the argument ``name`` (``at``, ``wrt``, ``of``, ``max_size``,
    ``form``: the form of a graph), with an example ``value``: ``of=NAME`` in Python,
    ``--of NAME`` on the command line (``--graph=tree`` for a form)."""
    if _command_line:
        flag = _FLAGS[name]
        return flag + value if flag.endswith("=") else f"{flag} {value}".rstrip()
    return f"{name}={value!r}" if name == "form" else f"{name}={value}"


def values_example(names: Iterable[str]) -> str:
    """How to give ``names`` values: ``at={'A': VALUE}`` or ``--at A=VALUE``."""
    names = list(names)
    if _command_line:
        return " ".join(f"--at {n}=VALUE" for n in names)
    return "at={" + ", ".join(f"'{n}': VALUE" for n in names) + "}"


def on_command_line() -> bool:
    """Whether messages are being made for the command line (:func:`speaking_as_command_line`)."""
    return _command_line


@contextlib.contextmanager
def speaking_as_command_line() -> Iterator[None]:
    """Name arguments as the command line's flags in the messages made meanwhile."""
    global _command_line
    before, _command_line = _command_line, True
    try:
        yield
    finally:
        _command_line = before


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate a typo most likely meant (``sine`` → ``sin``, ``SIN`` → ``sin``), if any."""
    import difflib  # only on error paths: it costs start-up time

    names = list(candidates)
    found = difflib.get_close_matches(word, names, n=1, cutoff=0.6)
    if found:
        return found[0]
    return next((n for n in names if n.lower() == word.lower()), None)


def render_message(level: str, message: str, span: Span | None, source: Source | None,
                   hint: str | None) -> str:
    """``level: message``, then where (``name:line:column``), the excerpt and the hint."""
    parts = [f"{level}: {message}"]
    if span is not None and source is not None:
        parts.append(f"  --> {source.name}:{span.line}:{span.column}")
        parts.append(excerpt(source, span))
    if hint:
        parts.append(f"hint: {hint}")
    return "\n".join(parts)


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """Something the user should know about a result that is still returned.

    Warnings: a gradient taken at a non-differentiable point (``kink``), a gradient that came
    out infinite or NaN (``nonfinite``). Notes, about the question rather than the answer: the
    program has several candidate outputs and one was chosen (``outputs``), the output depends
    on no input so there is nothing to differentiate (``constant``), a request was capped at a
    bound (``capped``: ``--jobs`` above the number of CPUs)."""

    kind: str
    message: str
    span: Span | None = None
    source: Source | None = field(default=None, compare=False)
    hint: str | None = None

    @property
    def level(self) -> str:
        """``note`` or ``warning``: how the message is headed."""
        return "note" if self.kind in NOTE_KINDS else "warning"

    def render(self) -> str:
        return render_message(self.level, self.message, self.span, self.source, self.hint)


NOTE_KINDS = frozenset({"outputs", "constant", "capped"})


class GradcalcError(Exception):
    """Base class of every error a user's program or arguments can cause.

    ``kind`` names the class of error in machine output (``syntax``, ``name``, ``cycle``,
    ``arity``, ``shape``, ``input``, ``domain``, ``overflow``, ``limit``); ``exit_code`` is
    what the CLI exits with.
    """

    kind = "error"
    exit_code: int = ExitStatus.USAGE

    def __init__(
        self,
        message: str,
        span: Span | None = None,
        source: Source | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.span = span
        self.source = source
        self.hint = hint

    @property
    def line(self) -> int | None:
        return self.span.line if self.span else None

    @property
    def column(self) -> int | None:
        return self.span.column if self.span else None

    def render(self) -> str:
        """The full human message: ``error: …``, the location, the excerpt and the hint."""
        return render_message("error", self.message, self.span, self.source, self.hint)

    def __str__(self) -> str:
        if self.span is not None:
            return f"{self.span.line}:{self.span.column}: {self.message}"
        return self.message


class ParseError(GradcalcError):
    """The text is not a well-formed gradcalc program."""

    kind = "syntax"


class NameResolutionError(GradcalcError):
    """A name is used wrongly: unknown function, assigned twice, a constant assigned, …"""

    kind = "name"


class CycleError(GradcalcError):
    """Assignments depend on each other in a circle."""

    kind = "cycle"


class ArityError(GradcalcError):
    """A function is called with the wrong number of arguments."""

    kind = "arity"


class ShapeError(GradcalcError):
    """Vectors or matrices of shapes an operation cannot combine (``[1, 2] + [1, 2, 3]``),
    an index out of range, or an array where a number must be."""

    kind = "shape"


class InputError(GradcalcError):
    """Bad values or names given from outside the program (``at``, ``wrt``, ``of``)."""

    kind = "input"


class LimitError(GradcalcError):
    """A documented bound was hit: symbolic work grew past its size or time budget, or an
    exact number would need more bits than allowed. The message says which bound and what to
    do instead (give values, ask for fewer gradients)."""

    kind = "limit"
    exit_code: int = ExitStatus.FAILED


class EvaluationError(GradcalcError):
    """The program is well formed but cannot be evaluated at the given point
    (a domain error such as ``log(-1)``, division by zero, overflow)."""

    kind = "domain"
    exit_code: int = ExitStatus.FAILED

    def __init__(
        self,
        message: str,
        span: Span | None = None,
        source: Source | None = None,
        hint: str | None = None,
        kind: str = "domain",
    ) -> None:
        super().__init__(message, span, source, hint)
        self.kind = kind
