"""The ``gradcalc`` command: argument plumbing over :func:`gradcalc.gradients`, printing, and the
mapping from error classes to exit codes. No math, no graph walking, no layout here."""

from __future__ import annotations

import enum
import json
import math
import os
import re
import shutil
import sys
from typing import Annotated, NoReturn

import typer

from gradcalc import __version__
from gradcalc.api import Result, compile_program, gradients
from gradcalc.errors import Diagnostic, GradcalcError, InputError, ParseError

EXIT_OK = 0
EXIT_EVALUATION = 1  # the program is fine but cannot be evaluated at that point
EXIT_USAGE = 2  # bad invocation or bad program
EXIT_INTERNAL = 70  # a bug in gradcalc (EX_SOFTWARE)
EXIT_BROKEN_PIPE = 141

EPILOG = (
    "PROGRAM is a path to a program file (preferred when such a file exists), '-' for standard "
    "input, or program text, e.g. 'B = A*3; OUT = (B+1)*(B+2)'.\n\n"
    "Exit codes: 0 success; 1 evaluation failed (log(-1), division by zero, overflow); "
    "2 bad invocation or bad program (syntax, names, cycles, arguments, --at); "
    "70 internal error (please report it)."
)

_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


class Format(str, enum.Enum):
    table = "table"
    plain = "plain"
    json = "json"


app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"gradcalc {__version__}")
        raise typer.Exit()


@app.command(epilog=EPILOG)
def run(
    program: Annotated[str, typer.Argument(
        help="Program file, '-' for standard input, or program text.", show_default=False)],
    at: Annotated[list[str] | None, typer.Option(
        "--at", metavar="NAME=VALUE",
        help="Value of an input; repeat or separate with commas (--at A=1,B=2). "
        "Overrides a value set in the program.")] = None,
    wrt: Annotated[list[str] | None, typer.Option(
        "--wrt", metavar="NAME",
        help="Report the gradient with respect to NAME (an input or a named intermediate); "
        "repeat or separate with commas. Default: every input, then every named "
        "intermediate the output depends on.")] = None,
    of: Annotated[str | None, typer.Option(
        "--of", metavar="NAME", help="The output to differentiate (default: the last assigned "
        "name).")] = None,
    output_format: Annotated[Format | None, typer.Option(
        "--format", "-F", case_sensitive=False,
        help="table (the default on a terminal), plain (the default otherwise: one "
        "'NAME GRADIENT' line per name) or json.")] = None,
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
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Differentiate an equation: value of the output and its gradient with respect to every
    input and named intermediate, by reverse mode over a counted DAG."""
    text, name = _read_program(program)
    values = _parse_at(at or [])
    try:
        result = gradients(compile_program(text, name), at=values,
                           wrt=_split(wrt) if wrt else None, of=of, stats=stats)
    except ParseError as exc:
        if _looks_like_path(program) and not os.path.exists(program):
            _fail(InputError(f"no such file: {program}",
                             hint=f"as program text it does not parse either: {exc}"))
        _fail(exc)
    except GradcalcError as exc:
        _fail(exc)
    for warning in result.warnings:
        _print_diagnostic(warning)

    views = [flag for flag, on in (("--graph", graph is not None), ("--explain", explain),
                                   ("--dot", dot), ("--mermaid", mermaid)) if on]
    if len(views) > 1:
        raise _usage(f"{' and '.join(views)} cannot be combined", "choose one view")
    fmt = output_format or (Format.table if sys.stdout.isatty() else Format.plain)
    unicode = not ascii_only
    if graph is not None:
        _print_graph(result, graph, fmt, unicode)
    elif explain:
        _print_explanation(result, fmt, unicode)
    elif dot or mermaid:
        from gradcalc import export

        assert result.dag is not None
        to_text = export.to_dot if dot else export.to_mermaid
        sys.stdout.write(to_text(result.dag, result.dag.named[result.output],
                                 result.node_values, result.node_gradients))
    elif fmt is Format.table:
        from rich.console import Console

        from gradcalc import render

        Console().print(render.to_table(result))
    else:
        from gradcalc import render

        sys.stdout.write(render.to_json(result) if fmt is Format.json else render.to_plain(result))


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
        raise _usage(str(exc), "the tree and table forms have no size limit") from None
    text = view if isinstance(view, str) else render.as_text(view, unicode)
    if fmt is Format.json:
        data = render.to_json_object(result)
        data["graph"] = text
        sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    elif isinstance(view, str):
        sys.stdout.write(view)
    else:
        from rich.console import Console

        Console().print(view)


def _print_explanation(result: Result, fmt: Format, unicode: bool) -> None:
    from gradcalc.explain import explain, explanation_text

    story = explain(result)
    if fmt is Format.json:
        sys.stdout.write(json.dumps(story.to_json(), ensure_ascii=False) + "\n")
    elif sys.stdout.isatty():
        from rich.console import Console

        Console(highlight=True).print(explanation_text(story, unicode), end="")
    else:
        sys.stdout.write(explanation_text(story, unicode))


def _terminal_width() -> int | None:
    """The terminal's width; with no terminal, $COLUMNS if set, else no limit."""
    if sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else None


def _read_program(program: str) -> tuple[str, str]:
    if program == "-":
        return _decode(sys.stdin.buffer.read(), "<stdin>"), "<stdin>"
    if os.path.isfile(program):
        try:
            with open(program, "rb") as f:
                return _decode(f.read(), program), program
        except OSError as exc:
            _fail(InputError(f"cannot read {program}: {exc.strerror}"))
    return program, "<program>"


def _decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        _fail(InputError(f"{name} is not UTF-8 text (byte {exc.start} cannot be decoded)"))


def _looks_like_path(text: str) -> bool:
    return "=" not in text and bool(re.fullmatch(r"[\w.~/\\-]+\.\w+|.*[/\\].*\.\w+", text))


def _split(values: list[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _parse_at(values: list[str]) -> dict[str, float]:
    at: dict[str, float] = {}
    for item in _split(values):
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name:
            raise _usage(f"--at expects NAME=VALUE, got {item!r}", "for example --at A=2")
        number = float(value) if _NUMBER.fullmatch(value) else math.nan
        if not math.isfinite(number):
            raise _usage(f"--at {name}: {value!r} is not a finite number",
                         "write a decimal number such as 2, -0.5 or 1e-3")
        at[name] = number
    return at


def _usage(message: str, hint: str) -> typer.Exit:
    _print_diagnostic(InputError(message, hint=hint))
    return typer.Exit(EXIT_USAGE)


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


def main() -> None:
    """Entry point of the ``gradcalc`` console script."""
    try:
        app(args=normalize_args(sys.argv[1:]), prog_name="gradcalc")
    except SystemExit:
        raise
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly, as command-line tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(EXIT_BROKEN_PIPE)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        sys.stderr.write(
            f"gradcalc: internal error ({type(exc).__name__}: {exc}); this is a bug, "
            "please report it with the command that caused it\n")
        sys.exit(EXIT_INTERNAL)
