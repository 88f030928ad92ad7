"""The abstract syntax tree, stored flat: every expression node of a program in postfix order.

The parser reduces operands before their operator, so it writes each node once, after its
operands, into a :class:`Postfix`: parallel arrays of small integers (a kind, a payload, the
node's source span and the span of its operator symbol or literal). A node is an index; an
expression is the range of indices that ends at its root. Nothing here is a Python object per
node, so memory is about 25 bytes per node (a tree of objects took ten times that, see the
README's "Limits"), and every walk is a loop.

A :class:`Statement` names the root of its expression. For tools and tests, :meth:`Program.tree`
gives the same program as a tree of objects (:class:`Num`, :class:`Name`, :class:`Apply`,
:class:`Vector`, :class:`Index`, :class:`Assign`, :class:`Output`, :class:`Define`), and
:func:`from_tree` makes a program of such a tree; both
convert with explicit stacks, so a 100,000-deep expression is a normal input.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field

from gradcalc.errors import Source, Span

__all__ = ["APPLY", "CALL", "INDEX", "NAME", "NUM", "VECTOR", "Apply", "Assign", "Define",
           "Expr", "Index", "Name", "Num", "Output", "Postfix", "Program", "Statement", "Vector",
           "from_tree", "walk"]

#: The kinds of node in a :class:`Postfix`.
NUM, NAME, APPLY, CALL, VECTOR, INDEX = 0, 1, 2, 3, 4, 5


@dataclass(slots=True, eq=False, repr=False)
class Postfix:
    """Expression nodes in postfix order (each after its operands), as parallel arrays.

    For node ``i``: ``kinds[i]`` is :data:`NUM`, :data:`NAME`, :data:`APPLY` (an operator; the
    word is its registry name, or ``matmul`` for ``@``), :data:`CALL` (a function call; the
    word is the name as written), :data:`VECTOR` (a literal ``[a, b]``, its elements the
    operands) or :data:`INDEX` (``V[2]``: one operand, the payload is the index itself, and
    the mark is the index as written). ``payloads[i]`` indexes ``numbers`` for a number and
    ``words`` for names, operators and calls; ``arities[i]`` is the number of operands.
    ``starts``/``ends`` are the node's source span (parentheses around it included) and
    ``marks``/``mark_ends`` the span of its operator symbol, of a call's function name, or
    of a number's literal without the sign folded into it.
    Offsets fit in 32 bits: a program is at most 1 GiB (``parse.PROGRAM_CEILING``).
    """

    kinds: bytearray = field(default_factory=bytearray)
    payloads: array[int] = field(default_factory=lambda: array("i"))
    arities: array[int] = field(default_factory=lambda: array("i"))
    starts: array[int] = field(default_factory=lambda: array("i"))
    ends: array[int] = field(default_factory=lambda: array("i"))
    marks: array[int] = field(default_factory=lambda: array("i"))
    mark_ends: array[int] = field(default_factory=lambda: array("i"))
    words: list[str] = field(default_factory=list)
    numbers: array[float] = field(default_factory=lambda: array("d"))
    #: the text of a number that is not its literal in the source (see :func:`from_tree`)
    number_texts: dict[int, str] = field(default_factory=dict)
    _word_index: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.kinds)

    def word(self, text: str) -> int:
        """The index of ``text`` in ``words`` (added once: names repeat, strings are shared)."""
        index = self._word_index.get(text)
        if index is None:
            index = self._word_index[text] = len(self.words)
            self.words.append(text)
        return index

    def add(self, kind: int, payload: int, arity: int, start: int, end: int, mark: int,
            mark_end: int) -> int:
        """Append a node (its operands must be the ``arity`` subtrees just before it)."""
        self.kinds.append(kind)
        self.payloads.append(payload)
        self.arities.append(arity)
        self.starts.append(start)
        self.ends.append(end)
        self.marks.append(mark)
        self.mark_ends.append(mark_end)
        return len(self.kinds) - 1

    def number_text(self, node: int, source: str) -> str:
        """How the number ``node`` was written, with a minus folded into it (``-2``)."""
        if node in self.number_texts:
            return self.number_texts[node]
        literal = source[self.marks[node] : self.mark_ends[node]]
        value = self.numbers[self.payloads[node]]
        return "-" + literal if math.copysign(1.0, value) < 0 else literal

    def first(self, root: int) -> int:
        """The first node of the subtree that ends at ``root`` (the subtree is first..root)."""
        arities, need, node = self.arities, 1, root
        while need:
            need += arities[node] - 1
            node -= 1
        return node + 1


@dataclass(slots=True, eq=False, repr=False)
class Statement:
    """``name = expression``, the bare expression ending a program (``name`` is None), or
    the definition of a function ``name(params) = expression``.

    ``root`` is the expression's root node; ``name_start`` the offset of the name (of the
    expression for a bare one). A definition's ``params`` are its parameters' NAME nodes,
    which come just before the body in the postfix order; ``None`` for other statements."""

    name: str | None
    name_start: int
    root: int
    params: tuple[int, ...] | None = None
    #: where the name as written ends, when NFKC changed its length (``ﬁ`` is ``fi``)
    name_end: int = -1


@dataclass(slots=True, eq=False, repr=False)
class Program:
    """A parsed program: its statements in source order, their expressions and the source."""

    statements: list[Statement]
    nodes: Postfix = field(default_factory=Postfix)
    source: Source = field(default_factory=lambda: Source(""))

    def span(self, node: int) -> Span:
        """The source span of expression node ``node``."""
        return self.source.span_at(self.nodes.starts[node], self.nodes.ends[node])

    def mark(self, node: int) -> Span:
        """The span of the operator symbol (or a call's function name) of ``node``."""
        return self.source.span_at(self.nodes.marks[node], self.nodes.mark_ends[node])

    def name_span(self, statement: Statement) -> Span:
        """Where the statement's name is written (its expression, for a bare one)."""
        if statement.name is None:
            return self.span(statement.root)
        end = statement.name_end
        return self.source.span_at(statement.name_start, end if end >= 0
                                   else statement.name_start + len(statement.name))

    def statement_span(self, statement: Statement) -> Span:
        return self.source.span_at(statement.name_start, self.nodes.ends[statement.root])

    def tree(self) -> list[Assign | Output | Define]:
        """The statements as a tree of objects (for tools and tests), built without recursion."""
        nodes, text = self.nodes, self.source.text
        made: list[Expr] = []
        for node in range(len(nodes)):
            kind, payload, span = nodes.kinds[node], nodes.payloads[node], self.span(node)
            if kind == NUM:
                made.append(Num(nodes.numbers[payload], nodes.number_text(node, text), span))
            elif kind == NAME:
                made.append(Name(nodes.words[payload], span))
            elif kind == INDEX:
                made.append(Index(made.pop(), payload, span, self.mark(node)))
            elif kind == VECTOR:
                count = nodes.arities[node]
                elements = made[len(made) - count:]
                del made[len(made) - count:]
                made.append(Vector(elements, span))
            else:
                count = nodes.arities[node]
                operands = made[len(made) - count:]
                del made[len(made) - count:]
                made.append(Apply(nodes.words[payload], operands, span, self.mark(node),
                                  call=kind == CALL))
        # the statements' expressions are consecutive subtrees: one left on the stack each,
        # after a definition's parameters
        out: list[Assign | Output | Define] = []
        left = iter(made)
        for statement in self.statements:
            params = [next(left) for _ in statement.params or ()]
            expr = next(left)
            if statement.params is not None:
                assert statement.name is not None
                out.append(Define(statement.name, self.name_span(statement),
                                  [p for p in params if type(p) is Name], expr,
                                  self.statement_span(statement)))
            elif statement.name is None:
                out.append(Output(expr, expr.span))
            else:
                out.append(Assign(statement.name, self.name_span(statement), expr,
                                  self.statement_span(statement)))
        return out


# --- the same program as a tree of objects -------------------------------------------------


@dataclass(slots=True, eq=False, repr=False)
class Num:
    """A number literal; ``text`` is how it was written."""

    value: float
    text: str
    span: Span


@dataclass(slots=True, eq=False, repr=False)
class Name:
    """A reference to a variable or a constant such as ``pi``."""

    id: str
    span: Span


@dataclass(slots=True, eq=False, repr=False)
class Apply:
    """An operator or function application. ``op`` is the registry name for operators and the
    name as written for function calls (``call`` is true; the builder checks the name);
    ``op_span`` locates the operator symbol or the function name."""

    op: str
    args: list[Expr]
    span: Span
    op_span: Span
    call: bool = False


@dataclass(slots=True, eq=False, repr=False)
class Vector:
    """A literal ``[a, b, c]``; a matrix is a vector of vectors of one length."""

    elements: list[Expr]
    span: Span


@dataclass(slots=True, eq=False, repr=False)
class Index:
    """An element (or a row) of a vector or matrix: ``target[index]``, 0-based, negative
    indices counting from the end; ``index_span`` locates the index as written."""

    target: Expr
    index: int
    span: Span
    index_span: Span


Expr = Num | Name | Apply | Vector | Index


def _children(node: Expr) -> list[Expr]:
    kind = type(node)
    if kind is Apply:
        return node.args  # type: ignore[union-attr]
    if kind is Vector:
        return node.elements  # type: ignore[union-attr]
    if kind is Index:
        return [node.target]  # type: ignore[union-attr]
    return []


@dataclass(slots=True, eq=False, repr=False)
class Assign:
    """``name = expr``."""

    name: str
    name_span: Span
    expr: Expr
    span: Span


@dataclass(slots=True, eq=False, repr=False)
class Define:
    """``name(params) = expr``: a function of the program's own."""

    name: str
    name_span: Span
    params: list[Name]
    expr: Expr
    span: Span


@dataclass(slots=True, eq=False, repr=False)
class Output:
    """A bare expression as the last statement: it is the program's output."""

    expr: Expr
    span: Span


def walk(expr: Expr) -> Iterator[Expr]:
    """Every node of ``expr``, parents before children, without recursion."""
    stack: list[Expr] = [expr]
    pop, push = stack.pop, stack.extend
    while stack:
        node = pop()
        yield node
        push(reversed(_children(node)))


def from_tree(statements: list[Assign | Output | Define], source: Source | None = None
              ) -> Program:
    """A :class:`Program` of statements given as a tree of objects (the inverse of
    :meth:`Program.tree`); spans are taken as offsets into ``source``."""
    nodes, out = Postfix(), []
    for statement in statements:
        params: tuple[int, ...] | None = None
        if type(statement) is Define:
            params = tuple(nodes.add(NAME, nodes.word(p.id), 0, p.span.start, p.span.end,
                                     p.span.start, p.span.start) for p in statement.params)
        # pre-order with the last operand first, reversed, is post-order
        order: list[Expr] = []
        stack: list[Expr] = [statement.expr]
        while stack:
            node = stack.pop()
            order.append(node)
            stack.extend(_children(node))
        for node in reversed(order):
            span = node.span
            if type(node) is Num:
                nodes.numbers.append(node.value)
                nodes.number_texts[len(nodes)] = node.text
                nodes.add(NUM, len(nodes.numbers) - 1, 0, span.start, span.end, span.start,
                          span.end)
            elif type(node) is Name:
                nodes.add(NAME, nodes.word(node.id), 0, span.start, span.end, span.start,
                          span.start)
            elif type(node) is Vector:
                nodes.add(VECTOR, 0, len(node.elements), span.start, span.end, span.start,
                          span.start + 1)
            elif type(node) is Index:
                nodes.add(INDEX, node.index, 1, span.start, span.end, node.index_span.start,
                          node.index_span.end)
            else:
                assert type(node) is Apply
                nodes.add(CALL if node.call else APPLY, nodes.word(node.op), len(node.args),
                          span.start, span.end, node.op_span.start, node.op_span.end)
        root = len(nodes) - 1
        if isinstance(statement, (Define, Assign)):
            span = statement.name_span
            out.append(Statement(statement.name, span.start, root, params,
                                 -1 if span.end - span.start == len(statement.name)
                                 else span.end))
        else:
            out.append(Statement(None, statement.span.start, root))
    return Program(out, nodes, source if source is not None else Source(""))
