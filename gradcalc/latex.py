"""Formulas as LaTeX (``--format latex``, the ``latex`` field of JSON).

A formula is gradcalc program text (bindings ``t1 = ...; P = ...;`` then the expression), so it
is read back with the grammar (:func:`gradcalc.parse.parse`) and each node of its flat postfix
AST is written as LaTeX in one loop: ``a/b`` as ``\\frac{a}{b}``, powers with braces, ``*`` as a
thin space (``\\cdot`` before a number), the registry's functions as ``\\sin``, ``\\sqrt{..}``,
``\\left|..\\right|`` or ``\\operatorname{sigmoid}``, Greek names as ``\\theta``, an element
``W[0][1]`` as ``W_{0,1}``, a name of several letters upright in ``\\mathrm``. Texts are kept as
fragments that refer to their operands and joined once at the end, so a deep formula costs
linear time and no recursion.
"""

from __future__ import annotations

import re
import unicodedata

from gradcalc.ast import APPLY, CALL, INDEX, NAME, NUM, VECTOR, Program
from gradcalc.parse import parse

__all__ = ["formula_latex", "gradient_latex", "name_latex"]

_SUM, _PRODUCT, _UNARY, _POWER, _ATOM = 1, 2, 3, 4, 9

#: Functions LaTeX has an operator for.
_OPERATORS = {
    "sin": r"\sin", "cos": r"\cos", "tan": r"\tan", "sinh": r"\sinh", "cosh": r"\cosh",
    "tanh": r"\tanh", "exp": r"\exp", "log": r"\log", "ln": r"\ln", "asin": r"\arcsin",
    "acos": r"\arccos", "atan": r"\arctan", "max": r"\max", "min": r"\min",
}

Fragment = str | int  # text, or the node whose text goes there


def name_latex(name: str) -> str:
    """A name as LaTeX: ``A``, ``x_{1}``, ``\\theta``, ``W_{0,1}``, ``\\mathrm{LOSS}``."""
    base, _, rest = name.partition("[")
    indices = re.findall(r"-?\d+", rest) if rest else []
    found = re.fullmatch(r"(.*?)_?(\d*)", base)
    assert found is not None
    stem, digits = found[1] or base, found[2] if found[1] else ""
    if len(stem) == 1:
        text = _greek(stem) or stem
    else:
        text = r"\mathrm{" + "".join(
            (_greek(c) or c) + ("{}" if _greek(c) else "") if c != "_" else r"\_"
            for c in stem) + "}"
    if digits:
        text += "_{" + digits + "}"
    if indices:
        text = ("{" + text + "}" if "_" in text else text) + "_{" + ",".join(indices) + "}"
    return text


def _greek(name: str) -> str | None:
    if len(name) != 1 or name.isascii():
        return None
    words = unicodedata.name(name, "").split()
    if len(words) == 4 and words[0] == "GREEK" and words[2] == "LETTER":
        letter = words[3].lower()
        return "\\" + (letter.capitalize() if words[1] == "CAPITAL" else letter)
    return None


def gradient_latex(output: str, name: str) -> str:
    """``\\frac{\\partial L}{\\partial W}``."""
    return (r"\frac{\partial " + name_latex(output) + r"}{\partial " + name_latex(name) + "}")


def formula_latex(text: str, output: str, name: str) -> str:
    """The gradient d``output``/d``name`` whose gradcalc formula is ``text`` (bindings
    first, then the expression), as LaTeX: ``\\frac{\\partial L}{\\partial W} = ...``, or an
    ``aligned`` block with a line per binding when there are bindings."""
    program = parse(text, "<formula>")
    lines = _statements(program)
    left = gradient_latex(output, name)
    if len(lines) == 1:
        return f"{left} = {lines[0][1]}"
    rows = [f"{name_latex(n)} &= {body}" for n, body in lines[:-1] if n is not None]
    rows.append(f"{left} &= {lines[-1][1]}")
    return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"


def _statements(program: Program) -> list[tuple[str | None, str]]:
    nodes = program.nodes
    texts: list[list[Fragment]] = []
    levels: list[int] = []
    stack: list[int] = []
    for node in range(len(nodes)):
        kind, payload, arity = nodes.kinds[node], nodes.payloads[node], nodes.arities[node]
        operands = stack[len(stack) - arity:] if arity else []
        del stack[len(stack) - arity:]
        if kind == NUM:
            text, level = _number(nodes.number_text(node, program.source.text))
        elif kind == NAME:
            word = nodes.words[payload]
            text, level = [r"\pi" if word == "pi" else name_latex(word)], _ATOM
        elif kind == INDEX:
            text, level = [*_wrapped(texts, levels, operands[0], _ATOM), f"_{{{payload}}}"], \
                _ATOM
        elif kind == VECTOR:
            text = [r"\left["]
            for i, operand in enumerate(operands):
                text += [", "] if i else []
                text.append(operand)
            text, level = [*text, r"\right]"], _ATOM
        elif kind == CALL:
            word = nodes.words[payload]
            text, level = _call(word, operands, texts, levels), \
                _POWER if word == "pow" else _ATOM
        else:
            assert kind == APPLY
            text, level = _operator(nodes.words[payload], operands, texts, levels)
        texts.append(text)
        levels.append(level)
        stack.append(node)
    return [(statement.name, _expand(texts, statement.root))
            for statement in program.statements]


def _number(written: str) -> tuple[list[Fragment], int]:
    mantissa, _, exponent = written.lower().partition("e")
    level = _UNARY if written.startswith("-") else _ATOM
    if not exponent:
        return [written], level
    return [f"{mantissa} \\times 10^{{{int(exponent)}}}"], _PRODUCT


def _wrapped(texts: list[list[Fragment]], levels: list[int], node: int, below: int
             ) -> list[Fragment]:
    """``node``'s text, in parentheses if it binds more loosely than ``below``."""
    if levels[node] < below:
        return [r"\left(", node, r"\right)"]
    return [node]


def _call(name: str, operands: list[int], texts: list[list[Fragment]], levels: list[int]
          ) -> list[Fragment]:
    if name == "sqrt":
        return [r"\sqrt{", operands[0], "}"]
    if name == "abs":
        return [r"\left|", operands[0], r"\right|"]
    if name == "pow":
        return ["{", *_wrapped(texts, levels, operands[0], _ATOM), "}^{", operands[1], "}"]
    head = _OPERATORS.get(name, r"\operatorname{" + name.replace("_", r"\_") + "}")
    text: list[Fragment] = [head, r"\left("]
    for i, operand in enumerate(operands):
        text += [", "] if i else []
        text.append(operand)
    return [*text, r"\right)"]


def _operator(op: str, operands: list[int], texts: list[list[Fragment]], levels: list[int]
              ) -> tuple[list[Fragment], int]:
    if op == "neg":
        return ["-", *_wrapped(texts, levels, operands[0], _POWER)], _UNARY
    a, b = operands
    if op in ("add", "sub"):
        right = _wrapped(texts, levels, b, _PRODUCT if op == "sub" else _SUM)
        if levels[b] == _UNARY:  # a - -x reads as a - (-x)
            right = [r"\left(", b, r"\right)"]
        return [*_wrapped(texts, levels, a, _SUM), " + " if op == "add" else " - ", *right], \
            _SUM
    if op == "div":
        return [r"\frac{", a, "}{", b, "}"], _ATOM
    if op == "pow":
        return ["{", *_wrapped(texts, levels, a, _ATOM), "}^{", b, "}"], _POWER
    if op == "matmul":
        return [*_wrapped(texts, levels, a, _PRODUCT), r" \, ", *_wrapped(texts, levels, b,
                                                                          _POWER)], _PRODUCT
    assert op == "mul"
    left = _wrapped(texts, levels, a, _PRODUCT)
    right = _wrapped(texts, levels, b, _POWER)
    starts_with_digit = levels[b] >= _POWER and _first_char(texts, b).isdigit()
    return [*left, r" \cdot " if starts_with_digit else r" \, ", *right], _PRODUCT


def _first_char(texts: list[list[Fragment]], node: int) -> str:
    item: Fragment = node
    while isinstance(item, int):
        if not texts[item]:
            return ""
        item = texts[item][0]
    return item[:1]


def _expand(texts: list[list[Fragment]], root: int) -> str:
    out: list[str] = []
    stack: list[Fragment] = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
        else:
            stack.extend(reversed(texts[item]))
    return "".join(out)
