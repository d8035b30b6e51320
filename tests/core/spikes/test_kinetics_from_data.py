"""τ and σ from the data where the old estimates failed on real recordings (issue 18).

* τ: where the autocovariance's estimate hits its bounds (bursts, slow drift: 3 s on four of the
  nine shared ground-truth sets), ``deconvolve`` uses the decay of the ROI's average transient.
* an indicator preset is a prior: τ_d is the geometric mean of the preset's and the data's own.
* σ: a trace upsampled from a slower rate (spikefinder's 8-60 Hz recordings at 100 Hz) has no
  power where the PSD estimate looks for noise; it is measured resampled to twice its bandwidth.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import lfilter, resample_poly

from conftest import spike_groundtruth
from napari_calcium.core.spikes.deconvolution.activity import estimate_decay_s, remove_baseline
from napari_calcium.core.spikes.deconvolution.api import TAU_DECAY_BOUNDS_S, deconvolve
from napari_calcium.core.spikes.deconvolution.evaluation import time_binned_correlation
from napari_calcium.core.spikes.deconvolution.noise import noise_sigma_psd


def _ar1(tau_s, fs, *, n_rois=4, seconds=400.0, rate_hz=0.15, sigma=0.05, seed=0):
    rng = np.random.default_rng(seed)
    n = round(seconds * fs)
    spikes = rng.poisson(rate_hz / fs, (n_rois, n)).astype(np.float64)
    calcium = lfilter([0.5], [1.0, -np.exp(-1.0 / (tau_s * fs))], spikes, axis=1)
    return calcium + rng.normal(0, sigma, calcium.shape), spikes


@pytest.mark.parametrize(("tau_s", "fs"), [(0.4, 30.0), (1.2, 30.0), (0.7, 100.0)])
def test_decay_of_the_average_transient(tau_s, fs):
    x, _ = _ar1(tau_s, fs)
    y, _ = remove_baseline(x, frame_rate_hz=fs)
    s = deconvolve(x, frame_rate_hz=fs, tau_decay_s=1.0).s  # a wrong τ only places the peaks
    tau, n = estimate_decay_s(y, s, frame_rate_hz=fs)
    assert np.all(n >= 5)
    # later spikes inside the 4 s window bias the average's decay up (up to +33 % here)
    np.testing.assert_allclose(tau, tau_s, rtol=0.35)
    assert np.median(tau) >= 0.9 * tau_s


def test_a_clipped_autocovariance_tau_is_replaced_by_the_transients_decay():
    """Slow drift (a 200 s sine of 3x the spike size) pins the autocovariance's τ at 3 s."""
    fs, tau_s = 30.0, 0.5
    x, _ = _ar1(tau_s, fs, n_rois=3, seed=2)
    t = np.arange(x.shape[1]) / fs
    drifting = x + 1.5 * np.sin(2 * np.pi * t / 200.0)
    res = deconvolve(drifting, frame_rate_hz=fs, baseline_window_s=400.0)  # no drift removal
    assert "average transient" in res.parameters["kinetics"]
    np.testing.assert_allclose(res.tau_decay_s, tau_s, rtol=0.35)
    assert np.all(res.tau_decay_s < 0.99 * TAU_DECAY_BOUNDS_S[1])
    # a clean trace keeps the autocovariance's estimate (inside its bounds)
    clean = deconvolve(x, frame_rate_hz=fs)
    np.testing.assert_allclose(clean.tau_decay_s, tau_s, rtol=0.2)


def test_noise_of_an_upsampled_trace():
    """8 Hz data resampled to 100 Hz: σ per original sample, not the empty band's (~400x less)."""
    fs0, sigma = 8.0, 0.05
    x, _ = _ar1(0.7, fs0, n_rois=3, seconds=600.0, sigma=sigma, seed=4)
    up = resample_poly(x, 25, 2, axis=1)  # 8 -> 100 Hz
    res = deconvolve(up, frame_rate_hz=100.0)
    np.testing.assert_allclose(res.noise, sigma, rtol=0.35)  # measured 0.040-0.042
    y, _ = remove_baseline(up, frame_rate_hz=100.0)
    assert np.all(noise_sigma_psd(y) < 0.1 * sigma)  # the band the PSD estimate reads is empty
    native = deconvolve(x, frame_rate_hz=fs0)  # on the original samples: 0.059-0.065
    np.testing.assert_allclose(native.noise, sigma, rtol=0.35)


def test_an_indicator_preset_is_a_prior_that_the_data_move():
    """τ_d with an indicator: the geometric mean of the preset's and the data's own estimate."""
    fs, tau_s = 30.0, 1.6  # a preparation that decays 4x slower than the GCaMP6f preset's 0.4 s
    x, spikes = _ar1(tau_s, fs, n_rois=3, seed=5)
    own = deconvolve(x, frame_rate_hz=fs).tau_decay_s
    res = deconvolve(x, frame_rate_hz=fs, indicator="GCaMP6f")
    np.testing.assert_allclose(res.tau_decay_s, np.sqrt(own * 0.4), rtol=1e-12)
    assert np.all((res.tau_decay_s > 0.4 * 1.5) & (res.tau_decay_s < own))
    assert "geometric mean of the GCaMP6f preset" in res.parameters["kinetics"]
    # moved towards the data, the activity follows the spikes better than with the preset's τ
    fixed = deconvolve(x, frame_rate_hz=fs, tau_decay_s=0.4)
    t = np.arange(x.shape[1]) / fs

    def r(result):
        times = [np.repeat(t, row.astype(np.int64)) for row in spikes]
        pairs = zip(result.activity, times, strict=True)
        return np.mean([time_binned_correlation(a, t, st) for a, st in pairs])

    assert r(res) > r(fixed) + 0.02
    # AR(2) and FISTA take the same τ_d (and keep the preset's rise)
    ar2 = deconvolve(x, frame_rate_hz=fs, indicator="GCaMP6f", method="oasis-ar2")
    np.testing.assert_allclose(ar2.tau_decay_s, res.tau_decay_s)
    assert np.all(ar2.tau_rise_s == 0.05)


def test_the_data_moved_preset_on_the_slow_gcamp6f_ground_truth():
    """DS06 (zebrafish GCaMP6f, decays over ~3 s): better than the fixed 0.4 s preset.

    No constant was fitted (equal weights in log τ); the rule was picked among three (clipping
    the data's τ to 1/2-2x or 1/3-3x the preset's, the geometric mean) on the eight sets with a
    known indicator, this one among them: it was best on their mean, native and at 30 Hz.
    """
    moved, fixed = [], []
    for trace, t, fs, spike_times, _ in spike_groundtruth("DS06"):
        res = deconvolve(trace, frame_rate_hz=fs, indicator="GCaMP6f")
        old = deconvolve(trace, frame_rate_hz=fs, tau_decay_s=0.4)
        moved.append(time_binned_correlation(res.activity[0], t, spike_times))
        fixed.append(time_binned_correlation(old.activity[0], t, spike_times))
    # measured 0.431 against 0.299 (mean over recordings)
    assert np.nanmean(moved) > np.nanmean(fixed) + 0.08


@pytest.mark.parametrize(("fs", "seconds"), [(30.0, 300.0), (30.0, 2000.0), (120.0, 1000.0)])
def test_noise_alone_is_flagged_unreliable_however_long(fs, seconds):
    """A ROI without transients is unreliable; a clean cell is reliable (``res.reliable``)."""
    rng = np.random.default_rng(int(fs + seconds))
    x, _ = _ar1(0.5, fs, n_rois=2, seconds=seconds, sigma=0.02, seed=6)
    noise = rng.normal(0.0, 1.0, (2, x.shape[1]))
    res = deconvolve(np.vstack([x, noise]), frame_rate_hz=fs)
    assert res.reliable.tolist() == [True, True, False, False], res.transient_snr
    assert np.all(res.transient_snr[:2] > 20) and "transient_snr" in res.parameters["reliable_rule"]
