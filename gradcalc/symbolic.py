"""Symbolic reverse mode: the same counting pass and backward pass, with expressions as adjoints.

Every node of the DAG gets an expression of the :class:`~gradcalc.algebra.Algebra`: inputs and
named values are symbols, unnamed operations are built from their operands. The backward pass
(:func:`gradcalc.engine.run_over`) then combines the registry's symbolic rules exactly as
the numeric pass combines numbers. A gradient comes out in terms of the program's own names;
names defined by small polynomials (``B = 3*A``) are substituted, the others stay as bindings
printed before the formula (``X1 = cos(X0) + sin(X0); ...``), so a diamond chain of n levels
gives a formula of size O(n), never O(2^n).
"""

from __future__ import annotations

import functools
import math
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction

from gradcalc.algebra import DEFAULT_BUDGET, MAX_BITS, Algebra, ConstantTooLarge, ExpressionTooLarge
from gradcalc.dag import Dag
from gradcalc.engine import Plan, run_over
from gradcalc.errors import EvaluationError, GradcalcError, LimitError, argument
from gradcalc.fmt import format_number
from gradcalc.ops import CONST, CONSTANTS, FUNCTIONS, INPUT, Op
from gradcalc.tidy import Tidy, TooMuchWork

__all__ = ["Formula", "SymbolicGradients", "symbolic_gradients"]

#: Symbolic work is bounded: at most this many interned expressions (the algebra's
#: :data:`~gradcalc.algebra.DEFAULT_BUDGET`) and this many seconds per set of formulas; past
#: either, a :class:`~gradcalc.errors.LimitError` says what to do instead.
EXPRESSION_BUDGET = DEFAULT_BUDGET
TIME_BUDGET = 30.0

# A named value is substituted into the formulas when its definition is a polynomial of
# symbols with at most this many terms; anything bigger or with functions stays a binding.
_INLINE_TERMS = 8

_FUNCTIONS = {name: op.forward for name, op in FUNCTIONS.items()}

#: Formulas of more parts than this (sums and products in their graph) are printed as built,
#: multiplied out: rewriting them as a person would (:mod:`gradcalc.tidy`) is for formulas a
#: person reads. Rewriting may also build as many parts as building them did, and at least
#: ``_TIDY_WORK``; past that they are printed as built too (a bound in parts, not seconds,
#: so that the same program always prints the same formula).
TIDY_PARTS = 500
_TIDY_WORK = 200_000


@dataclass(frozen=True, slots=True)
class Formula:
    """A symbolic gradient. ``expression`` is the gradient in gradcalc syntax, using the
    statements named in ``bindings`` (the program's own names, ``X1 = cos(X0) + sin(X0)``,
    and generated ones, ``t1 = ...``, in program order); ``text`` is the formula on its own,
    a program of those statements whose last statement is the gradient (the expression alone
    when it needs none). ``value`` is its number where known, and ``constant`` is true when it
    uses no names at all. Statements that several formulas of one result need are printed
    once for all of them (:attr:`SymbolicGradients.shared`); ``local`` is the text without
    them."""

    expression: str
    value: float | None
    constant: bool
    needed: int = field(default=0, repr=False)  # bit i: statement i of `statements`
    statements: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    shared: int = field(default=0, repr=False)  # bits of the statements printed once

    @property
    def bindings(self) -> tuple[str, ...]:
        return tuple(name for i, (name, _) in enumerate(self.statements)
                     if self.needed >> i & 1)

    @property
    def text(self) -> str:
        return self._program(self.needed)

    @property
    def local(self) -> str:
        return self._program(self.needed & ~self.shared)

    def _program(self, mask: int) -> str:
        lines = [f"{name} = {text}" for i, (name, text) in enumerate(self.statements)
                 if mask >> i & 1]
        return "; ".join([*lines, self.expression])


@dataclass(slots=True)
class SymbolicGradients:
    """The formulas of one output, keyed by requested name, and the algebra they live in;
    ``shared`` lists the statements (name, definition) that two or more formulas need,
    printed once before them so that the text stays linear in the program."""

    algebra: Algebra
    formulas: dict[str, Formula]
    expressions: dict[str, int]
    shared: list[tuple[str, str]] = field(default_factory=list)


def symbolic_gradients(question: Plan, values: list[float | None],
                       numbers: dict[str, float] | None = None, expand: bool = False
                       ) -> SymbolicGradients:
    """d(output)/d(target) as formulas, for each target of the plan (see
    :func:`gradcalc.engine.plan`); ``values`` holds the known input values (``None`` where
    unknown). A formula's number is taken from ``numbers`` (the
    numeric engine's gradients) where given, else the formula is evaluated where every name
    it uses has a value. The formulas are written as a person would
    (:class:`~gradcalc.tidy.Tidy`: common factors out, fractions together, factors
    cancelled); with ``expand`` they stay in the algebra's multiplied-out form.

    Raises :class:`~gradcalc.errors.EvaluationError` where the program is undefined for every
    value (``A/(A - A)``), at that operation's position, and
    :class:`~gradcalc.errors.LimitError` where the work outgrows :data:`EXPRESSION_BUDGET` or
    :data:`TIME_BUDGET`, or an exact number would need more than
    :data:`~gradcalc.algebra.MAX_BITS` bits."""
    dag = question.dag
    try:
        return _symbolic_gradients(question, values, numbers, expand)
    except ExpressionTooLarge as error:
        raise LimitError(
            f"the formulas are too large to build: {error}", dag.name_spans.get(dag.output),
            dag.source, hint=f"give the inputs values ({argument('at')}) for numbers, or ask for "
            f"fewer gradients ({argument('wrt')})") from None


def _symbolic_gradients(question: Plan, values: list[float | None],
                        numbers: dict[str, float] | None, expand: bool) -> SymbolicGradients:
    dag, output, targets, active = question.dag, question.output, question.targets, question.active
    X = Algebra(EXPRESSION_BUDGET, time.monotonic() + TIME_BUDGET)
    graph = _Expressions(X, dag)

    def local(node: int) -> tuple[int, ...]:
        op = dag.ops[node]
        assert op.rule is not None, f"{op.name} has no symbolic rule"
        if op.linear:  # add, sub, neg, id: no need to build the operands
            return op.rule(X, *([X.zero] * len(dag.args[node])), X.zero)
        operands = [graph.expression(a) for a in dag.args[node]]
        result = graph.expression(node)
        if dag.names[node] is not None:  # a name is a symbol: is its definition defined?
            with graph.at(node):
                _build(X, op, operands)
        with graph.at(node, derivative=True):
            return op.rule(X, *operands, result)

    with graph.at(output):
        adjoints = run_over(question, local, X.add, X.mul, X.one)
    final: dict[str, int] = {}
    known = _known_values(dag, values)
    for name, node in targets.items():
        try:
            expr = graph.inline(adjoints.get(node, X.zero))
        except EvaluationError:
            raise _infinite_derivative(dag, graph, targets, output, active) from None
        final[name] = expr
    ordered, final = _worth_their_names(X, graph.bindings_for(list(final.values())), final)
    statements, texts = _print_all(X, ordered, list(final.values()), dag.named)
    if not expand:
        ordered, final, statements, texts = _tidied(
            X, graph, (ordered, final, statements, texts), dag.named)
    memo: dict[int, float] = {}
    for bound, definition in ordered:
        if bound not in known:
            value = _value(X, definition, known, memo)
            if value is not None:
                known[bound] = value
    statements = _set_inputs(dag, statements, texts) + statements
    masks, shared = _needs(statements, texts)
    formulas = {}
    for (name, expr), text, mask in zip(final.items(), texts, masks, strict=True):
        number = numbers[name] if numbers is not None and name in numbers else \
            _value(X, expr, known, memo)
        formulas[name] = Formula(text, number, not X.symbols(expr), mask, statements,
                                 shared)
    return SymbolicGradients(X, formulas, final, [
        s for i, s in enumerate(statements) if shared >> i & 1])


@functools.cache
def _identifier() -> re.Pattern[str]:
    """A name as the grammar defines it (compiled on first use)."""
    from gradcalc.parse import NAME_PATTERN

    return re.compile(NAME_PATTERN)


def _worth_their_names(X: Algebra, bindings: list[tuple[str, int]], final: dict[str, int]
                       ) -> tuple[list[tuple[str, int]], dict[str, int]]:
    """The bindings that pay for their names, and the formulas with the others written in:
    a binding used once (``OUT = sqrt(Y); 1/(2*OUT)`` is ``1/(2*sqrt(Y))``), or whose text
    is no longer than its name, is substituted where it is used."""
    if not bindings:
        return bindings, final
    uses = X.symbol_uses([*(d for _, d in bindings), *final.values()], [n for n, _ in bindings])
    dropped = {name for name, definition in bindings
               if uses[name] <= 1 or (X.size(definition) <= 3
                                      and len(X.text(definition)) <= len(name))}
    if not dropped:
        return bindings, final
    replacements: dict[str, int] = {}
    kept: list[tuple[str, int]] = []
    for name, definition in bindings:  # (a definition uses only the names before it)
        definition = X.substitute(definition, replacements)
        if name in dropped:
            replacements[name] = definition
        else:
            kept.append((name, definition))
    memo: dict[int, int] = {}
    return kept, {name: X.substitute(expr, replacements, memo) for name, expr in final.items()}


Printed = tuple[list[tuple[str, int]], dict[str, int], tuple[tuple[str, str], ...], list[str]]


def _tidied(X: Algebra, graph: _Expressions, plain: Printed, reserved: Iterable[str]
            ) -> Printed:
    """The bindings and formulas rewritten as a person would write them (the program's own
    sums are the factors looked for), printed; or ``plain`` as it was, where that prints
    clearly shorter (the rewrites compare parts one at a time, and a part rewritten for one
    use can lose its sharing with another), where they have more than :data:`TIDY_PARTS` parts, or
    where rewriting builds more parts than building did (and at least ``_TIDY_WORK``) or
    would outgrow the expression budget."""
    bindings, final, statements, texts = plain
    try:
        tidy = Tidy(X, max(_TIDY_WORK, X.parts))
        if tidy.count([*(d for _, d in bindings), *final.values()]) > TIDY_PARTS:
            return plain
        tidy.know(graph.sums())
        bindings = [(name, tidy(definition)) for name, definition in bindings]
        final = {name: tidy(expr) for name, expr in final.items()}
    except (TooMuchWork, ExpressionTooLarge, ConstantTooLarge):
        return plain
    tidied = _print_all(X, bindings, list(final.values()), reserved)
    # (a near tie goes to the rewritten form, as it does part by part: (1 - T^2)*V)
    if _printed_size(*tidied) > 1.1 * _printed_size(statements, texts) + 3:
        return plain
    return bindings, final, *tidied


def _printed_size(statements: tuple[tuple[str, str], ...], texts: list[str]) -> int:
    return sum(len(t) for _, t in statements) + sum(map(len, texts))


def _set_inputs(dag: Dag, statements: tuple[tuple[str, str], ...], texts: list[str]
                ) -> tuple[tuple[str, str], ...]:
    """Statements ``H1 = -1.25`` for the inputs the program sets to a number that the
    formulas use, so that each formula program is evaluable on its own given the free
    inputs (an input set in a program stays an input: ``--at`` can still change it)."""
    used: set[str] = set()
    for text in (*texts, *(t for _, t in statements)):
        used.update(_identifier().findall(text))
    return tuple((name, format_number(dag.values[node]))  # type: ignore[arg-type]
                 for name, node in dag.inputs.items()
                 if name in used and dag.values[node] is not None)


def _print_all(X: Algebra, bindings: list[tuple[str, int]], exprs: list[int],
               reserved: Iterable[str] = ()) -> tuple[tuple[tuple[str, str], ...], list[str]]:
    """The texts of ``exprs`` and the statements they use: the ``bindings`` (each may use
    the names before it) and, for sub-expressions used more than once (across all of them)
    whose text is long, generated ``t1 = ...`` statements just before their first use
    (never named as one of ``reserved``, the program's names)."""
    lines = X.program_parts(bindings, exprs, reserved=reserved)
    statements = tuple((name, text) for name, text in lines if name is not None)
    texts = [text for name, text in lines if name is None]
    return statements, texts


def _needs(statements: tuple[tuple[str, str], ...], texts: list[str]) -> tuple[list[int], int]:
    """For each text, the statements it needs (directly or through others) as a bit mask;
    and the mask of those two or more texts need. A statement only uses earlier ones, so
    one pass in order gives every statement's closure."""
    index = {name: i for i, (name, _) in enumerate(statements)}
    closure: list[int] = []
    for text in (t for _, t in statements):
        mask = 0
        for word in set(_identifier().findall(text)):
            i = index.get(word)
            if i is not None and i < len(closure):
                mask |= closure[i]
        closure.append(mask | 1 << len(closure))
    masks = []
    once = twice = 0
    for text in texts:
        mask = 0
        for word in set(_identifier().findall(text)):
            i = index.get(word)
            if i is not None:
                mask |= closure[i]
        masks.append(mask)
        twice |= once & mask
        once |= mask
    return masks, twice


class _Expressions:
    """Expressions of the DAG's nodes, built only when asked for: a named value is its
    symbol, an unnamed operation the expression of its operands; a name's definition, and
    whether it is small enough to substitute, are worked out only when a formula uses it.
    (A 10,000-term sum would otherwise intern all its 10,000 partial sums.)"""

    def __init__(self, X: Algebra, dag: Dag) -> None:
        self.X, self.dag = X, dag
        self.memo: dict[int, int] = {}
        self.definitions: dict[str, int] = {}  # name -> definition, smaller names substituted
        self.inlined: dict[str, int] = {}  # names substituted into formulas
        self.substituted: dict[int, int] = {}  # expression -> with `inlined` substituted
        self.node: int | None = None  # where an algebra error is reported

    def at(self, node: int, derivative: bool = False) -> _Where:
        return _Where(self, node, derivative)

    def expression(self, node: int) -> int:
        """The expression of ``node``, built iteratively from its unnamed ancestors."""
        memo, dag, X = self.memo, self.dag, self.X
        stack = [node]
        while stack:
            n = stack[-1]
            if n in memo:
                stack.pop()
                continue
            op, name = dag.ops[n], dag.names[n]
            if op is INPUT or name is not None:
                memo[n] = X.symbol(str(name))
            elif op is CONST:
                memo[n] = _constant(X, dag, n)
            else:
                missing = [a for a in dag.args[n] if a not in memo]
                if missing:
                    stack.extend(missing)
                    continue
                with self.at(n):
                    memo[n] = _build(X, op, [memo[a] for a in dag.args[n]])
            stack.pop()
        return memo[node]

    def _definition(self, name: str) -> int:
        """The definition of the named node ``name``, with substitutable names substituted
        (their definitions resolved first, in dependency order, without recursion)."""
        dag, X = self.dag, self.X
        order: list[str] = []
        seen: set[str] = set()
        stack: list[tuple[str, bool]] = [(name, False)]
        while stack:
            current, done = stack.pop()
            if done:
                order.append(current)
                continue
            if current in seen or current in self.definitions:
                continue
            seen.add(current)
            stack.append((current, True))
            stack.extend((s, False) for s in X.symbols(self._raw(current))
                         if s in dag.named and dag.ops[dag.named[s]] is not INPUT)
        for current in order:
            if current in self.definitions:
                continue
            X.check_time()
            raw = self._raw(current)
            with self.at(dag.named[current]):
                resolved = X.substitute(raw, {s: self.inlined[s] for s in X.symbols(raw)
                                              if s in self.inlined})
            self.definitions[current] = resolved
            if X.is_plain(resolved) and X.term_count(resolved) <= _INLINE_TERMS:
                self.inlined[current] = resolved
        return self.definitions[name]

    def _raw(self, name: str) -> int:
        node = self.dag.named[name]
        op = self.dag.ops[node]
        operands = [self.expression(a) for a in self.dag.args[node]]
        with self.at(node):
            return _build(self.X, op, operands)

    def _named_symbols(self, expr: int) -> list[str]:
        dag = self.dag
        return [s for s in sorted(self.X.symbols(expr))
                if s in dag.named and dag.ops[dag.named[s]] is not INPUT]

    def inline(self, expr: int) -> int:
        """``expr`` with the names defined by small polynomials substituted."""
        self.X.check_time()
        for name in self._named_symbols(expr):
            self._definition(name)
        with self.at(self.node if self.node is not None else 0):
            return self.X.substitute(expr, self.inlined, self.substituted)

    def sums(self) -> list[int]:
        """The program's own sums (its sub-expressions of two terms or more), with the names
        defined by small polynomials substituted: the factors a formula is likely to have."""
        X = self.X
        found = [e for e in (*self.memo.values(), *self.definitions.values())
                 if X.term_count(e) > 1]
        try:
            return [*found, *(self.inline(e) for e in found)]
        except EvaluationError:
            return found

    def bindings_for(self, exprs: list[int]) -> list[tuple[str, int]]:
        """The kept bindings the ``exprs`` use, directly or through other bindings, in program
        order (a name's definition before its uses)."""
        needed: set[str] = set()
        stack = sorted(set().union(*(self._named_symbols(e) for e in exprs)))
        while stack:
            name = stack.pop()
            if name in needed or name in self.inlined:
                continue
            needed.add(name)
            stack.extend(self._named_symbols(self._definition(name)))
        ordered = sorted(needed, key=lambda n: self.dag.named[n])
        return [(n, self.definitions[n]) for n in ordered]


class _Where:
    """Reports an algebra failure (``1/0`` met while building) at a node's position: the
    node's own expression (``A/(A - A)``: undefined for every value), or with ``derivative``
    its local derivative (``acos(B/B)``: acos'(1) is infinite for every B)."""

    __slots__ = ("derivative", "graph", "node", "previous")

    def __init__(self, graph: _Expressions, node: int, derivative: bool = False) -> None:
        self.graph, self.node, self.derivative = graph, node, derivative

    def __enter__(self) -> None:
        self.previous, self.graph.node = self.graph.node, self.node

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: object) -> None:
        self.graph.node = self.previous
        if isinstance(error, ConstantTooLarge):
            dag = self.graph.dag
            raise LimitError(
                f"{_shown(dag, self.node)} needs exact numbers beyond the bound: {error}",
                dag.span(self.node), dag.source,
                hint=f"exact numbers in formulas are limited to {MAX_BITS:,} bits; give the "
                f"inputs values ({argument('at')}) for a number") from error
        if isinstance(error, (ZeroDivisionError, ValueError)) and \
                not isinstance(error, GradcalcError):
            dag = self.graph.dag
            if self.derivative:
                raise _derivative_error(dag, self.node, error) from error
            raise EvaluationError(
                f"{dag.describe(self.node)} is undefined for every value: {error}",
                dag.span(self.node), dag.source,
                hint="an expression here is identically zero where it divides, or takes the "
                "log or a negative power of zero", kind="domain") from error


def _shown(dag: Dag, node: int) -> str:
    """A node as its source text where that is short (``acos(B/B)``, not ``OUT``)."""
    span = dag.span(node)
    text = dag.source.text[span.start:span.end] if span is not None else ""
    return text if text and len(text) <= 40 and "\n" not in text else dag.describe(node)


def _derivative_error(dag: Dag, node: int, error: BaseException) -> EvaluationError:
    op, span, shown = dag.ops[node], dag.span(node), _shown(dag, node)
    return EvaluationError(
        f"the derivative of {shown} is infinite or undefined for every value, so no formula "
        f"can be written: {error}", span, dag.source,
        hint=f"its operands are identically at a point where {op.name}'s derivative is "
        f"infinite (like asin'(1) or sqrt'(0)); with values ({argument('at')}) the gradient "
        "is a number, inf or nan with a warning", kind="domain")


def _infinite_derivative(dag: Dag, graph: _Expressions, targets: dict[str, int], output: int,
                         active: bytearray) -> EvaluationError:
    """A formula failed only once named values were substituted into it (``T = 2 - 1;
    OUT = asin(T)``): find the operation whose local derivative is the culprit, with every
    operand's definition substituted, and report the error there."""
    X = graph.X
    for node in range(output, -1, -1):
        op = dag.ops[node]
        if not active[node] or not dag.args[node] or op.linear:
            continue
        try:
            operands = [graph.inline(graph.expression(a)) for a in dag.args[node]]
            assert op.rule is not None
            op.rule(X, *operands, graph.inline(graph.expression(node)))
        except (ZeroDivisionError, ValueError, EvaluationError) as error:
            return _derivative_error(dag, node, error)
    name = next(iter(targets))
    return EvaluationError(
        "a gradient is infinite or undefined for every value, so no formula can be written",
        dag.name_spans.get(name), dag.source,
        hint=f"with values ({argument('at')}) the gradient is a number, inf or nan with a "
        "warning",
        kind="domain")


def _constant(X: Algebra, dag: Dag, node: int) -> int:
    label = dag.labels.get(node)
    if label in CONSTANTS:
        return X.symbol(label)
    value = dag.values[node]
    assert value is not None
    if label is not None and _exact_size(label) <= MAX_BITS:
        try:
            return X.number(Fraction(label))
        except (ValueError, ConstantTooLarge):
            pass
    # Beyond the bound (1e-4000): the float the numeric engine uses, exactly.
    return X.number(Fraction(value))


_EXPONENT = re.compile(r"[eE]([+-]?[0-9]+)$")


def _exact_size(literal: str) -> int:
    """About how many bits the exact value of a decimal literal needs (``1e-4000``: 13,288),
    worked out from its text before any big number is made."""
    found = _EXPONENT.search(literal)
    digits = len(literal) if found is None else found.start()
    if found is None:
        return digits * 4
    exponent = found.group(1).lstrip("+-").lstrip("0")
    if len(exponent) > 9:
        return MAX_BITS + 1
    return (digits + int(exponent or "0")) * 4


def _build(X: Algebra, op: Op, operands: list[int]) -> int:
    if op.algebra is not None:
        built: int = getattr(X, op.algebra)(*operands)
        return built
    return X.call(op.name, *operands)


def _known_values(dag: Dag, values: list[float | None]) -> dict[str, float]:
    """The values of the inputs that have one, and the constants."""
    known = {name: float(v) for name, node in dag.inputs.items()
             if (v := values[node]) is not None}
    known.update(CONSTANTS)
    return known


def _value(X: Algebra, expr: int, known: dict[str, float],
           memo: dict[int, float] | None = None) -> float | None:
    """``expr``'s number where every name in it has a value (``memo``: see
    :meth:`Algebra.evaluate`), else ``None``."""
    if not X.symbols(expr) <= known.keys():
        return None
    try:
        value = X.evaluate(expr, known, _FUNCTIONS, memo)
    except (KeyError, ValueError, ZeroDivisionError, OverflowError):
        return None
    return value if math.isfinite(value) else None
