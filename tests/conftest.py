"""Shared test configuration.

GUI tests use napari's ``make_napari_viewer`` fixture with ``show=True`` under Xvfb (pytest-xvfb
starts it); with a hidden window the canvas renders black.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO
