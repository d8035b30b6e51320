"""Issue 16, point 6: opening a widget starts the numba warm-up, once, for that widget's step."""

from __future__ import annotations

import pytest

from conftest import dock_widget, shared_data
from napari_calcium._napari.widgets import _base

pytestmark = pytest.mark.gui


def test_opening_a_widget_starts_the_warm_up_for_its_step(make_napari_viewer, monkeypatch):
    calls = []
    monkeypatch.setattr(_base, "start_warm_up", lambda **kw: calls.append(kw))
    viewer = make_napari_viewer()
    dock_widget(viewer, "Detect ROIs")
    dock_widget(viewer, "Extract traces")
    assert calls == [{"first": "detect ROIs"}, {"first": "extract traces"}]


def test_the_warm_up_runs_once_per_process_and_can_be_turned_off(monkeypatch):
    from napari_calcium.core import _warmup

    monkeypatch.setattr(_warmup, "_current", None)
    monkeypatch.setenv("NAPARI_CALCIUM_WARMUP", "0")
    off = _warmup.start_warm_up(first="detect ROIs")
    assert off.mode == "off"
    assert _warmup.start_warm_up(first="dF/F") is off  # once per process


def test_opening_a_recording_starts_the_warm_up(make_napari_viewer, monkeypatch):
    """The warm-up starts when the plugin first reads a file: before any widget is opened."""
    from napari_calcium._napari import _reader

    calls = []
    monkeypatch.setattr(_reader, "start_warm_up", lambda **kw: calls.append(kw))
    viewer = make_napari_viewer()
    viewer.open(shared_data("neurofinder_crop", "movie.tif"), plugin="napari-calcium")
    assert calls == [{"first": "motion correction"}]
