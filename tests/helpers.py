"""Helpers shared by the test modules."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def console_script() -> str:
    found = Path(sys.executable).with_name("gradcalc")
    if found.exists():
        return str(found)
    which = shutil.which("gradcalc")
    assert which, "the gradcalc console script is not installed"
    return which
