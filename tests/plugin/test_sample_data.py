"""File > Open Sample in a real napari viewer (rendered under Xvfb)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_calcium._napari._sample_data import SAMPLE_PARAMETERS, synthetic_two_photon

pytestmark = pytest.mark.gui


def test_sample_layer_data_without_a_viewer():
    (movie, mkw, mtype), (labels, lkw, ltype) = synthetic_two_photon()
    n = SAMPLE_PARAMETERS["n_frames"]
    assert (mtype, ltype) == ("image", "labels")
    assert movie.shape == (n, *SAMPLE_PARAMETERS["shape"]) and movie.dtype == np.uint16
    assert mkw["scale"] == pytest.approx((1 / 30, 1.0, 1.0))
    assert mkw["units"] == ("second", "micrometer", "micrometer")
    assert labels.max() == SAMPLE_PARAMETERS["n_neurons"]
    truth = lkw["metadata"]["napari_calcium"]["truth"]
    assert truth.spikes.shape == (SAMPLE_PARAMETERS["n_neurons"], n)


def test_open_sample_in_viewer(make_napari_viewer):
    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-calcium", "synthetic")
    names = [layer.name for layer in viewer.layers]
    assert names == ["synthetic movie", "ground-truth ROIs"]
    movie, labels = viewer.layers
    assert movie.data.shape == (SAMPLE_PARAMETERS["n_frames"], *SAMPLE_PARAMETERS["shape"])
    np.testing.assert_allclose(movie.scale, (1 / 30, 1.0, 1.0))
    assert [str(u) for u in movie.units] == ["second", "micrometer", "micrometer"]
    assert tuple(movie.axis_labels) == ("t", "y", "x")
    np.testing.assert_allclose(labels.scale, (1.0, 1.0))
    assert labels.data.max() == SAMPLE_PARAMETERS["n_neurons"]
    meta = movie.metadata["napari_calcium"]
    assert meta["frame_rate_hz"] == 30.0 and meta["pixel_size_um"] == (1.0, 1.0)
    # the time slider runs in seconds over the whole recording
    assert viewer.dims.range[0].stop == pytest.approx((SAMPLE_PARAMETERS["n_frames"] - 1) / 30)

    viewer.dims.set_point(0, 10.0)  # 10 s in
    shot = viewer.screenshot(canvas_only=True, flash=False)
    assert shot.ndim == 3 and shot.shape[2] == 4
    rgb = shot[..., :3].astype(float)
    assert rgb.std() > 10, "screenshot is blank"
    # the labels overlay is visible: some pixels are clearly coloured (not grey)
    chroma = rgb.max(axis=-1) - rgb.min(axis=-1)
    assert (chroma > 40).mean() > 0.01
    # and the movie is visible: grey texture with varying brightness outside the labels
    grey = chroma < 10
    assert rgb[grey].std() > 5
