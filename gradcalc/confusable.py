"""Names that look alike: warnings for Latin ``A`` beside Cyrillic ``А``, like rustc's
``confusable_idents`` and ``mixed_script_confusables`` lints.

Names may use letters of any script (``θ``, ``ω``), and two different names are two
variables, however they look. Where that is likely a mistake, :func:`lookalikes` warns:

* two names whose *skeletons* are equal: each letter of the table below (the Cyrillic and
  Greek letters that Unicode's confusables list gives as Latin ones) replaced by its Latin
  twin, so ``А`` (Cyrillic) and ``A`` (Latin) are one skeleton;
* one name that mixes scripts through such a letter (``dаta`` with a Cyrillic ``а``): a name
  like ``Δx``, whose Greek letter looks like no Latin one, is left alone.

A program in plain ASCII costs nothing here.
"""

from __future__ import annotations

import unicodedata

from gradcalc.ast import CALL, NAME, Program
from gradcalc.errors import Diagnostic, Span

__all__ = ["lookalikes"]

# Cyrillic and Greek letters that look like Latin ones, and the Latin letter each looks like.
_TWINS = str.maketrans({
    # Cyrillic
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "i", "ј": "j",
    "ѕ": "s", "ԁ": "d", "һ": "h", "ԛ": "q", "ԝ": "w", "А": "A", "В": "B", "Е": "E", "К": "K",
    "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T", "Х": "X", "І": "I", "Ј": "J",
    "Ѕ": "S", "Ԛ": "Q", "Ԝ": "W",
    # Greek
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N",
    "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "ο": "o", "ν": "v", "ι": "i", "α": "a",
})


def _script(char: str) -> str:
    """The script of a letter, from its Unicode name (``LATIN``, ``CYRILLIC``, ``GREEK``)."""
    return unicodedata.name(char, "UNKNOWN").split(" ")[0].capitalize()


def lookalikes(program: Program) -> list[Diagnostic]:
    """Warnings (kind ``confusable``) for the program's names that look alike, each at the
    place a name is first written."""
    source = program.source
    if source.text.isascii():
        return []
    first: dict[str, Span] = {}  # every name, where it is first written
    for statement in program.statements:
        if statement.name is not None:
            first.setdefault(statement.name, program.name_span(statement))
    nodes = program.nodes
    for node in range(len(nodes)):
        kind = nodes.kinds[node]
        if kind in (NAME, CALL):
            name = nodes.words[nodes.payloads[node]]
            if name not in first:
                first[name] = program.span(node) if kind == NAME else program.mark(node)
    warnings: list[Diagnostic] = []
    seen: dict[str, str] = {}  # skeleton -> the first name with it
    for name, span in sorted(first.items(), key=lambda item: item[1].start):
        skeleton = name.translate(_TWINS)
        twin = seen.setdefault(skeleton, name)
        if twin != name:
            other = first[twin]
            warnings.append(Diagnostic(
                "confusable", f"{name} looks like {twin} (at {other.line}:{other.column}) but "
                f"is another name: {_letters(name, twin)}", span, source,
                hint="two names that look alike are two different variables; write them "
                "alike, or make them look different"))
        elif skeleton != name:
            mixed = _mixed(name)
            if mixed:
                warnings.append(Diagnostic("confusable", f"{name} mixes scripts: {mixed}", span,
                                           source, hint="retype it in one script"))
    return warnings


def _letters(name: str, twin: str) -> str:
    """Which letters differ, and their scripts: ``'А' is Cyrillic, 'A' is Latin``."""
    pairs = [(a, b) for a, b in zip(name, twin, strict=False) if a != b]
    return ", ".join(f"{a!r} is {_script(a)}, {b!r} is {_script(b)}" for a, b in pairs[:3])


def _mixed(name: str) -> str:
    """For a name of Latin letters with a lookalike letter of another script among them, which
    letter; '' otherwise."""
    scripts = {_script(c) for c in name if c.isalpha()}
    if "Latin" not in scripts or len(scripts) < 2:
        return ""
    odd = [c for c in name if c.isalpha() and _script(c) != "Latin" and c.translate(_TWINS) != c]
    return ", ".join(f"{c!r} is {_script(c)}" for c in odd[:3])
