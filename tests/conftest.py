"""Shared helpers for the test suite."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parent.parent

# --- Hypothesis profiles -----------------------------------------------------------------------
# ``ci`` (the default, always: CI must never go red by chance) draws the same examples on every
# run; ``explore`` draws fresh random examples, ten times as many, for a developer to run before
# changing the pictures, the parser or the algebra: ``pytest --hypothesis-profile=explore``.
# Whatever an exploring run finds becomes an explicit ``@example`` so that ``ci`` keeps it.
# Property tests take their example counts from ``helpers.property_settings``, relative to these.
settings.register_profile("ci", max_examples=100, derandomize=True, database=None,
                          deadline=None, print_blob=True)
settings.register_profile("explore", max_examples=1000, derandomize=False, database=None,
                          deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# --- the grammar cache --------------------------------------------------------------------------
# The tests (and the command lines they start, which inherit the environment) never write into
# the user's real cache: the whole session gets a cache folder of its own.
_CACHE = tempfile.mkdtemp(prefix="gradcalc-test-cache-")
os.environ["XDG_CACHE_HOME"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)


@pytest.fixture
def root() -> Path:
    return ROOT


# --- golden files (tests/golden/) -------------------------------------------------------------

GOLDEN = Path(__file__).resolve().parent / "golden"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", default=False,
                     help="rewrite tests/golden/* from the current output instead of comparing")


@pytest.fixture
def golden(request: pytest.FixtureRequest):
    """``golden(name, text)``: compare ``text`` byte for byte with ``tests/golden/NAME`` (or
    rewrite the file when pytest runs with ``--update-golden``)."""
    update = request.config.getoption("--update-golden")

    def check(name: str, text: str) -> None:
        path = GOLDEN / name
        data = text.encode("utf-8")
        if update:
            GOLDEN.mkdir(exist_ok=True)
            path.write_bytes(data)
        assert path.exists(), f"missing golden file {path}: run pytest --update-golden"
        expected = path.read_bytes()
        assert data == expected, (
            f"output differs from {path.name} (run pytest --update-golden to accept it)\n"
            f"--- expected\n{expected.decode('utf-8')}--- got\n{text}")

    return check
