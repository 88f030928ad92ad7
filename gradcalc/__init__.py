"""gradcalc: gradients of equations by reverse-mode differentiation over a counted DAG.

>>> import gradcalc
>>> r = gradcalc.gradients("B = A*3; OUT = (B+1)*(B+2)", at={"A": 2})
>>> r.value, r.gradients
(56.0, {'A': 45.0, 'B': 15.0})

Importing the package is cheap: Lark is loaded on the first parse, Rich and Typer only by the
command-line interface.
"""

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
    NameResolutionError,
    ParseError,
    Source,
    Span,
)
from gradcalc.parse import parse

__version__ = "0.1.0"

__all__ = [
    "ArityError",
    "CycleError",
    "Dag",
    "Diagnostic",
    "EvaluationError",
    "GradcalcError",
    "InputError",
    "NameResolutionError",
    "ParseError",
    "Program",
    "Result",
    "Source",
    "Span",
    "Stats",
    "build",
    "compile_program",
    "gradients",
    "parse",
]
