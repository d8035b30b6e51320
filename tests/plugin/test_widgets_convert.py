"""Background jobs (progress + cancel) and the Convert recording widget in a real viewer."""

from __future__ import annotations

import time

import numpy as np
import pytest

import napari_calcium as nc
from conftest import FOUR_PLANE, shared_data
from napari_calcium.core.chunking import frame_blocks, track_blocks
from napari_calcium.errors import OperationCancelled

pytestmark = pytest.mark.gui


def _slow_job(n_blocks, *, progress=None, should_stop=None):
    """A stand-in for a core function: walks frame blocks, honours progress and should_stop."""
    done = 0
    blocks = frame_blocks(n_blocks * 10, block_frames=10)
    for block in track_blocks(blocks, progress=progress, should_stop=should_stop, desc="slow"):
        time.sleep(0.02)
        done = block.stop
    return done


def test_job_reports_progress_and_returns(qtbot):
    from napari_calcium._napari._workers import start_job

    results = []
    job = start_job(_slow_job, 5, on_returned=results.append)
    qtbot.waitUntil(lambda: job.done, timeout=10_000)
    assert results == [50]


def test_job_cancel_stops_between_blocks(qtbot):
    from napari_calcium._napari._workers import start_job

    errors, results = [], []
    job = start_job(_slow_job, 500, on_returned=results.append, on_errored=errors.append)
    qtbot.wait(100)
    job.cancel()
    qtbot.waitUntil(lambda: job.done, timeout=10_000)
    assert results == [] and len(errors) == 1 and isinstance(errors[0], OperationCancelled)
    assert "after" in str(errors[0]) and "of 5000 frames" in str(errors[0])


def test_convert_widget_from_the_plugins_menu(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-calcium", "Convert recording")
    src = shared_data(*FOUR_PLANE)
    widget.source.value = src
    widget.output.value = tmp_path
    widget.target.value = "binary"
    job = widget.start()
    assert not widget.run_button.enabled and widget.cancel_button.enabled
    qtbot.waitUntil(lambda: job.done, timeout=60_000)
    assert widget.result is not None and len(widget.result) == 4, widget.status.value
    assert widget.status.value.startswith("wrote 4 file(s)")
    assert widget.run_button.enabled and not widget.cancel_button.enabled
    back = nc.open_recording(widget.result[2])
    np.testing.assert_array_equal(
        back.movie.compute(), nc.open_recording(src).movie[:, 2].compute()
    )
    # run again without overwrite: our error reaches the status line, nothing is replaced
    job = widget.start()
    qtbot.waitUntil(lambda: job.done, timeout=60_000)
    assert widget.status.value.startswith("error:") and "already exists" in widget.status.value


def test_convert_widget_cancel(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    from napari_calcium._napari.widgets import convert

    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-calcium", "Convert recording")
    started = []

    def slow_convert(*args, progress=None, should_stop=None, **kwargs):
        started.append(True)
        return _slow_job(1000, progress=progress, should_stop=should_stop)

    monkeypatch.setattr(convert, "convert_recording", slow_convert)
    widget.source.value = tmp_path
    widget.output.value = tmp_path / "out"
    job = widget.start()
    qtbot.waitUntil(lambda: bool(started), timeout=5_000)
    widget.cancel()
    qtbot.waitUntil(lambda: job.done, timeout=10_000)
    assert widget.status.value.startswith("convert: cancelled")
    assert widget.result is None and widget.run_button.enabled
