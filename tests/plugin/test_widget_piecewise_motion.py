"""The Motion correction widget's piecewise-rigid mode, clicked in a real viewer."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from conftest import click_run, dock_widget

pytestmark = pytest.mark.gui


def warped_movie(n_frames=30, shape=(128, 128), seed=0):
    """A textured scene under a smooth non-rigid warp that changes every frame, float32."""
    rng = np.random.default_rng(seed)
    scene = np.zeros(shape)
    n = shape[0] * shape[1] // 250
    scene[rng.integers(0, shape[0], n), rng.integers(0, shape[1], n)] = 2000.0
    scene = ndi.gaussian_filter(scene, 3.0) + 100.0
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    movie = np.empty((n_frames, *shape), np.float32)
    for t in range(n_frames):
        a, b = rng.uniform(2, 3, 2) * rng.choice([-1, 1], 2)
        dy = a * np.sin(2 * np.pi * (xx / shape[1] - 0.5) / 2.5)
        dx = b * np.sin(2 * np.pi * (yy / shape[0] - 0.5) / 2.5)
        movie[t] = ndi.map_coordinates(scene, [yy - dy, xx - dx], order=3, mode="reflect")
    return movie + rng.normal(0, 2, movie.shape).astype(np.float32)


def test_piecewise_checkbox_shows_patch_fields_and_adds_a_shift_layer(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    movie = warped_movie()
    viewer.add_image(movie, name="warped", scale=(1 / 30, 0.8, 0.8),
                     metadata={"napari_calcium": {"frame_rate_hz": 30.0}})  # fmt: skip
    widget = dock_widget(viewer, "Motion correction")

    def shown(box) -> bool:  # shown once the dock is (the test viewer's window is not)
        return not box.native.isHidden()

    assert not shown(widget.patch) and not shown(widget.max_deviation)
    widget.piecewise.native.click()  # as a user ticks it
    assert widget.piecewise.value
    assert shown(widget.patch) and shown(widget.overlap) and shown(widget.max_deviation)
    widget.max_shift.value = 6
    widget.patch.value = 48
    widget.overlap.value = 24
    widget.max_deviation.value = 4.0
    registered, vectors = click_run(widget, qtbot)
    assert registered.data.shape == movie.shape
    assert np.isfinite(np.asarray(registered.data)).all()
    meta = registered.metadata["napari_calcium"]
    assert meta["patch_shifts_px"].shape == (30, 5, 5, 2)
    assert meta["steps"][-1]["piecewise"] is True and meta["steps"][-1]["patch_px"] == 48
    # the shift field as a Vectors layer: one arrow per patch and frame, over the movie
    assert vectors._type_string == "vectors"
    assert vectors.data.shape == (30 * 25, 2, 3)
    np.testing.assert_allclose(vectors.scale, (1 / 30, 0.8, 0.8))
    np.testing.assert_array_equal(vectors.data[:25, 0, 0], 0)  # frame 0's arrows
    np.testing.assert_allclose(vectors.data[:25, 1, 1:], meta["patch_shifts_px"][0].reshape(-1, 2))
    assert vectors.features["magnitude_px"].max() > 1.0  # the non-rigid part is 2-3 px
    viewer.dims.set_current_step(0, 7)  # the current frame's arrows are the ones shown
    assert vectors._view_data.shape[0] == 25
    # the corrected movie is sharper than the rigid one: closer to its own mean
    widget.piecewise.native.click()
    assert not shown(widget.patch)
    (rigid_layer,) = click_run(widget, qtbot)

    def spread(data):
        data = np.asarray(data)[:, 16:-16, 16:-16]
        return float(np.mean((data - data.mean(axis=0)) ** 2))

    assert spread(registered.data) < 0.5 * spread(rigid_layer.data)


def test_piecewise_on_all_planes_of_a_volume(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    volume = np.stack([warped_movie(12, (96, 96), seed=s) for s in (1, 2)], axis=1)
    viewer.add_image(volume, name="volume", axis_labels=("t", "z", "y", "x"),
                     metadata={"napari_calcium": {"frame_rate_hz": 30.0}})  # fmt: skip
    widget = dock_widget(viewer, "Motion correction")
    widget.plane_box.value = "all planes"
    widget.piecewise.value = True
    widget.max_shift.value = 6
    widget.patch.value = 48
    widget.overlap.value = 24
    registered, vectors = click_run(widget, qtbot)
    assert registered.data.shape == volume.shape
    meta = registered.metadata["napari_calcium"]
    assert meta["shifts_px"].shape == (2, 12, 2)
    assert meta["patch_shifts_px"].shape == (2, 12, 3, 3, 2)
    assert vectors.data.shape == (2 * 12 * 9, 2, 4)
    assert set(np.unique(vectors.data[:, 0, 1])) == {0.0, 1.0}  # each plane's arrows in it
    np.testing.assert_array_equal(vectors.data[:, 1, :2], 0)
