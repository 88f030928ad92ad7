"""Functions of the program's own (``f(x, y) = x^2 + y``): their definitions, checked.

A definition is a statement with parameters (:attr:`gradcalc.ast.Statement.params`). Its body
sees only its parameters and the constants (``pi``, ``e``), and may call registry functions
and other functions of the program, in any order of definition, but never itself, directly
or through others. :func:`collect` checks all of that before anything is built, so an error
in a function is reported even if nothing calls it; the builder (:mod:`gradcalc.dag`) then
inlines every call, each call its own nodes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gradcalc.ast import CALL, NAME, Program, Statement
from gradcalc.errors import ArityError, CycleError, NameResolutionError, Span
from gradcalc.fmt import LEADS_TO
from gradcalc.ops import CONSTANTS, FUNCTIONS
from gradcalc.order import dependency_order

__all__ = ["INLINE_LIMIT", "Function", "collect"]

#: The most nodes the calls of a program's functions may expand to, in all: a function that
#: calls another twice with different arguments doubles, so ten such levels make a thousand
#: copies (an error names the bound; shared parts are better computed once, as statements).
INLINE_LIMIT = 4_000_000

#: ``error(cls, message, span, hint)``: the builder's way to make a positioned error.
ErrorMaker = Callable[..., Exception]


@dataclass(slots=True, eq=False)
class Function:
    """A checked definition: its parameters' names, in order, and its body's nodes
    (``first``..``root`` in the program's postfix arrays)."""

    name: str
    statement: Statement
    params: tuple[str, ...]
    first: int
    root: int

    @property
    def size(self) -> int:
        return self.root - self.first + 1


def collect(program: Program, variables: dict[str, Statement], error: ErrorMaker,
            check_registry_call: Callable[[int], object],
            functions: dict[str, Function]) -> None:
    """Fill ``functions`` with the program's functions by name, checked: names that clash,
    parameters, free names in bodies, calls (known function, number of arguments) and
    recursion. ``functions`` is filled before the bodies are checked, so that
    ``check_registry_call`` (which raises for an unknown function) can suggest them."""
    nodes = program.nodes
    for statement in program.statements:
        if statement.params is None:
            continue
        name = statement.name
        assert name is not None
        span = program.name_span(statement)
        if name in CONSTANTS or name in FUNCTIONS:
            what = "the constant" if name in CONSTANTS else "the function"
            raise error(NameResolutionError, f"cannot define {name}: it is {what} {name}",
                        span, hint="choose another name")
        if name in functions:
            first = program.name_span(functions[name].statement)
            raise error(NameResolutionError, f"{name} is defined twice", span,
                        hint=f"it was first defined at {first.line}:{first.column}")
        if name in variables:
            other = program.name_span(variables[name])
            raise error(NameResolutionError, f"{name} is both a function and a variable", span,
                        hint=f"the variable is assigned at {other.line}:{other.column}; "
                        "rename one of them")
        params = tuple(nodes.words[nodes.payloads[p]] for p in statement.params)
        functions[name] = Function(name, statement, params, nodes.first(statement.root),
                                   statement.root)
    for function in functions.values():
        _check_parameters(program, function, functions, error)
        _check_body(program, function, functions, error, check_registry_call)
    _check_recursion(program, functions, error)


def _check_parameters(program: Program, function: Function, functions: dict[str, Function],
                      error: ErrorMaker) -> None:
    seen: set[str] = set()
    assert function.statement.params is not None
    for node, param in zip(function.statement.params, function.params, strict=True):
        span = program.span(node)
        if param in seen:
            raise error(NameResolutionError, f"{param} is a parameter of {function.name} twice",
                        span, hint="give each parameter its own name")
        seen.add(param)
        if param in CONSTANTS or param in FUNCTIONS or param in functions:
            what = ("the constant" if param in CONSTANTS else "the function")
            raise error(NameResolutionError, f"a parameter cannot be named {param}: it is "
                        f"{what} {param}", span, hint="choose another name")


def _check_body(program: Program, function: Function, functions: dict[str, Function],
                error: ErrorMaker, check_registry_call: Callable[[int], object]) -> None:
    nodes = program.nodes
    kinds, payloads, words = nodes.kinds, nodes.payloads, nodes.words
    params = set(function.params)
    for node in range(function.first, function.root + 1):
        kind = kinds[node]
        if kind == NAME:
            word = words[payloads[node]]
            if word in params or word in CONSTANTS:
                continue
            if word in functions or word in FUNCTIONS:
                raise error(NameResolutionError, f"{word} is a function, not a value",
                            program.span(node), hint=f"call it with arguments: {word}(...)")
            raise error(NameResolutionError, f"{word} is not a parameter of {function.name}",
                        program.span(node),
                        hint=f"a function sees only its parameters and pi, e: add it, as in "
                        f"{function.name}({', '.join((*function.params, word))}) = ...")
        elif kind == CALL:
            called = functions.get(words[payloads[node]])
            if called is None:
                check_registry_call(node)
            else:
                check_arity(program, node, called, error)


def check_arity(program: Program, node: int, function: Function, error: ErrorMaker) -> None:
    """The call ``node`` of ``function`` has as many arguments as it has parameters."""
    count, wanted = program.nodes.arities[node], len(function.params)
    if count != wanted:
        takes = f"{wanted} argument" + ("s" if wanted != 1 else "")
        raise error(ArityError, f"{function.name} takes {takes}, got {count}",
                    program.span(node),
                    hint=f"write {function.name}({', '.join(function.params)})")


def _check_recursion(program: Program, functions: dict[str, Function],
                     error: ErrorMaker) -> None:
    """No function calls itself, directly or through others (a loop over the call graph,
    with an explicit stack)."""
    nodes = program.nodes
    calls: dict[str, list[int]] = {  # function -> its calls of the program's functions
        name: [node for node in range(f.first, f.root + 1)
               if nodes.kinds[node] == CALL and nodes.words[nodes.payloads[node]] in functions]
        for name, f in functions.items()}
    dependency_order(functions, calls, lambda node: nodes.words[nodes.payloads[node]],
                     lambda path, callee, node: _recursion(program, path, callee,
                                                           program.span(node), error))


def _recursion(program: Program, path: list[str], callee: str, span: Span,
               error: ErrorMaker) -> Exception:
    loop = [*path[path.index(callee):], callee]
    if len(loop) == 2:
        return error(CycleError, f"{callee} calls itself", span,
                     hint="functions are inlined where they are called, so they cannot recurse")
    return error(CycleError, "functions call each other in a loop: "
                 + f" {LEADS_TO} ".join(loop), span,
                 hint="functions are inlined where they are called, so they cannot recurse")
