"""The ``gradcalc`` command and ``python -m gradcalc``.

Ctrl-C handling is installed here, before the rest of gradcalc (Typer, Rich, the engine) is
imported, so that an interrupt at any moment, start-up included, ends with exit 130 and no
traceback.
"""

from __future__ import annotations

import signal
import sys

from gradcalc.status import ExitStatus


def main() -> None:
    """Entry point of the ``gradcalc`` console script."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, interrupted)  # not when started with SIGINT ignored
    try:
        from gradcalc import cli
    except KeyboardInterrupt:
        sys.exit(ExitStatus.INTERRUPTED)
    cli.main()


def interrupted(signum: int, frame: object) -> None:
    """Ctrl-C: stop. A second Ctrl-C must not break off the cleanup of the first (worker
    processes ending, the complete lines already written flushed), so it is ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
