"""gradcalc: gradients of equations by reverse-mode differentiation over a counted DAG.

>>> import gradcalc
>>> r = gradcalc.gradients("B = A*3; OUT = (B+1)*(B+2)", at={"A": 2})
>>> r.value, r.gradients
(56.0, {'A': 45.0, 'B': 15.0})

Python code can also build graphs directly, PyTorch style:

>>> a = gradcalc.Value(2.0, requires_grad=True)
>>> b = a * 3
>>> out = (b + 1) * (b + 2)
>>> out.backward()
>>> a.grad, b.grad
(45.0, 15.0)

Importing the package is cheap: each part is loaded when it is first used, Lark only when the
grammar's tables must be compiled, Rich and Typer only by the command-line interface.
"""

from typing import TYPE_CHECKING, Any

# The function, not the submodule of the same name, which the import system would otherwise
# bind to ``gradcalc.parse`` once anything imports it.
from gradcalc.parse import parse

__version__ = "0.1.0"

# Where each other public name lives. Nothing else is imported until it is used: the command
# installs its Ctrl-C handling before loading the rest (a Ctrl-C during start-up is then a
# quiet exit 130, not a traceback), and ``import gradcalc`` costs little.
_HOMES = {
    "Result": "api", "Stats": "api", "compile_program": "api", "gradients": "api",
    "constant_value": "api", "element_names": "api",
    "Program": "ast",
    "Dag": "dag", "build": "dag",
    "ArityError": "errors", "CycleError": "errors", "Diagnostic": "errors",
    "EvaluationError": "errors", "GradcalcError": "errors", "InputError": "errors",
    "LimitError": "errors", "NameResolutionError": "errors", "ParseError": "errors",
    "ShapeError": "errors",
    "Source": "errors", "Span": "errors",
    "Value": "value", "zero_grad": "value", "FUNCTION_NAMES": "value",
    "solve_line": "batch",  # the batch layer loads the output formats: only on demand
    "jacobian": "derivatives", "hessian": "derivatives", "check_gradients": "derivatives",
}

if TYPE_CHECKING:
    from gradcalc.api import (
        Result,
        Stats,
        compile_program,
        constant_value,
        element_names,
        gradients,
    )
    from gradcalc.ast import Program
    from gradcalc.batch import solve_line
    from gradcalc.dag import Dag, build
    from gradcalc.derivatives import check_gradients, hessian, jacobian
    from gradcalc.errors import (
        ArityError,
        CycleError,
        Diagnostic,
        EvaluationError,
        GradcalcError,
        InputError,
        LimitError,
        NameResolutionError,
        ParseError,
        ShapeError,
        Source,
        Span,
    )
    from gradcalc.value import FUNCTION_NAMES as FUNCTION_NAMES
    from gradcalc.value import Value, zero_grad


def __getattr__(name: str) -> Any:
    """The public names, loaded on first use; ``gradcalc.sin``, ``gradcalc.relu``, ...: every
    function of the op registry, on values."""
    import importlib

    home = _HOMES.get(name)
    if home is not None:
        found = getattr(importlib.import_module(f"gradcalc.{home}"), name)
        globals()[name] = found  # later lookups are ordinary attribute reads
        return found
    from gradcalc.ops import FUNCTIONS

    if name in FUNCTIONS:
        from gradcalc.value import function

        return function(name)
    # Also how ``from gradcalc import engine`` finds that a submodule must be imported.
    raise AttributeError(f"module 'gradcalc' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])


__all__ = [
    "ArityError",
    "CycleError",
    "Dag",
    "Diagnostic",
    "EvaluationError",
    "GradcalcError",
    "InputError",
    "LimitError",
    "NameResolutionError",
    "ParseError",
    "Program",
    "Result",
    "ShapeError",
    "Source",
    "Span",
    "Stats",
    "Value",
    "build",
    "check_gradients",
    "compile_program",
    "constant_value",
    "element_names",
    "gradients",
    "hessian",
    "jacobian",
    "parse",
    "solve_line",
    "zero_grad",
]
