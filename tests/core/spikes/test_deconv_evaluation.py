"""Spike-inference metrics on synthetic cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from napari_calcium.core.spikes.deconvolution.activity import (
    effective_bandwidth_hz,
    smooth_activity,
)
from napari_calcium.core.spikes.deconvolution.api import deconvolve
from napari_calcium.core.spikes.deconvolution.evaluation import (
    bin_counts,
    smoothed_correlation,
    spike_time_f1,
    spikefinder_correlation,
    time_binned_correlation,
)
from napari_calcium.errors import ParameterError, ShapeError


def _spikes(n=2000, rate=0.03, seed=0):
    return np.random.default_rng(seed).poisson(rate, n).astype(float)


def test_perfect_prediction_scores_one_and_scale_invariant():
    s = _spikes()
    assert spikefinder_correlation(s, s, frame_rate_hz=100.0) == pytest.approx(1.0)
    assert spikefinder_correlation(3 * s + 1, s, frame_rate_hz=100.0) == pytest.approx(1.0)
    assert smoothed_correlation(s, s) == pytest.approx(1.0)


def test_binning_sums_within_40ms_and_ignores_jitter_inside_a_bin():
    truth = np.zeros(400)
    truth[[4, 41, 200]] = 1  # bins 1, 10, 50 of 4 frames
    pred = np.zeros(400)
    pred[[7, 40, 203]] = 1  # same bins, other frames
    assert spikefinder_correlation(pred, truth, frame_rate_hz=100.0) == pytest.approx(1.0)
    moved = np.zeros(400)
    moved[[8, 41, 200]] = 1  # first spike one bin later
    assert spikefinder_correlation(moved, truth, frame_rate_hz=100.0) < 0.8
    # 25 Hz data: one frame per 40 ms bin, no summing
    assert spikefinder_correlation(pred, truth, frame_rate_hz=25.0) < 0.1


def test_bin_counts_drops_incomplete_last_bin():
    assert bin_counts(np.arange(10), 4).tolist() == [6.0, 22.0]
    # a spike only in the incomplete tail is invisible to the score
    truth = np.zeros(402)
    truth[[10, 100]] = 1
    pred = truth.copy()
    pred[401] = 50.0
    assert spikefinder_correlation(pred, truth, frame_rate_hz=100.0) == pytest.approx(1.0)


def test_nan_padding_is_dropped_per_roi():
    s = _spikes(1000)
    a = np.stack([s, s])
    a[1, 600:] = np.nan  # shorter recording padded with NaN
    t = a.copy()
    pred = a + 0.0
    pred[1, 600:] = 0.0  # prediction finite where the truth is NaN
    r = spikefinder_correlation(pred, t, frame_rate_hz=100.0)
    assert r.shape == (2,) and np.allclose(r, 1.0)
    r2 = smoothed_correlation(pred, t, sigma_frames=2)
    assert np.allclose(r2, 1.0)


def test_smoothed_correlation_rewards_near_misses():
    s = _spikes(3000, 0.01, seed=1)
    shifted = np.roll(s, 1)
    raw = spikefinder_correlation(shifted, s, frame_rate_hz=1000.0, bin_s=0.001)
    assert smoothed_correlation(shifted, s, sigma_frames=2) > 0.85 > raw
    assert smoothed_correlation(shifted, s, sigma_frames=0) == pytest.approx(raw)


def test_constant_prediction_gives_nan():
    assert np.isnan(spikefinder_correlation(np.ones(400), _spikes(400), frame_rate_hz=100.0))


def test_spike_time_f1_counts_matches_within_tolerance():
    t = np.zeros(1000)
    t[[100, 300, 500, 700]] = 1
    t[900] = 2
    d = np.zeros(1000)
    d[[102, 310, 500, 900, 950]] = 1  # 102: ok at 20 ms; 310: 100 ms off
    res = spike_time_f1(d, t, frame_rate_hz=100.0, tolerance_s=0.05)
    assert (res.n_matched, res.n_detected, res.n_true) == (3, 5, 6)
    assert res.precision == pytest.approx(3 / 5) and res.recall == pytest.approx(3 / 6)
    assert res.f1 == pytest.approx(2 * 3 / 11)
    assert spike_time_f1(d, t, frame_rate_hz=100.0, tolerance_s=0.2).n_matched == 4


def test_metric_argument_errors():
    with pytest.raises(ShapeError, match="true_spikes"):
        spikefinder_correlation(np.zeros(10), np.zeros(11), frame_rate_hz=100.0)
    with pytest.raises(ParameterError, match="frame_rate_hz"):
        spikefinder_correlation(np.zeros(10), np.zeros(10), frame_rate_hz=0)
    with pytest.raises(ParameterError, match="sigma_frames"):
        smoothed_correlation(np.zeros(10), np.zeros(10), sigma_frames=-1)


def test_smooth_activity_keeps_mass_and_shifts_earlier():
    s = np.zeros((2, 200))
    s[:, 100] = 2.0
    r = smooth_activity(s, 100.0, [0.02, 0.05], shift_s=0.05)
    assert np.argmax(r[0]) == 95 and np.argmax(r[1]) == 95
    assert np.allclose(r.sum(axis=1), 2.0)
    assert (smooth_activity(-s, 100.0, 0.0) == 0).all()
    with pytest.raises(ParameterError, match="exponent"):
        smooth_activity(s, 100.0, 0.02, exponent=0)


def test_effective_bandwidth_detects_upsampling():
    rng = np.random.default_rng(0)
    native = rng.standard_normal(6000)
    from scipy.signal import resample

    up = resample(native[:600], 6000)  # 10 Hz data band-limited-resampled to 100 Hz
    band = effective_bandwidth_hz(np.stack([native, up]), frame_rate_hz=100.0)
    assert band[0] == pytest.approx(50.0)
    assert 3.0 < band[1] <= 5.5  # the original Nyquist frequency, 5 Hz


def test_deconvolve_activity_recovers_synthetic_spikes():
    from scipy.signal import lfilter

    rng = np.random.default_rng(3)
    fs, n = 30.0, 9000
    spikes = rng.poisson(0.03, (3, n)).astype(float)
    g = np.exp(-1 / (0.7 * fs))
    f = lfilter([1.0], [1.0, -g], spikes, axis=1) + 0.15 * rng.standard_normal((3, n))
    f += np.linspace(0, 2, n)  # drift
    res = deconvolve(f, frame_rate_hz=fs, indicator="OGB-1")
    r = spikefinder_correlation(res.activity, spikes, frame_rate_hz=fs, bin_s=0.1)
    assert np.all(r > 0.8)
    assert np.allclose(res.tau_decay_s, 0.7, rtol=0.2)  # the preset, moved by the data
    assert (res.activity >= 0).all() and res.s.shape == f.shape
    gap = np.zeros(100)
    gap[5] = np.nan  # a trace NaN in some frames only is refused (all-NaN rows are flagged ROIs)
    with pytest.raises(ParameterError, match="finite"):
        deconvolve(gap, frame_rate_hz=fs)


def test_time_binned_correlation_on_irregular_frames():
    """CASCADE-style frames (jittered, 33 ms): activity averaged per 40 ms bin, spikes counted."""
    rng = np.random.default_rng(0)
    t = np.cumsum(rng.uniform(0.03, 0.036, 3000))
    spikes = np.sort(rng.choice(t, 80, replace=False)) + 0.001  # inside each frame's bin
    activity = np.isin(np.arange(t.size), np.searchsorted(t, spikes) - 1).astype(float)
    assert time_binned_correlation(activity, t, spikes) > 0.95
    assert time_binned_correlation(3 * activity + 1, t, spikes) == pytest.approx(
        time_binned_correlation(activity, t, spikes)
    )
    late = np.roll(activity, 3)  # 0.1 s late: no overlap left
    assert time_binned_correlation(late, t, spikes) < 0.1
    assert np.isnan(time_binned_correlation(np.ones(t.size), t, spikes))
    with pytest.raises(ShapeError):
        time_binned_correlation(activity[:-1], t, spikes)
    with pytest.raises(ParameterError):
        time_binned_correlation(activity, t, spikes, bin_s=0.0)
