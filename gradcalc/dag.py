"""The computation graph as plain data, and the builder that makes it from an AST.

A :class:`Dag` is a set of parallel lists indexed by integer node id. Nodes are appended after
their operands, so id order is a topological order: walking forwards or backwards is a loop.
Operands are kept with repetitions (``B*B`` has two edges from B), which is what the engine's
counting pass counts.

Names: an input is a name used but never assigned, or assigned a plain number (``A = 2``). Every
assigned name gets a node of its own, never shared with another name or merged away, so the
gradient with respect to a named intermediate is the adjoint of exactly that node. Unnamed
identical sub-expressions are merged (common sub-expression elimination).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from gradcalc import tensor
from gradcalc.ast import APPLY, CALL, INDEX, NAME, NUM, VECTOR, Program, Statement
from gradcalc.confusable import lookalikes
from gradcalc.errors import (
    ArityError,
    CycleError,
    Diagnostic,
    InputError,
    LimitError,
    NameResolutionError,
    ShapeError,
    Source,
    Span,
    closest,
    on_command_line,
)
from gradcalc.fmt import LEADS_TO
from gradcalc.functions import INLINE_LIMIT, Function, check_arity, collect
from gradcalc.gcpause import paused_gc
from gradcalc.names import fresh
from gradcalc.ops import CONST, CONSTANTS, FUNCTIONS, IDENTITY, INPUT, Op, op_named
from gradcalc.order import dependency_order
from gradcalc.tensor import ARRAY_FUNCTIONS, ArrayFunction, Mismatch, Tensor, TooLarge, Value

__all__ = ["Dag", "build"]


@dataclass(slots=True, eq=False)
class Spans:
    """Where each node is written, as source offsets (``-1`` for a node written nowhere); the
    line and column are worked out from the source when a span is asked for
    (:meth:`Dag.span`). Two machine integers a node: a 10 MiB program has millions."""

    starts: array[int] = field(default_factory=lambda: array("i"))
    ends: array[int] = field(default_factory=lambda: array("i"))

    def __len__(self) -> int:
        return len(self.starts)

    def __setitem__(self, node: int, span: Span | None) -> None:
        self.starts[node] = -1 if span is None else span.start
        self.ends[node] = -1 if span is None else span.end

    def copy(self) -> Spans:
        return Spans(array("i", self.starts), array("i", self.ends))


class Operands(Sequence[tuple[int, ...]]):
    """Every node's operands, read as a sequence of tuples (``dag.args[node] == (a, b)``) from
    the two arrays that store them: ``starts[node]:starts[node + 1]`` is the node's slice of
    ``ids``. Loops over large graphs read the arrays directly (``Dag.operand_starts`` and
    ``Dag.operand_ids``); this view is for everything else."""

    __slots__ = ("ids", "starts")

    def __init__(self, starts: array[int], ids: array[int]) -> None:
        self.starts, self.ids = starts, ids

    def __len__(self) -> int:
        return len(self.starts) - 1

    @overload
    def __getitem__(self, node: int) -> tuple[int, ...]: ...
    @overload
    def __getitem__(self, node: slice) -> list[tuple[int, ...]]: ...

    def __getitem__(self, node: int | slice) -> tuple[int, ...] | list[tuple[int, ...]]:
        if isinstance(node, slice):
            return [self[i] for i in range(*node.indices(len(self)))]
        if node < 0:
            node += len(self)
            if node < 0:
                raise IndexError("node index out of range")
        starts = self.starts
        return tuple(self.ids[starts[node] : starts[node + 1]])

    def __iter__(self) -> Iterator[tuple[int, ...]]:
        starts, ids = self.starts, self.ids
        for node in range(len(starts) - 1):
            yield tuple(ids[starts[node] : starts[node + 1]])


@dataclass(slots=True, eq=False)
class Dag:
    """A counted-DAG-to-be: nodes as parallel lists, in topological order.

    ``args[node]`` are a node's operands (a tuple, repetitions kept), stored flat in
    ``operand_ids`` with each node's slice starting at ``operand_starts[node]`` (two machine
    integers a binary node instead of a tuple object and an int object: a 10 MiB program has
    millions of nodes).

    ``values[i]`` is a constant's value or an input's value set in the program (``None`` for a
    free input and for op nodes); ``labels`` tells how constants were written. ``named`` maps
    every name (inputs and assigned names) to its node; ``inputs`` only the inputs, in order of
    first appearance. ``outputs`` are the candidate outputs: the assigned names (inputs aside)
    that nothing else uses, in source order; ``output`` is the default output, the last of them
    (the last assigned name when every assigned name is used or an input).
    """

    ops: list[Op] = field(default_factory=list)
    operand_starts: array[int] = field(default_factory=lambda: array("i", [0]))
    operand_ids: array[int] = field(default_factory=lambda: array("i"))
    names: list[str | None] = field(default_factory=list)
    spans: Spans = field(default_factory=Spans)
    values: list[float | None] = field(default_factory=list)
    labels: dict[int, str] = field(default_factory=dict)
    inputs: dict[str, int] = field(default_factory=dict)
    named: dict[str, int] = field(default_factory=dict)
    name_spans: dict[str, Span] = field(default_factory=dict)
    output: str = ""
    outputs: list[str] = field(default_factory=list)
    source: Source = field(default_factory=lambda: Source(""))
    merged: int = 0
    #: what the build noticed and the results should say (names that look alike)
    warnings: list[Diagnostic] = field(default_factory=list)
    #: the nodes made from the body of a program's function (their span is the call)
    inlined: set[int] = field(default_factory=set)
    #: the nodes made by expanding an array operation (``W @ X``, ``sum(V)``), as ranges
    #: ``(first, last)`` of ids in increasing order: their span is the operation's
    expanded: list[tuple[int, int]] = field(default_factory=list)
    #: the program's vectors and matrices by name (their elements are in ``named`` as
    #: ``W[0]``, ``M[1][2]``; those set to numbers are in ``inputs``)
    tensors: dict[str, Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ops)

    @property
    def args(self) -> Operands:
        """The operands of each node, as tuples: ``dag.args[node]``."""
        return Operands(self.operand_starts, self.operand_ids)

    @property
    def edge_count(self) -> int:
        return len(self.operand_ids)

    def describe(self, node: int) -> str:
        """A short human name for a node: its name, its constant, or its source text; a node
        made from the body of a program's function, whose text is the call, is its operation
        in that call (``^ in f(A, B)``)."""
        name = self.names[node]
        if name is not None:
            return name
        if node in self.labels:
            return self.labels[node]
        start, end = self.spans.starts[node], self.spans.ends[node]
        if start >= 0 and end - start <= 40:
            text = self.source.text[start:end]
            if "\n" not in text:
                return (f"{self.ops[node].label} in {text}"
                        if node in self.inlined or self._in_expansion(node) else text)
        return f"({self.ops[node].label})"

    def _in_expansion(self, node: int) -> bool:
        import bisect

        at = bisect.bisect_right(self.expanded, (node, len(self.ops))) - 1
        return at >= 0 and self.expanded[at][0] <= node <= self.expanded[at][1]

    def span(self, node: int) -> Span | None:
        """Where ``node`` is written in the source (None for a node written nowhere)."""
        start = self.spans.starts[node]
        if start < 0:
            return None
        return self.source.span_at(start, self.spans.ends[node])

    def add(self, op: Op, args: tuple[int, ...], span: Span | None,
            name: str | None = None, value: float | None = None) -> int:
        """Append a node and return its id (its operands must already be in the graph)."""
        if span is None:
            return self.append(op, args, -1, -1, name, value)
        return self.append(op, args, span.start, span.end, name, value)

    def append(self, op: Op, args: tuple[int, ...], start: int, end: int,
               name: str | None = None, value: float | None = None) -> int:
        """:meth:`add` with the span given as source offsets (``-1``: written nowhere)."""
        node = len(self.ops)
        self.ops.append(op)
        self.operand_ids.extend(args)
        self.operand_starts.append(len(self.operand_ids))
        self.names.append(name)
        self.spans.starts.append(start)
        self.spans.ends.append(end)
        self.values.append(value)
        if name is not None:
            self.named[name] = node
        return node


def build(program: Program, shapes: Mapping[str, tuple[int, ...]] | None = None) -> Dag:
    """Turn a parsed program into a :class:`Dag`.

    Checks names (assigned once; not a constant or a function), function names and argument
    counts, shapes of vectors and matrices, and that no name depends on itself. Statements may
    appear in any order; the graph follows their dependencies. ``shapes`` gives inputs the
    program does not assign a shape (``{"X": (3,)}``: X is a vector of 3 inputs).
    """
    for name, shape in (shapes or {}).items():
        if not (isinstance(shape, tuple) and 1 <= len(shape) <= tensor.MAX_RANK
                and all(type(n) is int and n > 0 for n in shape)):
            raise InputError(f"the shape of {name} must be (n,) or (rows, columns) of "
                             f"positive whole numbers, not {shape!r}",
                             hint="gradcalc has vectors and matrices")
    with paused_gc():
        return _Builder(program, shapes or {}).run()


class _OutOfOrder(Exception):
    """A name was used before its statement: build again in dependency order."""


#: Words that make a program one of arrays (see ``_Builder.arrays``); ``max`` and ``min`` of
#: one argument are array functions too, but a scalar program may use the binary ones.
_ARRAY_WORDS = frozenset(["matmul", *ARRAY_FUNCTIONS]) - set(FUNCTIONS)


class _Builder:
    def __init__(self, program: Program, shapes: Mapping[str, tuple[int, ...]]) -> None:
        self.program = program
        self.shapes = shapes
        self.nodes = program.nodes
        self.source = program.source
        self.dag = Dag(source=program.source)
        self.statements: dict[str, Statement] = {}
        self.shared = _Shared(self.dag)
        self.constants: dict[tuple[float, float], int] = {}
        self.output = ""
        self.bare: str | None = None  # the name given to a bare expression
        self.functions: dict[str, Function] = {}  # the program's own functions
        self.calls: dict[tuple[str, tuple[int, ...]], int] = {}  # (function, operands) -> node
        self.inlined = 0  # nodes of function bodies expanded so far
        kinds = program.nodes.kinds
        # vectors or matrices may occur: expressions take the general path (_expr_inlining)
        self.arrays = bool(shapes) or VECTOR in kinds or INDEX in kinds \
            or not _ARRAY_WORDS.isdisjoint(program.nodes.words)
        self.literal: set[int] = set()  # the numbers of a literal a statement assigns
        self.array_nodes = 0  # nodes array operations made so far (tensor.ARRAY_LIMIT)

    def error(self, cls: type[Exception], message: str, span: Span, hint: str | None = None
              ) -> Exception:
        return cls(message, span, self.source, hint)

    def run(self) -> Dag:
        self._collect()
        # Most programs define names before using them: build in source order, and only work
        # out a dependency order (and look for cycles) when a name is used before its statement.
        try:
            for statement in self.statements.values():
                self._build_statement(statement)
        except _OutOfOrder:
            self.dag = Dag(source=self.source)
            self.shared = _Shared(self.dag)
            self.constants.clear()
            self.calls.clear()
            self.inlined = self.array_nodes = 0
            for name in self._order():
                self._build_statement(self.statements[name])
        del self.shared, self.constants
        self.dag.warnings = lookalikes(self.program)
        dag = self.dag
        dag.outputs = self._sinks()
        # the last candidate that is a number (a gradient is of a number), else the last
        numbers = [name for name in dag.outputs if name not in dag.tensors]
        dag.output = (numbers or dag.outputs or [self.output])[-1]
        return self.dag

    def _sinks(self) -> list[str]:
        """Assigned names that are not inputs and that no other node uses, in source order.
        A statement may come after its uses, so "the last assigned name" is not the output:
        the output is what nothing else consumes."""
        dag = self.dag
        used = bytearray(len(dag))
        for operand in dag.operand_ids:
            used[operand] = 1
        out = []
        for name in self.statements:
            found = dag.tensors.get(name)
            if found is None:
                if name not in dag.inputs and not used[dag.named[name]]:
                    out.append(name)
            elif not any(used[i] for i in found.ids) \
                    and not all(dag.ops[i] is INPUT for i in found.ids):
                out.append(name)
        return out

    # --- names and order -----------------------------------------------------------------

    def _collect(self) -> None:
        program = self.program
        for statement in program.statements:
            if statement.params is not None:
                continue  # a function's definition: collected below
            if statement.name is None:
                statement = Statement(_fresh_output_name(program), statement.name_start,
                                      statement.root)
                bare = True
            else:
                bare = False
            name = statement.name
            assert name is not None
            if name in CONSTANTS or name in FUNCTIONS or name in ARRAY_FUNCTIONS:
                what = "the constant " + name if name in CONSTANTS else f"{name}: it is a function"
                raise self.error(NameResolutionError, f"cannot assign to {what}",
                                 program.name_span(statement), hint="choose another name")
            if name in self.statements:
                first = program.name_span(self.statements[name])
                raise self.error(
                    NameResolutionError, f"{name} is assigned twice",
                    program.name_span(statement),
                    hint=f"it was first assigned at {first.line}:{first.column}; every name is "
                    "assigned once (use a new name for a new value)")
            self.statements[name] = statement
            if bare:
                self.bare = name
            self.output = name
        collect(program, self.statements, self.error, self._check_call, self.functions)

    def _name_span(self, name: str) -> Span:
        statement = self.statements[name]
        if name == self.bare:  # a bare expression: its name is where it is written
            return self.program.span(statement.root)
        return self.program.name_span(statement)

    def _order(self) -> list[str]:
        """Assigned names, dependencies first (source order where free), without recursion."""
        nodes, words = self.nodes, self.nodes.words
        kinds, payloads = nodes.kinds, nodes.payloads
        uses: dict[str, list[int]] = {}  # name -> the Name nodes of its expression that are
        for name, statement in self.statements.items():  # assigned names
            uses[name] = [node for node in range(nodes.first(statement.root), statement.root + 1)
                          if kinds[node] == NAME and words[payloads[node]] in self.statements]
        return dependency_order(
            self.statements, uses, lambda node: words[payloads[node]],
            lambda path, closing, node: self._cycle(path, closing, self.program.span(node)))

    def _cycle(self, path: list[str], closing: str, span: Span) -> Exception:
        loop = [*path[path.index(closing):], closing]
        if len(loop) == 2:
            return self.error(
                CycleError, f"{closing} is defined in terms of itself", span,
                hint=f"assignments are equations, not updates: use a new name "
                f"(e.g. {closing}2 = ... {closing} ...)")
        return self.error(CycleError, "circular definition: " + f" {LEADS_TO} ".join(loop),
                          span, hint="each name must be computable from names that do not use it")

    # --- expressions ---------------------------------------------------------------------

    def _build_statement(self, statement: Statement) -> None:
        dag, root, name = self.dag, statement.root, statement.name
        assert name is not None
        kind = self.nodes.kinds[root]
        name_span = self._name_span(name)
        dag.name_spans[name] = name_span
        if kind == NUM:
            dag.add(INPUT, (), name_span, name, self.nodes.numbers[self.nodes.payloads[root]])
            dag.inputs[name] = len(dag) - 1
            return
        mark = len(dag)
        if kind == NAME:  # `C = B` or `C = pi`: C is a node (or an array) of its own
            value = self._expr(root)
        else:
            if kind == VECTOR:  # its numbers are inputs, as in `A = 2`
                self.literal = self._literal_numbers(root)
            value = self._expr(root, name)
            self.literal = set()
        if type(value) is not int or dag.names[value] != name:
            self._bind(name, value, mark, self.program.span(root), name_span)

    def _literal_numbers(self, root: int) -> set[int]:
        """The numbers written as elements of the literal ``root``, or of its rows."""
        nodes = self.nodes
        found: set[int] = set()
        pending, depth = [root], 0
        while pending and depth < tensor.MAX_RANK:
            rows: list[int] = []
            for literal in pending:
                end = literal - 1
                for _ in range(nodes.arities[literal]):
                    kind = nodes.kinds[end]
                    if kind == NUM:
                        found.add(end)
                    elif kind == VECTOR:
                        rows.append(end)
                    end = nodes.first(end) - 1
            pending, depth = rows, depth + 1
        return found

    def _bind(self, name: str, value: Value, mark: int, span: Span, name_span: Span) -> None:
        """Give ``name`` to ``value``, made by the statement whose nodes start at ``mark``: a
        node made there that nothing else uses takes the name (an input if it is a literal's
        number); any other gets a node of its own (an identity), as every name has."""
        dag = self.dag
        used = set(dag.operand_ids[dag.operand_starts[mark]:])
        claimed: set[int] = set()
        ops, names, spans = dag.ops, dag.names, dag.spans

        def claim(node: int, element: str) -> int:
            op = ops[node]
            if node in claimed:
                # the same expression twice (`[sin(A), sin(A)]`, merged): each element is a
                # node of its own, as `V0 = sin(A); V1 = sin(A)` are; an identity of the
                # first would hand the second's gradient to it
                node = dag.append(op, dag.args[node], spans.starts[node], spans.ends[node],
                                  element)
                dag.name_spans[element] = dag.span(node) or name_span
                return node
            if node >= mark and names[node] is None and node not in used and op is not CONST:
                claimed.add(node)
                names[node] = element
                dag.named[element] = node
                if op is INPUT:
                    dag.inputs[element] = node
                dag.name_spans[element] = dag.span(node) or name_span
                return node
            dag.name_spans[element] = name_span
            return dag.add(IDENTITY, (node,), span, element)

        if type(value) is int:
            claim(value, name)
            dag.name_spans[name] = name_span
            return
        assert isinstance(value, Tensor)
        elements = tensor.element_names(name, value.shape)
        dag.tensors[name] = Tensor(value.shape, tuple(
            claim(node, element) for node, element in zip(value.ids, elements, strict=True)))

    def _expr(self, root: int, name: str | None = None) -> Any:
        """Add the expression ending at node ``root`` to the graph, sharing identical unnamed
        sub-expressions; return its id (a :class:`~gradcalc.tensor.Tensor` of ids for an
        array). With ``name``, a scalar root is that name's own node: never shared, never
        merged."""
        if self.functions or self.arrays:
            return self._expr_inlining(root, name)
        nodes = self.nodes
        kinds, payloads, starts, ends = nodes.kinds, nodes.payloads, nodes.starts, nodes.ends
        words, numbers = nodes.words, nodes.numbers
        dag, shared = self.dag, self.shared.find_or_add
        ops, names, values = dag.ops, dag.names, dag.values
        operand_starts, operand_ids = dag.operand_starts, dag.operand_ids
        span_starts, span_ends = dag.spans.starts, dag.spans.ends
        results: list[int] = []
        push, take = results.append, results.pop
        last = root if name is None else root - 1  # a named root is added below, on its own
        for node in range(nodes.first(root), last + 1):
            kind = kinds[node]
            if kind == NAME:
                push(self._name(node))
                continue
            if kind == NUM:
                push(self._constant(node, numbers[payloads[node]]))
                continue
            op: Any = self._check(node) if kind == CALL else op_named(words[payloads[node]])
            if op.__class__ is not Op:  # an array function, and no arrays: wrong, somehow
                raise self._shape_error(node, op.expand, None, _take_last(results, op.arity))
            if op.arity == 2:
                second = take()
                operands: tuple[int, ...] = (take(), second)
            elif op.arity == 1:
                operands = (take(),)
            else:
                operands = _take_last(results, op.arity)
            fresh = len(ops)
            found = shared(op, operands, fresh)
            if found == fresh:
                ops.append(op)
                operand_ids.extend(operands)
                operand_starts.append(len(operand_ids))
                names.append(None)
                span_starts.append(starts[node])
                span_ends.append(ends[node])
                values.append(None)
            else:
                dag.merged += 1
            push(found)
        if name is None:
            return results[0]
        kind = kinds[root]
        op = self._check(root) if kind == CALL else op_named(words[payloads[root]])
        if op.__class__ is not Op:  # (an array function of numbers: a shape error)
            raise self._shape_error(root, op.expand, None, tuple(results))
        return dag.append(op, tuple(results), starts[root], ends[root], name)

    def _expr_inlining(self, root: int, name: str | None = None) -> Value:
        """:meth:`_expr` for a program with functions of its own or arrays: each call's body
        is added with its parameters bound to the call's operands (one frame per call being
        expanded, on an explicit stack), and array operations are expanded into scalar nodes
        (:mod:`gradcalc.tensor`). A body's nodes take the span of the call written in the
        statement; a call already expanded with the same operands is that same node."""
        nodes = self.nodes
        kinds, payloads, words = nodes.kinds, nodes.payloads, nodes.words
        # a frame: [next node, last node, parameters, results, span, name, key of the call]
        frames: list[list[Any]] = [[nodes.first(root), root, None, [], None, name, None]]
        while True:
            frame = frames[-1]
            node, last, params, results, span, named, key = frame
            if node > last:
                frames.pop()
                result = results[0]
                if key is not None:
                    self.calls[key] = result
                if not frames:
                    return result
                frames[-1][3].append(result)
                continue
            frame[0] = node + 1
            kind = kinds[node]
            if kind == NAME:
                word = words[payloads[node]]
                results.append(params[word] if params and word in params else self._name(node))
                continue
            if kind == NUM:
                results.append(self._literal_input(node) if node in self.literal
                               else self._constant(node, nodes.numbers[payloads[node]]))
                continue
            root_name = named if node == last else None
            function = self.functions.get(words[payloads[node]]) if kind == CALL else None
            if function is not None:
                check_arity(self.program, node, function, self.error)
                operands = _take_last(results, len(function.params))
                found = None if root_name else self.calls.get((function.name, operands))
                if found is not None and self._unnamed(found):
                    results.append(found)
                    continue
                self._count_inlined(function, (nodes.starts[node], nodes.ends[node])
                                    if span is None else span)
                frames.append([function.first, function.root,
                               dict(zip(function.params, operands, strict=True)), [],
                               span or (nodes.starts[node], nodes.ends[node]), root_name,
                               None if root_name else (function.name, operands)])
                continue
            results.append(self._operation(node, kind, results, span, root_name))

    def _operation(self, node: int, kind: int, results: list[Any],
                   span: tuple[int, int] | None, name: str | None) -> Value:
        """The value of operator, call, literal or index ``node``, its operands taken from
        the end of ``results``; ``span``: it is in a function's body, called there."""
        nodes = self.nodes
        start, end = span or (nodes.starts[node], nodes.ends[node])
        if kind == INDEX:
            return self._arrays(node, span, tensor.index, results.pop(), nodes.payloads[node])
        operands = _take_last(results, nodes.arities[node])
        if kind == VECTOR:
            return self._arrays(node, span, tensor.stack, operands)
        word = nodes.words[nodes.payloads[node]]
        maker = _Maker(self, start, end, span is not None)
        if kind == APPLY and word == "matmul":
            return self._arrays(node, span, tensor.matmul, *operands, maker)
        op = self._check_call(node) if kind == CALL else op_named(word)
        if type(op) is ArrayFunction:
            return self._arrays(node, span, op.expand, maker, *operands)
        assert isinstance(op, Op)
        if all(type(operand) is int for operand in operands):
            return self._add(op, operands, start, end, name, span is not None)
        return self._arrays(node, span, tensor.elementwise, op, operands, maker)

    def _arrays(self, node: int, span: tuple[int, int] | None, operation: Callable[..., Value],
                *arguments: Any) -> Value:
        """``operation(*arguments)``, its shape errors positioned at ``node`` (in a function's
        body: at the call, ``span``)."""
        first = len(self.dag)
        try:
            value = operation(*arguments)
        except Mismatch as exc:
            raise self._positioned(node, span, exc) from None
        if len(self.dag) > first:
            self.dag.expanded.append((first, len(self.dag) - 1))
        return value

    def _shape_error(self, node: int, operation: Callable[..., Value],
                     span: tuple[int, int] | None, operands: tuple[Any, ...]) -> Exception:
        try:
            operation(_Maker(self, -1, -1, False), *operands)
        except Mismatch as exc:
            return self._positioned(node, span, exc)
        raise AssertionError("an array function took numbers")  # pragma: no cover

    def _positioned(self, node: int, span: tuple[int, int] | None, exc: Mismatch
                    ) -> Exception:
        nodes, program = self.nodes, self.program
        culprit = None  # the operand at fault, if one is
        if nodes.kinds[node] == INDEX:
            culprit = node - 1
        elif exc.operand is not None:
            culprit = _operand_roots(nodes, node)[exc.operand]
        if span is not None:
            where = self.source.span_at(*span)
        elif nodes.kinds[node] == INDEX:
            where = program.mark(node)
        else:
            where = program.span(node if culprit is None else culprit)
        hint = exc.hint
        if culprit is not None and nodes.kinds[culprit] == NAME and span is None:
            name = nodes.words[nodes.payloads[culprit]]
            if name in self.dag.inputs and self.dag.values[self.dag.inputs[name]] is None:
                example = (f"--at '{name}=[1, 2, 3]'" if on_command_line()
                           else f"at={{'{name}': [1, 2, 3]}}")
                hint = (f"{name} is an input, a number unless its value is a vector or "
                        f"matrix: give one, as in {example}")
        return self.error(LimitError if isinstance(exc, TooLarge) else ShapeError,
                          exc.message, where, hint)

    def _unnamed(self, value: Value) -> bool:
        """No part of ``value`` was given a name since it was made (a call's result may be
        reused only then: a name's node is never shared)."""
        names = self.dag.names
        if type(value) is int:
            return names[value] is None
        return all(names[i] is None for i in value.ids)  # type: ignore[union-attr]

    def _literal_input(self, node: int) -> int:
        """A number of the literal a statement assigns: an input (named by ``_bind``)."""
        return self.dag.add(INPUT, (), self.program.span(node),
                            value=self.nodes.numbers[self.nodes.payloads[node]])

    def _add(self, op: Op, operands: tuple[int, ...], start: int, end: int, name: str | None,
             from_body: bool) -> int:
        """A named node of its own, or the unnamed node with ``op`` and ``operands`` (shared
        when there is one already); ``from_body``: it is made from a function's body."""
        if name is not None:
            return self.dag.append(op, operands, start, end, name)
        fresh = len(self.dag)
        found = self.shared.find_or_add(op, operands, fresh)
        if found == fresh:
            self.dag.append(op, operands, start, end)
            if from_body:
                self.dag.inlined.add(fresh)
        else:
            self.dag.merged += 1
        return found

    def _count_inlined(self, function: Function, span: tuple[int, int]) -> None:
        self.inlined += function.size
        if self.inlined > INLINE_LIMIT:
            raise self.error(
                LimitError, f"the calls of functions expand to more than {INLINE_LIMIT:,} "
                "nodes", self.source.span_at(*span),
                hint="a function that calls another several times multiplies its size: "
                "compute shared parts once, as named statements")

    def _constant(self, node: int, value: float, label: str | None = None) -> int:
        key = (value, math.copysign(1.0, value))  # 0.0 and -0.0 are different constants
        found = self.constants.get(key)
        if found is None:
            found = self.constants[key] = self.dag.add(CONST, (), self.program.span(node),
                                                       value=value)
            self.dag.labels[found] = (label if label is not None
                                      else self.nodes.number_text(node, self.source.text))
        return found

    def made_constant(self, value: float, start: int, end: int) -> int:
        """A constant an array operation needs (``mean``'s count), written at ``start``."""
        key = (value, math.copysign(1.0, value))
        found = self.constants.get(key)
        if found is None:
            found = self.constants[key] = self.dag.append(CONST, (), start, end, value=value)
            self.dag.labels[found] = str(int(value)) if value.is_integer() else repr(value)
        return found

    def _name(self, node: int) -> int:
        name, dag = self.nodes.words[self.nodes.payloads[node]], self.dag
        found = dag.named.get(name)
        if found is not None:
            return found
        if name in CONSTANTS:
            return self._constant(node, CONSTANTS[name], name)
        found_array = dag.tensors.get(name)
        if found_array is not None:
            return found_array  # type: ignore[return-value]
        if name in FUNCTIONS or name in self.functions or name in ARRAY_FUNCTIONS:
            raise self.error(NameResolutionError, f"{name} is a function, not a value",
                             self.program.span(node), hint=f"call it with an argument: {name}(...)")
        if name in self.statements:
            raise _OutOfOrder
        span = self.program.span(node)
        shape = self.shapes.get(name)
        if shape:  # an input given as an array (--at 'X=[1, 2]')
            dag.name_spans[name] = span
            made = []
            for element in tensor.element_names(name, shape):
                dag.name_spans[element] = span
                dag.inputs[element] = dag.add(INPUT, (), span, element)
                made.append(dag.inputs[element])
            dag.tensors[name] = Tensor(shape, tuple(made))
            return dag.tensors[name]  # type: ignore[return-value]
        dag.name_spans[name] = span
        dag.inputs[name] = dag.add(INPUT, (), span, name)
        return dag.inputs[name]

    def _check(self, node: int) -> Any:
        """The registry function (or array function) a call names, checked (name and number
        of arguments)."""
        return self._check_call(node)

    def _check_call(self, node: int) -> Op | ArrayFunction:
        nodes = self.nodes
        name, count = nodes.words[nodes.payloads[node]], nodes.arities[node]
        op = FUNCTIONS.get(name)
        array = ARRAY_FUNCTIONS.get(name)
        if array is not None and (op is None or count == array.arity):
            callee: Op | ArrayFunction = array
        elif op is None:
            raise self._unknown_function(name, node)
        else:
            callee = op
        if count != callee.arity:
            params = ", ".join("xyzw"[: callee.arity])
            takes = f"{callee.arity} argument" + ("s" if callee.arity != 1 else "")
            also = " (or 1 array)" if op is not None and array is not None else ""
            raise self.error(ArityError, f"{name} takes {takes}{also}, got {count}",
                             self.program.span(node), hint=f"write {name}({params})")
        return callee

    def _unknown_function(self, name: str, node: int) -> Exception:
        span = self.program.mark(node)
        if name in CONSTANTS or name in self.statements:
            kind = "a constant" if name in CONSTANTS else "a variable"
            return self.error(NameResolutionError, f"{name} is {kind}, not a function",
                              span, hint=f"to multiply, write {name}*(...)")
        known = list(dict.fromkeys([*FUNCTIONS, *ARRAY_FUNCTIONS, *self.functions]))
        close = closest(name, known)
        hint = (f"did you mean {close}?" if close
                else "known functions: " + ", ".join(sorted(known)))
        return self.error(NameResolutionError, f"unknown function {name!r}", span, hint)


class _Shared:
    """Finds the unnamed node with a given operation and operands, for merging identical
    sub-expressions (common sub-expression elimination).

    An open-addressing hash table of node ids, at most half full, whose keys are read back
    from the graph's own arrays, never stored: 8 to 16 bytes a node, where a dict of operand
    tuples took about 130 (a 10 MiB program has millions of nodes). Probing follows CPython's
    dict (``index*5 + 1 + perturb``), which stays short where linear probing clusters."""

    __slots__ = ("count", "ids", "mask", "names", "ops", "slots", "starts")

    def __init__(self, dag: Dag) -> None:
        self.ops, self.starts, self.ids = dag.ops, dag.operand_starts, dag.operand_ids
        self.names = dag.names
        self.slots = array("i", [-1]) * 64
        self.mask = 63
        self.count = 0

    def find_or_add(self, op: Op, operands: tuple[int, ...], node: int) -> int:
        """The node already in the table with ``op`` and ``operands``; else ``node``, which
        is entered (the caller appends it to the graph before the next call)."""
        if 2 * self.count >= self.mask:
            self._grow()
        slots, mask = self.slots, self.mask
        perturb = hash((id(op), *operands)) & _HASH_BITS
        index = perturb & mask
        found = slots[index]
        while found >= 0:
            if self.ops[found] is op:
                start = self.starts[found]
                # (a node an array statement named after it was entered is no longer shared)
                if tuple(self.ids[start : start + len(operands)]) == operands \
                        and self.names[found] is None:
                    return found
            perturb >>= 5
            index = (index * 5 + perturb + 1) & mask
            found = slots[index]
        slots[index] = node
        self.count += 1
        return node

    def _grow(self) -> None:
        # small tables quadruple (fewer rehashes), large ones double (less memory)
        factor = 4 if self.mask < _QUADRUPLE_BELOW else 2
        old, mask = self.slots, (self.mask + 1) * factor - 1  # a power of two, less one
        slots = array("i", [-1]) * (mask + 1)
        ops, starts, ids = self.ops, self.starts, self.ids
        for node in old:
            if node < 0:
                continue
            perturb = hash((id(ops[node]), *ids[starts[node] : starts[node + 1]])) & _HASH_BITS
            index = perturb & mask
            while slots[index] >= 0:
                perturb >>= 5
                index = (index * 5 + perturb + 1) & mask
            slots[index] = node
        self.slots, self.mask = slots, mask


_HASH_BITS = (1 << 64) - 1
_QUADRUPLE_BELOW = 1 << 20


class _Maker:
    """The builder as :class:`gradcalc.tensor.Nodes`: unnamed scalar nodes and constants,
    written where the array operation being expanded is."""

    __slots__ = ("builder", "end", "from_body", "start")

    def __init__(self, builder: _Builder, start: int, end: int, from_body: bool) -> None:
        self.builder, self.start, self.end, self.from_body = builder, start, end, from_body

    def scalar(self, op: Op, operands: tuple[int, ...]) -> int:
        return self.many(op, [operands])[0]

    def fold(self, op: Op, ids: Sequence[int]) -> int:
        result = ids[0]
        if len(ids) > 1:
            self._count(len(ids) - 1)
            emit = self._emitter(op)
            for item in ids[1:]:
                result = emit((result, item))
        return result

    def many(self, op: Op, operands: Sequence[tuple[int, ...]]) -> list[int]:
        self._count(len(operands))
        return list(map(self._emitter(op), operands))

    def _count(self, made: int) -> None:
        builder = self.builder
        builder.array_nodes += made
        if builder.array_nodes > tensor.ARRAY_LIMIT:
            raise TooLarge(f"the array operations make more than {tensor.ARRAY_LIMIT:,} nodes",
                           hint="an operation makes a node per element (a product 2n^3 for "
                           "n^2 elements): work on smaller arrays")

    def _emitter(self, op: Op) -> Callable[[tuple[int, ...]], int]:
        """A function making the unnamed node ``op(*operands)`` (or finding it: shared), with
        the graph's arrays bound to locals: the loops of ``many`` and ``fold`` call it for
        each element, where ``_Builder._add`` would cost three calls more."""
        builder, start, end = self.builder, self.start, self.end
        dag = builder.dag
        find_or_add = builder.shared.find_or_add
        ops, names, values = dag.ops, dag.names, dag.values
        operand_starts, operand_ids = dag.operand_starts, dag.operand_ids
        span_starts, span_ends = dag.spans.starts, dag.spans.ends
        inlined = dag.inlined if self.from_body else None

        def emit(operands: tuple[int, ...]) -> int:
            fresh = len(ops)
            found = find_or_add(op, operands, fresh)
            if found != fresh:
                dag.merged += 1
                return found
            ops.append(op)
            operand_ids.extend(operands)
            operand_starts.append(len(operand_ids))
            names.append(None)
            span_starts.append(start)
            span_ends.append(end)
            values.append(None)
            if inlined is not None:
                inlined.add(fresh)
            return fresh

        return emit

    def constant(self, value: float) -> int:
        return self.builder.made_constant(value, self.start, self.end)


def _operand_roots(nodes: Any, node: int) -> list[int]:
    """The root nodes of ``node``'s operands, in order."""
    roots, end = [], node - 1
    for _ in range(nodes.arities[node]):
        roots.append(end)
        end = nodes.first(end) - 1
    return roots[::-1]


def _take_last(results: list[Any], count: int) -> tuple[Any, ...]:
    """Remove the last ``count`` ids from the stack ``results``; return them in order."""
    operands = tuple(results[-count:])
    del results[-count:]
    return operands


def _fresh_output_name(program: Program) -> str:
    nodes = program.nodes
    taken = {s.name for s in program.statements if s.name is not None}
    kinds, payloads, words = nodes.kinds, nodes.payloads, nodes.words
    taken.update(words[payloads[node]] for node in range(len(nodes)) if kinds[node] == NAME)
    return next(fresh(taken, "OUT", first="stem"))
