"""Shared helpers for the test suite."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


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
