"""Statement shapes: parse each shape of statement once, replay its nodes for the rest.

Generated and real programs repeat a few statement shapes with different names and numbers
(``X7 = sin(X6) + cos(X6)``). Two statements share a shape when their text is the same once
every name and number is taken out (the *slots*), and each slot is of the same kind (a name or
a number). The parser's reductions depend only on the kinds of the tokens, so every statement
of a shape gets the same nodes, with its own names, numbers and offsets.

``parse._run_shaped`` cuts a program into statements and asks :class:`StatementShapes` for each
one. The :data:`LEARN_AT`-th time a shape is seen, the parser parses the statement and the
shapes learn a template from the nodes it wrote: every offset anchored to a fixed part of the
text, every payload taken from a slot or from the operator's name. The template is compiled
to straight-line Python (like :mod:`gradcalc.codegen`, with no text of the program in the
source), which appends the nodes of every later statement of the shape in a few list
operations instead of the parser's dozens of steps.

What a template cannot describe is left to the parser: a statement longer than
:data:`MAX_PIECE` characters, a number too large for a float (the parser reports it), a
statement whose offsets cannot be anchored to its text. The program is the same
:class:`~gradcalc.ast.Postfix`, array for array, as the parser's alone (checked by
``tests/test_replay.py`` on generated and hostile programs).

Bounds per program: :data:`MAX_SHAPES` templates (their nodes at most those of the statements
they came from), :data:`MAX_SEEN` shapes whose sightings are counted. When fewer than half the
statements of a :data:`WINDOW` were replayed, :attr:`StatementShapes.cold` tells the caller to
parse the rest in one run: a program whose statements mostly differ pays one window for the
attempt.
"""

from __future__ import annotations

import math
import re
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gradcalc.ast import CALL, INDEX, NAME, NUM, Postfix, Statement

__all__ = ["LEARN_AT", "MAX_PIECE", "MAX_SEEN", "MAX_SHAPES", "WINDOW", "StatementShapes"]

#: A compiled template: (parts, base) -> the statement appended, or None.
Replay = Callable[[list[str], int], "Statement | None"]

#: Longest statement text (from a separator to the next one) that is keyed by its shape.
MAX_PIECE = 1024
#: Shapes kept per program.
MAX_SHAPES = 4096
#: Shapes not learned yet whose sightings are counted, per program.
MAX_SEEN = 65536
#: The sighting of a shape at which it is learned: compiling one costs about as much as
#: parsing 20 statements, so a shape that comes back only a few times is not worth it.
LEARN_AT = 8
#: Statements per window: when fewer than half of a window's statements were replayed, the
#: rest of the program is parsed in one run (keys and lone parses would cost more than they
#: save).
WINDOW = 1024


def _slots() -> re.Pattern[str]:
    # the grammar's own shapes of a number and a name, a number first: `2e5` is one number
    from gradcalc.parse import NAME_PATTERN, NUMBER_PATTERN

    return re.compile(f"((?:{NUMBER_PATTERN})|(?:{NAME_PATTERN}))")


@dataclass(slots=True, eq=False)
class _Template:
    """The nodes of one statement shape, with every offset anchored to a fixed part of the
    shape's text (the part's start plus a delta) and every payload taken from a slot (the
    names and numbers, in order) or from the program's words (an operator's name)."""

    kinds: bytes
    arities: array[int]
    anchors: list[tuple[int, int]]  # (part, delta): starts, then ends, marks, mark ends
    sources: list[tuple[int, int]]  # per node: (0, word index) an operator's name,
    # (1, slot) a name, (2, slot) a number, (3, slot) a number with a minus folded in
    fixed: list[int]  # the length of each fixed part
    name_slot: int  # the statement's name, -1 for a bare expression
    name_anchor: tuple[int, int]


def _compile(template: _Template, nodes: Postfix) -> Replay:
    """The template as a function appending its nodes to ``nodes`` (see :func:`_source`)."""
    namespace: dict[str, Any] = {
        "KINDS": nodes.kinds, "NUMBERS": nodes.numbers, "K": template.kinds,
        "A": template.arities, "kinds": nodes.kinds.extend, "arities": nodes.arities.extend,
        "payloads": nodes.payloads.fromlist, "starts": nodes.starts.fromlist,
        "ends": nodes.ends.fromlist, "marks": nodes.marks.fromlist,
        "mark_ends": nodes.mark_ends.fromlist, "values": nodes.numbers.fromlist,
        "word": nodes.word, "Statement": Statement, "float": float, "len": len,
        "__builtins__": {}}
    exec(compile(_source(template), "<statement shape>", "exec"), namespace)
    return namespace["replay"]


def _source(template: _Template) -> str:
    """Straight-line Python for the template: a function of the statement's parts (its text
    split at its slots) and start offset that appends its nodes and returns its
    :class:`~gradcalc.ast.Statement`, or None (nothing appended) if a number is too large.

    Like :mod:`gradcalc.codegen`, no text of the program reaches the source: it is made of
    integers (part numbers, deltas, word indices), fixed identifiers and keywords; the
    statement's names and numbers come in at run time as ``parts``."""
    count = len(template.kinds)
    slots = sorted({slot for kind, slot in template.sources if kind}
                   | ({template.name_slot} if template.name_slot >= 0 else set()))
    lines = ["def replay(parts, base):"]
    lines += [f"    s{int(slot)} = parts[{2 * int(slot) + 1}]" for slot in slots]
    numbers = [(kind, slot) for kind, slot in template.sources if kind >= 2]
    for index, (kind, slot) in enumerate(numbers):
        sign = "-" if kind == 3 else ""
        lines += [f"    n{index} = {sign}float(parts[{2 * int(slot) + 1}])",
                  f"    if n{index} - n{index}:",  # inf - inf is NaN, which is true
                  "        return None"]
    # the start of fixed part k: base + the lengths of the parts before it
    lines.append("    f0 = base")
    for part in range(1, len(template.fixed)):
        lines.append(f"    f{part} = f{part - 1} + {int(template.fixed[part - 1])}"
                     f" + len(parts[{2 * part - 1}])")
    lines += ["    first = len(KINDS)", "    number = len(NUMBERS)", "    kinds(K)",
              "    arities(A)"]
    payloads = []
    numbered = 0
    for kind, slot in template.sources:
        if kind == 0:
            payloads.append(str(int(slot)))
        elif kind == 1:
            payloads.append(f"word(s{int(slot)})")
        else:
            payloads.append(f"number + {numbered}")
            numbered += 1
    lines.append(f"    payloads([{', '.join(payloads)}])")
    offsets = [f"f{int(part)} + {int(delta)}" for part, delta in template.anchors]
    for column, name in enumerate(("starts", "ends", "marks", "mark_ends")):
        lines.append(f"    {name}([{', '.join(offsets[column * count:(column + 1) * count])}])")
    if numbers:
        lines.append(f"    values([{', '.join(f'n{i}' for i in range(len(numbers)))}])")
    name = "None" if template.name_slot < 0 else f"s{int(template.name_slot)}"
    part, delta = template.name_anchor
    lines.append(f"    return Statement({name}, f{int(part)} + {int(delta)}, first + {count - 1})")
    return "\n".join(lines) + "\n"


def _anchors(parts: list[str], base: int) -> tuple[dict[int, tuple[int, int]], dict[int, int]]:
    """For a statement split into ``parts`` at offset ``base``: every offset within a fixed
    part as (part, delta), and the slot starting at each slot's offset."""
    anchor: dict[int, tuple[int, int]] = {}
    slot_at: dict[int, int] = {}
    offset = base
    for index, part in enumerate(parts):
        if index % 2 == 0:
            for delta in range(len(part) + 1):
                anchor[offset + delta] = (index // 2, delta)
        else:
            slot_at[offset] = index // 2
        offset += len(part)
    return anchor, slot_at


def _learn(nodes: Postfix, first: int, statement: Statement, parts: list[str],
           base: int) -> _Template | None:
    """The template of the statement the parser just wrote (nodes ``first``...), or None if
    one of its offsets or payloads is not where its text's parts say."""
    anchor, slot_at = _anchors(parts, base)
    slots = parts[1::2]
    count = len(nodes.kinds) - first
    if count <= 0 or statement.root != first + count - 1 or statement.params is not None:
        return None  # (a function's definition is parsed: they are few)
    anchors: list[tuple[int, int]] = []
    sources: list[tuple[int, int]] = []
    try:
        for column in (nodes.starts, nodes.ends, nodes.marks, nodes.mark_ends):
            anchors += [anchor[column[node]] for node in range(first, first + count)]
        for node in range(first, first + count):
            kind, payload, mark = nodes.kinds[node], nodes.payloads[node], nodes.marks[node]
            if kind == NUM:
                slot = slot_at[mark]
                value, literal = nodes.numbers[payload], float(slots[slot])
                if nodes.mark_ends[node] != mark + len(slots[slot]) or abs(value) != literal \
                        or slots[slot].isidentifier():
                    return None
                negated = math.copysign(1.0, value) != math.copysign(1.0, literal)
                sources.append((3 if negated else 2, slot))
            elif kind in (NAME, CALL):  # a name, or a function's name, from its slot
                slot = slot_at[mark]
                if nodes.words[payload] != slots[slot] or not slots[slot].isidentifier():
                    return None
                sources.append((1, slot))
            elif kind == INDEX:
                return None  # (its payload is the index, read from text no slot stands for)
            else:  # an operator's registry name, or a literal's 0: the same in every statement
                sources.append((0, payload))
        if statement.name is None:
            name_slot = -1
        else:
            name_slot = slot_at[statement.name_start]
            if slots[name_slot] != statement.name:
                return None
        name_anchor = anchor[statement.name_start]
    except KeyError:
        return None
    return _Template(bytes(nodes.kinds[first:]), nodes.arities[first:], anchors, sources,
                     [len(part) for part in parts[::2]], name_slot, name_anchor)


class StatementShapes:
    """Learns and replays the statement shapes of one program, for ``parse._run_shaped``.

    For each statement, :meth:`replay` either appends its nodes (and returns its
    :class:`~gradcalc.ast.Statement`), or returns None: the parser then parses the statement
    and, if :meth:`replay` asked to learn its shape (``learning``), calls :meth:`learned`."""

    def __init__(self, nodes: Postfix) -> None:
        self.nodes = nodes
        self._slots = _slots()
        self._templates: dict[tuple[str, bytes], Replay | None] = {}
        self._seen: dict[tuple[str, bytes], int] = {}  # sightings of shapes not learned
        self._statements = 0  # statements seen in this window
        self._hits = 0  # of which replayed
        self.cold = False  # the last window's statements were mostly not replayed
        self.learning: tuple[tuple[str, bytes], int, list[str], int] | None = None
        self.replayed = 0

    def replay(self, text: str, pos: int, end: int) -> Statement | None:
        """Append the nodes of the statement ``text[pos:end]`` if its shape is known."""
        self.learning = None
        self._statements += 1
        if self._statements == WINDOW:
            self.cold = 2 * self._hits < WINDOW
            self._statements = self._hits = 0
        if end - pos > MAX_PIECE:
            return None
        piece = text[pos:end]
        if not piece.isascii():
            return None  # (a name beyond ASCII is normalised by the parser: left to it)
        parts = self._slots.split(piece)
        if len(parts) == 1:
            return None  # no name and no number: blank, or not a statement a shape describes
        # the fixed text, and which slots are names (a number is never an identifier)
        key = "\0".join(parts[::2]), bytes(map(str.isidentifier, parts[1::2]))
        template = self._templates.get(key)
        if template is None:
            if key in self._templates:
                return None  # a shape that cannot be replayed
            seen = self._seen.get(key, 0) + 1
            if seen < LEARN_AT:
                if seen > 1 or len(self._seen) < MAX_SEEN:
                    self._seen[key] = seen
            elif len(self._templates) < MAX_SHAPES:
                self.learning = (key, len(self.nodes.kinds), parts, pos)
            return None
        statement = template(parts, pos)
        if statement is not None:
            self._hits += 1
            self.replayed += 1
        return statement

    def learned(self, statement: Statement) -> None:
        """The parser wrote the statement :meth:`replay` asked to learn."""
        assert self.learning is not None
        key, first, parts, base = self.learning
        self.learning = None
        self._seen.pop(key, None)
        template = _learn(self.nodes, first, statement, parts, base)
        self._templates[key] = None if template is None else _compile(template, self.nodes)
