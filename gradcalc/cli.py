"""The ``gradcalc`` command: argument plumbing over :func:`gradcalc.gradients`, printing, and the
mapping from error classes to exit codes. No math, no graph walking, no layout here."""

from __future__ import annotations

import codecs
import enum
import errno
import functools
import io
import itertools
import json
import math
import os
import re
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO, NoReturn

import typer
from typer.core import TyperCommand

from gradcalc import __version__
from gradcalc.api import (
    ArrayValue,
    Result,
    array_shapes,
    compile_program,
    expand,
    gradients,
    output_note,
    split_items,
    unique,
)
from gradcalc.dag import Dag
from gradcalc.errors import (
    Diagnostic,
    GradcalcError,
    InputError,
    ParseError,
    closest,
    speaking_as_command_line,
)
from gradcalc.fmt import format_number, json_number
from gradcalc.parse import PROGRAM_CEILING, PROGRAM_LIMIT, program_too_large
from gradcalc.status import ExitStatus, help_text

if TYPE_CHECKING:
    from rich.console import Console

    from gradcalc.derivatives import Matrix

# Peak memory per byte of program text, measured on 1 MiB sums and mixed programs
# (tests/benchmarks/bench_size.py): what --max-size admits is about this many times larger.
MEMORY_PER_BYTE = 80

EPILOG = (
    "PROGRAM is a path to a program file (preferred when such a file exists), '-' for standard "
    "input, or program text, e.g. 'B = A*3; OUT = (B+1)*(B+2)'.\n\n" + help_text()
)

@functools.cache
def _number() -> re.Pattern[str]:
    """A number as --at takes it: the grammar's NUMBER with an optional sign (on first use)."""
    from gradcalc.parse import NUMBER_PATTERN

    return re.compile(rf"[+-]?(?:{NUMBER_PATTERN})")


class Format(str, enum.Enum):
    table = "table"
    plain = "plain"
    json = "json"
    latex = "latex"
    jsonl = "jsonl"
    csv = "csv"
    tsv = "tsv"


class InputKind(str, enum.Enum):
    text = "text"
    jsonl = "jsonl"


app = typer.Typer(
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"gradcalc {__version__}")
        raise typer.Exit()


def _closed_pipe_is_quiet(command: Callable[..., None]) -> Callable[..., None]:
    """The reader of standard output went away (``| head``): stop quietly with 141, as
    command-line tools do, instead of click's exit 1 (which means "a problem failed")."""

    @functools.wraps(command)
    def wrapper(*args: object, **kwargs: object) -> None:
        try:
            command(*args, **kwargs)
            sys.stdout.flush()  # a short write must fail here, not silently at exit
        except BrokenPipeError:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise SystemExit(ExitStatus.BROKEN_PIPE) from None
        except OSError as exc:
            if exc.errno not in _WRITE_ERRORS:
                raise
            _output_failed(exc)

    return wrapper


# The errors a write to standard output meets when the output cannot take the results.
_WRITE_ERRORS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EIO}


def _output_failed(exc: OSError) -> NoReturn:
    """Writing the results failed (a full disk, ``/dev/full``, an I/O error): an I/O error
    with sysexits' code 74, never "a bug"; nothing more is written to standard output."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    sys.stderr.write(f"error: cannot write the results to standard output: "
                     f"{exc.strerror or exc}\n")
    raise SystemExit(ExitStatus.OUTPUT)


class _Command(TyperCommand):
    """The command with gradcalc's own handling of bad invocations: the message in the same
    ``error: ... / hint: ...`` form as every other error, and a hint for the usual slips
    (``--graph tree``, a program that starts with ``-``), exit 2."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **extra: Any) -> Any:
        arguments = normalize_args(list(sys.argv[1:] if args is None else args))
        try:
            with speaking_as_command_line():  # messages name --at, --wrt, ... not at=, wrt=
                code = super().main(arguments, prog_name, complete_var, standalone_mode=False,
                                    windows_expand_args=windows_expand_args, **extra)
        except SystemExit as exc:
            # click (--version) and Rich (--help) answer a closed pipe with exit 1, which
            # printing help or the version never gives otherwise: a closed pipe is 141.
            options = arguments[:arguments.index("--")] if "--" in arguments else arguments
            if exc.code == 1 and (type(sys.stdout).__name__ == "PacifyFlushWrapper"
                                  or "--help" in options):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.__stdout__.fileno() if sys.__stdout__ else 1)
                raise SystemExit(ExitStatus.BROKEN_PIPE) from None
            raise
        except Exception as exc:
            # Typer's click is vendored by recent Typer releases and the click package in
            # older ones: its exceptions are recognised by class name, not imported.
            kinds = {cls.__name__ for cls in type(exc).__mro__}
            if "ClickException" in kinds:
                _print_diagnostic(InputError(_click_message(exc),
                                             hint=_click_hint(exc, arguments)))
                code = ExitStatus.USAGE
            elif "Abort" in kinds:
                code = ExitStatus.INTERRUPTED
            else:
                raise
        code = code if isinstance(code, int) else ExitStatus.OK
        if standalone_mode:
            sys.exit(code)
        return code


def _click_message(exc: Any) -> str:
    if type(exc).__name__ == "NoSuchOption":
        return f"no such option: {exc.option_name}"  # click's own suggestions are poor
    message = exc.format_message()
    return message[:1].lower() + message[1:]


def _click_hint(exc: Any, arguments: list[str]) -> str:
    if type(exc).__name__ == "NoSuchOption":
        name = exc.option_name
        if not name.startswith("--"):
            text = next((a for a in arguments if a.startswith(name)), name)
            return (f"if {text!r} is the program, end the options with --: "
                    f"gradcalc [OPTIONS] -- '{text}'")
        close = closest(name.lstrip("-"), [o[2:] for o in _option_names() if o[:2] == "--"])
        return f"did you mean --{close}?" if close else "see gradcalc --help"
    if "unexpected extra argument" in exc.format_message():
        from gradcalc.render import GRAPH_FORMS

        for flag, form in itertools.pairwise(arguments):
            if flag == "--graph=auto" and form in GRAPH_FORMS:
                return f"write --graph={form}: the form is attached with '='"
        if "--" in arguments:
            return "everything after -- is the program: put the options before --"
        return "give one PROGRAM; quote program text that has spaces"
    return "see gradcalc --help"


def _option_names() -> list[str]:
    command = typer.main.get_command(app)
    return [opt for param in command.params for opt in getattr(param, "opts", ())]


@app.command(epilog=EPILOG, cls=_Command)
@_closed_pipe_is_quiet
def run(
    program: Annotated[str | None, typer.Argument(
        help="Program file, '-' for standard input, or program text.", show_default=False)
    ] = None,
    at: Annotated[list[str] | None, typer.Option(
        "--at", metavar="NAME=VALUE",
        help="Value of an input; repeat or separate with commas (--at A=1,B=2). A number, "
        "or an expression of numbers: --at THETA=pi/4, --at A=2^-10; a vector or matrix: "
        "--at 'W=[1, 2]'; a range sweeps the program: --at X=-2:2:0.5 or X=-2:2/41. "
        "Overrides a value set in the program.")] = None,
    wrt: Annotated[list[str] | None, typer.Option(
        "--wrt", metavar="NAME",
        help="Report the gradient with respect to NAME (an input or a named intermediate); "
        "repeat or separate with commas. Default: every input, then every named "
        "intermediate the output depends on.")] = None,
    of: Annotated[list[str] | None, typer.Option(
        "--of", metavar="NAME", help="The output to differentiate (default: the name "
        "nothing else uses); several (repeat or separate with commas) give the Jacobian.")] = None,
    symbolic: Annotated[bool, typer.Option(
        "--symbolic", help="Give every gradient as a formula (with its value where the inputs "
        "have values). Without it, formulas appear only where an input has no value.")
    ] = False,
    expand_formulas: Annotated[bool, typer.Option(
        "--expand", help="Write formulas multiplied out (a polynomial in the atoms) instead "
        "of factored as a person would.")] = False,
    hessian: Annotated[bool, typer.Option(
        "--hessian", help="The matrix of second derivatives with respect to the inputs "
        "(or --wrt), numbers where the inputs have values, formulas otherwise.")] = False,
    check: Annotated[bool, typer.Option(
        "--check", help="Compare each input's gradient with a central finite difference; exit "
        "1 when a relative difference exceeds 1e-5.")] = False,
    output_format: Annotated[Format | None, typer.Option(
        "--format", "-F", case_sensitive=False,
        help="table (the default on a terminal), plain (the default otherwise: one "
        "'NAME GRADIENT' line per name) or json; with --batch: table, plain, jsonl (the "
        "default off a terminal), csv or tsv; for a sweep (a range in --at): table, plain, "
        "jsonl, csv or tsv. latex: each gradient as a LaTeX formula.")] = None,
    value: Annotated[bool, typer.Option(
        "--value", help="Plain format: start with a line 'OUTPUT = VALUE' (the table and "
        "JSON always show the value; plain shows it anyway when there is nothing to "
        "differentiate).")] = False,
    stats: Annotated[bool, typer.Option(
        "--stats", help="Also report graph size, what the backward pass visited, and the "
        "number of distinct paths from the output to each name.")] = False,
    graph: Annotated[str | None, typer.Option(
        "--graph", metavar="[=FORM]",
        help="Draw the computation graph with values and gradients. FORM: auto (the default: "
        "full, else compact, else tree, else table, whichever fits the terminal), full, "
        "compact, tree or table; write it as --graph=tree.")] = None,
    ascii_only: Annotated[bool, typer.Option(
        "--ascii", help="Draw with plain ASCII (+ - | > ^) instead of Unicode.")] = False,
    explain: Annotated[bool, typer.Option(
        "--explain", help="Tell the backward pass step by step: the counts, each node's "
        "contributions and sum, what it hands on, and what counting saved over paths.")] = False,
    dot: Annotated[bool, typer.Option(
        "--dot", help="Print the graph as Graphviz DOT (gradcalc ... --dot | dot -Tsvg).")
    ] = False,
    mermaid: Annotated[bool, typer.Option(
        "--mermaid", help="Print the graph as a Mermaid flowchart.")] = False,
    plot: Annotated[list[str] | None, typer.Option(
        "--plot", metavar="NAME=START:STOP",
        help="Draw the output and its derivative over a range of an input (start:stop, or "
        "start:stop/N for N points); twice (--plot X=-2:2 --plot Y=-2:2): a heat map with "
        "the gradient as arrows.")] = None,
    output_file: Annotated[str | None, typer.Option(
        "--output", "-o", metavar="FILE",
        help="Write the --plot to FILE, an .svg or a .png (PNG needs matplotlib: pip install "
        "'gradcalc[plot]').")] = None,
    batch: Annotated[str | None, typer.Option(
        "--batch", metavar="FILE",
        help="Solve many independent problems, one per line of FILE ('-' for standard "
        "input), streamed; --at, --wrt and --of apply to every line where they fit.")] = None,
    input_kind: Annotated[InputKind | None, typer.Option(
        "--input", case_sensitive=False,
        help="With --batch: text (a program per line, the default) or jsonl (an object per "
        'line: {"program": ..., "at": {...}, "wrt": [...], "of": ...}).',
        show_default=False)] = None,
    jobs: Annotated[int | None, typer.Option(
        "--jobs", "-j", min=1, help="With --batch: worker processes (output order is kept; "
        "default 1).", show_default=False)] = None,
    max_size: Annotated[str | None, typer.Option(
        "--max-size", metavar="SIZE",
        help="The largest program, or batch line, accepted: bytes, or with K, M or G "
        "(powers of 1024). Default 1M, at most 1G; memory grows about "
        f"{MEMORY_PER_BYTE} bytes per byte of program.", show_default=False)] = None,
    fail_fast: Annotated[bool, typer.Option(
        "--fail-fast", help="With --batch: stop at the first problem that fails.")] = False,
    repl: Annotated[bool, typer.Option(
        "--repl", help="Start an interactive session (also what gradcalc alone does on a "
        "terminal): type statements and expressions, :help for the commands.")] = False,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Differentiate an equation: value of the output and its gradient with respect to every
    input and named intermediate, by reverse mode over a counted DAG."""
    outputs = _split("--of", of)
    names = _split("--wrt", wrt) if wrt else None
    values, ranges = _parse_at(at or [])
    limit = _parse_size(max_size) if max_size is not None else PROGRAM_LIMIT
    view = _the_view(graph is not None, explain, dot, mermaid, hessian, check, len(outputs) > 1)
    others = _set_flags(view=view, batch=batch, stats=stats, symbolic=symbolic,
                        expand=expand_formulas, value=value,
                        ascii=ascii_only, format=output_format, input=input_kind, jobs=jobs,
                        max_size=max_size, fail_fast=fail_fast, range=ranges or None,
                        plot=plot, output=output_file)
    if _another_mode(repl, program, others, plot, output_file, ascii_only, values, names,
                     outputs, limit):
        return
    _refuse_with_sweep(bool(ranges), output_format, batch, view, stats, symbolic, ascii_only,
                       value, expand_formulas)
    if batch is not None:
        _refuse_with_batch(program, view, stats, symbolic, ascii_only, value, outputs,
                           expand_formulas)
        from gradcalc.cli_batch import run_batch

        run_batch(batch, input_kind or InputKind.text, _numbers_only(values), names,
                  outputs[0] if outputs else None, output_format, jobs or 1, fail_fast, limit)
        return
    _refuse_without_batch(input_kind, jobs, fail_fast)
    _refuse_without_effect(view, stats, symbolic, ascii_only, value, names, output_format,
                           expand_formulas)
    if output_format in (Format.jsonl, Format.csv, Format.tsv) and not ranges:
        raise _usage(f"--format {output_format.value} is for --batch and sweeps",
                     "for one program at one point use table, plain or json")
    program = _program_argument(program)
    text, name = _read_program(program, limit)
    fmt = output_format or (Format.table if sys.stdout.isatty() else Format.plain)
    if ranges:
        return _sweep(program, text, name, limit, values, ranges, names, outputs, fmt)
    try:
        dag = compile_program(text, name, max_size=limit, shapes=array_shapes(values))
        if view is None and len(expand(dag, outputs)) > 1:  # --of names a vector: Jacobian
            view = "several --of"
            _refuse_without_effect(view, stats, symbolic, ascii_only, value, names,
                                   output_format, expand_formulas)
        if view in ("--hessian", "--check", "several --of"):
            note = output_note(dag, outputs[0] if outputs else None)  # None with --of
            if note is not None:
                _print_diagnostic(note)
            _print_matrix_view(dag, values, names, outputs, hessian, check, fmt,
                               expand_formulas)
            return
        numbers_needed = view is not None
        result = gradients(dag, at=values, wrt=names, of=outputs[0] if outputs else None,
                           stats=stats,
                           symbolic=False if numbers_needed else (
                               True if symbolic or fmt is Format.latex else None),
                           record=explain, expand=expand_formulas)
        _require_formulas(expand_formulas, any(f.value is None or result.symbolic
                                               for f in result.formulas.values()))
    except ParseError as exc:
        _fail(_perhaps_a_missing_file(program, exc))
    except GradcalcError as exc:
        _fail(exc)
    for warning in result.warnings:
        _print_diagnostic(warning)
    _print_view(result, view, graph, fmt, not ascii_only and _unicode_stdout(), value)


def _refuse_with_sweep(ranges: bool, output_format: Format | None, batch: str | None,
                       view: str | None, stats: bool, symbolic: bool, ascii_only: bool,
                       value: bool, expand_formulas: bool = False) -> None:
    """A range in --at sweeps the program: the options that show one point are refused (and
    LaTeX is only for one program's gradients)."""
    if output_format is Format.latex and (batch is not None or ranges or view is not None):
        raise _usage("--format latex is for the gradients of one program",
                     "leave out --batch, ranges in --at and the other views")
    if not ranges:
        return
    flags = [flag for flag, on in (("--batch", batch is not None), (view, view is not None),
                                   ("--stats", stats), ("--symbolic", symbolic),
                                   ("--expand", expand_formulas), ("--ascii", ascii_only),
                                   ("--value", value)) if on]
    if flags:
        raise _usage(f"a range in --at (a sweep) cannot be combined with {flags[0]}",
                     "a sweep gives the value and the gradients at every point; run the "
                     "other views at one point")


def _sweep(program: str, text: str, name: str, limit: int, values: dict[str, ArrayValue],
           ranges: dict[str, list[float]], names: list[str] | None, outputs: list[str],
           fmt: Format) -> None:
    from gradcalc.cli_sweep import print_sweep
    from gradcalc.sweep import sweep

    if len(outputs) > 1:
        raise _usage("a sweep takes one --of", "sweep each output on its own")
    try:
        found = sweep(compile_program(text, name, max_size=limit, shapes=array_shapes(values)),
                      ranges, values, names, outputs[0] if outputs else None)
    except ParseError as exc:
        _fail(_perhaps_a_missing_file(program, exc))
    except GradcalcError as exc:
        _fail(exc)
    print_sweep(found, fmt)


def _another_mode(repl: bool, program: str | None, others: list[str], plot: list[str] | None,
                  output_file: str | None, ascii_only: bool, values: dict[str, ArrayValue],
                  names: list[str] | None, outputs: list[str], limit: int) -> bool:
    """The session (``--repl``, or nothing to do on a terminal) and ``--plot``; False when
    the command is none of them."""
    if repl or (program is None and not others and _interactive()):
        _session(program, others, values, names, outputs)
    elif plot or output_file is not None:
        _plot_command(program, plot or [], output_file, others, ascii_only, values, names,
                      outputs, limit)
    else:
        return False
    return True


def _plot_command(program: str | None, plots: list[str], output_file: str | None,
                  others: list[str], ascii_only: bool, values: dict[str, ArrayValue],
                  names: list[str] | None, outputs: list[str], limit: int) -> None:
    """``--plot``: the options it has no use for are refused, then the program is drawn."""
    if not plots:
        raise _usage("--output writes a --plot", "add --plot NAME=START:STOP")
    refused = [flag for flag in others if flag not in ("--plot", "--output", "--ascii",
                                                      "--max-size")]
    if refused or names is not None or len(outputs) > 1:
        flag = refused[0] if refused else "--wrt" if names is not None else "several --of"
        raise _usage(f"--plot cannot be combined with {flag}",
                     "a plot draws the output and its derivative along the --plot ranges; "
                     "give other inputs values with --at")
    program = _program_argument(program)
    text, name = _read_program(program, limit)
    try:
        dag = compile_program(text, name, max_size=limit, shapes=array_shapes(values))
        _draw(dag, plots, values, outputs[0] if outputs else None, output_file, ascii_only)
    except ParseError as exc:
        _fail(_perhaps_a_missing_file(program, exc))
    except GradcalcError as exc:
        _fail(exc)


#: A plot has at most this many points (a picture shows a few thousand at most).
PLOT_LIMIT = 1_000_000
#: Points along a --plot range given as start:stop: a terminal curve gets 2 a column (its
#: braille dots), a file 400; a heat map 48 x 24 on a terminal, 60 x 60 in a file.
_FILE_POINTS, _MAP_POINTS, _FILE_MAP_POINTS = 400, (48, 24), 60


def _draw(dag: Dag, plots: list[str], values: dict[str, ArrayValue], of: str | None,
          output_file: str | None, ascii_only: bool) -> None:
    """Sweep ``dag`` over the ``--plot`` ranges and draw the result (terminal or file)."""
    from gradcalc import plot
    from gradcalc.sweep import sweep

    if len(plots) > 2:
        raise InputError(f"--plot takes one range (curves) or two (a heat map), not "
                         f"{len(plots)}", hint="give the other inputs values with --at")
    suffix = Path(output_file).suffix.lower() if output_file is not None else ""
    if output_file is not None and suffix not in (".svg", ".png"):
        raise InputError(f"--output {output_file}: a plot is written as .svg or .png",
                         hint="name the file plot.svg or plot.png")
    width = min(_terminal_width() or 100, plot.MAX_WIDTH)
    height = max(plot.MIN_HEIGHT, min(24, shutil.get_terminal_size((100, 30)).lines - 10))
    ranges: dict[str, list[float]] = {}
    for index, item in enumerate(plots):
        name, sep, text = item.partition("=")
        name, text = name.strip(), text.strip()
        if not sep or not name or not text:
            raise InputError(f"--plot expects NAME=START:STOP, got {item!r}",
                             hint="for example --plot X=-3:3")
        if text.count(":") == 1 and "/" not in text.rpartition(":")[2]:
            count = (_MAP_POINTS[index] if len(plots) == 2 else 2 * width) \
                if output_file is None else (_FILE_MAP_POINTS if len(plots) == 2
                                             else _FILE_POINTS)
            text = f"{text}/{count}"
        ranges[name] = _range(name, text)
    points = math.prod(len(p) for p in ranges.values())
    if points > PLOT_LIMIT:
        raise InputError(f"the plot would have {points:,} points, more than the "
                         f"{PLOT_LIMIT:,} a plot may have",
                         hint="a picture shows a few thousand at most: take fewer points")
    found = sweep(dag, ranges, values, list(ranges), of)
    for note in found.notes:
        _print_diagnostic(note)
    color = output_file is None and sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    if len(ranges) == 1:
        line = plot.line_data(found)
        arguments: tuple[Any, ...] = (line.x_name, line.output, line.xs, line.values,
                                      line.slopes, line.kinks)
        drawn: dict[str, Callable[..., Any]] = {".svg": plot.svg_line_plot,
                                                ".png": plot.png_line_plot}
        terminal: Callable[..., str] = plot.line_plot
    else:
        grid = plot.grid_data(found)
        arguments = (grid.x_name, grid.y_name, grid.output, grid.xs, grid.ys, grid.values,
                     grid.gradients)
        drawn = {".svg": plot.svg_heat_map, ".png": plot.png_heat_map}
        terminal = plot.heat_map
    if output_file is not None:
        picture = drawn[suffix](*arguments)
        data = picture.encode("utf-8") if isinstance(picture, str) else picture
        try:
            Path(output_file).write_bytes(data)
        except OSError as exc:
            raise InputError(f"cannot write {output_file}: {exc.strerror}") from None
        sys.stderr.write(f"wrote {output_file} ({len(data):,} bytes)\n")
        return
    text = terminal(*arguments, width=width, height=height, ascii=ascii_only
                    or not _unicode_stdout(), color=color)
    if color:
        from rich.text import Text

        _console().print(Text.from_markup(text), highlight=False, soft_wrap=True)
    else:
        sys.stdout.write(text + "\n")


def _numbers_only(values: dict[str, ArrayValue]) -> dict[str, float]:
    """``--at`` values for ``--batch``, which takes numbers only."""
    arrays = [name for name, given in values.items() if isinstance(given, list)]
    if arrays:
        raise _usage(f"--at {arrays[0]}: a vector or matrix value does not apply to "
                     "--batch", "set it in each line's program, as in W = [1, 2, 3]")
    return values  # type: ignore[return-value]


def _set_flags(**given: object) -> list[str]:
    """The options among ``given`` (by parameter name) that were set: a view by its name,
    the others as ``--name``."""
    return [str(value) if name == "view" else "a range in --at" if name == "range"
            else "--" + name.replace("_", "-")
            for name, value in given.items() if value not in (None, False)]


def _interactive() -> bool:
    return sys.stdin is not None and sys.stdin.isatty() and sys.stdout.isatty()


def _session(program: str | None, others: list[str], values: dict[str, ArrayValue],
             names: list[str] | None, outputs: list[str]) -> None:
    """The interactive session (:mod:`gradcalc.repl`) with this command's printers."""
    from gradcalc import repl

    if program is not None or others:
        raise _usage(f"--repl cannot be combined with {'PROGRAM' if program else others[0]}",
                     "a session starts empty (use :load FILE); give --at, --wrt, --of "
                     "to begin with them")
    if len(outputs) > 1:
        raise _usage("a session takes one --of", "choose the output; :of changes it")
    session = repl.Session(at=dict(values), wrt=names, of=outputs[0] if outputs else None)

    def show(reply: repl.Reply) -> None:
        for item in reply.diagnostics:
            _print_diagnostic(item)
        if reply.text:
            sys.stdout.write(reply.text)
        if reply.result is not None or reply.view == ":plot":
            try:
                _show_answer(reply, reply.extra if reply.result is not None else session.at)
            except GradcalcError as exc:
                _print_diagnostic(exc)
            except typer.Exit:
                pass  # (a refused view already said why: the session goes on)
        sys.stdout.flush()

    repl.run(session, show, "gradcalc: type statements and expressions, :help for the "
             "commands, Ctrl-D to leave.\n")


def _show_answer(reply: Any, values: dict[str, ArrayValue]) -> None:
    unicode = _unicode_stdout()
    fmt = Format.table if sys.stdout.isatty() else Format.plain
    result = reply.result
    if reply.view in (":hessian", ":check"):
        assert result.dag is not None
        _print_matrix_view(result.dag, values, None, [result.output], reply.view == ":hessian",
                           reply.view == ":check", fmt)
    elif reply.view == ":graph":
        _print_graph(result, "auto", fmt, unicode)
    elif reply.view == ":explain":
        _print_explanation(result, fmt, unicode)
    elif reply.view == ":plot":
        _session_plot(reply.extra, values)
    else:
        _print_results(result, fmt, True)


def _session_plot(extra: tuple[str, str], values: dict[str, ArrayValue]) -> None:
    """``:plot X=-3:3`` in a session: the last expression drawn over the range(s)."""
    program, ranges = extra
    plots = [r for r in split_items(ranges) if r.strip()]
    swept = {r.partition("=")[0].strip() for r in plots}  # (the range wins over a value)
    dag = compile_program(program, "<session>", shapes=array_shapes(values))
    given = {n: v for n, v in values.items()
             if (n in dag.inputs or n in dag.tensors) and n not in swept}
    _draw(dag, plots, given, None, None, False)


def _program_argument(program: str | None) -> str:
    """PROGRAM as given; without it, standard input when a pipeline feeds it
    (``echo 'OUT = A*2' | gradcalc --at A=1``)."""
    if program is not None:
        return program
    if sys.stdin is None or sys.stdin.isatty():
        raise _usage("missing PROGRAM", "give program text, a file, '-' for standard "
                     "input, or --batch FILE")
    return "-"


def _perhaps_a_missing_file(program: str, exc: ParseError) -> GradcalcError:
    """A PROGRAM that does not parse but looks like a file name is more likely a typo in a
    path: say so, with the parse error as the hint."""
    if _looks_like_path(program) and not os.path.exists(program):
        return InputError(f"no such file: {program}",
                          hint=f"as program text it does not parse either: {exc}")
    return exc


def _print_view(result: Result, view: str | None, graph: str | None, fmt: Format,
                unicode: bool, value: bool) -> None:
    if graph is not None:
        _print_graph(result, graph, fmt, unicode)
    elif view == "--explain":
        _print_explanation(result, fmt, unicode)
    elif view in ("--dot", "--mermaid"):
        from gradcalc import export

        assert result.dag is not None
        to_text = export.to_dot if view == "--dot" else export.to_mermaid
        sys.stdout.write(to_text(result.dag, result.dag.named[result.output],
                                 result.node_values, result.node_gradients))
    else:
        _print_results(result, fmt, value)


def _print_nothing_to_differentiate(dag: Dag, values: dict[str, ArrayValue], outputs: list[str],
                                     fmt: Format) -> None:
    """The output depends on no input: answer as the default view does, value and note."""
    result = gradients(dag, at=values, of=outputs[0] if outputs else None)
    for warning in result.warnings:
        if warning.kind != "outputs":  # said already
            _print_diagnostic(warning)
    _print_results(result, fmt, value=False)


def _print_checks(dag: Dag, values: dict[str, ArrayValue], names: list[str] | None,
                  outputs: list[str], fmt: Format) -> None:
    from gradcalc import derivatives, render

    checks = derivatives.check_gradients(dag, at=values, wrt=names,
                                         of=outputs[0] if outputs else None)
    if not checks and names is None:
        return _print_nothing_to_differentiate(dag, values, outputs, fmt)
    for warning in checks.warnings:
        _print_diagnostic(warning)
    if fmt is Format.json:
        sys.stdout.write(_dumps(render.checks_json(checks)))
    elif fmt is Format.table:
        _print_rich(render.checks_table(checks))
    else:
        sys.stdout.write(render.checks_plain(checks))
    if not all(c.ok for c in checks):
        raise typer.Exit(ExitStatus.FAILED)


def _print_constant_outputs(dag: Dag, values: dict[str, ArrayValue], outputs: list[str],
                            matrix: Matrix, fmt: Format) -> None:
    """The Jacobian of outputs that depend on no input has no columns: say so, and give
    each output's value (in JSON, next to the empty matrix)."""
    from gradcalc import render

    results = {name: gradients(dag, at=values, of=name) for name in unique(outputs)}
    _print_diagnostic(Diagnostic(
        "constant", f"{', '.join(results)} {'depends' if len(results) == 1 else 'depend'} on "
        "no input: nothing to differentiate, the Jacobian has no columns"))
    if fmt is Format.json:
        data = render.matrix_json(matrix, "jacobian")
        data["values"] = {name: json_number(r.value) for name, r in results.items()
                          if r.value is not None}
        sys.stdout.write(_dumps(data))
    else:
        sys.stdout.write("".join(f"{name} = {format_number(r.value)}\n"
                                 for name, r in results.items() if r.value is not None))


def _print_results(result: Result, fmt: Format, value: bool) -> None:
    from gradcalc import render

    if fmt is Format.table:
        _print_rich(render.to_table(result, _unicode_stdout()))
    elif fmt is Format.latex:
        from gradcalc.latex import formula_latex

        sys.stdout.write("\n".join(formula_latex(f.text, result.output, name) + "\n"
                                   for name, f in result.formulas.items()))
    else:
        sys.stdout.write(_dumps(render.to_json_object(result)) if fmt is Format.json
                         else render.to_plain(result, value=value))


_VIEWS = ("--graph", "--explain", "--dot", "--mermaid", "--hessian", "--check", "several --of")


def _the_view(*chosen: bool) -> str | None:
    """The one view asked for (``None`` for the default results), or a usage error."""
    views = [flag for flag, on in zip(_VIEWS, chosen, strict=True) if on]
    if len(views) > 1:
        raise _usage(f"{' and '.join(views)} cannot be combined", "choose one view")
    return views[0] if views else None


def _refuse_with_batch(program: str | None, view: str | None, stats: bool, symbolic: bool,
                       ascii_only: bool, value: bool, outputs: list[str],
                       expand_formulas: bool) -> None:
    if program is not None:
        raise _usage("give either PROGRAM or --batch FILE, not both",
                     "--batch reads one problem per line of FILE")
    if view == "several --of":
        raise _usage("--batch takes one --of", "a Jacobian needs a single program")
    flags = [flag for flag, on in ((view, view is not None), ("--stats", stats),
                                   ("--symbolic", symbolic), ("--expand", expand_formulas),
                                   ("--ascii", ascii_only), ("--value", value)) if on]
    if flags:
        raise _usage(f"--batch cannot be combined with {', '.join(map(str, flags))}",
                     "run those on a single program; batch results always include the value")


def _require_formulas(expand_formulas: bool, any_formula: bool) -> None:
    """--expand with nothing to expand is refused (every entry turned out a number)."""
    if expand_formulas and not any_formula:
        raise _usage("--expand changes formulas, and every result here is a number",
                     "add --symbolic for formulas, or leave --expand out")


def _refuse_without_batch(input_kind: InputKind | None, jobs: int | None,
                          fail_fast: bool) -> None:
    flags = [flag for flag, on in (("--input", input_kind is not None),
                                   ("--jobs", jobs is not None),
                                   ("--fail-fast", fail_fast)) if on]
    if flags:
        raise _usage(f"{', '.join(flags)} only {'applies' if len(flags) == 1 else 'apply'} "
                     "to --batch", "add --batch FILE, or leave the option out")


def _refuse_without_effect(view: str | None, stats: bool, symbolic: bool, ascii_only: bool,
                           value: bool, names: list[str] | None,
                           output_format: Format | None, expand_formulas: bool = False) -> None:
    """Options that would change nothing in the chosen view are refused, never ignored."""
    if expand_formulas and view not in (None, "--hessian", "several --of"):
        raise _usage(f"--expand does not apply to {view}",
                     "it changes how formulas are written, and this view has none")
    if view is None:
        if ascii_only:
            raise _usage("--ascii only applies to --graph and --explain",
                         "the results table has no drawing; leave --ascii out")
        return
    if stats or value:
        raise _usage(f"{'--stats' if stats else '--value'} does not apply to {view}",
                     "it adds to the default results view; run it without " + view)
    if symbolic:
        hint = ("entries are formulas wherever an input has no value"
                if view in ("--hessian", "several --of") else "the view needs numbers")
        raise _usage(f"--symbolic does not apply to {view}", hint)
    if ascii_only and view not in ("--graph", "--explain"):
        raise _usage(f"--ascii does not apply to {view}",
                     "it changes the drawings of --graph and --explain")
    if names is not None and view in ("--graph", "--dot", "--mermaid"):
        raise _usage(f"--wrt does not apply to {view}",
                     "the graph shows the gradient of every node; leave --wrt out")
    if output_format is not None and view in ("--dot", "--mermaid"):
        raise _usage(f"--format does not apply to {view}",
                     f"{view} prints its own language")


def _print_matrix_view(dag: Dag, values: dict[str, ArrayValue], names: list[str] | None,
                       outputs: list[str], hessian: bool, check: bool, fmt: Format,
                       expand_formulas: bool = False) -> None:
    from gradcalc import derivatives, render

    if check:
        return _print_checks(dag, values, names, outputs, fmt)
    if hessian:
        matrix = derivatives.hessian(dag, at=values, wrt=names,
                                     of=outputs[0] if outputs else None, expand=expand_formulas)
        key = "hessian"
        if not matrix.columns and names is None:
            return _print_nothing_to_differentiate(dag, values, outputs, fmt)
    else:
        matrix = derivatives.jacobian(dag, outputs, at=values, wrt=names,
                                      expand=expand_formulas)
        key = "jacobian"
        if not matrix.columns and names is None:
            return _print_constant_outputs(dag, values, outputs, matrix, fmt)
    _require_formulas(expand_formulas, any(
        isinstance(entry, str) for row in matrix.entries.values() for entry in row.values()))
    for warning in matrix.warnings:
        _print_diagnostic(warning)
    if fmt is Format.json:
        sys.stdout.write(_dumps(render.matrix_json(matrix, key)))
    elif fmt is Format.table:
        _print_rich(render.matrix_table(matrix, key))
    else:
        sys.stdout.write(render.matrix_plain(matrix))


def _print_graph(result: Result, form: str, fmt: Format, unicode: bool) -> None:
    from gradcalc import render

    if form not in render.GRAPH_FORMS:
        raise _usage(f"--graph={form}: unknown form",
                     "the forms are " + ", ".join(render.GRAPH_FORMS))
    dag = result.dag
    assert dag is not None
    width = _terminal_width()
    try:
        view = render.graph_view(dag, dag.named[result.output], result.node_values,
                                 result.node_gradients, form=form, width=width,
                                 unicode=unicode)
    except render.GraphTooLarge as exc:
        raise _usage(str(exc), "the table form has no size limit") from None
    text = view if isinstance(view, str) else render.as_text(view, unicode)
    if fmt is Format.json:
        data = render.to_json_object(result)
        data["graph"] = text
        sys.stdout.write(_dumps(data))
    elif isinstance(view, str) or not sys.stdout.isatty():
        sys.stdout.write(text)
    else:
        _print_rich(view)


def _print_explanation(result: Result, fmt: Format, unicode: bool) -> None:
    from gradcalc.explain import explain, explanation_text

    story = explain(result)
    if fmt is Format.json:
        sys.stdout.write(_dumps(story.to_json()))
    elif sys.stdout.isatty():
        _console().print(explanation_text(story, unicode), end="")
    else:
        sys.stdout.write(explanation_text(story, unicode))


def _terminal_width() -> int | None:
    """The terminal's width; with no terminal, $COLUMNS if set, else no limit."""
    if sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    columns = os.environ.get("COLUMNS", "")
    # isdigit() alone accepts "²", which int() refuses: an unusable COLUMNS is ignored.
    usable = columns.isascii() and columns.isdigit() and 0 < int(columns) < 1_000_000
    return int(columns) if usable else None


def _print_rich(view: object) -> None:
    _console().print(view)


def _console(stderr: bool = False) -> Console:
    """A Rich console that follows the terminal conventions: styles only on a terminal and
    never under ``NO_COLOR`` (no colour and no bold, dim or italic either), and a closed pipe
    ends the program with 141 like every other write."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            raise BrokenPipeError

    stream = sys.stderr if stderr else sys.stdout
    plain = bool(os.environ.get("NO_COLOR")) or not stream.isatty()
    return _Console(stderr=stderr, color_system=None if plain else "auto",
                    highlight=not plain, emoji=False)


def _file_size(stream: BinaryIO) -> int | None:
    try:
        return os.fstat(stream.fileno()).st_size or None
    except (OSError, AttributeError, ValueError):
        return None


def _read_program(program: str, limit: int) -> tuple[str, str]:
    """The program's text and its name for messages; more than ``limit`` bytes are refused
    before they are read (standard input may be endless: ``< /dev/zero``)."""
    if program == "-":
        if sys.stdin is None:
            _fail(InputError("standard input is closed", hint="give program text or a file"))
        data = sys.stdin.buffer.read(limit + 1)
        if len(data) > limit:
            _fail(_too_large("<stdin>", None, limit))
        return _decode(data, "<stdin>"), "<stdin>"
    if os.path.isdir(program):
        _fail(InputError(f"{program} is a directory",
                         hint="give a program file, '-' for standard input, or program text"))
    if os.path.isfile(program):
        try:
            with open(program, "rb") as f:
                size = _file_size(f)
                if size is not None and size > limit:
                    _fail(_too_large(program, size, limit))
                data = f.read(limit + 1)
        except OSError as exc:
            _fail(InputError(f"cannot read {program}: {exc.strerror}"))
        if len(data) > limit:
            _fail(_too_large(program, None, limit))
        return _decode(data, program), program
    if len(program) > limit // 4 and len(program.encode("utf-8", "surrogatepass")) > limit:
        _fail(_too_large("<program>", len(program.encode("utf-8", "surrogatepass")), limit))
    return program, "<program>"


def _too_large(name: str, size: int | None, limit: int) -> GradcalcError:
    wanted = f"--max-size {_size_option(size)}" if size is not None else "--max-size"
    return program_too_large(name, size, limit, f"raise the limit with {wanted}")


def _size_option(size: int) -> str:
    """The smallest round --max-size value that lets ``size`` bytes through."""
    for suffix, shift in (("K", 10), ("M", 20), ("G", 30)):
        units = -(-size // (1 << shift))
        if units < 1024 or suffix == "G":
            return f"{units}{suffix}"
    raise AssertionError("unreachable")


_SIZE = re.compile(r"([0-9]{1,10})\s*(?:([KMG])(?:i?B)?|B)?", re.IGNORECASE)
MAX_SIZE_LIMIT = PROGRAM_CEILING


def _parse_size(text: str) -> int:
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise _usage(f"--max-size {text!r} is not a size",
                     "write a number of bytes, or one with K, M or G, e.g. --max-size 16M")
    number, unit = int(match[1]), (match[2] or "").upper()
    size = number << {"": 0, "K": 10, "M": 20, "G": 30}[unit]
    if not 0 < size <= MAX_SIZE_LIMIT:
        raise _usage(f"--max-size {text} is out of range",
                     f"give a size from 1 byte to 1G (about {MEMORY_PER_BYTE} bytes of memory "
                     "per byte of program)")
    return size


def _decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        _fail(InputError(f"{name} is not UTF-8 text (byte {exc.start} cannot be decoded)"))


def _looks_like_path(text: str) -> bool:
    return "=" not in text and bool(re.fullmatch(r"[\w.~/\\-]+\.\w+|.*[/\\].*\.\w+", text))


def _split(option: str, values: list[str] | None) -> list[str]:
    """The comma-separated items of a repeatable option; an empty item is an error (``--wrt ""``
    must not silently mean "the default")."""
    items = [part.strip() for value in values or [] for part in split_items(value)]
    if "" in items:
        raise _usage(f"{option} was given an empty {'item' if option == '--at' else 'name'}",
                     f"write {option} {'A=2' if option == '--at' else 'NAME'}; separate several "
                     "with commas, without an empty one")
    return items


def _parse_at(values: list[str]) -> tuple[dict[str, ArrayValue], dict[str, list[float]]]:
    """The values of ``--at`` items, and the ranges among them (``X=-2:2:0.5``: a sweep)."""
    at: dict[str, ArrayValue] = {}
    ranges: dict[str, list[float]] = {}
    for item in _split("--at", values):
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name:
            raise _usage(f"--at expects NAME=VALUE, got {item!r}", "for example --at A=2")
        number: Any
        if ":" in value:
            ranges[name] = _range(name, value)
            continue
        if _number().fullmatch(value):
            number = float(value)
        elif value and value.lstrip("+-").lower() not in ("nan", "inf", "infinity"):
            # a constant expression, through the grammar: pi/4, 1/3, 2^-10
            from gradcalc.api import constant_value

            try:
                number = constant_value(value, f"--at {name}")
            except GradcalcError as exc:
                _fail(exc)
        else:
            number = math.nan
        if not all(map(math.isfinite, _flat(number))):
            raise _usage(f"--at {name}: {value!r} is not a finite number",
                         "write a number such as 2, -0.5 or 1e-3, or an expression of "
                         "numbers such as pi/4")
        at[name] = number
    return at, ranges


def _range(name: str, value: str) -> list[float]:
    from gradcalc.api import constant_value
    from gradcalc.sweep import range_points

    def bound(text: str, where: str) -> float:
        found = constant_value(text, where)
        if isinstance(found, list) or not math.isfinite(found):
            raise InputError(f"{where}: {text.strip()!r} is not a finite number",
                             hint="a range's start, stop and step are numbers")
        return found

    try:
        return range_points(name, value, bound)
    except GradcalcError as exc:
        _fail(exc)


def _flat(value: Any) -> list[float]:
    """The numbers of a value: a number, a vector's elements, a matrix's rows'."""
    if not isinstance(value, list):
        return [value]
    return [x for item in value for x in (item if isinstance(item, list) else [item])]


def _usage(message: str, hint: str) -> typer.Exit:
    _print_diagnostic(InputError(message, hint=hint))
    return typer.Exit(ExitStatus.USAGE)


def _fail(exc: GradcalcError) -> NoReturn:
    _print_diagnostic(exc)
    raise typer.Exit(exc.exit_code)


def _print_diagnostic(item: GradcalcError | Diagnostic) -> None:
    text = item.render()
    if sys.stderr.isatty() and not os.environ.get("NO_COLOR"):
        level, _, rest = text.partition(":")
        colour = "31" if level == "error" else "33"
        text = f"\x1b[1;{colour}m{level}\x1b[0m:{rest}"
    sys.stderr.write(text + "\n")


def normalize_args(args: list[str]) -> list[str]:
    """A bare ``--graph`` means ``--graph=auto`` (click options cannot take optional values)."""
    return ["--graph=auto" if arg == "--graph" else arg for arg in args]


def _unicode_stdout() -> bool:
    """Whether standard output's encoding can write any character (UTF-8, UTF-16, ...)."""
    try:
        return codecs.lookup(getattr(sys.stdout, "encoding", None) or "ascii").name.startswith(
            "utf")
    except LookupError:
        return False


def _dumps(data: object) -> str:
    """One JSON document and a newline; escaped to ASCII where standard output could not
    write every character (``PYTHONIOENCODING=ascii``, a Latin-1 locale), so it stays JSON."""
    return json.dumps(data, ensure_ascii=not _unicode_stdout()) + "\n"


def _legible_output() -> None:
    """On an output that cannot write every character, pictures fall back to ASCII (see
    :func:`_print_view`), JSON is escaped, and any other character that does not fit (a
    name quoted from the input) is written as a Python escape (``\\u2202``), never a crash."""
    if not _unicode_stdout() and isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="backslashreplace")


def _complete_writes() -> None:
    """Under ``PYTHONUNBUFFERED`` standard output writes straight to the file descriptor, and
    a short write (the reader went away in the middle) silently drops the rest. A buffer in
    between makes every write complete or an error (then exit 141), as without the variable."""
    buffer = getattr(sys.stdout, "buffer", None)
    if isinstance(buffer, io.RawIOBase):
        sys.stdout = io.TextIOWrapper(io.BufferedWriter(buffer), encoding=sys.stdout.encoding,
                                      errors=sys.stdout.errors, line_buffering=True)


def main() -> None:
    """Run the command on ``sys.argv`` (the console script's entry point, through
    :mod:`gradcalc.__main__`, adds the Ctrl-C handling)."""
    if sys.stdout is None:  # started with standard output closed (`>&-`): nowhere to answer
        sys.exit(ExitStatus.BROKEN_PIPE)
    if sys.stderr is None:  # diagnostics closed (`2>&-`): the exit code still tells
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115
    try:
        _complete_writes()
        _legible_output()
        app(args=sys.argv[1:], prog_name="gradcalc")
    except SystemExit:
        raise
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly, as command-line tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(ExitStatus.BROKEN_PIPE)
    except KeyboardInterrupt:
        sys.exit(ExitStatus.INTERRUPTED)
    except OSError as exc:
        if exc.errno not in _WRITE_ERRORS:
            _internal_error(exc)
        _output_failed(exc)
    except Exception as exc:
        _internal_error(exc)


def _internal_error(exc: BaseException) -> NoReturn:
    sys.stderr.write(
        f"gradcalc: internal error ({type(exc).__name__}: {exc}); this is a bug, "
        "please report it with the command that caused it\n")
    sys.exit(ExitStatus.INTERNAL)
