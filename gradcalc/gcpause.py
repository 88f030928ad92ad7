"""Pausing Python's cyclic garbage collector around bulk allocation.

Parsing, building and differentiating a big program allocate millions of small objects and
create no reference cycles; with the collector running, every few hundred allocations trigger a
scan, and the full scans walk the whole AST and graph again and again. Measured: building a
100,000-statement chain took 4x as long with the collector on (tests/benchmarks/bench_core.py).
"""

from __future__ import annotations

import gc
from types import TracebackType

__all__ = ["paused_gc"]


class paused_gc:
    """Context manager: the collector is off inside, and back to its previous state after."""

    __slots__ = ("_was_enabled",)

    def __enter__(self) -> None:
        self._was_enabled = gc.isenabled()
        gc.disable()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._was_enabled:
            gc.enable()
