"""The AR(1) activity's delay, measured from each ROI's own transients (issue 18, timing).

An AR(1) model has no rise, so deconvolving a transient that rises over ``t_r`` spreads its ``s``
after the spike and the activity lags. ``deconvolve`` measures each ROI's 10-90 % rise from its
average transient and moves the activity earlier by ``min(0.25 · rise, 0.08 s)``.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import lfilter

from napari_calcium.core.spikes.deconvolution.activity import (
    MAX_DELAY_S,
    activity_delay_s,
    estimate_response_rise_s,
    remove_baseline,
    smooth_activity,
)
from napari_calcium.core.spikes.deconvolution.api import deconvolve
from napari_calcium.core.spikes.indicators import double_exponential


def _rise_10_90(tau_rise_s: float, tau_decay_s: float) -> float:
    """The kernel's own 10-90 % rise, on a 0.1 ms grid."""
    t = np.arange(0, 5 * tau_decay_s, 1e-4)
    h = double_exponential(t, tau_rise_s, tau_decay_s)
    return float(t[np.argmax(h >= 0.9)] - t[np.argmax(h >= 0.1)])


def _traces(tau_rise_s, tau_decay_s, fs, *, n_rois=4, seconds=300.0, rate_hz=0.3, seed=0):
    """Poisson spikes through the double-exponential kernel, white noise (σ 0.05, 0.3 per spike)."""
    rng = np.random.default_rng(seed)
    n = round(seconds * fs)
    spikes = rng.poisson(rate_hz / fs, (n_rois, n)).astype(np.float64)
    k = 0.3 * double_exponential(
        np.arange(round(6 * tau_decay_s * fs)) / fs, tau_rise_s, tau_decay_s
    )
    clean = np.array([np.convolve(s, k)[:n] for s in spikes])
    return clean + rng.normal(0, 0.05, clean.shape), spikes


@pytest.mark.parametrize(
    ("tau_rise_s", "tau_decay_s", "fs"),
    [(0.05, 0.5, 100.0), (0.1, 1.2, 100.0), (0.1, 1.2, 30.0), (0.02, 0.3, 120.0)],
)
def test_rise_time_of_known_kernels(tau_rise_s, tau_decay_s, fs):
    x, _ = _traces(tau_rise_s, tau_decay_s, fs)
    y, _ = remove_baseline(x, frame_rate_hz=fs)
    s = deconvolve(x, frame_rate_hz=fs, tau_decay_s=tau_decay_s, tau_rise_s=0.0).s
    rise, n = estimate_response_rise_s(y, s, frame_rate_hz=fs)
    truth = _rise_10_90(tau_rise_s, tau_decay_s)
    assert np.all(n >= 5), n
    # within a frame (sampling) plus 25 % of the truth
    np.testing.assert_allclose(rise, truth, atol=1.0 / fs + 0.25 * truth)


def test_instant_rise_gives_almost_no_delay():
    fs = 30.0
    rng = np.random.default_rng(3)
    spikes = rng.poisson(0.3 / fs, (3, 9000)).astype(np.float64)
    x = lfilter([0.3], [1.0, -np.exp(-1 / (0.5 * fs))], spikes, axis=1) + rng.normal(
        0, 0.05, (3, 9000)
    )
    res = deconvolve(x, frame_rate_hz=fs)
    rise = np.asarray(res.parameters["response_rise_s"])
    assert np.all(rise < 1.5 / fs), rise  # the jump happens within a frame
    assert np.all(np.asarray(res.parameters["activity_shift_s"]) < 0.5 / fs)


def test_slow_rise_moves_the_activity_onto_the_spikes():
    """A 0.1 s rise at 30 Hz: the delayed activity peaks nearer the spikes than the old one."""
    fs = 30.0
    x, spikes = _traces(0.1, 1.2, fs, n_rois=6, rate_hz=0.2, seed=5)
    new = deconvolve(x, frame_rate_hz=fs)
    old = deconvolve(x, frame_rate_hz=fs, tau_rise_s=0.0)  # a given rise of 0: no delay
    shift = np.asarray(new.parameters["activity_shift_s"])
    assert np.all(shift > 0.03) and np.all(shift <= MAX_DELAY_S), shift
    assert np.all(np.asarray(old.parameters["activity_shift_s"]) == 0.0)

    def lag_s(activity):  # the lag of the activity's cross-correlation peak with the spikes
        lags = np.arange(-10, 11)
        cc = [np.sum(activity[:, 10:-10] * np.roll(spikes, k, axis=1)[:, 10:-10]) for k in lags]
        return lags[int(np.argmax(cc))] / fs

    assert abs(lag_s(new.activity)) < abs(lag_s(old.activity)), (
        lag_s(new.activity),
        lag_s(old.activity),
    )


def test_too_few_transients_give_no_delay_and_rows_are_independent():
    fs = 30.0
    rng = np.random.default_rng(1)
    quiet = rng.normal(0, 0.05, (1, 3000))  # noise only: nothing above its own 99th percentile
    x, _ = _traces(0.1, 1.2, fs, n_rois=2, seconds=100.0)
    both = np.vstack([x, quiet])
    res = deconvolve(both, frame_rate_hz=fs)
    alone = deconvolve(x[1], frame_rate_hz=fs)
    assert res.activity[1].tobytes() == alone.activity[0].tobytes()  # a row's delay is its own
    assert res.parameters["activity_shift_s"][1] == alone.parameters["activity_shift_s"][0]
    rise, n = estimate_response_rise_s(quiet[:, :30], quiet[:, :30], frame_rate_hz=fs)
    assert np.isnan(rise[0]) and n[0] == 0  # 1 s is shorter than a cut


def test_delay_rule_and_fractional_shift():
    np.testing.assert_allclose(activity_delay_s([0.0, 0.2, 1.0, np.nan]), [0.0, 0.06, 0.1, 0.0])
    s = np.zeros(200)
    s[100] = 1.0
    frames = np.arange(200)
    for shift_frames in (0.0, 0.5, 1.25, 3.0):
        r = smooth_activity(s, 100.0, 0.05, shift_s=shift_frames / 100.0)
        assert np.sum(frames * r) / np.sum(r) == pytest.approx(100.0 - shift_frames, abs=1e-6)
