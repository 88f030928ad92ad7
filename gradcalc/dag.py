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
from dataclasses import dataclass, field

from gradcalc.ast import Apply, Assign, Expr, Name, Num, Output, Program, walk
from gradcalc.errors import (
    ArityError,
    CycleError,
    NameResolutionError,
    Source,
    Span,
    closest,
)
from gradcalc.fmt import LEADS_TO
from gradcalc.gcpause import paused_gc
from gradcalc.names import fresh
from gradcalc.ops import CONST, CONSTANTS, FUNCTIONS, IDENTITY, INPUT, Op, op_named

__all__ = ["Dag", "build"]


@dataclass(slots=True, eq=False)
class Dag:
    """A counted-DAG-to-be: nodes as parallel lists, in topological order.

    ``values[i]`` is a constant's value or an input's value set in the program (``None`` for a
    free input and for op nodes); ``labels`` tells how constants were written. ``named`` maps
    every name (inputs and assigned names) to its node; ``inputs`` only the inputs, in order of
    first appearance. ``outputs`` are the candidate outputs: the assigned names (inputs aside)
    that nothing else uses, in source order; ``output`` is the default output, the last of them
    (the last assigned name when every assigned name is used or an input).
    """

    ops: list[Op] = field(default_factory=list)
    args: list[tuple[int, ...]] = field(default_factory=list)
    names: list[str | None] = field(default_factory=list)
    spans: list[Span | None] = field(default_factory=list)
    values: list[float | None] = field(default_factory=list)
    labels: dict[int, str] = field(default_factory=dict)
    inputs: dict[str, int] = field(default_factory=dict)
    named: dict[str, int] = field(default_factory=dict)
    name_spans: dict[str, Span] = field(default_factory=dict)
    output: str = ""
    outputs: list[str] = field(default_factory=list)
    source: Source = field(default_factory=lambda: Source(""))
    merged: int = 0

    def __len__(self) -> int:
        return len(self.ops)

    @property
    def edge_count(self) -> int:
        return sum(map(len, self.args))

    def describe(self, node: int) -> str:
        """A short human name for a node: its name, its constant, or its source text."""
        name = self.names[node]
        if name is not None:
            return name
        if node in self.labels:
            return self.labels[node]
        span = self.spans[node]
        if span is not None:
            text = self.source.text[span.start : span.end]
            if len(text) <= 40 and "\n" not in text:
                return text
        return f"({self.ops[node].label})"

    def add(self, op: Op, args: tuple[int, ...], span: Span | None,
            name: str | None = None, value: float | None = None) -> int:
        """Append a node and return its id (its operands must already be in the graph)."""
        node = len(self.ops)
        self.ops.append(op)
        self.args.append(args)
        self.names.append(name)
        self.spans.append(span)
        self.values.append(value)
        if name is not None:
            self.named[name] = node
        return node


def build(program: Program) -> Dag:
    """Turn a parsed program into a :class:`Dag`.

    Checks names (assigned once; not a constant or a function), function names and argument
    counts, and that no name depends on itself. Statements may appear in any order; the graph
    follows their dependencies.
    """
    with paused_gc():
        return _Builder(program).run()


class _OutOfOrder(Exception):
    """A name was used before its statement: build again in dependency order."""


class _Builder:
    def __init__(self, program: Program) -> None:
        self.program = program
        self.source = program.source
        self.dag = Dag(source=program.source)
        self.statements: dict[str, Assign] = {}
        self.cse: dict[Op, dict[tuple[object, ...], int]] = {}
        self.output = ""

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
            self.cse.clear()
            for name in self._order():
                self._build_statement(self.statements[name])
        self.dag.outputs = self._sinks()
        self.dag.output = self.dag.outputs[-1] if self.dag.outputs else self.output
        return self.dag

    def _sinks(self) -> list[str]:
        """Assigned names that are not inputs and that no other node uses, in source order.
        A statement may come after its uses, so "the last assigned name" is not the output:
        the output is what nothing else consumes."""
        dag = self.dag
        used = bytearray(len(dag))
        for args in dag.args:
            for arg in args:
                used[arg] = 1
        return [name for name in self.statements
                if name not in dag.inputs and not used[dag.named[name]]]

    # --- names and order -----------------------------------------------------------------

    def _collect(self) -> None:
        for statement in self.program.statements:
            if type(statement) is Output:
                name = _fresh_output_name(self.program)
                statement = Assign(name, statement.span, statement.expr, statement.span)
            assert type(statement) is Assign
            name = statement.name
            if name in CONSTANTS:
                raise self.error(NameResolutionError, f"cannot assign to the constant {name}",
                                 statement.name_span, hint="choose another name")
            if name in FUNCTIONS:
                raise self.error(NameResolutionError, f"cannot assign to {name}: it is a function",
                                 statement.name_span, hint="choose another name")
            if name in self.statements:
                first = self.statements[name].name_span
                raise self.error(
                    NameResolutionError, f"{name} is assigned twice", statement.name_span,
                    hint=f"it was first assigned at {first.line}:{first.column}; every name is "
                    "assigned once (use a new name for a new value)")
            self.statements[name] = statement
            self.output = name

    def _order(self) -> list[str]:
        """Assigned names, dependencies first (source order where free), without recursion."""
        uses: dict[str, list[Name]] = {}
        for name, statement in self.statements.items():
            uses[name] = [node for node in walk(statement.expr)
                          if type(node) is Name and node.id in self.statements]
        order: list[str] = []
        state: dict[str, int] = {}  # 1 = on the stack, 2 = done
        for root in self.statements:
            if root in state:
                continue
            state[root] = 1
            stack: list[tuple[str, int]] = [(root, 0)]
            while stack:
                name, index = stack[-1]
                deps = uses[name]
                if index == len(deps):
                    stack.pop()
                    state[name] = 2
                    order.append(name)
                    continue
                stack[-1] = (name, index + 1)
                dep = deps[index]
                seen = state.get(dep.id)
                if seen == 1:
                    raise self._cycle([n for n, _ in stack], dep)
                if seen is None:
                    state[dep.id] = 1
                    stack.append((dep.id, 0))
        return order

    def _cycle(self, path: list[str], closing: Name) -> Exception:
        loop = [*path[path.index(closing.id):], closing.id]
        if len(loop) == 2:
            return self.error(
                CycleError, f"{closing.id} is defined in terms of itself", closing.span,
                hint=f"assignments are equations, not updates: use a new name "
                f"(e.g. {closing.id}2 = ... {closing.id} ...)")
        return self.error(CycleError, "circular definition: " + f" {LEADS_TO} ".join(loop),
                          closing.span,
                          hint="each name must be computable from names that do not use it")

    # --- expressions ---------------------------------------------------------------------

    def _build_statement(self, statement: Assign) -> None:
        dag, expr, name = self.dag, statement.expr, statement.name
        if isinstance(expr, Num):
            dag.add(INPUT, (), statement.name_span, name, expr.value)
            dag.inputs[name] = len(dag) - 1
        elif isinstance(expr, Apply):
            self._expr(expr, name)
        else:  # `C = B` or `C = pi`: C is a node of its own
            dag.add(IDENTITY, (self._expr(expr),), expr.span, name)
        dag.name_spans[name] = statement.name_span

    def _expr(self, expr: Expr, name: str | None = None) -> int:
        """Add ``expr`` to the graph, sharing identical unnamed sub-expressions; return its id.
        With ``name``, the root is that name's own node: never shared, never merged."""
        if isinstance(expr, Num):
            return self._constant(expr.value, expr.text, expr.span)
        if isinstance(expr, Name):
            return self._name(expr)
        order = _postorder(expr)
        if name is not None:
            order.pop()  # the root is added below, as that name's own node
        dag, cse = self.dag, self.cse
        ops, args, names, spans, values = dag.ops, dag.args, dag.names, dag.spans, dag.values
        results: list[int] = []
        push, take = results.append, results.pop
        for node in order:
            if isinstance(node, Apply):
                op = self._check(node) if node.call else op_named(node.op)
                if op.arity == 2:
                    second = take()
                    operands: tuple[int, ...] = (take(), second)
                elif op.arity == 1:
                    operands = (take(),)
                else:
                    operands = _take_last(results, op.arity)
                table = cse.get(op)
                if table is None:
                    table = cse[op] = {}
                found = table.get(operands)
                if found is None:
                    found = table[operands] = len(ops)
                    ops.append(op)
                    args.append(operands)
                    names.append(None)
                    spans.append(node.span)
                    values.append(None)
                else:
                    dag.merged += 1
                push(found)
            elif isinstance(node, Name):
                push(self._name(node))
            else:
                push(self._constant(node.value, node.text, node.span))
        if name is None:
            return results[0]
        op = self._check(expr) if expr.call else op_named(expr.op)
        return dag.add(op, tuple(results), expr.span, name)

    def _constant(self, value: float, label: str, span: Span) -> int:
        table = self.cse.get(CONST)
        if table is None:
            table = self.cse[CONST] = {}
        key = (value, math.copysign(1.0, value))  # 0.0 and -0.0 are different constants
        node = table.get(key)
        if node is None:
            node = table[key] = self.dag.add(CONST, (), span, value=value)
            self.dag.labels[node] = label
        return node

    def _name(self, node: Name) -> int:
        name, dag = node.id, self.dag
        found = dag.named.get(name)
        if found is not None:
            return found
        if name in CONSTANTS:
            return self._constant(CONSTANTS[name], name, node.span)
        if name in FUNCTIONS:
            raise self.error(NameResolutionError, f"{name} is a function, not a value", node.span,
                             hint=f"call it with an argument: {name}(...)")
        if name in self.statements:
            raise _OutOfOrder
        dag.name_spans[name] = node.span
        dag.inputs[name] = dag.add(INPUT, (), node.span, name)
        return dag.inputs[name]

    def _check(self, node: Apply) -> Op:
        if not node.call:
            return op_named(node.op)
        name = node.op
        op = FUNCTIONS.get(name)
        if op is None:
            raise self._unknown_function(node)
        if len(node.args) != op.arity:
            params = ", ".join("xyzw"[: op.arity])
            count = f"{op.arity} argument" + ("s" if op.arity != 1 else "")
            raise self.error(ArityError, f"{name} takes {count}, got {len(node.args)}", node.span,
                             hint=f"write {name}({params})")
        return op

    def _unknown_function(self, node: Apply) -> Exception:
        name = node.op
        if name in CONSTANTS or name in self.statements:
            kind = "a constant" if name in CONSTANTS else "a variable"
            return self.error(NameResolutionError, f"{name} is {kind}, not a function",
                              node.op_span, hint=f"to multiply, write {name}*(...)")
        close = closest(name, FUNCTIONS)
        hint = (f"did you mean {close}?" if close
                else "known functions: " + ", ".join(sorted(FUNCTIONS)))
        return self.error(NameResolutionError, f"unknown function {name!r}", node.op_span, hint)


def _postorder(expr: Expr) -> list[Expr]:
    """The nodes of ``expr``, each after its operands (the root last), without recursion."""
    # Pre-order with the last operand first, reversed, is post-order: operands first.
    order: list[Expr] = []
    stack: list[Expr] = [expr]
    pop, extend, visit = stack.pop, stack.extend, order.append
    while stack:
        node = pop()
        visit(node)
        if isinstance(node, Apply):
            extend(node.args)
    order.reverse()
    return order


def _take_last(results: list[int], count: int) -> tuple[int, ...]:
    """Remove the last ``count`` ids from the stack ``results``; return them in order."""
    operands = tuple(results[-count:])
    del results[-count:]
    return operands


def _fresh_output_name(program: Program) -> str:
    taken = {s.name for s in program.statements if type(s) is Assign}
    taken.update(n.id for s in program.statements for n in walk(s.expr) if type(n) is Name)
    return next(fresh(taken, "OUT", first="stem"))

