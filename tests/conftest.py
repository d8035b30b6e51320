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


def shared_data(*parts: str) -> Path:
    """A path inside ``../shared/data`` (real recordings; CI has them beside the clone).

    Missing data fails the test rather than skipping it, so a test never passes by not running.
    """
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"real test data not found at {path} (expected ../shared/data beside the repo)")
    return path


FOUR_PLANE = (
    "bruker_calscipy_4plane_tseries",
    "reg1_x300_y009n_z1425t1530_p110t131_APr_VSleft-007",
)
ONE_PLANE = ("bruker_calscipy_1plane_tseries", "EM0121_PRE-001")
