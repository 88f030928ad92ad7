"""A PyTorch-like scalar ``Value`` for Python code, on the same registry and engine as the CLI.

Arithmetic on values records the graph as it computes (eagerly, in float64): each result keeps
its operation (the registry's :class:`~gradcalc.ops.Op`) and its operands, and a number telling
its place in the order of creation, which is a topological order. ``backward()`` walks the
values in reverse order of creation, so each value's backward step runs exactly once, after
every consumer has delivered, however many paths reach it: the engine's rule, without laying
the graph out as a :class:`~gradcalc.dag.Dag` (from a second ``backward()`` on the same value
on, the order is kept, so further calls are the pass alone). With ``on_step``, and for
``to_dag()``, ``graph()``, ``explain()`` and ``to_program()``, the graph is laid out as a Dag
and the engine runs on it; names are made only there.

Code written for micrograd runs unchanged, and so does PyTorch-style scalar code:

- A value you create tracks gradients unless created with ``requires_grad=False`` (micrograd's
  rule; a PyTorch tensor tracks them only when asked). Plain numbers in arithmetic are
  constants, and a result tracks gradients when an operand does.
- ``grad`` is ``0.0`` until a backward pass adds to it (micrograd; PyTorch has ``None``), so
  ``p.grad += ...`` and ``p.data -= lr * p.grad`` work from the start. Values that do not track
  gradients have ``grad`` ``None``.
- Arithmetic gives IEEE results, as PyTorch does: ``1 / Value(0.0)`` is ``inf``,
  ``Value(710.0).exp()`` is ``inf``, ``Value(-1.0).log()`` is ``nan``; the backward pass gives
  PyTorch's gradients there (d/dx exp(x) at 710 is ``inf``, d/dx 1/x at 0 is ``-inf``).
- Comparisons compare the numbers and give a plain ``bool`` with no gradient, as for PyTorch's
  0-d tensors (``a > 0``, ``max(a, b)``, ``sorted(values)``, ``a in [b, a]``); hashing is by
  identity, so sets and dicts of values hold distinct values however equal their numbers.

Other differences from PyTorch: every value that requires grad, intermediates included, holds its
gradient after ``backward()`` (PyTorch keeps only leaves' unless ``retain_grad()`` is called),
and the graph is kept, so ``backward()`` may be called again (gradients add up, as in PyTorch
with ``retain_graph=True``).
"""

from __future__ import annotations

import functools
import itertools
import math
import numbers
import operator
import re
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from gradcalc import engine
from gradcalc.dag import Dag, Spans
from gradcalc.errors import EvaluationError, InputError, Source, Span
from gradcalc.fmt import format_number
from gradcalc.gcpause import paused_gc
from gradcalc.names import fresh
from gradcalc.ops import (
    CONST,
    CONSTANTS,
    FUNCTIONS,
    INPUT,
    Op,
    Precedence,
    extended_value,
    op_named,
)

__all__ = ["FUNCTION_NAMES", "Value", "function", "zero_grad"]

@functools.cache
def _name_pattern() -> re.Pattern[str]:
    """A name as the grammar defines it (compiled on first use)."""
    from gradcalc.parse import NAME_PATTERN

    return re.compile(NAME_PATTERN)


class Value:
    """A scalar in a computation graph.

    ``Value(data, requires_grad=True, name=None)``: ``data`` is the number (``.item()`` gives it
    too; any float, infinities and NaN included). A value tracks gradients (``requires_grad``)
    unless created with ``requires_grad=False``: ``backward()`` then computes its gradient into
    ``grad``, which starts at ``0.0``. A value that does not track gradients is a constant to the
    engine: its ``grad`` is ``None`` and it never receives one. Results of arithmetic track
    gradients when an operand does; plain numbers in arithmetic are constants.
    """

    __slots__ = ("_g", "_mark", "_op", "_parents", "_plan", "_serial", "_slot", "_tracks",
                 "data", "grad", "name")
    _slot: int  # a value's place in the last layout of a graph it is in (_reached)

    def __init__(self, data: float, requires_grad: bool = True, name: str | None = None) -> None:
        self.data = _number(data, "data")
        self._tracks = bool(requires_grad)
        self.grad: float | None = 0.0 if self._tracks else None
        if name is not None and (not _name_pattern().fullmatch(name) or name in FUNCTIONS
                                 or name in CONSTANTS):
            raise InputError(f"{name!r} cannot name a Value: use letters, digits and '_', "
                             "not starting with a digit, and not a function or constant name")
        self.name = name
        self._op: Op | None = None
        self._parents: tuple[Value, ...] = ()
        self._serial = _next_serial()
        self._mark = 0
        self._g = 0.0
        self._plan: _Plan | None = None

    @property
    def requires_grad(self) -> bool:
        """Whether the value tracks gradients; setting it is :meth:`requires_grad_`."""
        return self._tracks

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        self.requires_grad_(flag)

    # --- building the graph ------------------------------------------------------------
    #
    # Every result is made by _result: its number, its operands and its operation. The
    # operators +, -, * and unary - compute the number inline (float arithmetic never raises);
    # everything else goes through the registry's forward rule (_binary, _unary, _apply).

    @classmethod
    def _apply(cls, op: Op, *operands: Value | float) -> Value:
        parents = tuple([_as_value(o) for o in operands])
        values = [p.data for p in parents]
        try:
            data = op.forward(*values)
        except (ValueError, ZeroDivisionError, OverflowError):
            data = extended_value(op, *values)  # IEEE: the inf or nan where the op has no value
        return _result(op, parents, data, _isfinite(data) and all(map(_isfinite, values)))

    # For +, - and *, a finite result means finite operands (inf + x, inf * x are never finite),
    # so checking ``d - d == 0.0`` (false for inf and nan) is checking everything.

    def __add__(self, other: Value | float) -> Value:
        b = other if isinstance(other, Value) else _constant(other)
        d = self.data + b.data
        return _result(_ADD, (self, b), d, d - d == 0.0)

    def __radd__(self, other: float) -> Value:
        a = _constant(other)
        d = a.data + self.data
        return _result(_ADD, (a, self), d, d - d == 0.0)

    def __sub__(self, other: Value | float) -> Value:
        b = other if isinstance(other, Value) else _constant(other)
        d = self.data - b.data
        return _result(_SUB, (self, b), d, d - d == 0.0)

    def __rsub__(self, other: float) -> Value:
        a = _constant(other)
        d = a.data - self.data
        return _result(_SUB, (a, self), d, d - d == 0.0)

    def __mul__(self, other: Value | float) -> Value:
        b = other if isinstance(other, Value) else _constant(other)
        d = self.data * b.data
        return _result(_MUL, (self, b), d, d - d == 0.0)

    def __rmul__(self, other: float) -> Value:
        a = _constant(other)
        d = a.data * self.data
        return _result(_MUL, (a, self), d, d - d == 0.0)

    def __truediv__(self, other: Value | float) -> Value:
        return _binary(_DIV, self, other)

    def __rtruediv__(self, other: float) -> Value:
        return _binary(_DIV, other, self)

    def __pow__(self, other: Value | float) -> Value:
        return _binary(_POW, self, other)

    def __rpow__(self, other: float) -> Value:
        return _binary(_POW, other, self)

    def __neg__(self) -> Value:
        d = -self.data
        return _result(_NEG, (self,), d, d - d == 0.0)

    def __pos__(self) -> Value:
        return self

    def __abs__(self) -> Value:
        return _unary(_ABS, self)

    def square(self) -> Value:
        """``self ** 2`` (PyTorch's ``Tensor.square``): gradient ``2 * self``."""
        return Value._apply(_POW, self, 2.0)

    def clamp(self, min: Value | float | None = None, max: Value | float | None = None
              ) -> Value:
        """``self`` limited to ``[min, max]`` (either bound may be left out), as
        ``torch.clamp``: the value is ``min(max(self, min), max)`` (so ``max`` wins when
        ``min > max``), and the gradient is 1 where ``min <= self <= max``, bounds included
        (PyTorch's choice of subgradient at a bound), and 0 outside. A bound given as a value
        receives the gradient where it is the result (1 there, as in PyTorch).

        With both bounds the graph records the registry's ``clamp(self, min, max)``; with one,
        the operation the number called for: ``max(self, min)`` below the
        range or above the lower bound, ``min(self, max)`` above the range or below the upper
        bound, and ``self*1`` exactly on a bound (where ``max``'s tie rule would give 1/2)."""
        if min is None and max is None:
            raise TypeError("clamp() needs min, max or both")
        for bound in (min, max):
            if bound is not None and _compared(bound) is NotImplemented:
                raise TypeError(f"clamp() bounds are numbers or values, not {bound!r}")
        if min is not None and max is not None:  # the registry's clamp: torch's rules at
            return Value._apply(_CLAMP, self, min, max)  # every placement of the bounds
        x = self.data
        if min is not None and x < _compared(min):
            low = Value._apply(_MAX, self, min)
            if max is not None and low.data > _compared(max):  # min > max: max wins
                return Value._apply(_MIN, low, max)
            return low
        if max is not None and x > _compared(max):
            return Value._apply(_MIN, self, max)
        if min is not None and x > _compared(min):  # inside, above min: max's partial is 1
            return Value._apply(_MAX, self, min)
        if max is not None and x < _compared(max):  # inside, below max: min's partial is 1
            return Value._apply(_MIN, self, max)
        return Value._apply(_MUL, self, 1.0)  # on a bound (or NaN): gradient 1

    # --- comparisons: plain bools, no gradient (PyTorch's 0-d tensors) --------------------

    def __eq__(self, other: object) -> bool:
        number = _compared(other)
        return NotImplemented if number is NotImplemented else self.data == number

    def __lt__(self, other: Value | float) -> bool:
        number = _compared(other)
        return NotImplemented if number is NotImplemented else self.data < number

    def __le__(self, other: Value | float) -> bool:
        number = _compared(other)
        return NotImplemented if number is NotImplemented else self.data <= number

    def __gt__(self, other: Value | float) -> bool:
        number = _compared(other)
        return NotImplemented if number is NotImplemented else self.data > number

    def __ge__(self, other: Value | float) -> bool:
        number = _compared(other)
        return NotImplemented if number is NotImplemented else self.data >= number

    # ``==`` compares numbers but the hash is the identity, as for PyTorch's tensors: in sets
    # and dicts (and a graph walk's ``visited`` set) two values are one only if they are the
    # same object. Distinct live objects never share an identity hash, so ``==`` is only ever
    # consulted there for the same object.
    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        """``data != 0``, as ``bool(float)`` and PyTorch's ``bool(tensor)``."""
        return self.data != 0

    def __float__(self) -> float:
        return self.data

    def __format__(self, spec: str) -> str:
        """``f"{v:.4f}"`` formats the number, as for a PyTorch 0-d tensor; ``f"{v}"`` is
        ``str(v)``."""
        return format(self.data, spec) if spec else str(self)

    def item(self) -> float:
        """The number, as a Python float."""
        return self.data

    def __repr__(self) -> str:
        grad = "" if self.grad is None else f", grad={format_number(self.grad)}"
        flag = "" if self._tracks else ", requires_grad=False"
        name = f", name={self.name!r}" if self.name else ""
        return f"Value({format_number(self.data)}{grad}{flag}{name})"

    # --- gradient tracking, PyTorch's methods -------------------------------------------------

    def requires_grad_(self, requires_grad: bool = True) -> Value:
        """Start (or stop) tracking gradients, in place, and return the value, as PyTorch's
        ``Tensor.requires_grad_``. A value starting to track gets ``grad`` ``0.0``; one that
        stops keeps its ``grad``. Only a leaf (a value not computed from values that track
        gradients) can stop, as in PyTorch: use :meth:`detach` for a constant copy of a
        result. Values computed before the change are not affected."""
        flag = bool(requires_grad)
        if not flag and self._op is not None:
            raise InputError("requires_grad_(False) is only for values created directly, not "
                             "for results computed from values that require grad: "
                             "v.detach() gives a copy that is a constant")
        if flag and self.grad is None:
            self.grad = 0.0
        if flag != self._tracks:
            global _flag_changes
            _flag_changes += 1  # the graphs this value is in change: no plan made before holds
            self._tracks, self._g, self._plan = flag, 0.0, None
        return self

    def detach(self) -> Value:
        """A new value with the same number that does not require grad and records no graph:
        a constant wherever it is used, as PyTorch's ``Tensor.detach``. (A number is copied:
        unlike a detached tensor's storage, changing either value's ``data`` later does not
        change the other's.)"""
        return Value(self.data, requires_grad=False)

    def retain_grad(self) -> None:
        """Does nothing: every value that requires grad, intermediates included, keeps its
        gradient after ``backward()`` already (PyTorch keeps only leaves' unless this is
        called). It is here so that PyTorch code runs unchanged, silently (a warning would
        ask for a change that makes no difference); like PyTorch, it refuses a value that
        does not require grad."""
        if not self._tracks:
            raise InputError("retain_grad() on a value that does not require grad: it will "
                             "never have a gradient")

    # --- differentiation ---------------------------------------------------------------

    def backward(self, on_step: Callable[[engine.Step], None] | None = None) -> None:
        """Add d(self)/d(v) to ``v.grad`` for every value ``v`` in the graph that requires grad.

        Each value's backward step runs once, after all of its consumers have delivered: the
        values are taken in reverse order of creation (a value is always created after its
        operands), each handing its gradient times the registry's local derivatives to its
        operands. Called a second time on the same value, it keeps that order with ``self``, so
        that later calls do no more than the pass itself. Names are not needed and none are
        made.

        ``on_step`` is called with each step as :func:`gradcalc.engine.run` takes it, on the
        graph laid out as a Dag (node ids are those of :meth:`to_dag`): the same gradients, by
        the engine's counting pass.
        """
        if not self._tracks:
            raise InputError("backward() needs a value that requires grad: this one was "
                             "computed only from numbers and values created with "
                             "requires_grad=False")
        with paused_gc():
            if on_step is None:
                _propagate(self, self._order())
            else:
                self._stepped(on_step)

    def _order(self) -> list[Value]:
        """The values ``self`` was computed from that track gradients, latest first
        (:func:`_ancestors`). From the second ``backward()`` on, the order is kept in
        ``self._plan`` (while no flag changes): a value backpropagated once, as a training
        step's loss is, keeps nothing, so many live outputs sharing a long history never hold
        a list each of all of it."""
        plan = self._plan
        if plan is not None and plan.order is not None and plan.flag_changes == _flag_changes:
            return plan.order
        order = _ancestors(self)
        self._plan = _Plan(_flag_changes, order if plan is not None else None)
        return order

    def _stepped(self, on_step: Callable[[engine.Step], None]) -> None:
        """The engine's backward pass on the graph laid out as a Dag, reporting each step."""
        nodes = _reached(self)
        dag = _bare_dag(nodes)
        output = len(nodes) - 1
        vals = [v.data for v in nodes]
        inputs = {str(i): i for i, op in enumerate(dag.ops) if op is INPUT}
        question = engine.plan(dag, output, inputs)
        grads = engine.run(question, vals, on_step=on_step).gradients
        active = question.active
        for node, value in enumerate(nodes):
            if active[node]:
                value.grad = grads[node] if value.grad is None else value.grad + grads[node]

    def graph(self, form: str = "auto", ascii: bool = False, width: int | None = 100) -> str:
        """The picture of this value's graph with values and gradients, as ``gradcalc --graph``
        draws a program (``form``: auto, full, compact, tree, table; ``auto`` falls back from
        full to narrower forms to fit ``width``). The graph drawn is the recorded one itself,
        evaluated and differentiated by :func:`gradcalc.gradients`: no program text is made;
        it is named as :meth:`to_program` names it (``OUT``, and ``B``, ``C``, ... for
        intermediates used more than once), so for that text the command line draws the same
        picture."""
        from gradcalc import render

        result = self._shown(record=False)
        dag = result.dag
        assert dag is not None
        view = render.graph_view(dag, dag.named[result.output], result.node_values,
                                 result.node_gradients, form=form, width=width,
                                 unicode=not ascii)
        return view if isinstance(view, str) else render.as_text(view, not ascii)

    def explain(self, ascii: bool = False) -> str:
        """The backward pass told step by step, as ``gradcalc --explain`` tells it for
        :meth:`to_program`'s text; like :meth:`graph`, it reads the recorded graph itself."""
        from gradcalc.explain import explain, explanation_text

        return explanation_text(explain(self._shown(record=True)), not ascii)

    def _shown(self, record: bool) -> Any:
        """The :class:`~gradcalc.api.Result` of :func:`gradcalc.gradients` on this value's own
        Dag, named for showing (:func:`_named_for_showing`)."""
        from gradcalc.api import gradients

        dag, nodes = self._layout(text_order=True)
        odd = next((v for v in nodes if not _isfinite(v.data)), None)
        if odd is not None:
            raise EvaluationError(
                f"the graph has a value of {format_number(odd.data)}: graph() and explain() "
                "show finite graphs only, as the command line evaluates them",
                kind="overflow" if math.isinf(odd.data) else "domain")
        _named_for_showing(dag, self.name or "OUT")
        return gradients(dag, record=record)

    def zero_grad(self, set_to_none: bool = False) -> None:
        """Put ``grad`` back where it started: ``0.0`` (as micrograd's ``p.grad = 0``), or
        ``None`` for a value that does not require grad. ``set_to_none=True`` makes it
        ``None`` (PyTorch's ``optimizer.zero_grad()`` default); the next ``backward()``
        starts from nothing either way."""
        self.grad = 0.0 if self._tracks and not set_to_none else None

    def inputs(self) -> list[Value]:
        """The values requiring grad that this one was computed from (its leaves), in order of
        creation."""
        return [v for v in _reached(self) if v._tracks and v._op is None]

    def to_dag(self) -> Dag:
        """This value's graph as a :class:`~gradcalc.dag.Dag`, the value itself the last node.
        (A node where an infinity or NaN was met holds the IEEE twin of its registry op: same
        name and printing, PyTorch's partial derivatives there.)"""
        return self._layout()[0]

    def to_program(self) -> str:
        """The graph as gradcalc program text (``A = 2``, ``B = A*3``, ...), which the CLI and
        :func:`gradcalc.gradients` read back to the same computation. The language has no
        infinite or NaN numbers: a graph with such an input or constant raises
        :class:`~gradcalc.errors.InputError`."""
        from gradcalc.unparse import program_text

        dag = self.to_dag()
        odd = next((v for v in dag.values if v is not None and not _isfinite(v)), None)
        if odd is not None:
            raise InputError(f"to_program(): the graph has an input or constant of "
                             f"{format_number(odd)}, which program text cannot write")
        return program_text(dag, len(dag) - 1, self.name or "OUT")

    def _layout(self, text_order: bool = False) -> tuple[Dag, list[Value]]:
        """Topological order of the graph (operands first, ``self`` last), without recursion,
        and the Dag for it: values that require grad and have no operation are inputs, values
        that do not require grad are constants. ``text_order`` numbers the nodes as the graph
        built from :meth:`to_program`'s text numbers them (:func:`_in_text_order`)."""
        nodes = _reached(self)
        if text_order:
            nodes = _in_text_order(nodes)
        index = {id(v): i for i, v in enumerate(nodes)}
        dag = Dag(output=self.name or "OUT")
        taken = {v.name for v in nodes if v.name}
        new_name = fresh(taken, "X", first="capitals")  # A, B, ..., Z, X1, X2, ...
        for value in nodes:
            name = value.name
            if name is not None and name in dag.named:  # two values with one name: rename
                name = next(new_name)
            if value._op is not None:
                dag.add(value._op, tuple(index[id(p)] for p in value._parents), None, name)
            elif value._tracks:
                name = name or next(new_name)
                dag.inputs[name] = dag.add(INPUT, (), None, name, value.data)
            else:
                dag.add(CONST, (), None, value=value.data)
        dag.output = dag.names[-1] or "OUT"
        return dag, nodes


#: Each value's place in the order of creation: operands are always created before the values
#: computed from them, so sorting a graph's values by it is a topological order.
_next_serial = itertools.count().__next__


def _reached(output: Value) -> list[Value]:
    """The values ``output`` was computed from, itself included, in order of creation (a
    topological order, operands first), found with a loop over the recorded operands; each
    value's ``_slot`` is its place in that list. A walk marks the values it reaches with a
    number of its own (``_mark``), so no set of ids is needed."""
    mark = _next_mark()
    output._mark = mark
    nodes, stack = [output], [output]
    pop, push, keep = stack.pop, stack.append, nodes.append
    while stack:
        for parent in pop()._parents:
            if parent._mark != mark:
                parent._mark = mark
                keep(parent)
                push(parent)
    nodes.sort(key=_SERIAL)
    for slot, value in enumerate(nodes):
        value._slot = slot
    return nodes


_next_mark = itertools.count(1).__next__
_SERIAL = operator.attrgetter("_serial")


#: How many times a value started or stopped tracking gradients: a kept order (:class:`_Plan`)
#: made before the last change may miss values or hold constants, so it is made again.
_flag_changes = 0


@dataclass(frozen=True, slots=True)
class _Plan:
    """What :meth:`Value.backward` keeps with its value: the order of the backward pass
    (``None`` after the first call: see :meth:`Value._order`)."""

    flag_changes: int
    order: list[Value] | None


def _ancestors(output: Value) -> list[Value]:
    """The values ``output`` was computed from that track gradients, ``output`` left out, in
    reverse order of creation: each value comes after every value computed from it. (Leaving
    ``output`` out keeps the list, which ``output`` holds, free of a reference cycle.)"""
    mark = _next_mark()
    output._mark = mark
    found = [output]
    keep = found.append
    for value in found:  # (a list grown while it is read: a breadth-first walk, no stack)
        for parent in value._parents:
            if parent._mark != mark and parent._tracks:
                parent._mark = mark
                keep(parent)
    found.sort(key=_SERIAL, reverse=True)  # C's sort; nearly sorted already (a chain: one run)
    del found[0]  # the output: created last
    return found


def _propagate(output: Value, order: list[Value]) -> None:
    """The backward pass: ``output`` gets 1, then every value of ``order`` (reverse order of
    creation, so all of a value's consumers come before it) adds its gradient to ``grad`` and
    hands it on, times its local derivatives, to the operands that track gradients. Gradients
    of this pass gather in ``_g``, which is 0.0 outside a pass; a pass that stops half-way
    puts it back."""
    output._g = 1.0
    try:
        for value in itertools.chain((output,), order):
            g = value._g
            value._g = 0.0
            grad = value.grad
            value.grad = g if grad is None else grad + g
            op = value._op
            if op is None:
                continue
            parents = value._parents
            if len(parents) == 2:
                a, b = parents
                da, db = op.partials(a.data, b.data, value.data)
                if a._tracks:
                    a._g += g * da
                if b._tracks:
                    b._g += g * db
            elif len(parents) == 1:
                a = parents[0]
                if a._tracks:
                    a._g += g * op.partials(a.data, value.data)[0]
            else:
                _hand_on(value, g)
    except BaseException:
        for value in itertools.chain((output,), order):
            value._g = 0.0
        raise


def _hand_on(value: Value, g: float) -> None:
    """:func:`_propagate`'s step for an operation of three operands or more (``clamp``)."""
    parents = value._parents
    parts = value._op.partials(*[p.data for p in parents], value.data)  # type: ignore[union-attr]
    for parent, d in zip(parents, parts, strict=True):
        if parent._tracks:
            parent._g += g * d


def _bare_dag(nodes: list[Value]) -> Dag:
    """The Dag of ``nodes`` (in order of creation) as the engine needs it for a backward pass:
    operations and operands only. Names are for showing a graph (:meth:`Value._layout` gives
    them); a backward pass needs none, so it makes none (micrograd's loop does not either)."""
    dag = Dag()
    ops, operand_ids, operand_starts, values = (dag.ops, dag.operand_ids, dag.operand_starts,
                                                dag.values)
    add_op, add_value, add_start = ops.append, values.append, operand_starts.append
    add_operand, add_operands = operand_ids.append, operand_ids.extend
    for value in nodes:
        op = value._op
        if op is not None:
            add_op(op)
            parents = value._parents
            if len(parents) == 2:
                add_operand(parents[0]._slot)
                add_operand(parents[1]._slot)
            else:
                add_operands([p._slot for p in parents])
            add_value(None)
        else:
            add_op(INPUT if value._tracks else CONST)
            add_value(value.data)
        add_start(len(operand_ids))
    count = len(nodes)
    dag.names = [None] * count
    dag.spans = Spans(array("i", [-1]) * count, array("i", [-1]) * count)
    return dag


def zero_grad(values: Iterable[Value], set_to_none: bool = False) -> None:
    """:meth:`Value.zero_grad` on each value (e.g. ``zero_grad(loss.inputs())``)."""
    for value in values:
        value.zero_grad(set_to_none)


def function(name: str) -> Callable[..., Value]:
    """The registry's function ``name`` applied to values or numbers: ``function("sin")(a)``."""
    op = FUNCTIONS[name]

    def apply(*operands: Value | float) -> Value:
        if len(operands) != op.arity:
            raise TypeError(f"{name} takes {op.arity} argument(s), got {len(operands)}")
        if len(operands) == 1:
            return _unary(op, _as_value(operands[0]))
        return Value._apply(op, *operands)

    apply.__name__ = apply.__qualname__ = name
    apply.__doc__ = f"{name} of {op.arity} value(s), differentiable (from gradcalc's registry)."
    return apply


#: Every function of the registry, available as ``gradcalc.sin(a)`` and so on.
FUNCTION_NAMES = tuple(FUNCTIONS)

# Methods where PyTorch's tensors have them: a.exp(), a.tanh(), a.pow(2), a.maximum(b), ...
_METHOD_NAMES = {name: name for name, op in FUNCTIONS.items() if op.arity == 1}
_METHOD_NAMES.update(pow="pow", atan2="atan2", maximum="max", minimum="min")


def _method(op: Op) -> Callable[..., Value]:
    if op.arity == 1:
        def method(self: Value) -> Value:
            return _unary(op, self)
    else:
        def method(self: Value, *others: Any) -> Value:  # type: ignore[misc]
            return Value._apply(op, self, *others)

    method.__name__ = op.name
    method.__doc__ = f"{op.name}(self{', other' if op.arity == 2 else ''}), differentiable."
    return method


for _name, _op_name in _METHOD_NAMES.items():
    setattr(Value, _name, _method(FUNCTIONS[_op_name]))

_ADD, _SUB, _MUL, _DIV, _POW, _NEG, _ABS, _MAX, _MIN, _CLAMP = (
    op_named(n) for n in ("add", "sub", "mul", "div", "pow", "neg", "abs", "max", "min",
                          "clamp"))

_isfinite = math.isfinite
_blank = object.__new__


def _result(op: Op, parents: tuple[Value, ...], data: float, finite: bool) -> Value:
    """A new value: ``data``, computed by ``op`` from ``parents``. It tracks gradients when a
    parent does, and then records them and ``op`` (or ``op``'s IEEE twin where a number is not
    ``finite``); otherwise it records nothing: no memory, no work in backward."""
    out: Value = _blank(Value)
    out.data = data
    out.name = None
    out._serial = _next_serial()
    out._mark = 0
    for parent in parents:
        if parent._tracks:
            out._tracks = True
            out.grad = out._g = 0.0
            out._plan = None
            out._parents = parents
            out._op = op if finite else _ieee(op)
            return out
    out._tracks = False
    out.grad = out._op = None
    out._parents = ()
    return out


def _constant(x: Any) -> Value:
    """``x`` (a number in arithmetic) as a value that does not track gradients."""
    if type(x) is not float:
        x = _number(x, "data")
    out: Value = _blank(Value)
    out.data = x
    out.name = out.grad = out._op = None
    out._tracks = False
    out._parents = ()
    out._serial = _next_serial()
    out._mark = 0
    return out


def _as_value(x: Any) -> Value:
    return x if isinstance(x, Value) else _constant(x)


def _binary(op: Op, a: Any, b: Any) -> Value:
    """``op(a, b)`` through the registry's forward rule (IEEE where it has no value)."""
    a, b = _as_value(a), _as_value(b)
    x, y = a.data, b.data
    try:
        data = op.forward(x, y)
    except (ValueError, ZeroDivisionError, OverflowError):
        data = extended_value(op, x, y)
    # 0 * inf and 0 * nan are nan: one product tells whether all three are finite
    return _result(op, (a, b), data, x * 0.0 * y * data == 0.0)


def _unary(op: Op, a: Value) -> Value:
    """``op(a)`` through the registry's forward rule (IEEE where it has no value)."""
    x = a.data
    try:
        data = op.forward(x)
    except (ValueError, ZeroDivisionError, OverflowError):
        data = extended_value(op, x)
    return _result(op, (a,), data, x * 0.0 * data == 0.0)


def _number(x: Any, what: str) -> float:
    kind = type(x)
    if kind is not float and kind is not int and (  # (the common cases skip the ABC check)
            isinstance(x, bool) or not isinstance(x, numbers.Real)):
        raise InputError(f"Value {what} must be a real number, not {x!r}")
    try:
        return float(x)
    except OverflowError:
        raise InputError(f"Value {what} is too large for a 64-bit float (about 1.8e308 at "
                         "most)") from None


def _compared(other: object) -> Any:
    """The number ``other`` stands for in a comparison, or ``NotImplemented``."""
    if isinstance(other, Value):
        return other.data
    if isinstance(other, numbers.Real):
        return other  # compared exactly, as float and int compare (no rounding to float)
    return NotImplemented


# --- IEEE points: PyTorch's gradients where a value is infinite or NaN ------------------------

class _IEEEFloats:
    """Floats as the algebra the registry's symbolic rules (``Op.rule``) are written against,
    every operation through :func:`~gradcalc.ops.extended_value`: a rule then gives a partial
    derivative as IEEE arithmetic evaluates the formula, ``1/0 = inf``, ``inf*0 = nan``, which
    is what PyTorch's backward formulas give at those points."""

    zero = 0.0
    one = 1.0

    @staticmethod
    def number(value: float) -> float:
        return float(value)

    @staticmethod
    def constant_value(x: float) -> float:
        return x

    @staticmethod
    def symbol(name: str) -> float:  # the rules' only symbols: pi (erf's), e
        return CONSTANTS[name]

    @staticmethod
    def identity(x: float) -> float:
        return x

    @staticmethod
    def add(*xs: float) -> float:
        total = 0.0
        for x in xs:
            total = extended_value(_ADD, total, x)
        return total

    @staticmethod
    def sub(a: float, b: float) -> float:
        return extended_value(_SUB, a, b)

    @staticmethod
    def mul(a: float, b: float) -> float:
        return extended_value(_MUL, a, b)

    @staticmethod
    def div(a: float, b: float) -> float:
        return extended_value(_DIV, a, b)

    @staticmethod
    def neg(a: float) -> float:
        return extended_value(_NEG, a)

    @staticmethod
    def pow(a: float, b: float) -> float:
        return extended_value(_POW, a, b)

    @staticmethod
    def power(a: float, n: Any) -> float:
        return extended_value(_POW, a, float(n))

    @staticmethod
    def call(name: str, *args: float) -> float:
        return extended_value(op_named(name), *args)


_TWINS: dict[Op, Op] = {}


def _ieee(op: Op) -> Op:
    """``op`` with partial derivatives that hold at infinities and NaNs too: the registry's
    own where the result is finite and they can be computed (they carry the conventions at
    kinks), else the op's symbolic rule evaluated in IEEE arithmetic (:class:`_IEEEFloats`).
    Everything else (name, forward rule, printing) is the registry's."""
    twin = _TWINS.get(op)
    if twin is None:
        numeric, rule = op.partials, op.rule

        def partials(*args: float) -> tuple[float, ...]:
            if _isfinite(args[-1]):
                try:
                    return numeric(*args)
                except (ArithmeticError, ValueError):
                    pass
            if rule is None:  # pragma: no cover - every op a Value can hold has a rule
                return (math.nan,) * op.arity
            return tuple(rule(_IEEEFloats, *args))

        twin = _TWINS[op] = replace(op, partials=partials)
    return twin


# --- showing a graph -----------------------------------------------------------------------------

def _in_text_order(nodes: list[Value]) -> list[Value]:
    """``nodes`` (a topological order, the output last) reordered as the graph built from
    :meth:`Value.to_program`'s text has them: statement after statement (an input, a named
    value, a value used more than once, the output: in their order), each preceded by the parts
    its statement writes inline (operations used once, constants), operands left to right."""
    uses: dict[int, int] = {}
    for value in nodes:
        for parent in value._parents:
            uses[id(parent)] = uses.get(id(parent), 0) + 1
    output = nodes[-1]

    def statement(v: Value) -> bool:
        if v._op is None:
            return v._tracks or v is output
        return v is output or v.name is not None or uses[id(v)] > 1

    ordered: list[Value] = []
    placed: set[int] = set()
    for value in nodes:
        if not statement(value):
            continue
        stack: list[tuple[Value, bool]] = [(value, False)]
        while stack:
            part, expanded = stack.pop()
            if id(part) in placed:
                continue
            if expanded or not part._parents:
                placed.add(id(part))
                ordered.append(part)
                continue
            stack.append((part, True))
            stack.extend((p, False) for p in reversed(part._parents)
                         if id(p) not in placed and not statement(p))
    return ordered


def _named_for_showing(dag: Dag, output_name: str) -> None:
    """Name the laid-out ``dag`` (in place) as :func:`~gradcalc.unparse.program_text` names
    it, and give every unnamed operation the text it has there, so that pictures and
    explanations of the Dag read as the command line's for that text: the output ``OUT`` (or
    ``OUT2``, ... when taken), intermediates used more than once ``A``-``Z``, then ``T1``,
    ``T2``, ...; constants labelled with their literal; every other node described by its
    text (:meth:`Dag.describe` reads it through the node's span, in a :class:`Source` made of
    those texts, one per line)."""
    ops, args, names = dag.ops, dag.args, dag.names
    output = len(dag) - 1
    taken = {n for n in names if n is not None}
    if names[output] is None:
        name = next(fresh(taken, output_name, first="stem"))
        names[output] = name
        if ops[output] is CONST:  # as the text's `OUT = 2`: an input with a value
            ops[output] = INPUT
            dag.inputs[name] = output
    dag.output = names[output] or output_name
    uses = [0] * len(dag)
    for node_args in args:
        for operand in node_args:
            uses[operand] += 1
    new_name = fresh(taken, "T", first="capitals")
    for node in range(output):
        if names[node] is None and args[node] and uses[node] > 1:
            names[node] = next(new_name)
    # in id order, as a built program has them (gradients lists named intermediates so)
    dag.named = {name: node for node, name in enumerate(names) if name is not None}

    from gradcalc.unparse import apply_text

    texts: list[tuple[str, int] | None] = [None] * len(dag)
    lines: list[str] = []
    offset = 0
    for node in range(output + 1):
        known = names[node]
        if known is not None:
            texts[node] = (known, Precedence.ATOM)
            continue
        if ops[node] is CONST:
            value = dag.values[node]
            assert value is not None
            label = "-0" if value == 0 and math.copysign(1.0, value) < 0 else format_number(value)
            dag.labels[node] = label
            texts[node] = (label, Precedence.UNARY if label.startswith("-") else Precedence.ATOM)
            continue
        operands = [t for a in args[node] if (t := texts[a]) is not None]
        if len(operands) < len(args[node]):  # an operand's text is too long to show
            continue
        text, precedence = apply_text(ops[node], operands)
        if len(text) > _SHOWN_TEXT:
            continue
        texts[node] = (text, precedence)
        dag.spans[node] = Span(offset, offset + len(text), len(lines) + 1, 1)
        lines.append(text)
        offset += len(text) + 1
    dag.source = Source("\n".join(lines), "<Value>")


# Dag.describe shows a node's text up to this length (and its operation's label beyond).
_SHOWN_TEXT = 40
