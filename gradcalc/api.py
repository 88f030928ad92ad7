"""The public library API: one call from program text to value, gradients and statistics.

The CLI is a thin layer over :func:`gradients`; Python code can call it directly::

    >>> import gradcalc
    >>> r = gradcalc.gradients("B = A*3; OUT = (B+1)*(B+2)", at={"A": 2})
    >>> r.value, r.gradients["A"], r.gradients["B"]
    (56.0, 45.0, 15.0)
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from gradcalc import engine, tensor
from gradcalc.ast import NUM, Program
from gradcalc.dag import Dag, build
from gradcalc.errors import Diagnostic, InputError, argument, closest, values_example
from gradcalc.gcpause import paused_gc
from gradcalc.ops import INPUT
from gradcalc.parse import PROGRAM_LIMIT, parse

if TYPE_CHECKING:
    from gradcalc.symbolic import Formula

__all__ = ["ArrayValue", "Result", "Stats", "array_shapes", "compile_program", "constant_value",
           "element_names", "expand", "gradients", "split_items"]

#: A value for an input: a number, or (for a vector or matrix) a list of numbers or of rows.
ArrayValue: TypeAlias = "float | Sequence[float] | Sequence[Sequence[float]]"


@dataclass(frozen=True, slots=True)
class Stats:
    """What the counting pass saved: graph size, what backward visited, and for each requested
    name the exact number of distinct paths from the output to it (the work a path-by-path
    backpropagation would do, against ``visited_edges`` for the counting pass)."""

    nodes: int
    edges: int
    merged: int
    cone_nodes: int
    visited_nodes: int
    visited_edges: int
    paths: dict[str, int]


@dataclass(slots=True, eq=False)
class Result:
    """The answer for one output.

    ``gradients`` maps each requested name to d(output)/d(name) where it is a number, in the
    order requested; ``formulas`` holds symbolic gradients (:class:`~gradcalc.symbolic.Formula`)
    when some input had no value or ``symbolic`` was asked for, and ``bindings`` the statements
    (name, definition) that several formulas share, printed once before them (each
    formula's ``local`` text leaves them out, its ``text`` has them); ``value`` is the output's
    value (``None`` when it needs a missing input). ``values`` gives each requested name's
    value where known; ``inputs`` every input's value that was known (given or set in the
    program). ``warnings`` lists non-differentiable points met and where an infinite or NaN
    gradient came from. ``dag``, ``node_values`` and ``node_gradients`` expose the evaluated
    graph for renderers (empty lists when values were missing); ``backward_pass`` is the
    engine's :class:`~gradcalc.engine.Pass` itself (its plan, and its steps when
    ``gradients(..., record=True)`` recorded them), ``None`` when values were missing.
    """

    output: str
    value: float | None
    gradients: dict[str, float]
    values: dict[str, float]
    inputs: dict[str, float]
    formulas: dict[str, Formula] = field(default_factory=dict)
    symbolic: bool = False
    bindings: list[tuple[str, str]] = field(default_factory=list)
    stats: Stats | None = None
    warnings: list[Diagnostic] = field(default_factory=list)
    dag: Dag | None = field(default=None, repr=False)
    node_values: list[float] = field(default_factory=list, repr=False)
    node_gradients: list[float] = field(default_factory=list, repr=False)
    backward_pass: engine.Pass | None = field(default=None, repr=False)


def compile_program(program: str | Program | Dag, name: str = "<program>",
                    max_size: int = PROGRAM_LIMIT,
                    shapes: Mapping[str, tuple[int, ...]] | None = None) -> Dag:
    """Parse and build ``program`` (text, a parsed :class:`Program`, or an already built
    :class:`Dag`, returned as is) into the graph the engine runs on. Text over ``max_size``
    bytes is refused with a :class:`~gradcalc.errors.LimitError`: compile it here with a
    larger ``max_size`` and pass the result to :func:`gradients` and the others. ``shapes``
    makes inputs the program does not assign vectors or matrices (:func:`array_shapes`)."""
    if isinstance(program, Dag):
        return program
    if isinstance(program, Program):
        return build(program, shapes)
    return build(parse(program, name, max_size=max_size), shapes)


def array_shapes(at: Mapping[str, ArrayValue]) -> dict[str, tuple[int, ...]]:
    """The shapes of the array values in ``at`` (``{"X": [1, 2]}`` gives ``{"X": (2,)}``),
    for :func:`compile_program`; a ragged or too deeply nested list is an ``InputError``."""
    return {name: _shape(name, value) for name, value in at.items()
            if isinstance(value, (list, tuple))}


def _shape(name: str, value: Sequence[Any]) -> tuple[int, ...]:
    if not value:
        raise InputError(f"the value of {name} is an empty list",
                         hint="a vector has at least one element: [1, 2, 3]")
    rows = [isinstance(item, (list, tuple)) for item in value]
    if not any(rows):
        return (len(value),)
    width = len(value[0]) if rows[0] else -1
    if not all(rows) or any(len(row) != width for row in value) or width == 0 \
            or any(isinstance(x, (list, tuple)) for row in value for x in row):
        raise InputError(f"the value of {name} is not a vector or a matrix",
                         hint="a matrix is a list of rows of one length: [[1, 2], [3, 4]]")
    return (len(value), width)


def element_names(dag: Dag, name: str) -> list[str]:
    """The names ``name`` stands for in ``dag``: a vector or matrix its elements (``W`` is
    ``W[0]``, ``W[1]``, ...), a row its row's (``M[1]``), ``M[0, 1]`` and ``W[-1]`` the element
    they index (``M[0][1]``, ``W[2]``); any other name itself."""
    name = name.strip()
    found = dag.tensors.get(name)
    if found is not None:
        return tensor.element_names(name, found.shape)
    written = re.fullmatch(r"([^\[\]\s]+)\s*((?:\[[-+\d\s,]*\]\s*)+)", name)
    if written is None or written[1] not in dag.tensors:
        return [name]
    base, shape = written[1], dag.tensors[written[1]].shape
    try:
        indices = [int(i) for i in re.findall(r"[^\[\],\s]+", written[2])]
    except ValueError:
        return [name]
    if len(indices) > len(shape) or len(indices) != len(re.findall(r"[-+]?\d+", written[2])):
        return [name]
    for axis, index in enumerate(indices):
        if not -shape[axis] <= index < shape[axis]:
            raise InputError(f"{name}: index {index} is out of range for "
                             f"{tensor.describe_shape(shape)} {base}")
        indices[axis] = index % shape[axis]
    prefix = base + "".join(f"[{i}]" for i in indices)
    return tensor.element_names(prefix, shape[len(indices):])


def split_items(value: str) -> list[str]:
    """``value`` cut at the commas outside parentheses and brackets: ``A=atan2(1, 2),B=3`` and
    ``W=[1, 2],B=3`` are two items each."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(value):
        if char in "([":
            depth += 1
        elif char in ")]":
            depth = max(0, depth - 1)
        elif char == "," and depth == 0:
            parts.append(value[start:index])
            start = index + 1
    parts.append(value[start:])
    return parts


def expand(dag: Dag, names: Iterable[str]) -> list[str]:
    """``names`` with every array replaced by its elements (:func:`element_names`), each
    name once, in order."""
    return unique(n for given in names for n in element_names(dag, given))


def constant_value(text: str, name: str = "<value>") -> float | list[Any]:
    """The value of a constant expression: numbers, ``pi``, ``e``, operators and registry
    functions (``pi/4``, ``1/3``, ``2^-10``, ``sqrt(2)``), as ``--at`` takes it; a vector or
    matrix literal (``[1, pi/2]``) gives a list (of rows). A name, more than one statement or
    a definition is an :class:`~gradcalc.errors.InputError`; the text goes through the
    grammar, so its errors are the program's (``ParseError``, ``ShapeError``,
    ``EvaluationError`` for ``1/0``), positioned in ``text`` (called ``name``)."""
    program = parse(text, name)
    source = program.source
    (statement, *more) = program.statements
    if more or statement.params is not None or statement.name is not None:
        raise InputError("a value is one expression, not statements",
                         program.statement_span(statement if not more else more[0]), source,
                         hint="write an expression of numbers, e.g. pi/4 or 2^-10")
    nodes = program.nodes
    if nodes.kinds[statement.root] == NUM:  # (a number alone would be an input)
        return nodes.numbers[nodes.payloads[statement.root]]
    dag = build(program)
    array = dag.tensors.get(dag.output)
    ids = array.ids if array is not None else (dag.named[dag.output],)
    own = set(ids)  # a literal's numbers are inputs of the literal itself: not names
    foreign = [n for n, i in dag.inputs.items() if i not in own]
    if foreign:
        raise InputError(f"a value cannot use names: {', '.join(foreign)}",
                         dag.name_spans[foreign[0]], source,
                         hint="give each input its own value; a value may use pi and e")
    values = engine.forward(dag, list(dag.values), engine.cone(dag, list(ids)))
    if array is None:
        return values[ids[0]]
    flat = [values[i] for i in ids]
    if len(array.shape) == 1:
        return flat
    width = array.shape[1]
    return [flat[row * width : (row + 1) * width] for row in range(array.shape[0])]


def gradients(
    program: str | Program | Dag,
    at: Mapping[str, ArrayValue] | None = None,
    wrt: Iterable[str] | None = None,
    of: str | None = None,
    stats: bool = False,
    on_step: Callable[[engine.Step], None] | None = None,
    symbolic: bool | None = None,
    record: bool = False,
    expand: bool = False,
) -> Result:
    """Evaluate ``program`` and differentiate its output by reverse mode.

    ``at`` gives input values (overriding values set in the program): a number, or a list
    (of rows) for a vector or matrix, which also makes an input the program does not assign
    an array of that shape. ``wrt`` names the gradients wanted (inputs or named
    intermediates; a vector or matrix stands for its elements); by default every input the
    output depends on, then every named intermediate it depends on. ``of`` picks the output
    (default: the last assigned name); it must be a number (for a vector's Jacobian, see
    :func:`gradcalc.jacobian`). ``stats=True`` adds :class:`Stats`. ``on_step`` is called with each
    backward step in processing order; ``record=True`` keeps the steps in
    ``result.backward_pass.steps`` (what :func:`gradcalc.explain.explain` reads).

    ``symbolic``: ``None`` (the default) gives formulas where an input has no value and numbers
    everywhere else; ``True`` gives formulas for every gradient (and numbers where the values
    are known); ``False`` requires numbers and raises ``InputError`` for a missing value.
    Formulas are written as a person would (common factors out, fractions together, factors
    cancelled: :mod:`gradcalc.tidy`); ``expand=True`` gives them multiplied out instead.

    Raises :class:`~gradcalc.errors.GradcalcError` subclasses: ``ParseError``,
    ``NameResolutionError``, ``CycleError``, ``ArityError`` for a bad program,
    ``InputError`` for bad ``at``/``wrt``/``of``, ``EvaluationError`` when the program cannot be
    evaluated at that point.
    """
    with paused_gc():
        dag = compile_program(program, shapes=array_shapes(at or {}))
        return _gradients(dag, at, wrt, of, stats, on_step, symbolic, record, expand)


def _gradients(
    dag: Dag,
    at: Mapping[str, ArrayValue] | None,
    wrt: Iterable[str] | None,
    of: str | None,
    stats: bool,
    on_step: Callable[[engine.Step], None] | None,
    symbolic: bool | None,
    record: bool = False,
    multiplied_out: bool = False,
) -> Result:
    output_name = scalar_output(dag, of)
    output = lookup(dag, output_name, "output")
    values = leaf_values(dag, at or {})
    within = engine.cone(dag, [output])
    if wrt is None:
        targets = default_targets(dag, output, within)
    else:
        targets = {name: lookup(dag, name, "gradient") for name in expand(dag, wrt)}

    question = engine.plan(dag, output, targets, within)
    needed = question.needed
    missing = [n for n, i in dag.inputs.items() if needed[i] and values[i] is None]
    if missing and symbolic is False:
        _missing_error(dag, missing, output_name)
    notes = question_notes(dag, of, output_name, targets if wrt is None else None)
    if missing:
        result = _symbolic_only(question, output_name, values, stats, bool(symbolic),
                                multiplied_out)
        result.warnings[:0] = notes
        return result
    vals = engine.forward(dag, values, needed)
    done = engine.run(question, vals, record=record, on_step=on_step)

    result = Result(
        output=output_name,
        value=vals[output],
        gradients=done.target_gradients(),
        values={n: vals[i] for n, i in targets.items()},
        inputs={n: v for n, i in dag.inputs.items() if (v := values[i]) is not None},
        dag=dag,
        node_values=vals,
        node_gradients=done.gradients,
        warnings=notes,
        backward_pass=done,
    )
    if symbolic:
        from gradcalc.symbolic import symbolic_gradients

        found = symbolic_gradients(question, values, result.gradients, multiplied_out)
        result.formulas, result.bindings = found.formulas, found.shared
        result.symbolic = True

    result.warnings.extend(engine.diagnose(done))
    if stats:
        result.stats = _stats(question)
    return result


def _stats(question: engine.Plan) -> Stats:
    paths = engine.path_counts(question)
    dag = question.dag
    return Stats(
        nodes=len(dag),
        edges=dag.edge_count,
        merged=dag.merged,
        cone_nodes=sum(question.within),
        visited_nodes=len(question.visited),
        visited_edges=question.visited_edges,
        paths={n: paths[i] for n, i in question.targets.items()},
    )


def _symbolic_only(question: engine.Plan, output_name: str, values: list[float | None],
                   stats: bool, symbolic: bool, expand: bool) -> Result:
    """Some input has no value: formulas for every gradient, numbers where the numeric engine
    can give them without the missing values (:func:`engine.known_gradients`)."""
    from gradcalc.symbolic import symbolic_gradients

    dag, targets = question.dag, question.targets
    known = engine.known_gradients(question, values)
    found = symbolic_gradients(question, values, known.gradients, expand)
    formulas = found.formulas
    result = Result(
        output=output_name,
        value=known.values[question.output],
        gradients={n: f.value for n, f in formulas.items() if f.value is not None},
        values={n: v for n, i in targets.items() if (v := known.values[i]) is not None},
        inputs={n: v for n, i in dag.inputs.items() if (v := values[i]) is not None},
        formulas=formulas,
        symbolic=symbolic,
        bindings=found.shared,
        dag=dag,
    )
    if stats:
        result.stats = _stats(question)
    return result


def output_note(dag: Dag, of: str | None) -> Diagnostic | None:
    """A note when the output was not named and the program has several candidates (names
    that nothing else uses): which one is differentiated, and how to choose another."""
    if of is not None or len(dag.outputs) < 2:
        return None
    shown = ", ".join(dag.outputs) if len(dag.outputs) <= 8 else (
        ", ".join(dag.outputs[:7]) + f", ... ({len(dag.outputs)} in all)")
    return Diagnostic(
        "outputs", f"several outputs ({shown}); differentiating {dag.output}, the last "
        + ("assigned" if dag.output == dag.outputs[-1] else "that is a number"),
        hint=f"choose the output with {argument('of', 'NAME')}; give several for the Jacobian")


def question_notes(dag: Dag, of: str | None, output: str,
                   default_targets: dict[str, int] | None) -> list[Diagnostic]:
    """Notes about the question asked: which output was chosen, and that an output that
    depends on no input has nothing to differentiate (``default_targets`` empty)."""
    notes = list(dag.warnings)  # what the build noticed: names that look alike
    chosen = output_note(dag, of)
    if chosen is not None:
        notes.append(chosen)
    if default_targets is not None and not default_targets:
        what = "is a number" if output in dag.inputs else "depends on no input"
        notes.append(Diagnostic(
            "constant", f"nothing to differentiate: {output} {what}; only its value is shown",
            dag.name_spans.get(output), dag.source,
            hint="a name that is never assigned (A in OUT = A*2) is an input"))
    return notes


def scalar_output(dag: Dag, of: str | None) -> str:
    """The output's name: ``of`` (an element written as ``M[0, 1]`` is ``M[0][1]``), else the
    program's output; an ``InputError`` if it is a vector or matrix."""
    name = dag.output if of is None else of
    names = element_names(dag, name)
    if len(names) == 1 and name not in dag.tensors:
        return names[0]
    shape = dag.tensors[name].shape if name in dag.tensors else (len(names),)
    raise InputError(
        f"the output {name} is {tensor.describe_shape(shape)}: a gradient is of a number",
        dag.name_spans.get(name), dag.source,
        hint=f"reduce it to a number (sum({name}), {name}[0]), or ask for its Jacobian with "
        f"{argument('of', name)}" if of is None else
        f"ask for its Jacobian with {argument('of', name)} (gradcalc.jacobian)")


def unique(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))


def lookup(dag: Dag, name: str, role: str) -> int:
    node = dag.named.get(name)
    if node is not None:
        return node
    close = closest(name, dag.named)
    hint = f"did you mean {close}?" if close else (
        "the program's names are " + ", ".join(dag.named) if len(dag.named) <= 12 else None)
    raise InputError(f"the {role} {name!r} is not a name in the program", hint=hint)


def leaf_values(dag: Dag, at: Mapping[str, ArrayValue]) -> list[float | None]:
    values = list(dag.values)
    if dag.tensors:
        _given_once(dag, at)
    for name, value in at.items():
        if name in dag.tensors or isinstance(value, (list, tuple)):
            _array_value(dag, name, value, values)
            continue
        node = dag.inputs.get(name)
        if node is None:
            if name in dag.named:
                span = dag.name_spans[name]
                raise InputError(
                    f"{name} is not an input: the program computes it "
                    f"(at {span.line}:{span.column})",
                    hint="only inputs take values; the inputs are " + ", ".join(dag.inputs)
                    if dag.inputs else "this program has no inputs")
            lookup(dag, name, "input")
        assert node is not None
        values[node] = _number(name, value)
    return values


def _given_once(dag: Dag, at: Mapping[str, ArrayValue]) -> None:
    """No element is given a value twice (``X`` and ``X[0]``): which would win is a guess."""
    arrays = [name for name in at if name in dag.tensors]
    for name in arrays:
        for element in tensor.element_names(name, dag.tensors[name].shape):
            if element in at:
                raise InputError(f"{element} is given a value twice: alone and in {name}",
                                 hint=f"give {name} whole, or its elements one by one")


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"the value of {name} must be a number, not {value!r}")
    try:
        value = float(value)
    except OverflowError:
        raise InputError(f"the value of {name} is too large for a 64-bit float (about "
                         "1.8e308 at most)") from None
    if not math.isfinite(value):
        raise InputError(f"the value of {name} must be a finite number, not {value}")
    return value


def _array_value(dag: Dag, name: str, value: ArrayValue, values: list[float | None]) -> None:
    """Set the elements of the vector or matrix ``name`` from the list ``value``."""
    array = dag.tensors.get(name)
    if array is None:
        if name not in dag.named:
            lookup(dag, name, "input")
        raise InputError(f"{name} is a number in the program, not a vector or matrix",
                         hint=f"give it one number: {name}=2")
    shape = _shape(name, value) if isinstance(value, (list, tuple)) else ()
    if shape != array.shape:
        raise InputError(f"{name} is {tensor.describe_shape(array.shape)} in the program, "
                         f"the value given is {tensor.describe_shape(shape)}",
                         hint=f"give {name} {tensor.describe_shape(array.shape)}, e.g. "
                         f"{name}=" + _example(array.shape))
    flat = list(value) if len(shape) == 1 else [x for row in value for x in row]  # type: ignore
    for element, node, item in zip(tensor.element_names(name, shape), array.ids, flat,
                                   strict=True):
        if dag.ops[node] is not INPUT:
            span = dag.name_spans[element]
            raise InputError(f"{element} is not an input: the program computes it "
                             f"(at {span.line}:{span.column})",
                             hint="only the elements set to numbers take values")
        values[node] = _number(element, item)


def _example(shape: tuple[int, ...]) -> str:
    row = "[" + ", ".join(str(i + 1) for i in range(min(shape[-1], 3))) + \
        (", ...]" if shape[-1] > 3 else "]")
    return row if len(shape) == 1 else "[" + ", ".join([row] * min(shape[0], 2)) + \
        (", ...]" if shape[0] > 2 else "]")


def default_targets(dag: Dag, output: int, within: bytearray) -> dict[str, int]:
    targets = {n: i for n, i in dag.inputs.items() if within[i] and i != output}
    # `named` is in creation order, which is id order: intermediates come out topologically.
    targets.update((n, i) for n, i in dag.named.items()
                   if i < output and within[i] and n not in targets)
    return targets


def require_values(dag: Dag, values: Sequence[float | None], needed: Sequence[int],
                   output: str) -> None:
    """An ``InputError`` naming the inputs among ``needed`` (a flag per node) that have no
    value in ``values``, and how to give them."""
    missing = [n for n, i in dag.inputs.items() if needed[i] and values[i] is None]
    if missing:
        _missing_error(dag, missing, output)


def _missing_error(dag: Dag, missing: list[str], output: str) -> None:
    names = ", ".join(missing)
    raise InputError(
        f"no value for {'input' if len(missing) == 1 else 'inputs'} {names} (needed to "
        f"evaluate {output})", dag.name_spans[missing[0]], dag.source,
        hint=f"give values ({values_example(missing[:3])}) or set them in the program "
        f"({missing[0]} = VALUE)")
