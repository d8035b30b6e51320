"""Movies with missing pixels (NaN), as motion correction with ``border="nan"`` leaves them.

Detection treats a pixel's missing frames as its mean (no activity there), and extraction
averages each ROI and neuropil mask over the pixels that have data in each frame.
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_calcium.core.movie.motion.rigid import motion_correct
from napari_calcium.core.rois.detection.detect import detect_rois
from napari_calcium.core.rois.matching import detection_scores
from napari_calcium.core.rois.neuropil import extraction_masks
from napari_calcium.core.rois.roiset import RoiSet
from napari_calcium.core.synthetic.recording import simulate_recording
from napari_calcium.core.traces.extraction import extract_traces


@pytest.fixture(scope="module")
def moving():
    return simulate_recording(n_frames=600, shape=(128, 128), n_neurons=20, motion_px=3, seed=3)


@pytest.mark.parametrize("binned_memory_mib", [None, 0.0])  # in RAM, and spilled to a file
def test_detection_after_nan_border_motion_correction(moving, binned_memory_mib):
    nan_movie = motion_correct(moving.movie, border="nan").movie
    edge_movie = motion_correct(moving.movie, border="edge").movie
    assert np.isnan(nan_movie).any()
    kwargs = {"frame_rate_hz": 30.0, "binned_memory_mib": binned_memory_mib}
    with_nan = detect_rois(nan_movie, **kwargs)
    with_edge = detect_rois(edge_movie, **kwargs)
    assert with_nan.n_rois >= 15  # 20 cells, some of them cut by the frame's edge
    scores = detection_scores(with_nan, with_edge, criterion="iou")
    assert scores.f1 >= 0.9, scores
    # every ROI's scores are numbers (the NaN border poisoned no statistic)
    for key in ("corr", "pnr", "activity"):
        assert np.isfinite(with_nan.table[key]).all(), key


def _reference(movie: np.ndarray, rows) -> np.ndarray:
    """Each row's weighted mean over the finite pixels of each frame, renormalised."""
    dense = rows.toarray() if hasattr(rows, "toarray") else np.asarray(rows)
    flat = movie.reshape(movie.shape[0], -1).astype(np.float64)
    good = np.isfinite(flat)
    num = np.where(good, flat, 0.0) @ dense.T
    den = good.astype(np.float64) @ dense.T
    return (num / den * dense.sum(axis=1)).T


def test_extraction_averages_over_the_pixels_that_have_data(moving):
    rois = RoiSet.from_label_image(moving.truth.labels)
    movie = np.asarray(moving.movie, dtype=np.float32).copy()
    plain = extract_traces(movie, rois, frame_rate_hz=30.0)
    movie[100:160, :, :5] = np.nan  # a band of missing pixels in 60 frames
    movie[300, 90:110, 20:40] = np.nan  # (no ROI lies wholly inside either region)
    traced = extract_traces(movie, rois, frame_rate_hz=30.0)
    assert np.isfinite(traced.F).all() and np.isfinite(traced.Fneu).all()
    masks = extraction_masks(rois)
    np.testing.assert_allclose(traced.F, _reference(movie, masks.cells.masks), rtol=1e-4)
    np.testing.assert_allclose(traced.Fneu, _reference(movie, masks.neuropil.masks), rtol=1e-4)
    # frames without missing pixels are the plain weighted sums, bit for bit
    untouched = np.r_[0:100, 160:300, 301:600]
    np.testing.assert_array_equal(traced.F[:, untouched], plain.F[:, untouched])


def test_a_roi_with_no_data_in_a_frame_is_nan_there(moving):
    rois = RoiSet.from_label_image(moving.truth.labels)
    movie = np.asarray(moving.movie, dtype=np.float32).copy()
    movie[50] = np.nan
    traced = extract_traces(movie, rois, frame_rate_hz=30.0, neuropil=False)
    assert np.isnan(traced.F[:, 50]).all()
    assert np.isfinite(np.delete(traced.F, 50, axis=1)).all()
