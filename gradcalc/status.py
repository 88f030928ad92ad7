"""The exit statuses of the ``gradcalc`` command: one table, from which the errors take their
codes and ``--help`` its text (the README's table is checked against it by the tests).

Modelled on httpie's ``ExitStatus``; 70 and 74 are sysexits.h's EX_SOFTWARE and EX_IOERR, and
130 and 141 are what a shell reports for a command ended by SIGINT and SIGPIPE (128 + signal).
"""

from __future__ import annotations

import enum

__all__ = ["ExitStatus", "help_text"]


class ExitStatus(enum.IntEnum):
    """What the command's exit code means."""

    OK = 0
    FAILED = 1
    USAGE = 2
    INTERNAL = 70
    OUTPUT = 74
    INTERRUPTED = 130
    BROKEN_PIPE = 141

    @property
    def meaning(self) -> str:
        """One line for ``--help``."""
        return _MEANINGS[self]


_MEANINGS = {
    ExitStatus.OK: "success",
    ExitStatus.FAILED: "evaluation failed (log(-1), division by zero, overflow) or a "
    "documented limit hit (a program over --max-size, symbolic size or time, exact numbers "
    "over 10,000 bits)",
    ExitStatus.USAGE: "bad invocation or bad program (syntax, names, cycles, arguments, --at, "
    "an option that does not apply, a --batch input that is not text)",
    ExitStatus.INTERNAL: "internal error (please report it)",
    ExitStatus.OUTPUT: "the results could not be written (a full disk)",
    ExitStatus.INTERRUPTED: "interrupted",
    ExitStatus.BROKEN_PIPE: "standard output closed early",
}


def help_text() -> str:
    """``Exit codes: 0 success; 1 ...; 141 standard output closed early.``"""
    return "Exit codes: " + "; ".join(f"{s.value} {s.meaning}" for s in ExitStatus) + "."
