"""Numbers and signs as text, for every view: the shortest text that reads back as the same
float, three-digit numbers for pictures, big counts, the JSON forms of numbers and counts, and
the mathematical signs (with their plain-ASCII stand-ins) the text views share."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gradcalc.ops import Op

__all__ = [
    "BACK",
    "DIVIDE",
    "JSON_SAFE_INTEGER",
    "LEADS_TO",
    "MINUS",
    "PARTIAL",
    "TIMES",
    "Glyphs",
    "format_count",
    "format_number",
    "json_count",
    "json_number",
    "short",
]

# --- numbers ---------------------------------------------------------------------------------


def format_number(x: float) -> str:
    """The shortest text that round-trips (``repr``), without a trailing ``.0`` on integral
    values; ``inf``, ``-inf``, ``nan`` for non-finite values; negative zero prints as ``0``."""
    if x == 0:
        return "0"
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


def short(x: float) -> str:
    """Three significant digits, as pictures and explanations show numbers (``-0.279``,
    ``7.19``, ``45``)."""
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    text = f"{x:.3g}"
    return "0" if text in ("-0", "0") else text


def json_number(x: float) -> float | str:
    """A float for JSON, or the strings ``"inf"``, ``"-inf"``, ``"nan"`` (not JSON numbers)."""
    if math.isfinite(x):
        return x + 0.0  # no negative zero
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


#: The largest count JSON gives as a number: beyond 2^53 a reader's doubles lose digits.
JSON_SAFE_INTEGER = 2**53


def json_count(n: int) -> int | str:
    """An exact count for JSON: the integer while it is JSON-safe (below 2^53), else the
    compact text of :func:`format_count` (``"2^60"``)."""
    return n if n < JSON_SAFE_INTEGER else format_count(n)


def format_count(n: int) -> str:
    """An exact count, compactly: digits up to 15 of them, ``2^k`` for powers of two, otherwise
    three significant digits with an exponent (``1.07e301``). Works for counts with millions of
    digits without converting them to decimal."""
    if n < 10**15:
        return str(n)
    if n & (n - 1) == 0:
        return f"2^{n.bit_length() - 1}"
    shift = max(0, n.bit_length() - 64)
    log10 = math.log10(n >> shift) + shift * math.log10(2)
    exponent = math.floor(log10)
    mantissa = 10 ** (log10 - exponent)
    if round(mantissa, 2) >= 10:
        mantissa, exponent = mantissa / 10, exponent + 1
    return f"{mantissa:.2f}e{exponent}"


# --- signs -----------------------------------------------------------------------------------

PARTIAL = "∂"  # a gradient: ∂OUT/∂A
TIMES = "×"
MINUS = "−"
DIVIDE = "÷"
LEADS_TO = "→"  # a step along a path, a hand-over in the backward pass, a cycle's link
BACK = "↑"  # a reference back to something shown above


@dataclass(frozen=True, slots=True)
class Glyphs:
    """The signs of a text view: Unicode, or plain ASCII (``--ascii``: ``d`` for ∂, ``*`` for
    ×, ``->`` for →). Pictures extend it with their line drawing
    (:class:`gradcalc.picture.Style`)."""

    unicode: bool = True

    @property
    def partial(self) -> str:
        return PARTIAL if self.unicode else "d"

    @property
    def times(self) -> str:
        return TIMES if self.unicode else "*"

    @property
    def leads_to(self) -> str:
        return LEADS_TO if self.unicode else "->"

    @property
    def back(self) -> str:
        return BACK if self.unicode else "^"

    def symbol(self, op: Op) -> str:
        """How an operation is shown: its pretty sign (``×``, ``−``, ``÷``), its ASCII symbol,
        or its name."""
        if self.unicode:
            return op.label
        return op.symbol or op.name
