"""A PyTorch-like scalar ``Value`` for Python code, on the same DAG and engine as the CLI.

Arithmetic on values records the graph as it computes (eagerly, in float64); ``backward()``
lays the recorded graph out as a :class:`~gradcalc.dag.Dag` and runs the engine's counting pass
and backward pass on it, so each node's backward step runs exactly once however many paths reach
it. There is one engine: the command line and ``Value`` differentiate the same data structure.

Differences from PyTorch: every value that requires grad, intermediates included, holds its
gradient after ``backward()`` (PyTorch keeps only leaves' unless ``retain_grad()`` is called),
and the graph is kept, so ``backward()`` may be called again (gradients add up, as in PyTorch
with ``retain_graph=True``).
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Iterable
from typing import Any

from gradcalc import engine
from gradcalc.dag import Dag
from gradcalc.errors import EvaluationError, GradcalcError, InputError
from gradcalc.fmt import format_number
from gradcalc.gcpause import paused_gc
from gradcalc.ops import CONST, CONSTANTS, FUNCTIONS, INPUT, Op, op_named

__all__ = ["FUNCTION_NAMES", "Value", "function", "zero_grad"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Value:
    """A scalar in a computation graph.

    ``Value(data, requires_grad=False, name=None)``: ``data`` is the number (``.item()`` gives it
    too); with ``requires_grad=True`` the value is an input whose gradient ``backward()``
    computes. ``grad`` is ``None`` until a backward pass reaches the value. Results of arithmetic
    require grad when an operand does; values that do not are constants to the engine and
    receive no gradient.
    """

    __slots__ = ("_op", "_parents", "data", "grad", "name", "requires_grad")

    def __init__(self, data: float, requires_grad: bool = False, name: str | None = None) -> None:
        self.data = _number(data, "data")
        self.requires_grad = bool(requires_grad)
        self.grad: float | None = None
        if name is not None and (not _NAME.fullmatch(name) or name in FUNCTIONS
                                 or name in CONSTANTS):
            raise InputError(f"{name!r} cannot name a Value: use letters, digits and '_', "
                             "not starting with a digit, and not a function or constant name")
        self.name = name
        self._op: Op | None = None
        self._parents: tuple[Value, ...] = ()

    # --- building the graph ------------------------------------------------------------

    @classmethod
    def _apply(cls, op: Op, *operands: Value | float) -> Value:
        parents = tuple(o if isinstance(o, Value) else Value(o) for o in operands)
        values = [p.data for p in parents]
        try:
            data = op.forward(*values)
        except (ValueError, ZeroDivisionError) as exc:
            shown = op.show([format_number(v) for v in values])
            raise EvaluationError(f"{shown} is undefined: {op.domain}") from exc
        except OverflowError as exc:
            raise _overflow(op, values) from exc
        if not math.isfinite(data):
            raise _overflow(op, values)
        out = cls.__new__(cls)
        out.data, out.grad, out.name = data, None, None
        out.requires_grad = any(p.requires_grad for p in parents)
        # Values that need no gradient keep no graph: no memory, no work in backward.
        out._op, out._parents = (op, parents) if out.requires_grad else (None, ())
        return out

    def __add__(self, other: Value | float) -> Value:
        return Value._apply(_ADD, self, other)

    def __radd__(self, other: float) -> Value:
        return Value._apply(_ADD, other, self)

    def __sub__(self, other: Value | float) -> Value:
        return Value._apply(_SUB, self, other)

    def __rsub__(self, other: float) -> Value:
        return Value._apply(_SUB, other, self)

    def __mul__(self, other: Value | float) -> Value:
        return Value._apply(_MUL, self, other)

    def __rmul__(self, other: float) -> Value:
        return Value._apply(_MUL, other, self)

    def __truediv__(self, other: Value | float) -> Value:
        return Value._apply(_DIV, self, other)

    def __rtruediv__(self, other: float) -> Value:
        return Value._apply(_DIV, other, self)

    def __pow__(self, other: Value | float) -> Value:
        return Value._apply(_POW, self, other)

    def __rpow__(self, other: float) -> Value:
        return Value._apply(_POW, other, self)

    def __neg__(self) -> Value:
        return Value._apply(_NEG, self)

    def __pos__(self) -> Value:
        return self

    def __abs__(self) -> Value:
        return Value._apply(FUNCTIONS["abs"], self)

    # --- comparisons have no gradient: refuse them rather than compare data silently -------

    def _no_comparison(self, other: object) -> bool:
        raise TypeError("Values cannot be compared (a comparison has no gradient); "
                        "compare their numbers instead: a.data < b.data")

    __lt__ = __le__ = __gt__ = __ge__ = __eq__ = __ne__ = _no_comparison
    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        raise TypeError("a Value has no truth value; test its number instead: if v.data > 0: ...")

    def __float__(self) -> float:
        return self.data

    def item(self) -> float:
        """The number, as a Python float."""
        return self.data

    def __repr__(self) -> str:
        grad = "" if self.grad is None else f", grad={format_number(self.grad)}"
        flag = ", requires_grad=True" if self.requires_grad else ""
        name = f", name={self.name!r}" if self.name else ""
        return f"Value({format_number(self.data)}{grad}{flag}{name})"

    # --- differentiation ---------------------------------------------------------------

    def backward(self, on_step: Callable[[engine.Step], None] | None = None) -> None:
        """Add d(self)/d(v) to ``v.grad`` for every value ``v`` in the graph that requires grad.

        Runs the counting pass and the backward pass of :mod:`gradcalc.engine`: each node's
        backward step runs once, after all of its consumers have delivered. ``on_step`` is
        called with each step (node ids are those of :meth:`to_dag`).
        """
        if not self.requires_grad:
            raise InputError("backward() needs a value that requires grad: create the inputs "
                             "with Value(x, requires_grad=True)")
        with paused_gc():
            self._backward(on_step)

    def _backward(self, on_step: Callable[[engine.Step], None] | None) -> None:
        dag, nodes = self._layout()
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
        """The picture of this value's graph with values and gradients: exactly what
        ``gradcalc --graph`` draws for :meth:`to_program` (``form``: auto, full, compact, tree,
        table; ``auto`` falls back from full to narrower forms to fit ``width``)."""
        from gradcalc import render

        result = self._as_program_result()
        dag = result.dag
        assert dag is not None
        view = render.graph_view(dag, dag.named[result.output], result.node_values,
                                 result.node_gradients, form=form, width=width,
                                 unicode=not ascii)
        return view if isinstance(view, str) else render.as_text(view, not ascii)

    def explain(self, ascii: bool = False) -> str:
        """The backward pass told step by step, exactly as ``gradcalc --explain`` tells it for
        :meth:`to_program`."""
        from gradcalc.explain import explain, explanation_text

        return explanation_text(explain(self._as_program_result()), not ascii)

    def _as_program_result(self) -> Any:
        from gradcalc.api import gradients

        return gradients(self.to_program())

    def zero_grad(self) -> None:
        """Forget this value's gradient (``grad`` becomes ``None``)."""
        self.grad = None

    def inputs(self) -> list[Value]:
        """The values requiring grad that this one was computed from (its leaves)."""
        _, nodes = self._layout()
        return [v for v in nodes if v.requires_grad and v._op is None]

    def to_dag(self) -> Dag:
        """This value's graph as a :class:`~gradcalc.dag.Dag`, the value itself the last node."""
        return self._layout()[0]

    def to_program(self) -> str:
        """The graph as gradcalc program text (``A = 2``, ``B = A*3``, ...), which the CLI and
        :func:`gradcalc.gradients` read back to the same computation."""
        from gradcalc.unparse import program_text

        dag = self.to_dag()
        return program_text(dag, len(dag) - 1, self.name or "OUT")

    def _layout(self) -> tuple[Dag, list[Value]]:
        """Topological order of the graph (operands first, ``self`` last), without recursion,
        and the Dag for it: values that require grad and have no operation are inputs, values
        that do not require grad are constants."""
        index: dict[int, int] = {}
        nodes: list[Value] = []
        stack: list[tuple[Value, bool]] = [(self, False)]
        while stack:
            value, expanded = stack.pop()
            if id(value) in index:
                continue
            if expanded or not value._parents:
                index[id(value)] = len(nodes)
                nodes.append(value)
                continue
            stack.append((value, True))
            stack.extend((p, False) for p in reversed(value._parents) if id(p) not in index)
        dag = Dag(output=self.name or "OUT")
        taken = {v.name for v in nodes if v.name}
        for value in nodes:
            name = value.name
            if name is not None and name in dag.named:  # two values with one name: rename
                name = _fresh(taken)
            if value._op is not None:
                dag.add(value._op, tuple(index[id(p)] for p in value._parents), None, name)
            elif value.requires_grad:
                name = name or _fresh(taken)
                dag.inputs[name] = dag.add(INPUT, (), None, name, value.data)
            else:
                dag.add(CONST, (), None, value=value.data)
        dag.output = dag.names[-1] or "OUT"
        return dag, nodes


def zero_grad(values: Iterable[Value]) -> None:
    """Set ``grad`` back to ``None`` on each value (e.g. ``zero_grad(loss.inputs())``)."""
    for value in values:
        value.grad = None


def function(name: str) -> Callable[..., Value]:
    """The registry's function ``name`` applied to values or numbers: ``function("sin")(a)``."""
    op = FUNCTIONS[name]

    def apply(*operands: Value | float) -> Value:
        if len(operands) != op.arity:
            raise TypeError(f"{name} takes {op.arity} argument(s), got {len(operands)}")
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
    def method(self: Value, *others: Any) -> Value:
        return Value._apply(op, self, *others)

    method.__name__ = op.name
    method.__doc__ = f"{op.name}(self{', other' if op.arity == 2 else ''}), differentiable."
    return method


for _name, _op_name in _METHOD_NAMES.items():
    setattr(Value, _name, _method(FUNCTIONS[_op_name]))

_ADD, _SUB, _MUL, _DIV, _POW, _NEG = (op_named(n) for n in ("add", "sub", "mul", "div", "pow",
                                                             "neg"))


def _number(x: Any, what: str) -> float:
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise InputError(f"Value {what} must be a real number, not {x!r}")
    try:
        value = float(x)
    except OverflowError:
        raise InputError(f"Value {what} is too large for a 64-bit float (about 1.8e308 at "
                         "most)") from None
    if not math.isfinite(value):
        raise InputError(f"Value {what} must be a finite number, not {value}")
    return value


def _overflow(op: Op, values: list[float]) -> GradcalcError:
    shown = op.show([format_number(v) for v in values])
    return EvaluationError(f"{shown} overflows a 64-bit float", kind="overflow")


def _fresh(taken: set[str]) -> str:
    for code in range(ord("A"), ord("Z") + 1):
        if chr(code) not in taken:
            taken.add(chr(code))
            return chr(code)
    count = 1
    while f"X{count}" in taken:
        count += 1
    taken.add(f"X{count}")
    return f"X{count}"
