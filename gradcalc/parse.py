"""Program text to AST, with Lark's LALR(1) tables. The only module that imports Lark.

Lark compiles the grammar (``grammar/gradcalc.lark``, shipped inside the package as
``gradcalc.grammar``) into terminals and LALR(1) tables, cached per user so that start-up does
not rebuild them. The grammar stays the single definition of the language; this module only runs
those tables in a tight loop of its own: one regular expression made from Lark's terminals for
the tokens, and a shift/reduce loop in which every reduction calls :class:`_ToAst` through
Lark's callbacks. No parse tree is built and nothing recurses, so 100,000 nested parentheses or a
million-term sum are ordinary inputs. Measured against Lark's own parse loop, this is the same
parser without the per-token overhead (see ``tests/benchmarks``).
"""

from __future__ import annotations

import gc
import math
import os
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gradcalc.ast import Apply, Assign, Expr, Name, Num, Output, Program, Statement
from gradcalc.errors import GradcalcError, ParseError, Source, Span

if TYPE_CHECKING:
    from lark import Lark

# A token: (type, text, start offset, end offset, line, column), lines and columns 1-based.
Token = tuple[str, str, int, int, int, int]

__all__ = ["grammar_text", "parse"]


def grammar_text() -> str:
    """The text of ``gradcalc.lark`` as shipped with the package."""
    return resources.files("gradcalc.grammar").joinpath("gradcalc.lark").read_text("utf-8")


def _span(token: Token) -> Span:
    return Span(token[2], token[3], token[4], token[5])


def _join(first: Span, last: Span) -> Span:
    return Span(first.start, last.end, first.line, first.column)


def _binary(op: str) -> Any:
    def reduce(self: _ToAst, children: list[Any]) -> Apply:
        left, symbol, right = children
        return Apply(op, [left, right], _join(left.span, right.span), _span(symbol))

    reduce.__name__ = op
    return reduce


class _ToAst:
    """Callbacks for the LALR parser, one per grammar alias, building AST nodes."""

    add = _binary("add")
    sub = _binary("sub")
    mul = _binary("mul")
    div = _binary("div")
    pow = _binary("pow")

    def number(self, children: list[Token]) -> Num:
        (token,) = children
        text = token[1]
        value = float(text)
        if math.isinf(value):
            raise ParseError(f"the number {text} is too large", _span(token),
                             hint="numbers must fit in a 64-bit float (up to about 1.8e308)")
        return Num(value, text, _span(token))

    def name(self, children: list[Token]) -> Name:
        (token,) = children
        return Name(token[1], _span(token))

    def neg(self, children: list[Any]) -> Expr:
        symbol, operand = children
        span = _join(_span(symbol), operand.span)
        if type(operand) is Num:  # fold -2 into a literal, so that `A = -2` is an input
            text = operand.text[1:] if operand.text.startswith("-") else "-" + operand.text
            return Num(-operand.value, text, span)
        return Apply("neg", [operand], span, _span(symbol))

    def pos(self, children: list[Any]) -> Expr:
        return children[1]

    def group(self, children: list[Any]) -> Expr:
        left, inner, right = children
        inner.span = _join(_span(left), _span(right))
        return inner

    def arguments(self, children: list[Any]) -> list[Expr]:
        return children[0::2]

    def call(self, children: list[Any]) -> Apply:
        name, _, args, right = children
        name_span = _span(name)
        return Apply(name[1], args, _join(name_span, _span(right)), name_span, call=True)

    def assign(self, children: list[Any]) -> Assign:
        name, _, expr = children
        name_span = _span(name)
        return Assign(name[1], name_span, expr, _join(name_span, expr.span))

    def bare(self, children: list[Any]) -> Output:
        (expr,) = children
        return Output(expr, expr.span)

    def start(self, children: list[Any]) -> list[Statement]:
        statements = [c for c in children if isinstance(c, (Assign, Output))]
        for statement in statements[:-1]:
            if type(statement) is Output:
                raise ParseError(
                    "a bare expression can only be the last statement",
                    statement.span,
                    hint="give it a name (NAME = ...) or move it to the end of the program",
                )
        return statements


def _cache_file() -> str | bool:
    """Where Lark keeps the compiled tables: the user's cache folder, never a shared /tmp
    (the cache is a pickle, and loading another user's pickle would run their code)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = Path(base) / "gradcalc"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return False
    return str(folder / "grammar.lark-cache")


@lru_cache(maxsize=1)
def _lark() -> Lark:
    from lark import Lark, Transformer

    class Callbacks(_ToAst, Transformer):  # Lark looks callbacks up on a Transformer
        pass

    return Lark(
        grammar_text(),
        parser="lalr",
        lexer="basic",
        keep_all_tokens=True,
        transformer=Callbacks(),
        cache=_cache_file(),
    )


class _Machine:
    """Lark's compiled grammar in the shape the loop in :func:`_run` wants.

    ``actions[state][symbol]`` is an ``int`` (shift to, or go to, that state) or a reduction
    ``(length, callback, rule name)``; ``tokens`` matches one terminal at a position, with the
    terminal's name as the group name."""

    def __init__(self, lark: Lark) -> None:
        from lark.parsers.lalr_analysis import Shift

        parser = lark.parser.parser.parser  # the LALR parser inside Lark's front end
        table, callbacks = parser.parse_table, parser.callbacks
        self.start = table.start_states["start"]
        self.end = table.end_states["start"]
        def reduction(rule: Any) -> tuple[int, Any, str]:
            # `?sum: product` hands its single child up unchanged: no call, no list.
            if rule.options.expand1 and len(rule.expansion) == 1 and not rule.alias:
                return (1, None, rule.origin.name)
            return (len(rule.expansion), callbacks[rule], rule.origin.name)

        self.actions: dict[Any, dict[str, Any]] = {
            state: {symbol: arg if action is Shift else reduction(arg)
                    for symbol, (action, arg) in row.items()}
            for state, row in table.states.items()
        }
        # Lark's own order for its basic lexer: priority, then the longest possible match.
        terminals = sorted(lark.terminals, key=lambda t: (
            -t.priority, -t.pattern.max_width, -len(t.pattern.value), t.name))
        self.tokens = re.compile("|".join(
            f"(?P<{t.name}>{t.pattern.to_regexp()})" for t in terminals))
        self.ignore = frozenset(lark.lexer_conf.ignore)


@lru_cache(maxsize=1)
def _machine() -> _Machine:
    return _Machine(_lark())


class _Unexpected(Exception):
    """The loop met a token (or a character) the grammar does not allow there."""

    def __init__(self, token: Token | None, pos: int, expected: set[str]) -> None:
        super().__init__()
        self.token, self.pos, self.expected = token, pos, expected


def _run(machine: _Machine, text: str) -> list[Statement]:
    match = machine.tokens.match
    ignore, actions, end_state = machine.ignore, machine.actions, machine.end
    states: list[Any] = [machine.start]
    values: list[Any] = []
    pos, line, line_start, size = 0, 1, 0, len(text)
    while True:
        if pos < size:
            m = match(text, pos)
            if m is None:
                raise _Unexpected(None, pos, set())
            kind, end = m.lastgroup or "", m.end()
            value = text[pos:end]
            token = (kind, value, pos, end, line, pos - line_start + 1)
            if "\n" in value:
                line += value.count("\n")
                line_start = pos + value.rindex("\n") + 1
            pos = end
            if kind in ignore:
                continue
        else:
            kind = "$END"
            token = (kind, "", pos, pos, line, pos - line_start + 1)
        while True:
            row = actions[states[-1]]
            action = row.get(kind)
            if action is None:
                raise _Unexpected(token, token[2], {s for s in row if s.isupper() or s == "$END"})
            if type(action) is int:  # shift
                states.append(action)
                values.append(token)
                break
            length, callback, rule = action
            if callback is None:  # a pass-through rule: only the state changes
                del states[-1]
                states.append(actions[states[-1]][rule])
                continue
            if length:
                children = values[-length:]
                del values[-length:]
                del states[-length:]
            else:
                children = []
            values.append(callback(children))
            states.append(actions[states[-1]][rule])
            if kind == "$END" and states[-1] == end_state:
                return values[-1]


def parse(text: str, name: str = "<program>") -> Program:
    """Parse gradcalc program text into a :class:`~gradcalc.ast.Program`.

    ``name`` is used in error messages (a file path, ``<stdin>``). Raises
    :class:`~gradcalc.errors.ParseError` with the position of the problem.
    """
    source = Source(text, name)
    machine = _machine()
    # The parser allocates millions of small objects on big inputs; the cyclic garbage
    # collector would scan them over and over for nothing (no cycles are made here).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        statements = _run(machine, text)
    except _Unexpected as exc:
        raise _syntax_error(exc, source) from None
    except GradcalcError as exc:
        exc.source = source
        raise
    finally:
        if gc_was_enabled:
            gc.enable()
    if not statements:
        raise ParseError("the program is empty",
                         hint="write at least one statement, e.g. OUT = A*2")
    return Program(statements, source)


# --- syntax errors -------------------------------------------------------------------------

_TERMINALS = {
    "NUMBER": "a number",
    "NAME": "a name",
    "LPAR": "'('",
    "RPAR": "')'",
    "PLUS": "'+'",
    "MINUS": "'-'",
    "TIMES": "'*'",
    "DIVIDE": "'/'",
    "POWER": "'^'",
    "EQUAL": "'='",
    "COMMA": "','",
    "_SEP": "';' or a new line",
    "$END": "the end of the program",
}
_OPERAND_STARTS = {"NUMBER", "NAME", "LPAR"}
_OPERATORS = {"PLUS", "MINUS", "TIMES", "DIVIDE", "POWER"}


def _describe(token: Token) -> str:
    kind, text = token[0], token[1]
    if kind == "$END":
        return "end of the program"
    if kind == "_SEP":
        return "new line" if "\n" in text else "';'"
    if kind == "NUMBER":
        return f"number {text}"
    if kind == "NAME":
        return f"name {text}"
    return f"'{text}'"


def _unclosed_paren(text: str, upto: int) -> int | None:
    """Offset of the last '(' before ``upto`` that is not closed, ignoring comments."""
    open_parens: list[int] = []
    in_comment = False
    for i, ch in enumerate(text[:upto]):
        if in_comment:
            in_comment = ch != "\n"
        elif ch == "#":
            in_comment = True
        elif ch == "(":
            open_parens.append(i)
        elif ch == ")" and open_parens:
            open_parens.pop()
        elif ch in ";\n":
            open_parens.clear()
    return open_parens[-1] if open_parens else None


def _syntax_error(exc: _Unexpected, source: Source) -> ParseError:
    text = source.text
    if exc.token is None:
        pos = exc.pos
        char = text[pos]
        hint = None
        if char == "=" and pos > 0 and text[pos - 1] == "=":
            hint = "gradcalc has no comparisons; '=' assigns a name"
        elif char == ",":
            hint = "',' only separates the arguments of a function call; use ';' between statements"
        elif char.isalpha() or char == "_":
            hint = "names use the letters A-Z and a-z, digits and '_'"
        return ParseError(f"unexpected character {char!r}", source.span_at(pos), source, hint)

    token = exc.token
    kind = token[0]
    expected = exc.expected
    at_end = kind == "$END"
    if at_end:  # point just past the last non-blank character
        pos = len(text.rstrip())
        span = source.span_at(pos, pos + 1)
    else:
        pos = token[2]
        span = source.span_at(pos, token[3])
    previous = _previous_token_text(text, pos)

    hint = None
    if kind == "_SEP" or at_end:
        unclosed = _unclosed_paren(text, pos)
        if unclosed is not None:
            where = source.span_at(unclosed)
            message = f"the '(' at {where.line}:{where.column} is never closed"
            return ParseError(message, span, source, hint="add the missing ')'")
        if expected & _OPERAND_STARTS:
            return ParseError(f"missing operand after {previous!r}" if previous
                              else "missing operand", span, source,
                              hint="an operator needs a value on both sides")
        return ParseError(f"unexpected {_describe(token)}", span, source)

    if kind == "RPAR" and _unclosed_paren(text, pos) is None:
        return ParseError("unmatched ')'", span, source, hint="remove it or add the matching '('")
    if kind == "RPAR" and expected & _OPERAND_STARTS:
        return ParseError("missing operand before ')'", span, source,
                          hint="parentheses and function calls need something inside")
    if kind in _OPERATORS and expected & _OPERAND_STARTS:
        return ParseError(f"missing operand before {_describe(token)}", span, source,
                          hint="two operators in a row need a value between them")
    if kind == "EQUAL":
        if previous == "=" or text.startswith("=", pos + 1):
            hint = "gradcalc has no comparisons: '=' gives a name to a value, once"
        elif "=" in text[source.line_starts()[span.line - 1]:pos].split(";")[-1]:
            hint = "only one '=' per statement; separate statements with ';' or a new line"
        else:
            hint = "the left side of '=' must be a single name"
        return ParseError("unexpected '='", span, source, hint)
    if kind in ("NAME", "NUMBER", "LPAR") and expected & _OPERATORS:
        if previous and previous[-1].isdigit() and kind == "NAME":
            hint = f"write {previous}*{token[1]} to multiply"
        else:
            hint = "an operator (+ - * / ^) or ';' is missing here"
        return ParseError(f"unexpected {_describe(token)}", span, source, hint)
    wanted = sorted(_TERMINALS.get(name, name) for name in expected if name in _TERMINALS)
    hint = "expected " + ", ".join(wanted) if wanted else None
    return ParseError(f"unexpected {_describe(token)}", span, source, hint)


def _previous_token_text(text: str, pos: int) -> str:
    """The text of the token before ``pos``, for messages like 'missing operand after +'."""
    i = pos - 1
    while i >= 0 and text[i] in " \t\r\f":
        i -= 1
    if i < 0:
        return ""
    if text[i].isalnum() or text[i] in "._":
        j = i
        while j > 0 and (text[j - 1].isalnum() or text[j - 1] in "._"):
            j -= 1
        return text[j : i + 1]
    if text[i] == "*" and i > 0 and text[i - 1] == "*":
        return "**"
    return text[i]
