"""Many independent problems, one per line: streamed, in order, errors kept to their line.

:func:`solve_line` is a plain, picklable function from one problem to one JSON-ready result, so
anything that maps functions over data (``multiprocessing``, ``dask.bag``, Spark) can run it.
:func:`problems` reads lines lazily and :func:`solve_stream` yields results in input order, on
one process or several, holding only a bounded window of lines in memory at any time.
"""

from __future__ import annotations

import contextlib
import json
import signal
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from gradcalc.api import compile_program, expand, gradients
from gradcalc.errors import GradcalcError, InputError
from gradcalc.parse import PROGRAM_LIMIT, parse, size_text
from gradcalc.serialize import flat, to_json_object
from gradcalc.shapes import Shapes

__all__ = ["BinaryInput", "Part", "Problem", "line_writer", "problems", "solve_line",
           "solve_parts", "solve_problem", "solve_stream"]

@dataclass(frozen=True, slots=True)
class Problem:
    """One line of a batch: its 1-based line number and either program text or, for JSON Lines
    input, the decoded object (``program`` plus optional ``at``, ``wrt``, ``of``); ``error`` is
    set when the line itself could not be read (bad UTF-8, too long), ``error_kind`` says
    which kind of error that is."""

    line: int
    text: str
    structured: bool = False
    error: str | None = None
    error_kind: str = "input"


class LineSource(Protocol):
    """A binary stream read line by line, at most ``size`` bytes at a time."""

    def readline(self, size: int = -1, /) -> bytes: ...


class BinaryInput(InputError):
    """The batch input holds a NUL byte in a line too long to read: it is not text, and the
    rest cannot be split into lines in bounded time (``--batch /dev/zero``)."""


def problems(stream: Iterable[bytes] | LineSource, structured: bool = False,
             max_size: int = PROGRAM_LIMIT, first_line: int = 1) -> Iterator[Problem]:
    """The problems of a byte stream, lazily: blank lines and ``#`` comment lines are skipped,
    a UTF-8 byte order mark, CR LF endings and a last line without a newline are fine.

    A line of more than ``max_size`` bytes is not read into memory: it becomes a problem with
    an error (kind ``limit``) and reading goes on at the next line. Such a line that holds a
    NUL byte means the input is binary: :class:`BinaryInput` is raised after the problems
    before it. ``first_line`` numbers the stream's first line (a part of a bigger file; the
    byte order mark is looked for on line 1 only).
    """
    for number, raw in enumerate(_lines(stream, max_size), first_line):
        if raw is None:
            yield Problem(number, "", structured,
                          f"the line is longer than the limit of {size_text(max_size)}",
                          "limit")
            continue
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            text = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            yield Problem(number, "", structured, f"line is not UTF-8 text (byte {exc.start})")
            continue
        stripped = text.strip()
        if not stripped or stripped.startswith("#"):
            continue
        yield Problem(number, text, structured)


_SKIP_CHUNK = 1 << 16


def _fits(raw: bytes, max_size: int) -> bool:
    return len(raw) <= max_size or len(raw.rstrip(b"\r\n")) <= max_size


def _lines(stream: Iterable[bytes] | LineSource, max_size: int) -> Iterator[bytes | None]:
    """The stream's lines (with their newlines), ``None`` for a line over ``max_size`` bytes,
    which is skipped in chunks of bounded size."""
    readline = getattr(stream, "readline", None)
    if readline is None:  # already lines (a list, a generator)
        for raw in cast(Iterable[bytes], stream):
            yield raw if _fits(raw, max_size) else None
        return
    while True:
        raw = readline(max_size + 2)  # room for CR LF after a line of max_size bytes
        if not raw:
            return
        if _fits(raw, max_size):
            yield raw
            continue
        binary = b"\0" in raw
        while not raw.endswith(b"\n"):
            raw = readline(_SKIP_CHUNK)
            if not raw:
                break
            binary = binary or b"\0" in raw
            if binary:
                break
        yield None
        if binary:
            raise BinaryInput("the input is not text: a line too long to read holds NUL bytes",
                              hint="give a text file, one program per line")


def solve_line(text: str, at: Mapping[str, float] | None = None,
               wrt: Sequence[str] | None = None, of: str | None = None,
               line: int = 1, max_size: int = PROGRAM_LIMIT) -> dict[str, Any]:
    """Solve one problem given as program text; never raises for a bad problem.

    ``at`` values apply to the inputs the program has (others are ignored), ``wrt`` names to
    the names it has. Returns the single-program JSON object (``output``, ``value``,
    ``gradients``, ``values``, ``inputs``, ``warnings``) with ``line`` and ``error``: ``None``,
    or ``{message, line, column, kind, hint}`` where line and column point into the input.
    Where an input has no value, gradients come out as formulas (strings), as for a single
    program.
    """
    return solve_problem(Problem(line, text), at, wrt, of, max_size)


def solve_problem(problem: Problem, at: Mapping[str, float] | None = None,
                  wrt: Sequence[str] | None = None, of: str | None = None,
                  max_size: int = PROGRAM_LIMIT) -> dict[str, Any]:
    """Like :func:`solve_line` for a :class:`Problem` (which may carry its own JSON fields)."""
    if problem.error is not None:
        return _failure(problem.line, problem.error, None, None, problem.error_kind)
    if not problem.structured:
        found = _shapes(at, wrt, of, max_size).solve(problem.text, problem.line)
        if found is not None:
            return found
    try:
        if problem.structured:
            # The line's own values must fit its program (a typo is an error); the
            # command's --at values apply where they fit.
            program, line_at, line_wrt, line_of = _structured(problem.text, wrt, of)
            dag = compile_program(parse(program, "<program>", max_size=max_size))
            values = {n: v for n, v in (at or {}).items() if n in dag.inputs} | line_at
        else:
            # One problem per line: positions (and positions inside messages) are the file's.
            program, line_wrt, line_of = problem.text, wrt, of
            dag = compile_program(parse(program, "<batch>", problem.line, max_size))
            values = {n: v for n, v in (at or {}).items() if n in dag.inputs}
        names = [n for n in expand(dag, line_wrt) if n in dag.named] if line_wrt else None
        result = gradients(dag, at=values, wrt=names, of=line_of)
    except GradcalcError as exc:
        return _failure(problem.line, exc.message, exc.line, exc.column, exc.kind, exc.hint)
    return {"line": problem.line, **to_json_object(result, share=False), "error": None}


_cache: list[tuple[tuple[Any, ...], Shapes]] = []  # this process's shapes, for one question


def _shapes(at: Mapping[str, float] | None, wrt: Sequence[str] | None, of: str | None,
            max_size: int) -> Shapes:
    """The shapes of this process for the question (the last question asked keeps its own:
    a batch asks one question throughout)."""
    question = (tuple((at or {}).items()), tuple(wrt) if wrt is not None else None, of,
                max_size)
    if not _cache or _cache[0][0] != question:
        _cache[:] = [(question, Shapes(at, wrt, of, max_size))]
    return _cache[0][1]


def solve_stream(items: Iterable[Problem], at: Mapping[str, float] | None = None,
                 wrt: Sequence[str] | None = None, of: str | None = None,
                 jobs: int = 1, max_size: int = PROGRAM_LIMIT
                 ) -> Generator[dict[str, Any], None, None]:
    """Results in input order. With ``jobs`` > 1, worker processes solve chunks of lines
    while this process reads and writes; closing the generator (or an exception such as
    Ctrl-C inside it) ends them."""
    if jobs <= 1:
        for problem in items:
            yield solve_problem(problem, at, wrt, of, max_size)
        return
    from functools import partial

    solve = partial(_solve_chunk, at=dict(at or {}), wrt=list(wrt) if wrt else None, of=of,
                    max_size=max_size)
    for results in _imap_bounded(solve, _chunked(items), jobs):
        yield from results


class _Feed:
    """The items for the pool's feeder thread (:meth:`items`), at most ``room`` in flight:
    :meth:`taken_back` after each result, :meth:`stop` to end the feeding."""

    def __init__(self, items: Iterable[Any], room: int) -> None:
        import threading

        self._items, self._room, self._size = items, threading.Semaphore(room), room
        self._lock = threading.Lock()
        self.stopped = False
        self.handed = 0  # items handed to the pool
        self.failure: BaseException | None = None

    def items(self) -> Iterator[Any]:
        try:
            for item in self._items:
                self._room.acquire()
                with self._lock:
                    if self.stopped:
                        return
                    self.handed += 1
                yield item
        except Exception as exc:  # raised in the feeder thread: handed to the caller's
            self.failure = exc

    def taken_back(self) -> None:
        self._room.release()

    def stop(self) -> None:
        """No item is handed out after this; a feeder waiting for room goes on (and ends)."""
        with self._lock:
            self.stopped = True
        for _ in range(self._size + 1):
            self._room.release()


def _imap_bounded(function: Callable[[Any], Any], items: Iterable[Any], jobs: int
                  ) -> Generator[Any, None, None]:
    """``function`` over ``items`` in ``jobs`` worker processes, the results in order.

    Reading, solving and writing overlap: the pool's feeder thread takes the next items
    while the workers solve and the caller writes. At most :data:`_IN_FLIGHT` items per
    worker are out at a time, so memory stays flat however many there are. An exception
    from ``items`` (:class:`BinaryInput`) is raised here after the results before it."""
    import multiprocessing

    context = multiprocessing.get_context("spawn" if _fork_unsafe() else None)
    feed = _Feed(items, _IN_FLIGHT * jobs)
    # Ctrl-C reaches every process of the terminal's foreground group. Only this process
    # handles it (the pool is then terminated): a worker interrupted inside the pool's queues
    # prints a traceback, or dies holding a queue lock and hangs the pool's shutdown. Workers
    # ignore SIGINT from their first instruction: they start with it blocked, and a Ctrl-C
    # that comes meanwhile reaches this process when the block ends, after the pool is
    # registered for termination.
    with contextlib.ExitStack() as stack:
        with _sigint_held():
            pool = stack.enter_context(context.Pool(jobs, initializer=_ignore_sigint))
        stack.callback(feed.stop)  # runs before the pool is terminated
        results = pool.imap(function, feed.items())
        for taken, result in enumerate(results, 1):
            feed.taken_back()
            try:
                yield result
            except GeneratorExit:
                # The caller stops early (--fail-fast). Take back what is in flight first: a
                # worker terminated while it writes a result can die holding the result
                # queue's lock, and the pool's shutdown then waits for it for ever (CPython's
                # Pool.terminate has that race, seen here about once in 100 runs).
                feed.stop()
                for _ in range(feed.handed - taken):
                    next(results, None)
                raise
    if feed.failure is not None:
        raise feed.failure


# Lines per chunk sent to a worker, and chunks in flight per worker.
_CHUNK = 256
_IN_FLIGHT = 4


def _chunked(items: Iterable[Problem]) -> Iterator[list[tuple[Any, ...]]]:
    chunk: list[tuple[Any, ...]] = []
    try:
        for problem in items:
            chunk.append((problem.line, problem.text, problem.structured, problem.error,
                          problem.error_kind))
            if len(chunk) == _CHUNK:
                yield chunk
                chunk = []
    except BinaryInput:  # the problems read before it are answered first
        if chunk:
            yield chunk
        raise
    if chunk:
        yield chunk


def _solve_chunk(chunk: list[tuple[Any, ...]], at: Mapping[str, float],
                 wrt: Sequence[str] | None, of: str | None, max_size: int
                 ) -> list[dict[str, Any]]:
    return [solve_problem(Problem(*fields), at, wrt, of, max_size) for fields in chunk]


@dataclass(slots=True)
class Part:
    """What a worker made of one part of a file (:func:`solve_parts`): the text written for
    each problem, in order; the results of the problems that failed, by position in
    ``texts``; the names the problems' inputs and gradients used (for the reports of unused
    options); and, for a part where the input turned out not to be text, the error."""

    texts: list[str]
    failures: dict[int, dict[str, Any]]
    inputs: set[str]
    gradients: set[str]
    size: int = 0  # bytes of the file in this part
    stopped: BinaryInput | None = None


def solve_parts(path: str, render: str, structured: bool = False,
                at: Mapping[str, float] | None = None, wrt: Sequence[str] | None = None,
                of: str | None = None, jobs: int = 2, max_size: int = PROGRAM_LIMIT,
                part_size: int = 1 << 20) -> Generator[Part, None, None]:
    """The problems of the regular file ``path``, solved by ``jobs`` worker processes that
    read, solve and write their own parts of the file (about ``part_size`` bytes each, cut at
    line ends); yields each :class:`Part`, in file order. ``render`` names the text written
    for each problem: ``jsonl`` (UTF-8), ``jsonl-ascii`` or ``plain``. This process only
    finds the parts (counting their lines) and passes the texts on, so for cheap problems
    it no longer bounds the speed as when it reads and writes every line itself."""
    from functools import partial

    solve = partial(_solve_part, path=path, render=render, structured=structured,
                    at=dict(at or {}), wrt=list(wrt) if wrt else None, of=of,
                    max_size=max_size)
    for part in _imap_bounded(solve, _parts(path, part_size), jobs):
        yield part
        if part.stopped is not None:
            return


def _parts(path: str, size: int) -> Iterator[tuple[int, int, int]]:
    """(start offset, end offset, number of the first line) of parts of about ``size``
    bytes, each ending at a line end (a line longer than that is read in pieces, never
    held whole)."""
    with open(path, "rb") as f:
        start, line = 0, 1
        while True:
            block = f.read(size)
            if not block:
                return
            end = start + len(block)
            lines = block.count(b"\n")
            if not block.endswith(b"\n"):
                while True:  # on to the end of the line
                    piece = f.read(_SKIP_CHUNK)
                    if not piece:
                        break
                    found = piece.find(b"\n")
                    if found >= 0:
                        end += found + 1
                        lines += 1
                        f.seek(end)
                        break
                    end += len(piece)
            yield start, end, line
            start, line = end, line + lines


class _Window:
    """A binary file read line by line from its current position up to offset ``end``."""

    def __init__(self, file: Any, end: int) -> None:
        self.file, self.end = file, end

    def readline(self, size: int = -1, /) -> bytes:
        left = self.end - self.file.tell()
        if left <= 0:
            return b""
        return cast(bytes, self.file.readline(left if size < 0 else min(size, left)))


def _solve_part(part: tuple[int, int, int], path: str, render: str, structured: bool,
                at: Mapping[str, float], wrt: Sequence[str] | None, of: str | None,
                max_size: int) -> Part:
    start, end, line = part
    done = Part([], {}, set(), set(), end - start)
    with open(path, "rb") as f:
        f.seek(start)
        try:
            _solve_into(done, problems(_Window(f, end), structured, max_size, line), render,
                        at, wrt, of, max_size)
        except BinaryInput as exc:
            done.stopped = exc
    return done


def _solve_into(done: Part, items: Iterable[Problem], render: str, at: Mapping[str, float],
                wrt: Sequence[str] | None, of: str | None, max_size: int) -> None:
    """Solve ``items`` and add their texts, failures and names to ``done``."""
    write = line_writer(render)
    for problem in items:
        result = solve_problem(problem, at, wrt, of, max_size)
        if result["error"] is not None:
            done.failures[len(done.texts)] = dict(result)
        done.inputs.update(result["inputs"])
        done.gradients.update(result["gradients"])
        done.gradients.update(flat(result["gradients"]))
        done.texts.append(write(result))


def solve_chunks(items: Iterable[Problem], render: str, at: Mapping[str, float] | None = None,
                 wrt: Sequence[str] | None = None, of: str | None = None, jobs: int = 2,
                 max_size: int = PROGRAM_LIMIT) -> Generator[Part, None, None]:
    """Like :func:`solve_parts` for problems read by this process (standard input, a pipe):
    ``jobs`` workers solve and write chunks of :data:`_CHUNK` problems, and each chunk comes
    back as a :class:`Part` of texts, in order. Input that turns out not to be text ends with
    a part whose ``stopped`` is set, after the parts before it."""
    from functools import partial

    solve = partial(_solve_chunk_part, render=render, at=dict(at or {}),
                    wrt=list(wrt) if wrt else None, of=of, max_size=max_size)
    try:
        yield from _imap_bounded(solve, _chunked(items), jobs)
    except BinaryInput as exc:
        yield Part([], {}, set(), set(), stopped=exc)


def _solve_chunk_part(chunk: list[tuple[Any, ...]], render: str, at: Mapping[str, float],
                      wrt: Sequence[str] | None, of: str | None, max_size: int) -> Part:
    done = Part([], {}, set(), set())
    _solve_into(done, (Problem(*fields) for fields in chunk), render, at, wrt, of, max_size)
    return done


def line_writer(render: str) -> Callable[[dict[str, Any]], str]:
    """The text written for one result, as a function: ``jsonl`` (UTF-8), ``jsonl-ascii`` or
    ``plain``. One JSON encoder for all the results (``json.dumps`` with an option makes one
    per call); a result answered from a shape is written from the shape's template."""
    from gradcalc.shapes import ShapedResult

    if render == "plain":
        from gradcalc.render import batch_plain

        return batch_plain
    ascii_only = render == "jsonl-ascii"
    encode = json.JSONEncoder(ensure_ascii=ascii_only).encode

    def jsonl(result: dict[str, Any]) -> str:
        if type(result) is ShapedResult:
            return result.json_line(ascii_only)
        return encode(result) + "\n"

    return jsonl


@contextlib.contextmanager
def _sigint_held() -> Iterator[None]:
    """SIGINT blocked, not lost, for the duration (where the platform can block signals)."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _fork_unsafe() -> bool:
    import sys

    return sys.platform == "darwin"


def _structured(text: str, wrt: Sequence[str] | None, of: str | None
                ) -> tuple[str, dict[str, float], Sequence[str] | None, str | None]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"the line is not valid JSON ({exc.msg} at column {exc.colno})"
                         ) from None
    except RecursionError:
        raise InputError("the line nests JSON arrays or objects too deeply") from None
    except ValueError:  # an integer of more than 4,300 digits
        raise InputError("the line holds a number too long to read (over 4,300 digits)"
                         ) from None
    if not isinstance(data, dict) or not isinstance(data.get("program"), str):
        raise InputError('each JSON line must be an object with a "program" string')
    unknown = set(data) - {"program", "at", "wrt", "of"}
    if unknown:
        raise InputError(f"unknown keys {sorted(unknown)}: the keys are program, at, wrt, of")
    line_at = data.get("at", {})
    if not isinstance(line_at, dict):
        raise InputError('"at" must be an object of input values')
    line_wrt = data.get("wrt", wrt)
    if isinstance(line_wrt, str):
        line_wrt = [line_wrt]
    if line_wrt is not None and not (isinstance(line_wrt, list)
                                     and all(isinstance(n, str) for n in line_wrt)):
        raise InputError('"wrt" must be a name or a list of names')
    line_of = data.get("of", of)
    if line_of is not None and not isinstance(line_of, str):
        raise InputError('"of" must be a name')
    return data["program"], line_at, line_wrt, line_of


def _failure(number: int, message: str, line: int | None, column: int | None, kind: str,
             hint: str | None = None) -> dict[str, Any]:
    return {
        "line": number,
        "output": None,
        "value": None,
        "gradients": {},
        "values": {},
        "inputs": {},
        "warnings": [],
        "error": {"message": message, "line": line, "column": column, "kind": kind,
                  "hint": hint},
    }
