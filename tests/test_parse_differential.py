"""The parser against Lark's own LALR(1) parser, on thousands of programs (issue 12, part 4).

``gradcalc.parse`` runs the LALR(1) tables Lark compiles from ``grammar/gradcalc.lark`` in a
shift/reduce loop of its own: it reads private attributes of Lark's parser and copies the
terminal order of Lark's basic lexer. This module is the contract that makes that safe. Every
program goes through ``gradcalc.parse.parse`` and through ``Lark(grammar, parser="lalr",
transformer=...)`` built from the same grammar text (``grammar_text()``), with the transformer
below written against Lark's public API only, once with Lark's basic lexer (the one the own
loop copies) and once with its default contextual lexer. Required:

* a well-formed program gives the same AST: every node's kind, operation, name, number text and
  value (bit for bit, sign of zero included), and every span (start, end, line, column);
* a broken program is rejected by both, at the same offending token (same terminal, offset,
  line and column; for the basic lexer the same set of expected terminals) or the same
  offending character; a program that ends too early is rejected at the end by both;
* the errors the reductions raise themselves (a number too large for a float, a bare
  expression before the last statement, a parameter that is not a name, an index that is not
  a whole number written as one or is too large) and the empty program come out the same.

Programs come from generators that follow the grammar's structure (valid ones) and from
mutations of them and token soup (broken ones); the same generators run on a seeded
``random.Random`` in :func:`test_the_generators_reach_every_case`, which checks that they
really produce every terminal, every rule and every kind of outcome.

The last tests check what ``gradcalc.parse`` reads from the grammar without Lark (the patterns
of names and numbers that other modules use, the terminals its error messages name) against
what Lark makes of the same grammar.
"""

from __future__ import annotations

import math
import random
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from helpers import property_settings
from hypothesis import event, example, given
from hypothesis import strategies as st
from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedToken

from gradcalc.ast import Apply, Assign, Define, Expr, Index, Name, Num, Output, Statement, Vector
from gradcalc.errors import ParseError, Span
from gradcalc.parse import (
    INDEX_LIMIT,
    NAME_PATTERN,
    NUMBER_PATTERN,
    _grammar_terminals,
    _machine,
    _pattern,
    _read_grammar,
    _run,
    _Unexpected,
    grammar_text,
    parse,
    terminal_pattern,
)

ROOT = Path(__file__).resolve().parent.parent

# =============================================================================================
# Lark's own parser, with an inline transformer building the same AST (public API only).
# =============================================================================================


class Rejected(Exception):
    """What the reductions themselves refuse (the own loop raises ParseError for these)."""

    def __init__(self, message: str, span: Span) -> None:
        super().__init__(message)
        self.message, self.span = message, span


def _tspan(token: Token) -> Span:
    start, end, line, column = token.start_pos, token.end_pos, token.line, token.column
    assert start is not None and end is not None and line is not None and column is not None
    return Span(start, end, line, column)


def _join(first: Span, last: Span) -> Span:
    return Span(first.start, last.end, first.line, first.column)


class LarkToAst(Transformer):
    """Callbacks for ``Lark(..., parser="lalr", keep_all_tokens=True, transformer=...)``: the
    meaning of every rule alias of the grammar, as gradcalc's AST (``keep_all_tokens`` so that
    the spans of parentheses and calls reach their brackets)."""

    @staticmethod
    def _binary(op: str) -> Callable[[Any, list[Any]], Apply]:
        def reduce(self: Any, children: list[Any]) -> Apply:
            left, symbol, right = children
            return Apply(op, [left, right], _join(left.span, right.span), _tspan(symbol))
        return reduce

    add = _binary("add")
    sub = _binary("sub")
    mul = _binary("mul")
    div = _binary("div")
    pow = _binary("pow")
    matmul = _binary("matmul")

    def number(self, children: list[Token]) -> Num:
        (token,) = children
        value = float(token)
        if math.isinf(value):
            raise Rejected(f"the number {token} is too large", _tspan(token))
        return Num(value, str(token), _tspan(token))

    def name(self, children: list[Token]) -> Name:
        (token,) = children
        return Name(str(token), _tspan(token))

    def neg(self, children: list[Any]) -> Expr:
        symbol, operand = children
        span = _join(_tspan(symbol), operand.span)
        if isinstance(operand, Num):  # -2 is the literal -2 (so that `A = -2` is an input)
            text = operand.text[1:] if operand.text.startswith("-") else "-" + operand.text
            return Num(-operand.value, text, span)
        return Apply("neg", [operand], span, _tspan(symbol))

    def pos(self, children: list[Any]) -> Expr:
        return children[1]

    def group(self, children: list[Any]) -> Expr:
        left, inner, right = children
        inner.span = _join(_tspan(left), _tspan(right))
        return inner

    def arguments(self, children: list[Any]) -> list[Expr]:
        return [c for c in children if not isinstance(c, Token)]  # drop the commas

    def vector(self, children: list[Any]) -> Vector:
        left, elements, right = children
        return Vector(elements, _join(_tspan(left), _tspan(right)))

    def index(self, children: list[Any]) -> Expr:
        """``target[i, j]`` is ``target[i][j]``; every index a literal whole number (a sign
        folds into it, and parentheses are no matter) of at most INDEX_LIMIT in magnitude.
        The first one that is not is reported, at its whole span (as for parameters)."""
        target, _, indices, right = children
        for index in indices:
            if not isinstance(index, Num) or not index.value.is_integer():
                raise Rejected("an index must be a whole number", index.span)
            if abs(index.value) > INDEX_LIMIT:
                raise Rejected(f"the index {index.value:.6g} is too large", index.span)
        span = _join(target.span, _tspan(right))
        node = target
        for index in indices:
            node = Index(node, int(index.value), span, index.span)
        return node

    def call(self, children: list[Any]) -> Apply:
        name, _, args, right = children
        return Apply(str(name), args, _join(_tspan(name), _tspan(right)), _tspan(name),
                     call=True)

    def assign(self, children: list[Any]) -> Assign:
        name, _, expr = children
        return Assign(str(name), _tspan(name), expr, _join(_tspan(name), expr.span))

    def define(self, children: list[Any]) -> Define:
        name, _, params, _, _, expr = children
        for param in params:
            if not isinstance(param, Name):
                raise Rejected("a parameter must be a name", param.span)
        return Define(str(name), _tspan(name), params, expr, _join(_tspan(name), expr.span))

    def bare(self, children: list[Any]) -> Output:
        (expr,) = children
        return Output(expr, expr.span)

    def start(self, children: list[Any]) -> list[Statement]:
        statements = [c for c in children if isinstance(c, (Assign, Output, Define))]
        for statement in statements[:-1]:
            if isinstance(statement, Output):
                raise Rejected("a bare expression can only be the last statement",
                               statement.span)
        return statements


LEXERS = ("basic", "contextual")


@cache
def lark_parser(lexer: str) -> Lark:
    return Lark(grammar_text(), parser="lalr", lexer=lexer, keep_all_tokens=True,
                transformer=LarkToAst())


# =============================================================================================
# Outcomes in a canonical form.
# =============================================================================================

def canonical_expr(expr: Expr) -> tuple[Any, ...]:
    """The tree in preorder, one tuple per node (with its number of arguments), no recursion."""
    out: list[tuple[Any, ...]] = []
    stack: list[Expr] = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, Num):
            out.append(("num", node.text, node.value.hex(), node.span))
        elif isinstance(node, Name):
            out.append(("name", node.id, node.span))
        elif isinstance(node, Vector):
            out.append(("vector", len(node.elements), node.span))
            stack.extend(reversed(node.elements))
        elif isinstance(node, Index):
            out.append(("index", node.index, node.span, node.index_span))
            stack.append(node.target)
        else:
            out.append(("apply", node.op, node.call, len(node.args), node.span, node.op_span))
            stack.extend(reversed(node.args))
    return tuple(out)


def canonical(statements: Sequence[Statement]) -> tuple[Any, ...]:
    return tuple(("assign", s.name, s.name_span, s.span, canonical_expr(s.expr))
                 if isinstance(s, Assign)
                 else ("define", s.name, s.name_span, s.span,
                       tuple((p.id, p.span) for p in s.params), canonical_expr(s.expr))
                 if isinstance(s, Define)
                 else ("output", s.span, canonical_expr(s.expr))
                 for s in statements)


# An outcome is one of
#   ("program", canonical statements)
#   ("empty",)                                 no statement at all
#   ("rejected", message, span)                a reduction refused it (see Rejected)
#   ("syntax", terminal, offset, line, column) the offending token (terminal None: the
#                                              offending character); at the end of the
#                                              program ("$END", len(text), None, None)
# and, for syntax errors, the expected terminals (None where not comparable).

Outcome = tuple[Any, ...]


def own_outcome(text: str) -> tuple[Outcome, frozenset[str] | None]:
    """The outcome of ``gradcalc.parse.parse``. For a syntax error the public ParseError is
    checked against the token the loop stopped at (``_run``'s ``_Unexpected``)."""
    try:
        program = parse(text)
    except ParseError as err:
        try:
            statements = _run(_machine(), text).statements
        except _Unexpected as exc:
            assert err.kind == "syntax" and err.span is not None, err
            if exc.token is None:
                assert exc.pos < len(text)
                assert err.message == f"unexpected character {text[exc.pos]!r}"
                assert (err.span.start, err.span.end) == (exc.pos, exc.pos + 1)
                return ("syntax", None, exc.pos, err.span.line, err.span.column), None
            kind, _, start, end, line, column = exc.token
            if kind == "$END":
                assert start == len(text)
                # the caret goes just past the last non-blank character
                assert err.span.start == len(text.rstrip()), (err.span, text)
                return ("syntax", "$END", start, None, None), frozenset(exc.expected)
            assert (err.span.start, err.span.end) == (start, end), (err.span, exc.token)
            assert (err.span.line, err.span.column) == (line, column), (err.span, exc.token)
            return ("syntax", kind, start, line, column), frozenset(exc.expected)
        except ParseError as raw:
            assert (raw.message, raw.span) == (err.message, err.span)
            return ("rejected", err.message, err.span), None
        assert statements == [] and err.message == "the program is empty", err
        return ("empty",), None
    assert program.statements, "parse() returned an empty program"
    return ("program", canonical(program.tree())), None


def lark_outcome(lexer: str, text: str) -> tuple[Outcome, frozenset[str] | None]:
    try:
        statements: Any = lark_parser(lexer).parse(text)  # (the transformer's list)
    except UnexpectedCharacters as exc:
        return ("syntax", None, exc.pos_in_stream, exc.line, exc.column), None
    except UnexpectedToken as exc:
        token = exc.token
        if token.type == "$END":  # Lark's end token borrows the last token's position
            return ("syntax", "$END", len(text), None, None), frozenset(exc.expected)
        # The contextual lexer's "expected" is the terminals its lexer allowed in that state,
        # not the parser's: only the basic lexer's is comparable.
        expected = frozenset(exc.expected) if lexer == "basic" else None
        return ("syntax", token.type, token.start_pos, token.line, token.column), expected
    except Rejected as exc:
        return ("rejected", exc.message, exc.span), None
    if not statements:
        return ("empty",), None
    return ("program", canonical(statements)), None


def check_same(text: str) -> Outcome:
    """Parse ``text`` with the own loop and with Lark (both lexers); require the same outcome.
    Returns the own outcome."""
    own, own_expected = own_outcome(text)
    for lexer in LEXERS:
        theirs, their_expected = lark_outcome(lexer, text)
        assert own == theirs, f"{lexer} lexer, program {text!r}"
        if own[0] == "syntax" and (lexer == "basic" or own[1] == "$END"):
            assert own_expected == their_expected, f"{lexer} lexer, program {text!r}"
    return own


# =============================================================================================
# Program generators. One generator, two drivers: Hypothesis (shrinkable draws) and a seeded
# random.Random (for the coverage check below).
# =============================================================================================

class Chooser:
    """``pick(options)`` and ``number(low, high)``, from Hypothesis or from random.Random."""

    def __init__(self, pick: Callable[[Sequence[Any]], Any],
                 number: Callable[[int, int], int]) -> None:
        self.pick, self.number = pick, number


_STRATEGIES: dict[Any, st.SearchStrategy[Any]] = {}


def _strategy(key: Any, make: Callable[[], st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    # One strategy object per distinct draw: making them afresh doubles the cost of a draw.
    found = _STRATEGIES.get(key)
    if found is None:
        found = _STRATEGIES[key] = make()
    return found


def hypothesis_chooser(draw: Callable[[st.SearchStrategy[Any]], Any]) -> Chooser:
    def pick(options: Sequence[Any]) -> Any:
        key = tuple(options)
        return draw(_strategy(key, lambda: st.sampled_from(key)))

    def number(low: int, high: int) -> int:
        return int(draw(_strategy((low, high), lambda: st.integers(low, high))))

    return Chooser(pick, number)


def random_chooser(rng: random.Random) -> Chooser:
    return Chooser(rng.choice, rng.randint)


# Every spelling of every operator terminal (checked against the grammar by
# test_the_generators_know_every_spelling_of_the_operators).
OPERATORS = {
    "PLUS": ["+"],
    "MINUS": ["-", "\u2212"],
    "TIMES": ["*", "\u00d7", "\u00b7"],
    "DIVIDE": ["/", "\u00f7"],
    "POWER": ["^", "**"],
    "MATMUL": ["@"],
}
NAMES = ["A", "B", "x", "y1", "_", "_t0", "OUT", "sin", "cos", "pi", "e", "E", "e5", "E1",
         "inf", "nan", "a_b9"]
NAME_STARTS = ["A", "Z", "b", "e", "E", "_", "x"]
NAME_RESTS = ["", "0", "9", "_", "e1", "xYz", "_9_", "__", "E"]
MANTISSAS = ["0", "1", "7", "00", "09", "42", "1000", "1.", "09.", "0.5", "3.25", "10.0",
             "007.700", ".5", ".09", ".0"] * 2  # (twice: weights for sampled_from)
EXPONENTS = ["", "", "", "", "", "", "e0", "E1", "e-3", "e+12", "E-09", "E+7", "e300", "e-400"]
# Numbers at the edges of a float's range; only 1e999 and 2e308 are beyond it (the reductions
# refuse them: rarely, or few programs would get to the end).
SPECIAL_NUMBERS = ["1e999", "2e308", "1.7976931348623157e308", "4.9e-324", "1e-400",
                   "123456789012345678901234567890", "0e0"]
MANTISSAS += SPECIAL_NUMBERS
# Whitespace between tokens: the ignored blanks and line continuations.
BLANKS = ["", "", "", " ", " ", "  ", "\t", "\f", "\r", " \t", "\\\n", " \\\n  ", "\\\r\n",
          "\\ \t\n"]
# Indices: whole numbers as the grammar writes them (a sign folds into the literal, and so do
# parentheses: `V[(1)]`), up to INDEX_LIMIT in magnitude; the reductions refuse the others
# (rarely drawn, or few programs with an index would get to the end).
INDEX_LITERALS = ["0", "1", "2", "3", "7", "10", "00", "3.", "1.0", "2e0", "1e2", "0e5", "0.0",
                  str(INDEX_LIMIT)] * 2  # (twice: weights for sampled_from)
INDEX_SIGNS = ["", "", "", "", "-", "-", "\u2212", "+", "--", "-+", "+\u2212"]
BAD_INDEX_LITERALS = ["1.5", ".5", "1e-3", "2.50", str(INDEX_LIMIT + 1), "2e9", "1e300"]
COMMENTS = ["#", "# note", "#A = (1", "# \\", "## twice", "# \u03b8 \u00fc", "# x\r"]
NEWLINES = ["\n", "\r\n"]

Piece = tuple[str, str]  # (kind, text): a terminal's name, or BLANK / COMMENT


class Budget:
    """How many more sub-expressions (extra terms, calls, groups, ...) an expression may grow."""

    def __init__(self, left: int) -> None:
        self.left = left

    def take(self, c: Chooser, most: int) -> int:
        if not self.left:
            return 0
        k = c.number(0, min(most, self.left))
        self.left -= k
        return k


def number_text(c: Chooser) -> str:
    """Every form of NUMBER: 7, 7., 7.5, .5, each with or without an exponent (e, E, signed or
    not), leading zeros, and numbers beyond a float's range."""
    mantissa = c.pick(MANTISSAS)
    if mantissa in SPECIAL_NUMBERS:
        return str(mantissa)
    return str(mantissa) + str(c.pick(EXPONENTS))


def name_text(c: Chooser) -> str:
    if c.number(0, 3):
        return str(c.pick(NAMES))
    return str(c.pick(NAME_STARTS)) + str(c.pick(NAME_RESTS))


def operator(c: Chooser, *terminals: str) -> Piece:
    return tuple(c.pick([(kind, glyph) for kind in terminals for glyph in OPERATORS[kind]]))


def sum_(c: Chooser, b: Budget) -> list[Piece]:
    out = product(c, b)
    for _ in range(b.take(c, 2)):
        out += [operator(c, "PLUS", "MINUS"), *product(c, b)]
    return out


def product(c: Chooser, b: Budget) -> list[Piece]:
    out = unary(c, b)
    for _ in range(b.take(c, 2)):
        out += [operator(c, "TIMES", "DIVIDE", "MATMUL"), *unary(c, b)]
    return out


def unary(c: Chooser, b: Budget) -> list[Piece]:
    signs = [operator(c, "MINUS", "PLUS") for _ in range(b.take(c, 2))]
    return signs + power(c, b)


def power(c: Chooser, b: Budget) -> list[Piece]:
    out = postfix(c, b)
    if b.take(c, 1):
        out += [operator(c, "POWER"), *unary(c, b)]
    return out


def postfix(c: Chooser, b: Budget) -> list[Piece]:
    """An atom (any: a name, a call, a group, a vector, even a number) indexed zero or more
    times, each time by one to three indices (`M[0][-1]`, `M[0, -1]`)."""
    indexed = b.take(c, 2) if c.number(0, 2) == 0 else 0  # (before the atom takes the rest)
    out = atom(c, b)
    for _ in range(indexed):
        out.append(("LSQB", "["))
        for k in range(c.number(1, 3) if c.number(0, 2) == 0 else 1):
            if k:
                out.append(("COMMA", ","))
            out += index(c)
        out.append(("RSQB", "]"))
    return out


def index(c: Chooser) -> list[Piece]:
    """A whole number with a sign folded in (or, rarely, what the reduction refuses: a
    fraction or a number too large, a name, an expression, a vector)."""
    how = c.number(0, 39)
    if how == 0:
        return [("NAME", name_text(c))]
    if how == 1:  # an expression: the index must be a literal, not something worth one
        return list(c.pick([
            (("MINUS", "-"), ("NAME", "A")),  # (a minus folds into a number only)
            (("LPAR", "("), ("NAME", "A"), ("PLUS", "+"), ("NUMBER", "1"), ("RPAR", ")")),
            (("NUMBER", "1"), ("PLUS", "+"), ("NUMBER", "1")),
            (("LSQB", "["), ("NUMBER", "0"), ("RSQB", "]")),
            (("NAME", "V"), ("LSQB", "["), ("NUMBER", "0"), ("RSQB", "]")),
            (("NAME", "f"), ("LPAR", "("), ("NUMBER", "1"), ("RPAR", ")")),
        ]))
    out: list[Piece] = [("PLUS" if sign == "+" else "MINUS", sign)
                        for sign in c.pick(INDEX_SIGNS)]
    literal = [("NUMBER", str(c.pick(BAD_INDEX_LITERALS if how == 2 else INDEX_LITERALS)))]
    if how in (3, 4):
        literal = [("LPAR", "("), *literal, ("RPAR", ")")]
    return out + literal


def atom(c: Chooser, b: Budget) -> list[Piece]:
    kind = c.pick(["NUMBER", "NAME", "call", "group", "vector"] if b.left
                  else ["NUMBER", "NAME"])
    if kind == "NUMBER":
        return [("NUMBER", number_text(c))]
    if kind == "NAME":
        return [("NAME", name_text(c))]
    b.left -= 1
    if kind == "group":
        return [("LPAR", "("), *sum_(c, b), ("RPAR", ")")]
    if kind == "vector":
        if c.number(0, 2) == 0:  # a matrix: rows of one length
            columns = c.number(1, 3)
            return vector(c, [vector(c, [sum_(c, b) for _ in range(columns)])
                              for _ in range(c.number(1, 3))])
        return vector(c, [sum_(c, b) for _ in range(1 + b.take(c, 3))])
    out = [("NAME", name_text(c)), ("LPAR", "("), *sum_(c, b)]
    for _ in range(b.take(c, 2)):
        out += [("COMMA", ","), *sum_(c, b)]
    return [*out, ("RPAR", ")")]


def vector(c: Chooser, elements: list[list[Piece]]) -> list[Piece]:
    out: list[Piece] = [("LSQB", "[")]
    for k, element in enumerate(elements):
        if k:
            out.append(("COMMA", ","))
        out += element
    return [*out, ("RSQB", "]")]


def separator(c: Chooser) -> list[Piece]:
    """One or more statement separators (so: empty statements too), comments before line
    breaks."""
    out: list[Piece] = []
    for _ in range(c.number(1, 3) if c.number(0, 3) == 0 else 1):
        if c.number(0, 2):
            out.append(("_SEP", ";"))
        else:
            if c.number(0, 2) == 0:
                out.append(("COMMENT", c.pick(COMMENTS)))
            out.append(("_SEP", c.pick(NEWLINES)))
    return out


def parameter(c: Chooser) -> list[Piece]:
    """A name, or rarely what the grammar reads as an argument but the reduction refuses as a
    parameter (or lets through: `(x)` and `+x` are names too)."""
    if c.number(0, 7):
        return [("NAME", name_text(c))]
    return list(c.pick([
        (("LPAR", "("), ("NAME", "x"), ("RPAR", ")")),
        (("PLUS", "+"), ("NAME", "x")),
        (("MINUS", "-"), ("NAME", "x")),
        (("LPAR", "("), ("NAME", "x"), ("TIMES", "*"), ("NUMBER", "2"), ("RPAR", ")")),
        (("NUMBER", "2"),),
        (("LSQB", "["), ("NAME", "x"), ("RSQB", "]")),
        (("NAME", "x"), ("LSQB", "["), ("NUMBER", "0"), ("RSQB", "]")),
    ]))


def program(c: Chooser) -> list[Piece]:
    """A program the grammar accepts (the reductions may still refuse it: a bare expression
    before the last statement, a number too large)."""
    count = c.number(1, 4)
    bare_at = c.pick([count - 1] * 3 + [-1] * 3 + list(range(count)))  # -1: none
    out: list[Piece] = []
    if c.number(0, 3) == 0:
        out += separator(c)
    for i in range(count):
        if i:
            out += separator(c)
        budget = Budget(c.number(0, 10))
        if i == bare_at:
            out += sum_(c, budget)
        elif c.number(0, 4) == 0:  # a function's definition: f(x, y) = ...
            out += [("NAME", name_text(c)), ("LPAR", "("), *parameter(c)]
            for _ in range(c.number(0, 2)):
                out += [("COMMA", ","), *parameter(c)]
            out += [("RPAR", ")"), ("EQUAL", "="), *sum_(c, budget)]
        else:
            out += [("NAME", name_text(c)), ("EQUAL", "="), *sum_(c, budget)]
    if c.number(0, 3) == 0:
        out += separator(c)
    if c.number(0, 5) == 0:
        out.append(("COMMENT", c.pick(COMMENTS)))
    return out


_WORD = re.compile(r"[A-Za-z0-9_.]")


def render(c: Chooser, pieces: list[Piece]) -> list[str]:
    """The texts of ``pieces`` with blanks between them: never none between two words (which
    would make one word), never one after a comment (it would be part of the comment)."""
    blanks = [c.pick(BLANKS) for _ in range(3)]  # (a draw per gap would double the cost)
    out: list[str] = []
    for i, (_, text) in enumerate(pieces):
        if not out:
            if blanks[1] == blanks[2]:
                out.append(blanks[0])
        elif not out[-1].startswith("#"):
            blank = blanks[i % 3]
            if not blank and _WORD.match(text) and _WORD.match(out[-1][-1]):
                blank = " "
            if blank:
                out.append(blank)
        out.append(text)
    return out


# Broken programs: mutations of valid ones, and token soup.
FRAGMENTS = sorted({g for glyphs in OPERATORS.values() for g in glyphs} | {
    "(", ")", "=", ",", ";", "\n", "\r\n", "\\\n", "\\", "#x\n", "1", ".5", "1e5", "2.", "1e",
    "A", "e", "sin", "==", "$", "\u03b8", "\u00a0", "\x00", " ", ".", "'", "\r", "\t", "()",
    "1e999", "A(", "*", "--", "**-", "\u2212\u2212", "e+1", "0x1F", "1_000",
    "[", "]", "[]", "][", "[[", "]]", "(]", "[)", "V[", "V[]", "V[1.5]", "V[A]", "V[-1]", "[1,",
    ",]", "[0]", "[-0]", "@@", "@-", "[1, 2] @", "V[2e9]", "V[0,]", "V[,0]", "[[1], [2]]"})
CHARACTERS = sorted(set("()=,;+-*/^#\\\n\r\t .eE019aZ_$@'\"!<>[]{}&|~`?:\x00\x0b\u00a0")
                    | {g for glyphs in OPERATORS.values() for g in glyphs if len(g) == 1}
                    | {"\u03b8", "\u2028", "\ufeff"})
MUTATIONS = ["delete", "insert", "swap", "duplicate", "char-delete", "char-insert",
             "char-replace", "bracket"]
# The "bracket" mutation: a parenthesis becomes a square bracket or the other way round.
OTHER_BRACKET = {"(": "[", "[": "(", ")": "]", "]": ")"}


def mutate(c: Chooser, texts: list[str]) -> list[str]:
    texts = list(texts)
    for _ in range(c.number(1, 3)):
        how = c.pick(MUTATIONS)
        i = c.number(0, len(texts) - 1) if texts else 0
        if how == "insert" or not texts:
            texts.insert(c.number(0, len(texts)), c.pick(FRAGMENTS))
        elif how == "delete":
            del texts[i]
        elif how == "swap" and len(texts) > 1:
            j = i + 1 if i + 1 < len(texts) else i - 1
            texts[i], texts[j] = texts[j], texts[i]
        elif how == "duplicate":
            texts.insert(i, texts[i])
        elif how == "bracket":
            spots = [k for k, text in enumerate(texts) if text in OTHER_BRACKET]
            if spots:
                k = spots[c.number(0, len(spots) - 1)]
                texts[k] = OTHER_BRACKET[texts[k]]
        elif how.startswith("char-") and texts[i]:
            piece = texts[i]
            k = c.number(0, len(piece) - 1)
            if how == "char-delete":
                texts[i] = piece[:k] + piece[k + 1:]
            elif how == "char-insert":
                texts[i] = piece[:k] + c.pick(CHARACTERS) + piece[k:]
            else:
                texts[i] = piece[:k] + c.pick(CHARACTERS) + piece[k + 1:]
    return texts


def soup(c: Chooser) -> list[str]:
    out: list[str] = []
    for _ in range(c.number(0, 10)):
        what = c.number(0, 3)
        if what == 0:
            out.append(number_text(c))
        elif what == 1:
            out.append(name_text(c))
        else:
            out.append(c.pick(FRAGMENTS))
        if c.number(0, 1):
            out.append(c.pick(BLANKS))
    return out


def valid_text(c: Chooser) -> str:
    return "".join(render(c, program(c)))


def broken_text(c: Chooser) -> str:
    if c.number(0, 4) == 0:
        return "".join(soup(c))
    return "".join(mutate(c, render(c, program(c))))


@st.composite
def valid_programs(draw: Callable[[st.SearchStrategy[Any]], Any]) -> str:
    return valid_text(hypothesis_chooser(draw))


@st.composite
def broken_programs(draw: Callable[[st.SearchStrategy[Any]], Any]) -> str:
    return broken_text(hypothesis_chooser(draw))


# =============================================================================================
# The tests.
# =============================================================================================

@property_settings(1000)
@given(valid_programs())
@example("OUT = -(2)^2 + 3\u00d7sin(x, -y)**-.5e+3 \u00f7 (1.)")
@example("A = 1\r\n\\\r\n# c\r\nB = A \\ \t\n * 2;;\n\nOUT = B")
@example("-0")
@example("M = [[1, 2], [3, -4.]]\nV = [M[0, -1], M[1][\u22120], [7][0], 2[0], (M)[+1, --1]]\n"
         "OUT = V @ M[0] @ [[1], [2]] + sin(M)[1] ** V[2]")
@example("OUT = V[-0] + V[1073741824] + V[(2)] + V[1e2] + V[3.] + V[0.0]")
@example("OUT = V[1073741825]")  # INDEX_LIMIT + 1
@example("OUT = V[-2e9, 0]")
@example("OUT = V[1.5]")
@example("OUT = V[A]")
@example("OUT = V[-A]")  # the minus folds into a number only: the span includes it
@example("OUT = V[f(1)]")  # the span starts at the function's name, not at its argument
@example("OUT = V[(A + 1)]")
@example("OUT = V[[0]]")
@example("OUT = V[A, 1.5]")  # the first index refused is reported
@example("f(-x) = x")
@example("f(g(x)) = x")
@example("f(x[0], (y*2)) = x")  # the first parameter refused is reported
@example("f((x), +y) = x*y")  # still names
def test_well_formed_programs_parse_as_lark_parses_them(text: str) -> None:
    outcome = check_same(text)
    assert outcome[0] in ("program", "rejected"), (text, outcome)
    event("a number too large" if outcome[0] == "rejected" and "too large" in outcome[1]
          else outcome[0] if outcome[0] == "program" else outcome[1])


@property_settings(2000)
@given(broken_programs())
@example("OUT = A\u00a0+ 1")  # a non-breaking space is not a blank
@example("A = 1 ** * 2")  # '**' is one token, POWER, then '*' is unexpected
@example("A = 1e")  # NUMBER 1, then NAME e
@example("A = (1")  # the end of the program, too early
@example("A = 1 2 $")  # the token before the bad character
@example("A = 1; B = 1e999 $")  # the bad character before the too-large number's reduction
@example("x \\\n")  # a line continuation at the very end
@example("OUT = []")
@example("OUT = V[]")
@example("OUT = V[0,]")
@example("OUT = [1, 2")  # never closed
@example("OUT = V[0]]")  # never opened
@example("OUT = (V[0)]")  # crossed
@example("OUT = [1, 2)")
@example("OUT = A @@ B")
@example("OUT = A @")
@example("OUT = @A")
@example("V[0] = 1")  # an element is not a name to assign
@example("f(x)[0] = 1")
def test_broken_programs_fail_where_lark_fails(text: str) -> None:
    outcome = check_same(text)
    event(outcome[0] if outcome[0] != "syntax" else f"syntax error at {outcome[1]}")


def corpus() -> list[str]:
    texts = [path.read_text("utf-8") for path in sorted((ROOT / "examples").glob("*.gc"))]
    texts += [
        "OUT = " + "(" * 2000 + "A" + ")" * 2000,
        "OUT = " + "-" * 2000 + "A",
        "OUT = " + "sin(" * 500 + "A" + ")" * 500,
        "OUT = " + " + ".join(f"A{i}*{i}" for i in range(2000)),
        "OUT = 2" + "^2" * 1000,
        "OUT = " + "[" * 2000 + "A" + "]" * 2000,
        "OUT = V" + "[0]" * 1000 + "[-1, 2, -0]" * 300,
        "OUT = " + "-" * 1000 + "(" * 1000 + "V" + ")[1]" * 1000,
        "OUT = " + " @ ".join(f"[[A{i}, {i}], [-{i}, B[{i}]]]" for i in range(500)),
        "M = [" + ", ".join("[" + ", ".join(f"{i * j}" for j in range(40)) + "]"
                            for i in range(40)) + "]\nOUT = M[39, -1] @ M",
        ";" * 100 + "\n" * 100,
        "",
        "# only a comment",
    ]
    return texts


@pytest.mark.parametrize("text", corpus(), ids=lambda t: repr(t[:20]))
def test_examples_and_deep_programs_parse_as_lark_parses_them(text: str) -> None:
    check_same(text)


def shapes(text: str, preorder: tuple[Any, ...]) -> list[str]:
    """What vectors and indices make in a canonical expression of ``text`` (parents before
    children, a node's first child right after it)."""
    out = []
    for node, child in pairwise(preorder):
        if node[0] == "vector" and child[0] == "vector":
            out.append("a matrix")
        if node[0] == "index":
            out.append({"index": "an index of an index", "vector": "an indexed vector",
                        "num": "an indexed number", "name": "an indexed name",
                        "apply": "an indexed call" if child[2] else "an indexed operation"
                        }[child[0]])
            if node[1] < 0:
                out.append("a negative index")
            span = child[{"num": 3, "apply": 4}.get(child[0], 2)]
            if text[span.start] == "(":  # (a group's span includes its parentheses)
                out.append("an indexed group")
    return out


def test_the_generators_reach_every_case() -> None:
    """The generators (driven here by a seeded random.Random) make every terminal and rule of
    the grammar, and the mutations every outcome: otherwise the tests above prove little."""
    rng = random.Random(20240612)
    c = random_chooser(rng)
    kinds: Counter[str] = Counter()
    glyphs: set[str] = set()
    nodes: Counter[str] = Counter()
    for _ in range(400):
        pieces = program(c)
        kinds.update(kind for kind, _ in pieces)
        glyphs.update(text for kind, text in pieces if kind in OPERATORS)
        text = "".join(render(c, pieces))
        outcome = check_same(text)
        assert outcome[0] in ("program", "rejected"), (text, outcome)
        if outcome[0] == "program":
            for statement in outcome[1]:
                nodes[statement[0]] += 1
                nodes.update(node[1] if node[0] == "apply" and not node[2] else node[0]
                             for node in statement[-1])
                nodes.update(shapes(text, statement[-1]))
        else:
            nodes[outcome[1]] += 1
    terminals = {t.name for t in lark_parser("basic").terminals} - {"__IGNORE_0"}
    assert terminals <= set(kinds) | {"LINE_CONTINUATION"}, terminals - set(kinds)
    assert glyphs == {g for spellings in OPERATORS.values() for g in spellings}
    for node in ("assign", "output", "define", "num", "name", "apply", "add", "sub", "mul", "div",
                 "pow", "neg", "vector", "index", "matmul", "a matrix", "an index of an index",
                 "a negative index", "an indexed name", "an indexed call", "an indexed group",
                 "an indexed vector", "an indexed number",
                 "a bare expression can only be the last statement",
                 "a parameter must be a name", "an index must be a whole number"):
        assert nodes[node] >= 5, (node, nodes)
    assert any(message.startswith("the number ") for message in nodes)
    assert any(re.fullmatch(r"the index -?[\d.e+]+ is too large", message) for message in nodes)

    outcomes: Counter[Any] = Counter()
    refusals: Counter[str] = Counter()
    for _ in range(600):
        outcome = check_same(broken_text(c))
        outcomes[outcome[0] if outcome[0] != "syntax" else outcome[1] or "character"] += 1
        if outcome[0] == "rejected":
            refusals[re.sub(r"-?[\d.]+(?:e[+-]?\d+)?", "N", outcome[1])] += 1
    # accepted, refused by a reduction, empty, bad characters, and every terminal out of
    # place (but PLUS and MINUS, which are never out of place: they are signs too; and LSQB,
    # never either: where no operand may start (a vector), one has just ended (and is indexed))
    for kind in ("program", "rejected", "empty", "character", "$END", "TIMES", "DIVIDE",
                 "POWER", "MATMUL", "NAME", "NUMBER", "LPAR", "RPAR", "RSQB", "EQUAL",
                 "COMMA", "_SEP"):
        assert outcomes[kind] >= 3, (kind, outcomes)
    assert outcomes["program"] < 200  # mostly broken
    # the fragments and mutations make what the reductions refuse in indices too (`V[1.5]`)
    for message in ("an index must be a whole number", "the index N is too large"):
        assert refusals[message] >= 3, (message, refusals)


def test_the_generators_know_every_spelling_of_the_operators() -> None:
    """OPERATORS lists exactly the spellings the grammar gives each operator terminal (one or
    two characters; every character up to U+2FFF and every pair of ASCII punctuation)."""
    parser = lark_parser("basic")
    candidates = [chr(i) for i in range(0x3000)]
    punctuation = [chr(i) for i in range(0x21, 0x7F) if not chr(i).isalnum()]
    candidates += [a + b for a in punctuation for b in punctuation]
    for kind, spellings in OPERATORS.items():
        pattern = re.compile(parser.get_terminal(kind).pattern.to_regexp())
        assert {s for s in candidates if pattern.fullmatch(s)} == set(spellings), kind


def test_the_comparison_is_not_vacuous() -> None:
    """The canonical outcomes tell apart what must be told apart."""
    pairs = [
        ("OUT = 1 + 2*3", "OUT = (1 + 2)*3"),  # structure
        ("OUT = 1 - 2 - 3", "OUT = 1 - (2 - 3)"),
        ("OUT = A*2", "OUT =  A*2"),  # spans
        ("OUT = A\n", "\nOUT = A"),  # lines
        ("OUT = 2.0", "OUT = 2."),  # number texts
        ("OUT = -0.0", "OUT = 0.0"),  # the sign of zero
        ("OUT = sin(A)", "OUT = cos(A)"),  # names
        ("OUT = A )", "OUT = A ("),  # the offending terminal
        ("OUT = A $", "OUT = A  $"),  # the offending character's position
        ("A = 1; 2; OUT = 3", "A = 1; OUT = 1e999"),  # what a reduction refuses
        ("OUT = [1, 2]", "OUT = [[1, 2]]"),  # vectors: nesting
        ("OUT = [1, 2]", "OUT = [1, [2]]"),
        ("OUT = [1, 2]", "OUT = [2, 1]"),  # (their elements)
        ("OUT = V[0]", "OUT = V[1]"),  # indices: the index
        ("OUT = V[0]", "OUT = V[-0]"),  # (the index's span)
        ("OUT = V[0, 1]", "OUT = V[0][1]"),  # (the spans of the inner one)
        ("OUT = V[0, 1]", "OUT = V[1, 0]"),  # (the order)
        ("OUT = (V)[0]", "OUT = V[0]"),  # (the target's span)
        ("OUT = A @ B", "OUT = A * B"),  # the operator
        ("OUT = V[1.5]", "OUT = V[A]"),  # where a reduction refuses
        ("OUT = V[2e9]", "OUT = V[3e9]"),  # (the message)
    ]
    for first, second in pairs:
        assert check_same(first) != check_same(second), (first, second)
    assert check_same("OUT = A*2")[0] == "program"
    assert check_same("OUT = A*")[:2] == ("syntax", "$END")
    assert check_same(";\n")[0] == "empty"


# =============================================================================================
# The patterns other modules take from the grammar (NAME_PATTERN, ...), read without Lark.
# =============================================================================================

def test_terminal_patterns_read_without_lark_are_larks() -> None:
    parser = lark_parser("basic")
    definitions = _grammar_terminals()[0]
    read = 0
    for terminal in parser.terminals:
        if terminal.name.startswith("__") or terminal.name not in definitions:
            continue  # an anonymous terminal ("(", "=") or an %ignore pattern: no definition
        try:
            pattern = terminal_pattern(terminal.name)
        except ValueError:
            assert terminal.name == "_SEP"  # a string and a regular expression
            continue
        assert pattern == terminal.pattern.to_regexp(), terminal.name
        read += 1
    assert read == len(definitions) - 1
    assert terminal_pattern("NAME") == NAME_PATTERN
    assert terminal_pattern("NUMBER") == NUMBER_PATTERN
    assert re.fullmatch(NUMBER_PATTERN, "1.5e-3") and not re.fullmatch(NUMBER_PATTERN, "-1")
    assert re.fullmatch(NAME_PATTERN, "_x1") and not re.fullmatch(NAME_PATTERN, "1x")
    with pytest.raises(ValueError, match="no terminal"):
        terminal_pattern("LPAR")  # Lark's name for "(", which the grammar does not define


@pytest.mark.parametrize("definition", [
    r'T: "a"', r'T: "ab" | "c" | "de"', r'T.2: "x"i', r'T: /[a-z]+/i', r'T: "\u2212" | "\x41"',
    r'T: "\t" | "\\" | "\""', r'T: /\\[ \t]*\r?\n/', r'T: /a\/b/', r'T: /"[^"]*"/',
    'T: "+"\n | "-"  // a comment\n | "**"', r'T: "//" | "/"', r'T: /#[^\n]*/ // "no"',
    'T: "a"\n\n    // between\n    | "bb"\nstart2: "c"',
])
def test_the_grammar_reader_reads_terminals_as_lark_does(definition: str) -> None:
    grammar = f"start: T\n{definition}\n"
    lark_pattern = Lark(grammar, parser="lalr", lexer="basic").get_terminal("T").pattern
    definitions, _ = _read_grammar(grammar)
    assert _pattern(definitions, "T") == lark_pattern.to_regexp()


@pytest.mark.parametrize("definition", [
    'T: "a" "b"', 'T: "a"+', 'T: U\nU: "u"', 'T: ("a" | "b")', 'T: "a".."z"', 'T: "a" | /b/',
])
def test_the_grammar_reader_refuses_what_it_cannot_read(definition: str) -> None:
    with pytest.raises(ValueError, match="read it with Lark"):
        _pattern(_read_grammar(f"start: T\n{definition}\n")[0], "T")


def test_error_messages_name_every_terminal_lark_may_expect() -> None:
    """The terminals the messages refer to are found in the compiled tables by spelling; every
    terminal an error can list as expected has a description."""
    parser = lark_parser("basic")
    words = _machine().vocabulary
    by_name = {t.name: t for t in parser.terminals}
    for name, spelling in (("lpar", "("), ("rpar", ")"), ("equal", "="), ("rbrack", "]")):
        terminal = by_name[getattr(words, name)]
        assert re.fullmatch(terminal.pattern.to_regexp(), spelling), name
    assert words.operators == {"PLUS", "MINUS", "TIMES", "DIVIDE", "POWER", "MATMUL"}
    # an operand starts with a number, a name, '(' or '[': what the tables expect after an
    # operator, but the signs (operators themselves)
    (lbrack,) = words.operand_starts - {"NUMBER", "NAME", words.lpar}
    assert re.fullmatch(by_name[lbrack].pattern.to_regexp(), "["), lbrack
    with pytest.raises(_Unexpected) as cut_short:
        _run(_machine(), "OUT = x @")
    assert cut_short.value.expected - {"PLUS", "MINUS"} == words.operand_starts
    ignored = set(parser.ignore_tokens)
    for name in set(by_name) - ignored | {"$END"}:
        assert words.describe(name), name
    assert words.describe("MINUS") == "'-'" and words.describe("POWER") == "'^'"
    assert words.describe("MATMUL") == "'@'"
    assert words.describe(lbrack) == "'['" and words.describe(words.rbrack) == "']'"


def test_importing_the_parser_neither_imports_lark_nor_reads_the_grammar() -> None:
    code = ("import sys; import gradcalc.parse; p = sys.modules['gradcalc.parse']; "
            "assert 'lark' not in sys.modules; "
            "assert p._grammar_terminals.cache_info().currsize == 0; "
            "from gradcalc.parse import NAME_PATTERN, NUMBER_PATTERN; "
            "assert 'lark' not in sys.modules; print(NAME_PATTERN)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == NAME_PATTERN
