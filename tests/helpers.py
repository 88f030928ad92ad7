"""Helpers shared by the test modules."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from hypothesis import HealthCheck, settings

# The number of examples the active Hypothesis profile gives a test of weight 100 (see
# conftest.py: 100 under the derandomized ``ci`` profile, ten times more under ``explore``).
BASELINE_EXAMPLES = 100


def scaled(examples: int) -> int:
    """``examples`` under the ``ci`` profile, proportionally more under ``explore``: each
    property test states its own cost once, and the profile decides how hard to look."""
    return max(1, examples * settings.default.max_examples // BASELINE_EXAMPLES)


def property_settings(examples: int, **overrides: object) -> settings:
    """Settings for a property test of weight ``examples`` under the active profile
    (derandomized in CI, random when exploring), with no deadline and no example database."""
    return settings(max_examples=scaled(examples), deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.data_too_large],
                    **overrides)  # type: ignore[arg-type]


def console_script() -> str:
    found = Path(sys.executable).with_name("gradcalc")
    if found.exists():
        return str(found)
    which = shutil.which("gradcalc")
    assert which, "the gradcalc console script is not installed"
    return which
