"""Tests of per-ROI quality scores (core.quality): SNR, r-value, filtering."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_calcium.core.rois.quality import evaluate_rois, filter_rois
from napari_calcium.core.rois.roiset import RoiSet
from napari_calcium.core.synthetic.recording import simulate_recording
from napari_calcium.errors import OperationCancelled, ParameterError, ShapeError


@pytest.fixture(scope="module")
def scene():
    """True cells and 10 random cell-sized disks on background (8 px away from any cell)."""
    rec = simulate_recording(n_frames=500, shape=(128, 128), n_neurons=15, seed=4)
    labels = rec.truth.labels
    background = ~ndimage.binary_dilation(labels > 0, iterations=8)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:128, :128]
    fake = np.zeros_like(labels)
    k = 0
    while k < 10:
        y, x = rng.integers(8, 120, 2)
        disk = (yy - y) ** 2 + (xx - x) ** 2 <= 36
        if background[disk].all() and not fake[disk].any():
            k += 1
            fake[disk] = k
    truth = RoiSet.from_label_image(labels)
    fakes = RoiSet.from_label_image(fake, source="random")
    both = truth.concat(fakes)
    scored = evaluate_rois(rec.movie, both, frame_rate_hz=30.0)
    is_true = np.arange(len(both)) < len(truth)
    return rec, scored, is_true


def test_scores_separate_cells_from_background(scene):
    _, scored, is_true = scene
    r, snr = scored.scores["r_value"], scored.scores["snr"]
    assert np.isfinite(r).all() and np.isfinite(snr).all()
    assert r[is_true].min() > 0.8
    assert r[~is_true].max() < 0.5
    assert r[is_true].min() > r[~is_true].max()
    assert np.median(snr[is_true]) > 2.5 * np.median(snr[~is_true])
    assert (scored.scores["noise"] > 0).all()


def test_filter_rois_keeps_the_cells(scene):
    _, scored, is_true = scene
    kept = filter_rois(scored, min_r_value=0.6, min_snr=5)
    assert set(kept.ids.tolist()) == set(scored.ids[is_true].tolist())
    assert (kept.scores["r_value"] >= 0.6).all()


def test_evaluate_keeps_rois_and_other_scores(scene):
    rec, _, _ = scene
    rois = RoiSet.from_label_image(rec.truth.labels).with_scores(corr=np.arange(15.0))
    scored = evaluate_rois(rec.movie, rois)
    assert (scored.masks != rois.masks).nnz == 0
    assert scored.ids.tolist() == rois.ids.tolist()
    assert scored.scores["corr"].tolist() == list(range(15))
    # block size does not change the result
    again = evaluate_rois(rec.movie, rois, block_frames=37)
    np.testing.assert_allclose(again.scores["r_value"], scored.scores["r_value"], atol=1e-6)
    np.testing.assert_allclose(again.scores["snr"], scored.scores["snr"], rtol=1e-4)


def test_evaluate_empty_and_errors(scene):
    rec, scored, _ = scene
    empty = evaluate_rois(rec.movie, RoiSet.empty((128, 128)))
    assert len(empty) == 0 and "snr" in empty.scores
    with pytest.raises(ShapeError):
        evaluate_rois(rec.movie[:, :64], scored)
    with pytest.raises(ParameterError):
        evaluate_rois(rec.movie, scored, neuropil_coefficient=2)
    with pytest.raises(ParameterError):
        evaluate_rois(rec.movie, scored, frame_rate_hz=-1)
    with pytest.raises(ParameterError):
        evaluate_rois(rec.movie, scored, active_fraction=0)
    with pytest.raises(ParameterError):
        evaluate_rois(rec.movie, "not rois")
    with pytest.raises(OperationCancelled):
        evaluate_rois(rec.movie, scored, should_stop=lambda: True)


def test_filter_rois_shape_and_generic_thresholds():
    lab = np.zeros((40, 40), int)
    lab[2:5, 2:5] = 1  # 9 px
    lab[10:20, 10:20] = 2  # 100 px square
    lab[30, 5:35] = 3  # a line: not compact
    rois = RoiSet.from_label_image(lab).with_scores(pnr=[1.0, 5.0, np.nan])
    assert filter_rois(rois).ids.tolist() == [1, 2, 3]
    assert filter_rois(rois, min_area=10).ids.tolist() == [2, 3]
    assert filter_rois(rois, max_area=50).ids.tolist() == [1, 3]
    assert filter_rois(rois, max_compactness=1.5).ids.tolist() == [1, 2]
    assert filter_rois(rois, pnr=2.0).ids.tolist() == [2]  # NaN fails
    with pytest.raises(ParameterError, match="evaluate_rois"):
        filter_rois(rois, min_snr=3)
    with pytest.raises(ParameterError):
        filter_rois(rois, min_area=10, max_area=5)
    with pytest.raises(ParameterError):
        filter_rois(rois, min_area="big")
