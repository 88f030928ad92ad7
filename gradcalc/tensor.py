"""Vectors and matrices as sugar over scalars: shapes, broadcasting, and the expansion of every
array operation into scalar nodes of the registry (:mod:`gradcalc.ops`).

An array is a :class:`Tensor`: its shape and the ids of its elements' scalar nodes, row by row.
Nothing after the builder knows arrays exist: ``W @ X`` becomes, for each row, a chain of
``mul`` and ``add`` nodes, and the counted backward pass runs over scalars as before. Each
array function is one :class:`ArrayFunction` entry of :data:`ARRAY_FUNCTIONS`, next to its
expansion, as the scalar registry keeps each op's rules together. Everything here is a loop
over elements; nothing recurses.

Conventions, chosen to be NumPy's and PyTorch's where they have one: indices are 0-based and a
negative index counts from the end (``V[-1]`` is the last element); element-wise operations
broadcast by NumPy's rule (shapes aligned on the right, a dimension of 1 or a number stretches);
``@`` is ``numpy.matmul`` for vectors and matrices; ``sum``, ``prod``, ``mean``, ``norm``,
``max``, ``min`` and ``logsumexp`` reduce every element; ``norm`` is the Euclidean (Frobenius)
norm ``sqrt(sum(x^2))``; ``max``/``min`` of a vector is a chain of the binary ones, so a tie
splits the gradient by the binary rule (1/2 to each side at each step) and is warned about;
``logsumexp`` is a chain of ``logaddexp`` (no overflow, smooth everywhere) and ``softmax(x)`` is
``exp(x - logsumexp(x))``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple

from gradcalc.ops import Op, op_named

__all__ = ["ARRAY_FUNCTIONS", "ARRAY_LIMIT", "MAX_RANK", "ArrayFunction", "Mismatch", "Tensor",
           "TooLarge", "describe", "element_names", "elementwise", "index", "matmul", "shape_of",
           "stack"]

#: Arrays have at most this many dimensions: vectors and matrices.
MAX_RANK = 2
#: The array operations of a program make at most this many scalar nodes in all (a literal's
#: elements are bounded by the program's size; ``M @ M`` makes 2n^3 nodes of n^2 written).
ARRAY_LIMIT = 4_000_000


# (NamedTuples, not dataclasses: this module is imported by every run, and a dataclass costs
# a millisecond of start-up to make)
class Tensor(NamedTuple):
    """A vector or matrix: its ``shape`` and its elements' node ids, row-major."""

    shape: tuple[int, ...]
    ids: tuple[int, ...]

    @property
    def size(self) -> int:
        return len(self.ids)


#: A value in the builder: a scalar node id, or an array of them.
Value = int | Tensor


class Mismatch(Exception):
    """An operation met values of shapes it cannot take; the builder makes it a positioned
    :class:`~gradcalc.errors.ShapeError`. ``operand`` is the argument at fault, if one is."""

    def __init__(self, message: str, hint: str | None = None, operand: int | None = None
                 ) -> None:
        super().__init__(message)
        self.message, self.hint, self.operand = message, hint, operand


class TooLarge(Mismatch):
    """The array operations would make more than :data:`ARRAY_LIMIT` nodes."""


if TYPE_CHECKING:
    from typing import Protocol

    class Nodes(Protocol):
        """What an expansion needs from the builder: unnamed scalar nodes (shared when
        they exist) and constants, all written where the operation being expanded is
        written. ``many`` and ``fold`` make many nodes in one call (the builder's loop,
        not one call a node)."""

        def scalar(self, op: Op, operands: tuple[int, ...]) -> int: ...

        def many(self, op: Op, operands: Sequence[tuple[int, ...]]) -> list[int]:
            """A node of ``op`` for each tuple of operands."""

        def fold(self, op: Op, ids: Sequence[int]) -> int:
            """``op`` over ``ids`` from the left: ``((a op b) op c) op d``."""

        def constant(self, value: float) -> int: ...


def shape_of(value: Value) -> tuple[int, ...]:
    return () if type(value) is int else value.shape  # type: ignore[union-attr]


def describe_shape(shape: tuple[int, ...]) -> str:
    """``a number``, ``a vector of 3``, ``a 2x3 matrix``."""
    if not shape:
        return "a number"
    if len(shape) == 1:
        return f"a vector of {shape[0]}"
    if len(shape) == 2:
        return f"a {shape[0]}x{shape[1]} matrix"
    return "an array of shape " + "x".join(map(str, shape))


def describe(value: Value) -> str:
    return describe_shape(shape_of(value))


def element_names(name: str, shape: tuple[int, ...]) -> list[str]:
    """The names of an array's elements, row-major: ``W[0]``, ``M[1][2]``."""
    return [name + "".join(f"[{i}]" for i in position)
            for position in itertools.product(*(range(d) for d in shape))]


# --- building arrays: literals and indexing ------------------------------------------------


def stack(elements: Sequence[Value]) -> Tensor:
    """The literal ``[a, b, ...]``: numbers make a vector, vectors of one length a matrix."""
    shape = shape_of(elements[0])
    for position, element in enumerate(elements):
        if shape_of(element) != shape:
            raise Mismatch(
                f"the elements of a vector must have one shape: element {position} is "
                f"{describe(element)}, element 0 is {describe(elements[0])}",
                hint="a matrix is a vector of rows of one length: [[1, 2], [3, 4]]",
                operand=position)
    if len(shape) >= MAX_RANK:
        raise Mismatch(f"an array of {len(shape) + 1} dimensions: gradcalc has vectors and "
                       "matrices", hint="nest brackets at most two deep: [[1, 2], [3, 4]]")
    if not shape:
        return Tensor((len(elements),), tuple(elements))  # type: ignore[arg-type]
    ids: list[int] = []
    for element in elements:
        ids.extend(element.ids)  # type: ignore[union-attr]
    return Tensor((len(elements), *shape), tuple(ids))


def index(value: Value, position: int) -> Value:
    """``value[position]``: an element of a vector, a row of a matrix."""
    if type(value) is int:
        raise Mismatch("a number has no elements to index",
                       hint="only vectors and matrices are indexed: V[0]")
    assert isinstance(value, Tensor)
    length = value.shape[0]
    if not -length <= position < length:
        raise Mismatch(f"index {position} is out of range for {describe(value)}",
                       hint=f"indices run from 0 to {length - 1} (or -{length} to -1, from "
                       "the end)")
    if position < 0:
        position += length
    if len(value.shape) == 1:
        return value.ids[position]
    width = math.prod(value.shape[1:])
    return Tensor(value.shape[1:], value.ids[position * width : (position + 1) * width])


# --- element-wise operations -----------------------------------------------------------------


def broadcast_shape(shapes: Sequence[tuple[int, ...]], what: str) -> tuple[int, ...]:
    """NumPy's rule: shapes aligned on the right; in each dimension the sizes agree or are 1."""
    rank = max(len(shape) for shape in shapes)
    out: list[int] = []
    for axis in range(-rank, 0):
        sizes = {shape[axis] for shape in shapes if len(shape) >= -axis} - {1}
        if len(sizes) > 1:
            shown = " and ".join(describe_shape(shape) for shape in shapes)
            raise Mismatch(f"shapes do not match for {what}: {shown}",
                           hint="element-wise operations take arrays of one shape, or a "
                           "number with an array")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def _spread(value: Value, shape: tuple[int, ...]) -> Sequence[int]:
    """The ids of ``value`` broadcast to ``shape``, row-major."""
    size = math.prod(shape)
    if type(value) is int:
        return [value] * size
    assert isinstance(value, Tensor)
    if value.shape == shape:
        return value.ids
    own = (1,) * (len(shape) - len(value.shape)) + value.shape
    strides, stride = [], 1
    for size_here in reversed(own):
        strides.append(0 if size_here == 1 else stride)
        stride *= size_here
    strides.reverse()
    return [value.ids[sum(i * s for i, s in zip(position, strides, strict=True))]
            for position in itertools.product(*(range(d) for d in shape))]


def elementwise(op: Op, operands: Sequence[Value], nodes: Nodes) -> Value:
    """``op`` applied to each element, with operands broadcast to one shape."""
    what = f"'{op.symbol}'" if op.symbol else op.name
    shape = broadcast_shape([shape_of(v) for v in operands], what)
    if not shape:
        return nodes.scalar(op, tuple(operands))  # type: ignore[arg-type]
    _check_size(math.prod(shape))
    columns = [_spread(v, shape) for v in operands]
    return Tensor(shape, tuple(nodes.many(op, list(zip(*columns, strict=True)))))


def _check_size(size: int) -> None:
    if size > ARRAY_LIMIT:
        raise TooLarge(f"this operation would make {size:,} nodes, more than the "
                       f"{ARRAY_LIMIT:,} the array operations of a program may make",
                       hint="an operation makes a node per element (a product 2n^3 for n^2 "
                       "elements): work on smaller arrays")


# --- products and reductions -----------------------------------------------------------------

_ADD, _MUL, _DIV, _POW = (op_named(n) for n in ("add", "mul", "div", "pow"))
_EXP, _SQRT, _SUB = op_named("exp"), op_named("sqrt"), op_named("sub")


def _fold(op: Op, ids: Sequence[int], nodes: Nodes) -> int:
    """``op`` over the elements from the left: ``((a op b) op c) op d``."""
    return nodes.fold(op, ids)


def _dot(left: Sequence[int], right: Sequence[int], nodes: Nodes) -> int:
    """The products, then their sum from the left."""
    return nodes.fold(_ADD, nodes.many(_MUL, list(zip(left, right, strict=True))))


def matmul(left: Value, right: Value, nodes: Nodes) -> Value:
    """``left @ right`` as ``numpy.matmul`` for vectors and matrices: a vector on the left is
    a row, on the right a column, and the result drops that dimension again."""
    for position, value in enumerate((left, right)):
        if type(value) is int:
            raise Mismatch(f"'@' multiplies vectors and matrices, not {describe(value)}",
                           hint="use * to multiply by a number", operand=position)
    assert isinstance(left, Tensor) and isinstance(right, Tensor)
    rows = left.shape[0] if len(left.shape) == 2 else 1
    inner = left.shape[-1]
    depth = right.shape[0]
    columns = right.shape[1] if len(right.shape) == 2 else 1
    if inner != depth:
        raise Mismatch(f"shapes do not match for '@': {describe(left)} and {describe(right)}",
                       hint=f"the left side's columns ({inner}) must equal the right side's "
                       f"rows ({depth})")
    _check_size(rows * columns * (2 * inner))
    out = []
    for row in range(rows):
        a = left.ids[row * inner : (row + 1) * inner]
        for column in range(columns):
            out.append(_dot(a, right.ids[column::columns], nodes))
    shape = tuple(n for n, kept in ((rows, len(left.shape) == 2),
                                    (columns, len(right.shape) == 2)) if kept)
    return Tensor(shape, tuple(out)) if shape else out[0]


def _array(value: Value, name: str, position: int = 0, vector: bool = False) -> Tensor:
    if type(value) is int or (vector and len(shape_of(value)) != 1):
        wanted = "a vector" if vector else "a vector or matrix"
        example = "dot([1, 2], [3, 4])" if name == "dot" else f"{name}([1, 2, 3])"
        raise Mismatch(f"{name} takes {wanted}, not {describe(value)}",
                       hint=f"{name} works on the elements of an array, as in {example}"
                       if type(value) is int else None, operand=position)
    assert isinstance(value, Tensor)
    return value


def _sum(nodes: Nodes, x: Value) -> Value:
    return _fold(_ADD, _array(x, "sum").ids, nodes)


def _prod(nodes: Nodes, x: Value) -> Value:
    return _fold(_MUL, _array(x, "prod").ids, nodes)


def _mean(nodes: Nodes, x: Value) -> Value:
    ids = _array(x, "mean").ids
    total = _fold(_ADD, ids, nodes)
    return total if len(ids) == 1 else nodes.scalar(_DIV, (total, nodes.constant(float(len(ids)))))


def _norm(nodes: Nodes, x: Value) -> Value:
    two = nodes.constant(2.0)
    squares = nodes.many(_POW, [(item, two) for item in _array(x, "norm").ids])
    return nodes.scalar(_SQRT, (_fold(_ADD, squares, nodes),))


def _dot_function(nodes: Nodes, a: Value, b: Value) -> Value:
    left, right = _array(a, "dot", 0, vector=True), _array(b, "dot", 1, vector=True)
    if left.size != right.size:
        raise Mismatch(f"dot takes two vectors of one length, not {describe(a)} and "
                       f"{describe(b)}")
    return _dot(left.ids, right.ids, nodes)


def _extreme(name: str) -> Callable[[Nodes, Value], Value]:
    op = op_named(name)

    def reduce(nodes: Nodes, x: Value) -> Value:
        return _fold(op, _array(x, name).ids, nodes)

    return reduce


def _logsumexp(nodes: Nodes, x: Value) -> Value:
    return _fold(op_named("logaddexp"), _array(x, "logsumexp").ids, nodes)


def _softmax(nodes: Nodes, x: Value) -> Value:
    vector = _array(x, "softmax", vector=True)
    total = _fold(op_named("logaddexp"), vector.ids, nodes)
    shifted = nodes.many(_SUB, [(item, total) for item in vector.ids])
    return Tensor(vector.shape, tuple(nodes.many(_EXP, [(item,) for item in shifted])))


class ArrayFunction(NamedTuple):
    """A function of arrays: its name, number of arguments, what it does (for messages and
    the README) and its expansion into scalar nodes, ``expand(nodes, *arguments)``."""

    name: str
    arity: int
    summary: str
    expand: Callable[..., Value]


#: The array functions by name. ``max`` and ``min`` with two arguments are the registry's
#: element-wise functions; with one, they reduce an array.
ARRAY_FUNCTIONS: dict[str, ArrayFunction] = {f.name: f for f in (
    ArrayFunction("sum", 1, "the sum of the elements", _sum),
    ArrayFunction("mean", 1, "the mean of the elements", _mean),
    ArrayFunction("prod", 1, "the product of the elements", _prod),
    ArrayFunction("dot", 2, "the dot product of two vectors", _dot_function),
    ArrayFunction("norm", 1, "the Euclidean (Frobenius) norm, sqrt(sum(x^2))", _norm),
    ArrayFunction("max", 1, "the largest element", _extreme("max")),
    ArrayFunction("min", 1, "the smallest element", _extreme("min")),
    ArrayFunction("logsumexp", 1, "log(sum(exp(x))), without overflow", _logsumexp),
    ArrayFunction("softmax", 1, "exp(x - logsumexp(x)), a vector", _softmax),
)}
