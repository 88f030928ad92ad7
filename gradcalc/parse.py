"""Program text to AST, with Lark's LALR(1) tables. The only module that imports Lark.

Lark compiles the grammar (``grammar/gradcalc.lark``, shipped inside the package as
``gradcalc.grammar``) into its terminals and LALR(1) tables; :func:`compile_tables` turns those
into plain data, cached per user as JSON so that start-up neither rebuilds the tables nor even
imports Lark. The grammar stays the single definition of the language; this module only runs
the tables in a tight loop of its own: one regular expression made from Lark's terminals for the
tokens, and a shift/reduce loop in which every reduction calls a :class:`_ToPostfix` method
named by the grammar's rule aliases, which appends one node to the program's flat, postfix AST
(:class:`~gradcalc.ast.Postfix`). No parse tree is built and nothing recurses, so 100,000
nested parentheses or a million-term sum are ordinary inputs. ``tests/test_parse_differential.py``
holds this loop to Lark's own parser on thousands of programs, valid and broken.

Other modules that need the shape of a name or a number take it from the grammar through
:data:`NAME_PATTERN`, :data:`NUMBER_PATTERN` and :func:`terminal_pattern` (read from the
grammar's text on first use, without Lark), never from a copy.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import unicodedata
import zlib
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gradcalc.ast import APPLY, CALL, INDEX, NAME, NUM, VECTOR, Postfix, Program, Statement
from gradcalc.errors import GradcalcError, LimitError, ParseError, Source, Span
from gradcalc.gcpause import paused_gc
from gradcalc.replay import StatementShapes

# A token: (type, text, start offset, end offset, line, column), lines and columns 1-based.
Token = tuple[str, str, int, int, int, int]

__all__ = ["NAME_PATTERN", "NUMBER_PATTERN", "PROGRAM_LIMIT", "grammar_text", "parse",
           "terminal_pattern"]


def grammar_text() -> str:
    """The text of ``gradcalc.lark`` as shipped with the package."""
    return resources.files("gradcalc.grammar").joinpath("gradcalc.lark").read_text("utf-8")


# --- the grammar's terminals, read without Lark ------------------------------------------------
# Other modules need the shapes of names and numbers (to check a name given to Value, to read a
# number on the command line): they take them from the grammar's own definitions through
# terminal_pattern(), NAME_PATTERN and NUMBER_PATTERN, never from a copy. Reading them costs one
# look at the grammar's text on first use, and no Lark.

# One piece of a line of the grammar: a literal of Lark's grammar language, a "string" (flag i)
# or a /regular expression/ (flags); a '|' between alternatives; a comment; anything else.
# (Compiled on first use, by re's own cache: not at import.)
_GRAMMAR_PIECE = r"""\s*(?:
      (?P<string>"(?:\\.|[^"\\])*")(?P<string_flags>i?)
    | /(?!/)(?P<regexp>(?:\\.|[^/\\])+)/(?P<regexp_flags>[imslux]*)
    | (?P<bar>\|)
    | (?P<comment>//.*)
    | (?P<other>[^\s"/|]+|\S))"""
_TERMINAL_HEAD = r"(?P<name>_?[A-Z][A-Z0-9_]*)(?:\.-?[0-9]+)?[ \t]*:"
_ESCAPES = {"n": "\n", "f": "\f", "t": "\t", "r": "\r"}

if TYPE_CHECKING:
    # A terminal's definition: its alternatives, each a (kind, text, flags) with kind "string"
    # (text as it matches) or "regexp" (the regular expression), or None when the definition
    # is more than alternatives of single literals (a reference to another terminal, ...).
    _Alternatives = list[tuple[str, str, str]] | None


def _unescape(body: str, regexp: bool) -> str:
    """A literal's text as Lark reads it: \\n \\f \\t \\r \\xHH \\uHHHH \\UHHHHHHHH become the
    characters, \\" a quote; any other escape stays as written (in a regular expression, where
    it means something to ``re``), and a doubled backslash is one backslash in a string."""
    out: list[str] = []
    i, size = 0, len(body)
    while i < size:
        ch = body[i]
        if ch != "\\" or i + 1 == size:
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
        elif nxt in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[nxt]
            out.append(chr(int(body[i + 2 : i + 2 + width], 16)))
            i += width
        elif nxt == '"':
            out.append('"')
        elif nxt == "\\" and not regexp:
            out.append("\\")
        else:
            out.append(ch + nxt)
        i += 2
    return "".join(out)


def _read_grammar(grammar: str) -> tuple[dict[str, _Alternatives], list[str]]:
    """The grammar's terminal definitions (by name, see ``_Alternatives``), and every string
    literal of the grammar (rules and terminals) in order of first appearance."""
    definitions: dict[str, _Alternatives] = {}
    strings: list[str] = []
    name: str | None = None  # the terminal whose definition goes on, if any
    expect_literal = True  # after the ':' or a '|'
    for line in grammar.splitlines():
        head = re.match(_TERMINAL_HEAD, line)
        if head:
            name, rest, expect_literal = head["name"], line[head.end():], True
            definitions[name] = []
        else:
            rest = line.lstrip()
            if not rest or rest.startswith("//"):
                continue  # blank lines and comments may come between alternatives
            if not rest.startswith("|"):
                name = None  # a definition goes on only on lines that start with '|'
        for piece in re.finditer(_GRAMMAR_PIECE, rest, re.X):
            if piece["comment"] is not None:
                break
            literal = _literal(piece)
            if literal is not None and literal[0] == "string" and literal[1] not in strings:
                strings.append(literal[1])
            if name is not None and definitions[name] is not None:
                expect_literal = _extend(definitions, name, literal, piece, expect_literal)
    return definitions, strings


def _literal(piece: re.Match[str]) -> tuple[str, str, str] | None:
    """A string or regular-expression literal of the grammar as (kind, text, flags)."""
    if piece["string"] is not None:
        return ("string", _unescape(piece["string"][1:-1], False), piece["string_flags"])
    if piece["regexp"] is not None:
        return ("regexp", _unescape(piece["regexp"], True), piece["regexp_flags"])
    return None


def _extend(definitions: dict[str, _Alternatives], name: str,
            literal: tuple[str, str, str] | None, piece: re.Match[str],
            expect_literal: bool) -> bool:
    """Add ``piece`` to the definition of terminal ``name``; returns whether a literal is
    expected next (after ':' or '|'). A definition that is not plain alternatives of
    literals becomes ``None``."""
    alternatives = definitions[name]
    assert alternatives is not None
    if literal is not None and expect_literal:
        alternatives.append(literal)
        return False
    if piece["bar"] is not None and not expect_literal:
        return True
    definitions[name] = None
    return expect_literal


@lru_cache(maxsize=1)
def _grammar_terminals() -> tuple[dict[str, _Alternatives], list[str]]:
    return _read_grammar(grammar_text())


def _flagged(pattern: str, flags: str) -> str:
    for flag in flags:  # as Lark writes a flag into a pattern
        pattern = f"(?{flag}:{pattern})"
    return pattern


def terminal_pattern(name: str) -> str:
    """The regular expression of the grammar's terminal ``name`` (``NAME``, ``NUMBER``,
    ``MINUS``, ...), from its definition in ``gradcalc.lark``: the same text Lark makes of it,
    read without Lark. A terminal defined by a regular expression gives that expression; one
    defined by strings gives them escaped, as alternatives, the longest first. Raises
    ``ValueError`` for a terminal the grammar does not define, or defines otherwise (from
    other terminals, with repetitions, as a mix of strings and expressions)."""
    return _pattern(_grammar_terminals()[0], name)


def _pattern(definitions: dict[str, _Alternatives], name: str) -> str:
    alternatives = definitions.get(name, ())
    if not alternatives:
        raise ValueError(f"the grammar defines no terminal {name}" if alternatives == ()
                         else f"the terminal {name} is not a plain literal or alternatives of "
                              "strings: read it with Lark")
    if len(alternatives) == 1:
        kind, text, flags = alternatives[0]
        return _flagged(re.escape(text) if kind == "string" else text, flags)
    if any(kind != "string" or flags for kind, _, flags in alternatives):
        raise ValueError(f"the terminal {name} mixes regular expressions or flags into its "
                         "alternatives: read it with Lark")
    texts = sorted((text for _, text, _ in alternatives), key=len, reverse=True)
    return "(?:" + "|".join(re.escape(text) for text in texts) + ")"


if TYPE_CHECKING:
    #: The regular expression of a name (the grammar's ``NAME``), e.g. for ``re.fullmatch``.
    NAME_PATTERN: str
    #: The regular expression of a number as written in a program (the grammar's ``NUMBER``,
    #: without a sign: ``-2`` is a minus and a number).
    NUMBER_PATTERN: str
else:
    def __getattr__(attribute: str) -> str:
        # NAME_PATTERN and NUMBER_PATTERN are read from the grammar on first use (PEP 562), so
        # that importing this module reads no file.
        if attribute in ("NAME_PATTERN", "NUMBER_PATTERN"):
            value = terminal_pattern(attribute.removesuffix("_PATTERN"))
            globals()[attribute] = value
            return value
        raise AttributeError(f"module {__name__!r} has no attribute {attribute!r}")


def _span(token: Token) -> Span:
    return Span(token[2], token[3], token[4], token[5])


def _identifier(token: Token) -> str:
    """The name a NAME token spells: a Python identifier, in NFKC (the ligature U+FB01 is
    ``fi``, a full-width A is ``A``), as Python compares identifiers. Letters of any script are
    names; a superscript or subscript is not part of one (``x²`` would read as ``x2``)."""
    text = token[1]
    if text.isascii():
        return text
    if not text.isidentifier():
        index = next(i for i in range(len(text)) if not ("a" + text[i]).isidentifier())
        char = text[index]
        superscript = unicodedata.normalize("NFKC", char).isdigit()
        raise ParseError(
            f"{char!r} cannot be part of a name", Span(token[2] + index, token[2] + index + 1,
                                                     token[4], token[5] + index),
            hint="write x^2 for a power, x2 or x_2 for a name" if superscript
            else "a name is letters, digits and _, not starting with a digit")
    return unicodedata.normalize("NFKC", text)


def _binary(op: str) -> Any:
    def reduce(self: _ToPostfix, children: list[Any]) -> int:
        left, symbol, right = children
        nodes = self.nodes
        return nodes.add(APPLY, nodes.word(op), 2, nodes.starts[left], nodes.ends[right],
                         symbol[2], symbol[3])

    reduce.__name__ = op
    return reduce


class _ToPostfix:
    """Callbacks for the LALR parser, one per grammar alias, writing the program's nodes.

    Reductions come operands first, so each node is appended once, after its operands: the
    parser's stack holds node indices (and tokens), and ``nodes`` is the postfix AST."""

    def __init__(self, source: Source) -> None:
        self.nodes = Postfix()
        self.source = source

    add = _binary("add")
    sub = _binary("sub")
    mul = _binary("mul")
    div = _binary("div")
    pow = _binary("pow")
    matmul = _binary("matmul")

    def number(self, children: list[Token]) -> int:
        (token,) = children
        text = token[1]
        value = float(text)
        if math.isinf(value):
            raise ParseError(f"the number {text} is too large", _span(token),
                             hint="numbers must fit in a 64-bit float (up to about 1.8e308)")
        nodes = self.nodes
        nodes.numbers.append(value)
        return nodes.add(NUM, len(nodes.numbers) - 1, 0, token[2], token[3], token[2], token[3])

    def name(self, children: list[Token]) -> int:
        (token,) = children
        return self.nodes.add(NAME, self.nodes.word(_identifier(token)), 0, token[2], token[3],
                              token[2], token[2])

    def neg(self, children: list[Any]) -> int:
        symbol, operand = children
        nodes = self.nodes
        if nodes.kinds[operand] == NUM:  # fold -2 into a literal, so that `A = -2` is an input
            index = nodes.payloads[operand]
            nodes.numbers[index] = -nodes.numbers[index]
            nodes.starts[operand] = symbol[2]
            return operand
        return nodes.add(APPLY, nodes.word("neg"), 1, symbol[2], nodes.ends[operand],
                         symbol[2], symbol[3])

    def pos(self, children: list[Any]) -> int:
        return children[1]

    def group(self, children: list[Any]) -> int:
        left, inner, right = children
        self.nodes.starts[inner] = left[2]
        self.nodes.ends[inner] = right[3]
        return inner

    def arguments(self, children: list[Any]) -> int:
        return (len(children) + 1) // 2  # expr, ',', expr, ...: the number of arguments

    def call(self, children: list[Any]) -> int:
        name, _, count, right = children
        return self.nodes.add(CALL, self.nodes.word(_identifier(name)), count, name[2],
                              right[3], name[2], name[3])

    def vector(self, children: list[Any]) -> int:
        left, count, right = children
        return self.nodes.add(VECTOR, 0, count, left[2], right[3], left[2], left[3])

    def index(self, children: list[Any]) -> int:
        """``target[i, j]``: the indices, parsed as expressions, must be whole numbers written
        as literals; their NUM nodes (the last ones written) become the payloads of INDEX
        nodes, one per index (``M[0, 1]`` is ``M[0][1]``)."""
        target, _, count, right = children
        nodes = self.nodes
        found: list[tuple[int, int, int]] = []  # (index, start, end), last first
        bad: tuple[str, int, int] | None = None  # the first index refused, in the text
        end = len(nodes) - 1
        for _ in range(count):
            start = nodes.first(end)
            value = nodes.numbers[nodes.payloads[end]] if nodes.kinds[end] == NUM else None
            if start != end or value is None or not value.is_integer():
                bad = ("an index must be a whole number", nodes.starts[end], nodes.ends[end])
            elif abs(value) > INDEX_LIMIT:
                bad = (f"the index {value:.6g} is too large", nodes.starts[end], nodes.ends[end])
            else:
                found.append((int(value), nodes.starts[end], nodes.ends[end]))
            end = start - 1
        if bad is not None:  # (the root's span is its whole expression's)
            raise ParseError(bad[0], self.source.span_at(bad[1], bad[2]),
                             hint="write the element's position as a number: V[0] is the "
                             "first, V[-1] the last, M[0, 1] a matrix's element")
        del nodes.numbers[len(nodes.numbers) - count:]
        for column in (nodes.payloads, nodes.arities, nodes.starts, nodes.ends, nodes.marks,
                       nodes.mark_ends):
            del column[len(column) - count:]
        del nodes.kinds[len(nodes.kinds) - count:]
        node = target
        for value, start, stop in reversed(found):
            node = nodes.add(INDEX, value, 1, nodes.starts[target], right[3], start, stop)
        return node

    def assign(self, children: list[Any]) -> Statement:
        name, _, root = children
        text = _identifier(name)
        return Statement(text, name[2], root,
                         name_end=-1 if len(text) == len(name[1]) else name[3])

    def define(self, children: list[Any]) -> Statement:
        name, _, count, _, _, root = children
        nodes = self.nodes
        params: list[int] = []
        bad: int | None = None  # the first parameter that is not a name, in the text
        end = nodes.first(root) - 1  # the arguments are the `count` subtrees before the body
        for _ in range(count):
            start = nodes.first(end)
            if start != end or nodes.kinds[end] != NAME:
                bad = end
            params.append(end)
            end = start - 1
        if bad is not None:  # (the root's span is its whole expression's)
            raise ParseError(
                "a parameter must be a name",
                self.source.span_at(nodes.starts[bad], nodes.ends[bad]),
                hint=f"a definition names its parameters, as in {name[1]}(x, y) = x*y")
        text = _identifier(name)
        return Statement(text, name[2], root, tuple(reversed(params)),
                         -1 if len(text) == len(name[1]) else name[3])

    def bare(self, children: list[Any]) -> Statement:
        (root,) = children
        return Statement(None, self.nodes.starts[root], root)

    def start(self, children: list[Any]) -> Program:
        statements = [c for c in children if type(c) is Statement]
        program = Program(statements, self.nodes, self.source)
        for statement in statements[:-1]:
            if statement.name is None:
                raise ParseError(
                    "a bare expression can only be the last statement",
                    program.statement_span(statement),
                    hint="give it a name (NAME = ...) or move it to the end of the program",
                )
        return program

    def splice(self, children: list[Any]) -> list[Any]:
        return _splice(children)


_TABLES_FORMAT = 1


def _digest(grammar: str) -> str:
    # Tells one version of the grammar from another (a cache key, not a security check);
    # zlib is already loaded where hashlib would cost milliseconds of start-up.
    data = grammar.encode()
    return f"{zlib.crc32(data):08x}{len(data):x}"


def _cache_folder() -> Path | None:
    """``$XDG_CACHE_HOME/gradcalc``, else ``~/.cache/gradcalc``; a relative XDG_CACHE_HOME is
    ignored (the XDG specification says so), and with no absolute home there is no cache."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(base):
        return Path(base) / "gradcalc"
    home = os.path.expanduser("~")
    if not home or home == "~" or not os.path.isabs(home) or home == "/":
        return None
    return Path(home) / ".cache" / "gradcalc"


#: A cache file larger than this is not read (the real one is about 60 kB).
CACHE_LIMIT = 4 * 1024 * 1024


def _checksum(tables: Any) -> str:
    # CRC-32 and length (as for the grammar's digest): it catches damage; a deliberate
    # forgery is caught by the probe parse in _machine. hashlib would cost start-up time.
    return _digest(json.dumps(tables, sort_keys=True, separators=(",", ":")))


def _read_cache(path: Path, digest: str) -> dict[str, Any] | None:
    """The cached tables, or ``None`` on any doubt. The cache is untrusted input: opened
    without following a symbolic link and without blocking (a FIFO), read only if it is a
    regular file of at most :data:`CACHE_LIMIT` bytes, and used only if its checksum, format,
    grammar digest and shape are right."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > CACHE_LIMIT:
            return None
        with os.fdopen(fd, "rb", closefd=False) as f:
            raw = f.read(CACHE_LIMIT + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("checksum") != _checksum(data.get("tables")):
        return None
    tables = data["tables"]
    if not isinstance(tables, dict) or tables.get("format") != _TABLES_FORMAT \
            or tables.get("grammar") != digest:
        return None
    return tables


def compile_tables(grammar: str) -> dict[str, Any]:
    """Compile ``grammar`` with Lark into plain data: the token regular expression, the
    ignored terminals, and the LALR(1) action table in which a reduction names the
    :class:`_ToPostfix` method it calls (``None`` for a rule that hands its only child up)."""
    from lark import Lark
    from lark.parsers.lalr_analysis import Shift

    lark = Lark(grammar, parser="lalr", lexer="basic", keep_all_tokens=True)
    table = lark.parser.parser.parser.parse_table  # the LALR table inside Lark's front end

    def reduction(rule: Any) -> list[Any]:
        origin = rule.origin.name
        # Lark inlines rules whose names start with '_' (its helpers for `*` and `?`): their
        # children are spliced into the parent's list.
        splices = any(not s.is_term and s.name.startswith("_") for s in rule.expansion)
        if origin.startswith("_"):
            method = None
        elif rule.alias:
            method = rule.alias
        elif rule.options.expand1 and len(rule.expansion) == 1:
            method = None  # `?sum: product`: the child goes up unchanged
        else:
            method = origin
        return [len(rule.expansion), method, origin, origin.startswith("_"), splices]

    states = {state: {symbol: arg if action is Shift else reduction(arg)
                      for symbol, (action, arg) in row.items()}
              for state, row in table.states.items()}
    # Lark's own order for its basic lexer: priority, then the longest possible match.
    terminals = sorted(lark.terminals, key=lambda t: (
        -t.priority, -t.pattern.max_width, -len(t.pattern.value), t.name))
    return {
        "format": _TABLES_FORMAT,
        "grammar": _digest(grammar),
        "tokens": "|".join(f"(?P<{t.name}>{t.pattern.to_regexp()})" for t in terminals),
        "ignore": sorted(lark.lexer_conf.ignore),
        "start": table.start_states["start"],
        "end": table.end_states["start"],
        "states": [[state, row] for state, row in states.items()],
    }


def _tables(rebuild: bool = False) -> dict[str, Any]:
    """The compiled grammar, from the per-user cache when it matches the grammar's text.

    The cache is JSON (data, never code) with a checksum, written atomically; any problem
    with it just means compiling again (``rebuild`` forces that), and an unwritable or
    unusable cache folder means compiling on every run."""
    grammar = grammar_text()
    digest = _digest(grammar)
    folder = _cache_folder()
    path = None if folder is None else folder / f"tables-{digest}.json"
    if path is not None and not rebuild:
        cached = _read_cache(path, digest)
        if cached is not None:
            return cached
    data = compile_tables(grammar)
    if path is None:
        return data
    import tempfile

    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False,
                                         encoding="utf-8", suffix=".tmp") as f:
            json.dump({"checksum": _checksum(data), "tables": data}, f)
        os.replace(f.name, path)
    except OSError:
        pass
    return data


class _Splice(list):
    """Children of an inlined helper rule, waiting to be spliced into the parent's list."""


def _splice(children: list[Any]) -> list[Any]:
    # Lark's helper rules are left-recursive lists: extend the first one in place, so a
    # program of n statements costs O(n), not O(n^2).
    first = children[0] if children else None
    out = first if type(first) is _Splice else _Splice([first] if children else [])
    for child in children[1:]:
        if type(child) is _Splice:
            out.extend(child)
        else:
            out.append(child)
    return out


class _Machine:
    """The compiled grammar in the shape the loop in :func:`_run` wants.

    ``actions[state][symbol]`` is an ``int`` (shift to, or go to, that state) or a reduction
    ``(length, callback, rule name, splices)``, with callback ``None`` for a pass-through rule;
    ``tokens`` matches one terminal at a position, the terminal's name as the group name."""

    def __init__(self, data: dict[str, Any]) -> None:
        def reduction(length: int, method: str | None, origin: str, helper: bool,
                      splices: bool) -> tuple[Any, ...]:
            if helper:
                return (length, _ToPostfix.splice, origin, False)
            if method is None:
                return (length, None, origin, False)
            return (length, getattr(_ToPostfix, method), origin, splices)

        self.actions: dict[int, dict[str, Any]] = {
            state: {symbol: arg if isinstance(arg, int) else reduction(*arg)
                    for symbol, arg in row.items()}
            for state, row in data["states"]
        }
        self.start: int = data["start"]
        self.end: int = data["end"]
        self.tokens = re.compile(data["tokens"])
        self.ignore = frozenset(data["ignore"])

    @cached_property
    def vocabulary(self) -> _Vocabulary:
        """What the syntax errors need to know about the terminals (made on the first one)."""
        return _Vocabulary(self.tokens)


@lru_cache(maxsize=1)
def _machine() -> _Machine:
    try:
        machine = _Machine(_tables())
        # A token pattern that matches nothing would stall the lexer, and tables of the
        # wrong shape fail on the first program: try both before trusting a cached file.
        if machine.tokens.match("") is None \
                and len(_run(machine, _PROBE).statements) == 2:
            return machine
    except Exception:  # a cache of the wrong shape: whatever it is, compile afresh
        pass
    return _Machine(_tables(rebuild=True))


_PROBE = "B = -A*3^2 + sin(x, y)/2 - 1e-3\n(B + 1)*(B + 2)"


class _Unexpected(Exception):
    """The loop met a token (or a character) the grammar does not allow there."""

    def __init__(self, token: Token | None, pos: int, expected: set[str]) -> None:
        super().__init__()
        self.token, self.pos, self.expected = token, pos, expected


def _run(machine: _Machine, text: str, first_line: int = 1, builder: _ToPostfix | None = None,
         start: int = 0, stop: int | None = None) -> Program:
    """Parse ``text`` (its first line numbered ``first_line``) with the loop; raises
    :class:`_Unexpected` at a token or character the grammar does not allow.

    With ``start``/``stop``, only ``text[start:stop]`` is parsed (offsets stay those of
    ``text``; the line numbers of tokens are then not right, so errors must be reported by a
    run over the whole text), its nodes appended to ``builder``'s."""
    if builder is None:
        builder = _ToPostfix(Source(text, first_line=first_line))
    return _loop(machine, builder, text, first_line, start, len(text) if stop is None else stop)


def _loop(machine: _Machine, builder: _ToPostfix, text: str, first_line: int, pos: int,
          size: int) -> Program:
    """The shift/reduce loop of :func:`_run`, over ``text[pos:size]``."""
    match = machine.tokens.match
    ignore, actions, end_state = machine.ignore, machine.actions, machine.end
    states: list[Any] = [machine.start]
    values: list[Any] = []
    line, line_start = first_line, pos
    while True:
        if pos < size:
            m = match(text, pos, size)
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
            length, callback, rule, splices = action
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
            values.append(callback(builder, _splice(children) if splices else children))
            states.append(actions[states[-1]][rule])
            if kind == "$END" and states[-1] == end_state:
                return values[-1]


def _run_shaped(machine: _Machine, text: str, first_line: int = 1) -> Program | None:
    """The program ``text`` parsed statement by statement, a statement of a shape already seen
    replayed (:mod:`gradcalc.replay`) rather than parsed: the same program as :func:`_run`'s.

    Statements are cut at separators and comments; each one that is not replayed is parsed
    alone by :func:`_run` into the same nodes. None when anything is not plain: a syntax error,
    a number too large, a bare expression before the last statement, a line continuation.
    The caller then runs :func:`_run` over the whole text, which reports the problem where it
    is (a program with an error costs up to twice as much to refuse). When the shapes turn
    cold (most statements of a window were not replayed), the rest of the text is parsed in
    one run."""
    builder = _ToPostfix(Source(text, first_line=first_line))
    shapes = StatementShapes(builder.nodes)
    statements: list[Statement] = []
    pos, size, piece = 0, len(text), _PIECE.match
    try:
        while pos < size:
            end = piece(text, pos).end()  # type: ignore[union-attr]
            statement = shapes.replay(text, pos, end)
            if statement is None and not _blank(text, pos, end):
                if shapes.cold:
                    rest = _run(machine, text, first_line, builder, pos)
                    statements += rest.statements
                    break
                (statement,) = _run(machine, text, first_line, builder, pos, end).statements
                if shapes.learning is not None:
                    shapes.learned(statement)
            if statement is not None:
                statements.append(statement)
            pos = _next_statement(text, end)
            if pos < 0:
                return None
    except (_Unexpected, GradcalcError, ValueError):
        return None
    if any(statement.name is None for statement in statements[:-1]):
        return None
    return Program(statements, builder.nodes, builder.source)


# A statement's text runs to the next separator, comment or line continuation. A carriage
# return ends it only before a newline (elsewhere it is blank space inside the statement).
_PIECE = re.compile(r"[^\n;#\\\r]*")
_BLANK = re.compile(r"[ \t\f]*")


def _blank(text: str, pos: int, end: int) -> bool:
    return _BLANK.match(text, pos, end).end() == end  # type: ignore[union-attr]


def _next_statement(text: str, end: int) -> int:
    """Where the statement after the one ending at ``end`` starts; -1 at a line continuation
    or a lone carriage return (left to the full parser)."""
    if end >= len(text):
        return end
    char = text[end]
    if char == "\n" or char == ";":
        return end + 1
    if char == "#":
        newline = text.find("\n", end)
        return len(text) if newline < 0 else newline + 1
    if char == "\r" and text.startswith("\n", end + 1):
        return end + 2
    return -1


#: The largest program :func:`parse` accepts unless told otherwise, in bytes of UTF-8. Memory
#: grows linearly with the size of a program (measured in the README, "Limits"); the bound keeps
#: a program from taking the machine's memory by accident, and ``max_size`` raises it.
PROGRAM_LIMIT = 1 << 20
#: The largest index ``V[i]`` may write (an index beyond any vector's length is refused
#: when the graph is built; this only keeps it a machine integer).
INDEX_LIMIT = 1 << 30
#: Programs of at least this many characters replay the statements of a shape already seen
#: (:func:`_run_shaped`); below it, the keys cost more than they save.
SHAPED_FROM = 1 << 12
#: No ``max_size`` goes beyond this: 1 GiB (the AST keeps offsets in 32 bits).
PROGRAM_CEILING = 1 << 30


def parse(text: str, name: str = "<program>", first_line: int = 1,
          max_size: int = PROGRAM_LIMIT) -> Program:
    """Parse gradcalc program text into a :class:`~gradcalc.ast.Program`.

    ``name`` is used in error messages (a file path, ``<stdin>``), and ``first_line`` numbers
    the text's first line (for a program taken from a line of a bigger file). Raises
    :class:`~gradcalc.errors.ParseError` with the position of the problem, and
    :class:`~gradcalc.errors.LimitError` for a text of more than ``max_size`` bytes (UTF-8).
    """
    if max_size > PROGRAM_CEILING:
        raise LimitError(f"max_size={max_size:,} is over the ceiling of "
                         f"{size_text(PROGRAM_CEILING)} per program")
    if _over(text, max_size):
        raise program_too_large(name, None, max_size,
                                "parse or compile it with a larger max_size, e.g. "
                                "compile_program(text, max_size=16 << 20)")
    source = Source(text, name, first_line)
    machine = _machine()
    try:
        with paused_gc():
            program = (_run_shaped(machine, text, first_line) if len(text) >= SHAPED_FROM
                       else None) or _run(machine, text, first_line)
    except _Unexpected as exc:
        raise _syntax_error(exc, source) from None
    except GradcalcError as exc:
        exc.source = source
        raise
    if not program.statements:
        raise ParseError("the program is empty",
                         hint="write at least one statement, e.g. OUT = A*2")
    program.source = source
    return program


def _over(text: str, limit: int) -> bool:
    """Whether ``text`` takes more than ``limit`` bytes in UTF-8 (encoded only when the
    number of characters leaves it open)."""
    if len(text) > limit:
        return True
    return 4 * len(text) > limit and len(text.encode("utf-8", "surrogatepass")) > limit


def program_too_large(name: str, size: int | None, limit: int, hint: str) -> LimitError:
    """The error for a program over ``limit`` bytes (``size`` None: more, not all read)."""
    what = "the program" if name.startswith("<") and name != "<stdin>" else name
    amount = f"{size:,} bytes" if size is not None else f"more than {size_text(limit)}"
    return LimitError(f"{what} is {amount}, over the limit of {size_text(limit)} per program",
                      hint=hint)


def size_text(size: int) -> str:
    """``1 MiB``, ``512 KiB``, ``1,000 bytes``: a size as people write it."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift and size % (1 << shift) == 0:
            return f"{size >> shift:,} {unit}"
    return f"{size:,} bytes"


# --- syntax errors -------------------------------------------------------------------------

# The terminals the grammar names itself, in messages. Every other terminal is a spelling the
# grammar writes out ("(", "=", "+", ...): messages quote its first spelling in the grammar, and
# the code finds its name (LPAR, EQUAL: Lark's names for anonymous terminals) by lexing that
# spelling with the compiled tables (see _Vocabulary), never from a copy of Lark's naming.
_PHRASES = {
    "NUMBER": "a number",
    "NAME": "a name",
    "_SEP": "';' or a new line",
    "$END": "the end of the program",
}
#: The operators as hints list them, by their ASCII spellings.
_OPERATOR_SPELLINGS = "+-*/^@"


class _Vocabulary:
    """The names of the terminals the error messages need, taken from the compiled tables."""

    def __init__(self, tokens: re.Pattern[str]) -> None:
        def named(spelling: str) -> str:
            found = tokens.fullmatch(spelling)
            # a spelling no terminal has (the grammar dropped it) names nothing that occurs
            return found.lastgroup if found and found.lastgroup else f"<{spelling}>"

        #: terminal name -> its first spelling in the grammar
        self.spellings: dict[str, str] = {}
        for spelling in _grammar_terminals()[1]:
            self.spellings.setdefault(named(spelling), spelling)
        self.lpar, self.rpar, self.equal = named("("), named(")"), named("=")
        self.rbrack = named("]")
        self.operators = {named(spelling) for spelling in _OPERATOR_SPELLINGS}
        self.operand_starts = {"NUMBER", "NAME", self.lpar, named("[")}

    def describe(self, terminal: str) -> str | None:
        """How a message names ``terminal`` ("a number", "'('"), None if it cannot."""
        if terminal in _PHRASES:
            return _PHRASES[terminal]
        spelling = self.spellings.get(terminal)
        return None if spelling is None else f"'{spelling}'"


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


def _unclosed_paren(text: str, upto: int) -> tuple[int, str] | None:
    """Offset and character of the last '(' or '[' before ``upto`` that is not closed,
    ignoring comments."""
    open_brackets: list[tuple[int, str]] = []
    in_comment = False
    for i, ch in enumerate(text[:upto]):
        if in_comment:
            in_comment = ch != "\n"
        elif ch == "#":
            in_comment = True
        elif ch in "([":
            open_brackets.append((i, ch))
        elif ch in ")]" and open_brackets:
            open_brackets.pop()
        elif ch in ";\n":
            open_brackets.clear()
    return open_brackets[-1] if open_brackets else None


def _syntax_error(exc: _Unexpected, source: Source) -> ParseError:
    if exc.token is None:
        return _bad_character(exc.pos, source)
    text = source.text
    token = exc.token
    if token[0] == "$END":  # point just past the last non-blank character
        pos = len(text.rstrip())
        span = source.span_at(pos, pos + 1)
    else:
        pos = token[2]
        span = source.span_at(pos, token[3])
    if token[0] in ("_SEP", "$END"):
        return _statement_cut_short(exc, source, pos, span)
    return (_misplaced(exc, source, pos, span)
            or ParseError(f"unexpected {_describe(token)}", span, source,
                          _expected_hint(exc.expected)))


def _bad_character(pos: int, source: Source) -> ParseError:
    text = source.text
    char = text[pos]
    hint = None
    if char == "=" and pos > 0 and text[pos - 1] == "=":
        hint = "gradcalc has no comparisons; '=' assigns a name"
    elif char == ",":
        hint = ("',' only separates a call's arguments and a vector's elements; use ';' "
                "between statements")
    elif unicodedata.category(char) in ("Cf", "Zl", "Zp"):
        # invisible, or a bidirectional control that reorders how the line looks
        hint = (f"U+{ord(char):04X} ({unicodedata.name(char, 'a format character')}) is "
                "invisible or changes how the line is shown: delete it")
    return ParseError(f"unexpected character {char!r}", source.span_at(pos), source, hint)


def _statement_cut_short(exc: _Unexpected, source: Source, pos: int, span: Span
                         ) -> ParseError:
    """The statement ended (a new line, ';' or the end of the program) too early."""
    assert exc.token is not None
    unclosed = _unclosed_paren(source.text, pos)
    if unclosed is not None:
        where = source.span_at(unclosed[0])
        message = f"the '{unclosed[1]}' at {where.line}:{where.column} is never closed"
        return ParseError(message, span, source,
                          hint=f"add the missing '{')' if unclosed[1] == '(' else ']'}'")
    if exc.expected & _machine().vocabulary.operand_starts:
        previous = _previous_token_text(source.text, pos)
        return ParseError(f"missing operand after {previous!r}" if previous
                          else "missing operand", span, source,
                          hint="an operator needs a value on both sides")
    return ParseError(f"unexpected {_describe(exc.token)}", span, source)


def _misplaced(exc: _Unexpected, source: Source, pos: int, span: Span) -> ParseError | None:
    """The usual slips: a ')' or operator without its operand, a second '=', two operands
    in a row; ``None`` for anything else."""
    assert exc.token is not None
    token, expected, words = exc.token, exc.expected, _machine().vocabulary
    kind = token[0]
    if kind == words.rpar and _unclosed_paren(source.text, pos) is None:
        return ParseError("unmatched ')'", span, source, hint="remove it or add the matching '('")
    if kind == words.rbrack and _unclosed_paren(source.text, pos) is None:
        return ParseError("unmatched ']'", span, source, hint="remove it or add the matching '['")
    if kind == words.rpar and expected & words.operand_starts:
        return ParseError("missing operand before ')'", span, source,
                          hint="parentheses and function calls need something inside")
    if kind in words.operators and expected & words.operand_starts:
        return ParseError(f"missing operand before {_describe(token)}", span, source,
                          hint="two operators in a row need a value between them")
    if kind == words.equal:
        return ParseError("unexpected '='", span, source, _equal_hint(source, pos, span))
    if kind in words.operand_starts and expected & words.operators:
        previous = _previous_token_text(source.text, pos)
        if previous and previous[-1].isdigit() and kind == "NAME":
            hint = f"write {previous}*{token[1]} to multiply"
        else:
            hint = f"an operator ({' '.join(_OPERATOR_SPELLINGS)}) or ';' is missing here"
        return ParseError(f"unexpected {_describe(token)}", span, source, hint)
    return None


def _equal_hint(source: Source, pos: int, span: Span) -> str:
    text = source.text
    if _previous_token_text(text, pos) == "=" or text.startswith("=", pos + 1):
        return "gradcalc has no comparisons: '=' gives a name to a value, once"
    if "=" in text[source.line_start(span.line):pos].split(";")[-1]:
        return "only one '=' per statement; separate statements with ';' or a new line"
    return "the left side of '=' must be a single name"


def _expected_hint(expected: set[str]) -> str | None:
    wanted = sorted(filter(None, map(_machine().vocabulary.describe, expected)))
    return "expected " + ", ".join(wanted) if wanted else None


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
