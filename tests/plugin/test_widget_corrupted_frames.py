"""The Motion correction widget's "corrupted frames" option (wireless miniscopes, issue 19)."""

from __future__ import annotations

import numpy as np
import pytest

import napari_calcium as nc
from conftest import click_run, dock_widget

pytestmark = pytest.mark.gui


@pytest.mark.parametrize("mode", ["interpolate", "drop"])
def test_corrupted_frames_repaired_before_motion_correction(make_napari_viewer, qtbot, mode):
    rec = nc.simulate_recording(
        n_frames=120, shape=(64, 64), n_neurons=6, modality="one_photon", seed=5
    )
    movie = np.asarray(rec.movie).copy()
    check = (np.indices((10, 64)).sum(axis=0) % 2) * int(movie.max())
    movie[50, 30:40] = check.astype(movie.dtype)  # a band of check-pattern rows
    viewer = make_napari_viewer()
    viewer.add_image(movie, name="miniscope", metadata={"napari_calcium": {"frame_rate_hz": 20.0}})
    widget = dock_widget(viewer, "Motion correction")
    assert widget.corrupted.value == "keep"  # off unless asked for
    widget.corrupted.value = mode
    (registered,) = click_run(widget, qtbot)
    meta = registered.metadata["napari_calcium"]
    assert meta["corrupted_frames"] == [50]
    assert "1 corrupted frame(s)" in widget.status.value and "(50)" in widget.status.value
    if mode == "drop":
        assert registered.data.shape[0] == movie.shape[0] - 1
        assert 50 not in meta["source_frames"]
    else:
        assert registered.data.shape == movie.shape
        frame = np.asarray(registered.data[50])
        # the check pattern is gone: the repaired frame looks like its neighbours
        assert (
            np.abs(np.diff(frame[30:40], axis=1)).mean()
            < 0.2 * np.abs(np.diff(check, axis=1)).mean()
        )
