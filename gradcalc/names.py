"""Fresh names: the one generator behind every name gradcalc makes up (an unnamed output's
``OUT``/``OUT2``, the ``A``, ``B``, ... ``T1`` of printed programs, the ``t1``, ``t2`` of shared
parts in formulas and listings, the names of unnamed :class:`~gradcalc.value.Value` inputs)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

__all__ = ["fresh"]

_CAPITALS = tuple(chr(c) for c in range(ord("A"), ord("Z") + 1))


def fresh(taken: set[str], stem: str, *, first: Literal["stem", "capitals"] | None = None
          ) -> Iterator[str]:
    """Names not in ``taken``, in order, each added to ``taken`` as it is given: ``stem1``,
    ``stem2``, ... ; with ``first="stem"`` the stem itself comes first and the numbers start
    at 2 (``OUT``, ``OUT2``, ``OUT3``); with ``first="capitals"`` the capitals ``A`` to ``Z``
    come first (then ``T1``, ``T2``, ... for ``stem="T"``). Endless: take what you need with
    ``next``. Numbers only go up, so giving n names costs O(n + len(taken)) lookups."""
    if first == "capitals":
        for name in _CAPITALS:
            if name not in taken:
                taken.add(name)
                yield name
    count = 1
    if first == "stem":
        if stem not in taken:
            taken.add(stem)
            yield stem
        count = 2
    while True:
        name = f"{stem}{count}"
        if name not in taken:
            taken.add(name)
            yield name
        count += 1
