"""Numbers as text: the shortest text that reads back as the same float, and big counts."""

from __future__ import annotations

import math

__all__ = ["format_count", "format_number", "json_number"]


def format_number(x: float) -> str:
    """The shortest text that round-trips (``repr``), without a trailing ``.0`` on integral
    values; ``inf``, ``-inf``, ``nan`` for non-finite values; negative zero prints as ``0``."""
    if x == 0:
        return "0"
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


def json_number(x: float) -> float | str:
    """A float for JSON, or the strings ``"inf"``, ``"-inf"``, ``"nan"`` (not JSON numbers)."""
    if math.isfinite(x):
        return x + 0.0  # no negative zero
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


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
