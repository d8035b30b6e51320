"""ROIs -> traces -> dF/F on the generator's default scene, against its ground truth."""

from __future__ import annotations

import numpy as np

import napari_calcium as nc


def test_default_scene_dff_follows_the_true_calcium():
    """extract_traces (neuropil-corrected) then compute_dff (default method): the issue's
    criterion, median correlation with the true ΔF/F >= 0.95 over neurons, with no bleaching
    correction by hand (the baseline removes it)."""
    rec = nc.simulate_recording(seed=0)
    rois = nc.RoiSet.from_label_image(rec.truth.labels)
    traces = nc.extract_traces(rec.movie, rois, frame_rate_hz=rec.truth.frame_rate_hz)
    dff = nc.compute_dff(traces.corrected, frame_rate_hz=rec.truth.frame_rate_hz).dff
    truth = rec.truth.calcium
    active = truth.std(axis=1) > 0
    r = np.array([np.corrcoef(dff[i], truth[i])[0, 1] for i in np.flatnonzero(active)])
    assert active.sum() >= 40
    assert np.median(r) >= 0.95, np.median(r)
    # neuropil correction matters: raw F (same baseline step) follows the truth less well
    raw = nc.compute_dff(traces.F, frame_rate_hz=rec.truth.frame_rate_hz).dff
    r_raw = np.array([np.corrcoef(raw[i], truth[i])[0, 1] for i in np.flatnonzero(active)])
    assert np.median(r) > np.median(r_raw) + 0.01, (np.median(r), np.median(r_raw))
    # the dF/F scale is right: the fitted gain of dF/F on the true ΔF/F is close to 1
    gain = np.array(
        [np.polyfit(truth[i], dff[i], 1)[0] for i in np.flatnonzero(active)], dtype=float
    )
    assert 0.75 < np.median(gain) < 1.25, np.median(gain)  # 0.82 measured
