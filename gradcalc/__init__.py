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

Importing the package is cheap: Lark is loaded only when the grammar's tables must be compiled,
Rich and Typer only by the command-line interface.
"""

from typing import Any

from gradcalc.api import Result, Stats, compile_program, gradients
from gradcalc.ast import Program
from gradcalc.dag import Dag, build
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
    Source,
    Span,
)
from gradcalc.parse import parse
from gradcalc.value import FUNCTION_NAMES, Value, zero_grad

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``gradcalc.sin``, ``gradcalc.relu``, ...: every function of the op registry, on values."""
    if name in FUNCTION_NAMES:
        from gradcalc.value import function

        return function(name)
    if name == "solve_line":  # the batch layer loads the output formats: only on demand
        from gradcalc.batch import solve_line

        return solve_line
    if name in ("jacobian", "hessian", "check_gradients"):
        from gradcalc import derivatives

        return getattr(derivatives, name)
    raise AttributeError(f"module 'gradcalc' has no attribute {name!r}")

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
    "Source",
    "Span",
    "Stats",
    "Value",
    "build",
    "check_gradients",
    "compile_program",
    "gradients",
    "hessian",
    "jacobian",
    "parse",
    "solve_line",
    "zero_grad",
]
