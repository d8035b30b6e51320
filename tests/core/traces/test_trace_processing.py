"""Tests of napari_calcium.core.traces.processing against slow literal references.

detrend: per-row ``np.polyfit``; Perona-Malik: a literal loop of CalSciPy's update; Butterworth:
scipy ``butter`` + ``sosfiltfilt``/``filtfilt``; CaLab: its per-frequency gain loop. The numba
Perona-Malik kernel and its array-API twin (the cupy path) are compared on the CPU, and the
public functions also run under ``array_api_strict``.
"""

from __future__ import annotations

import array_api_strict as xps
import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.signal

from napari_calcium.core.traces import _processing_kernels as tk
from napari_calcium.core.traces.processing import (
    bandpass,
    bandpass_kernel,
    detrend_polynomial,
    kernel_band_hz,
    perona_malik,
    smooth,
)
from napari_calcium.errors import ParameterError, ShapeError


def make_traces(n_rois=6, n_frames=500, dtype=np.float64, seed=0):
    """Drifting noisy traces with a few transients."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, n_frames)
    drift = rng.normal(size=(n_rois, 1)) * t + rng.normal(size=(n_rois, 1)) * t**3
    spikes = (rng.random((n_rois, n_frames)) < 0.01).astype(float)
    calcium = ndi.convolve1d(spikes, np.exp(-np.arange(30) / 8.0)[::-1], axis=1, origin=-14)
    x = 100 + 10 * drift + 5 * calcium + rng.normal(scale=0.3, size=(n_rois, n_frames))
    return x.astype(dtype)


# --------------------------------------------------------------------------------------------------
# Polynomial detrend
# --------------------------------------------------------------------------------------------------
def reference_detrend(x, order):
    t = np.arange(x.shape[1])
    out = x.astype(np.float64).copy()
    for i in range(x.shape[0]):
        out[i] -= np.polyval(np.polyfit(t, out[i], deg=order), t)
    return out


@pytest.mark.parametrize("order", [0, 1, 2, 4, 7])
def test_detrend_equals_per_row_polyfit(order):
    x = make_traces()
    got = detrend_polynomial(x, order=order)
    np.testing.assert_allclose(got, reference_detrend(x, order), atol=1e-8)
    assert abs(got.mean(axis=1)).max() < 1e-8  # CalSciPy: the mean goes with the fit
    kept = detrend_polynomial(x, order=order, keep_mean=True)
    np.testing.assert_allclose(kept, got + x.mean(axis=1, keepdims=True), atol=1e-8)


def test_detrend_float32_1d_blocks_and_in_place():
    x = make_traces(n_rois=7, dtype=np.float32)
    want = reference_detrend(x, 4)
    got = detrend_polynomial(x, block_rows=3)
    assert got.dtype == np.float32 and got is not x
    np.testing.assert_allclose(got, want, atol=2e-4)
    np.testing.assert_allclose(detrend_polynomial(x[2]), want[2], atol=2e-4)
    y = x.copy()
    assert detrend_polynomial(y, in_place=True) is y
    np.testing.assert_allclose(y, want, atol=2e-4)
    ints = np.arange(40, dtype=np.int16).reshape(2, 20)
    assert detrend_polynomial(ints, order=1).dtype == np.float32
    with pytest.raises(ParameterError, match="in_place=True needs floating-point"):
        detrend_polynomial(ints, in_place=True)
    np.testing.assert_array_equal(ints, np.arange(40).reshape(2, 20))


def test_detrend_runs_array_api_generic():
    x = make_traces(n_rois=3, dtype=np.float32)
    got = detrend_polynomial(xps.asarray(x), order=3)
    assert isinstance(got, type(xps.asarray(x))) and got.dtype == xps.float32
    np.testing.assert_allclose(np.asarray(got), detrend_polynomial(x, order=3), atol=1e-5)


def test_detrend_errors():
    with pytest.raises(ParameterError, match="needs more than 4 frames"):
        detrend_polynomial(np.ones((2, 4)))
    with pytest.raises(ParameterError, match="order must be"):
        detrend_polynomial(np.ones((2, 40)), order=-1)
    with pytest.raises(ShapeError, match=r"expected \(n_rois, n_frames\)"):
        detrend_polynomial(np.ones((2, 3, 40)))


# --------------------------------------------------------------------------------------------------
# Perona-Malik
# --------------------------------------------------------------------------------------------------
def reference_perona_malik(trace, iters, kappa, gamma):
    """CalSciPy's update written out element by element (float64)."""
    x = [float(v) for v in trace]
    n = len(x)
    k = kappa * (max(x) - min(x))
    for _ in range(iters):
        d = [x[i + 1] - x[i] for i in range(n - 1)] + [0.0]
        flux = [di * np.exp(-((di / k) ** 2)) for di in d]
        diffusion = [flux[0]] + [flux[i] - flux[i - 1] for i in range(1, n)]
        x = [x[i] + gamma * diffusion[i] for i in range(n)]
    return np.array(x)


@pytest.mark.parametrize(("iters", "kappa", "gamma"), [(25, 0.15, 0.25), (7, 0.05, 0.5), (1, 1, 1)])
def test_perona_malik_equals_literal_reference(iters, kappa, gamma):
    x = make_traces(n_rois=3, n_frames=120)
    got = perona_malik(x, iters=iters, kappa=kappa, gamma=gamma)
    for i in range(3):
        want = reference_perona_malik(x[i], iters, kappa, gamma)
        np.testing.assert_allclose(got[i], want, rtol=0, atol=1e-10)
    np.testing.assert_allclose(got.mean(axis=1), x.mean(axis=1), rtol=1e-12)  # flux conserves


def test_perona_malik_float32_1d_in_place_and_constant_rows():
    x = make_traces(n_rois=4, n_frames=300, dtype=np.float32)
    x[3] = 7.0  # constant: k = 0, left unchanged (CalSciPy: NaN)
    want = np.stack([reference_perona_malik(r, 25, 0.15, 0.25) for r in x[:3]])
    got = perona_malik(x)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got[:3], want, atol=2e-4)
    np.testing.assert_array_equal(got[3], x[3])
    np.testing.assert_allclose(perona_malik(x[1]), want[1], atol=2e-4)
    y = x.copy()
    assert perona_malik(y, in_place=True) is y
    np.testing.assert_array_equal(y, got)
    np.testing.assert_array_equal(perona_malik(x, kappa=0.0), x)


def test_perona_malik_preserves_edges_and_smooths_noise():
    rng = np.random.default_rng(1)
    clean = np.r_[np.zeros(200), np.ones(200)]
    x = clean + rng.normal(scale=0.03, size=400)
    y = perona_malik(x, iters=50, kappa=0.1, gamma=0.25)
    assert np.std(y[:180]) < 0.5 * np.std(x[:180])
    assert y[205] > 0.9 and y[195] < 0.1  # the step is kept sharp


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numba_kernel_and_array_api_twin_agree(dtype):
    x = make_traces(n_rois=5, n_frames=257, dtype=dtype)
    k = ((x.max(1) - x.min(1)) * 0.15).astype(dtype)
    k[4] = 0
    a = tk.perona_malik_rows(np, x.copy(), k, 25, 0.25)
    b = tk._perona_malik_xp(np, x.copy(), k, 25, 0.25)
    np.testing.assert_allclose(a, b, rtol=1e-5 if dtype == np.float32 else 1e-12)
    strict = perona_malik(xps.asarray(x))
    assert isinstance(strict, type(xps.asarray(x)))
    np.testing.assert_allclose(np.asarray(strict)[:4], perona_malik(x)[:4], rtol=1e-5)


def test_perona_malik_errors():
    x = np.ones((2, 10))
    with pytest.raises(ParameterError, match="iters must be an integer >= 1"):
        perona_malik(x, iters=0)
    with pytest.raises(ParameterError, match="kappa must satisfy 0 <= kappa <= 1"):
        perona_malik(x, kappa=1.5)
    with pytest.raises(ParameterError, match="gamma must be a finite number"):
        perona_malik(x, gamma=-0.1)
    with pytest.raises(ShapeError, match="at least one frame"):
        perona_malik(np.ones((2, 0)))


# --------------------------------------------------------------------------------------------------
# Band-pass filters
# --------------------------------------------------------------------------------------------------
def sine(freq, fs=100.0, n=4000):
    return np.sin(2 * np.pi * freq * np.arange(n) / fs)


def test_butterworth_equals_scipy_and_frequency_response():
    x = make_traces(n_rois=3, n_frames=1000)
    sos = scipy.signal.butter(3, [0.5, 8.0], "bandpass", output="sos", fs=30.0)
    want = scipy.signal.sosfiltfilt(sos, x, axis=-1)
    np.testing.assert_allclose(bandpass(x, frame_rate_hz=30, low_hz=0.5, high_hz=8, order=3), want)
    b, a = scipy.signal.butter(2, 3.0, "lowpass", fs=30.0)  # ba form, filtfilt: same filter
    np.testing.assert_allclose(
        bandpass(x, frame_rate_hz=30, high_hz=3.0, order=2),
        scipy.signal.filtfilt(b, a, x, axis=-1),
        atol=1e-6,
    )
    core = slice(1000, 3000)
    for freq, gain in [(5.0, 1.0), (0.2, 0.0), (40.0, 0.0)]:
        y = bandpass(sine(freq), frame_rate_hz=100.0, low_hz=1.0, high_hz=10.0)
        amplitude = np.sqrt(2) * np.std(y[core])
        assert abs(amplitude - gain) < 0.02, (freq, amplitude)
    hp = bandpass(sine(0.05) + sine(5.0), frame_rate_hz=100.0, low_hz=1.0)
    np.testing.assert_allclose(hp[core], sine(5.0)[core], atol=0.02)
    y32 = bandpass(x.astype(np.float32), frame_rate_hz=30, high_hz=3.0)
    assert y32.dtype == np.float32 and y32.shape == x.shape


def test_butterworth_errors():
    x = np.ones((2, 500))
    with pytest.raises(ParameterError, match="give low_hz"):
        bandpass(x, frame_rate_hz=30)
    with pytest.raises(ParameterError, match="Nyquist frequency 15 Hz"):
        bandpass(x, frame_rate_hz=30, high_hz=15)
    with pytest.raises(ParameterError, match="must be below high_hz"):
        bandpass(x, frame_rate_hz=30, low_hz=5, high_hz=2)
    with pytest.raises(ParameterError, match="frame_rate_hz must be a finite number > 0"):
        bandpass(x, frame_rate_hz=0, low_hz=1)
    with pytest.raises(ShapeError, match="needs more than"):
        bandpass(np.ones(20), frame_rate_hz=30, low_hz=1, high_hz=5)


def reference_calab(trace, tau_rise, tau_decay, fs):
    """CaLab's gain loop, frequency by frequency."""
    n = len(trace)
    f_hp = 1.0 / (2.0 * np.pi * tau_decay * 16.0)
    f_lp = min(4.0 / (2.0 * np.pi * tau_rise), fs / 2.0)
    w_hp, w_lp = f_hp * 0.5, f_lp * 0.5
    gain = np.zeros(n // 2 + 1)
    for i in range(n // 2 + 1):
        f = i * fs / n
        if f < f_hp - w_hp:
            gain[i] = 0.0
        elif f < f_hp + w_hp:
            gain[i] = 0.5 * (1.0 - np.cos(np.pi * (f - (f_hp - w_hp)) / (2.0 * w_hp)))
        elif f < f_lp - w_lp:
            gain[i] = 1.0
        elif f < f_lp + w_lp:
            gain[i] = 0.5 * (1.0 + np.cos(np.pi * (f - (f_lp - w_lp)) / (2.0 * w_lp)))
    return np.fft.irfft(np.fft.rfft(trace) * gain, n=n)


@pytest.mark.parametrize(
    ("tau_rise", "tau_decay", "fs", "n"), [(0.02, 0.4, 30.0, 999), (0.1, 1.2, 100.0, 1000)]
)
def test_calab_bandpass_equals_reference(tau_rise, tau_decay, fs, n):
    x = make_traces(n_rois=3, n_frames=n)
    got = bandpass_kernel(x, frame_rate_hz=fs, tau_rise_s=tau_rise, tau_decay_s=tau_decay)
    for i in range(3):
        np.testing.assert_allclose(
            got[i], reference_calab(x[i], tau_rise, tau_decay, fs), atol=1e-9
        )
    f_hp, f_lp = kernel_band_hz(tau_rise, tau_decay, fs)
    assert f_hp == pytest.approx(1 / (2 * np.pi * tau_decay * 16))
    assert f_lp == pytest.approx(min(4 / (2 * np.pi * tau_rise), fs / 2))


def test_calab_bandpass_response_and_errors():
    fs = 100.0  # band 0.0332 .. 6.37 Hz for tau 0.1 / 0.3 s
    passed = bandpass_kernel(5 + sine(1.0), frame_rate_hz=fs, tau_rise_s=0.1, tau_decay_s=0.3)
    np.testing.assert_allclose(passed, sine(1.0), atol=1e-9)  # 1 Hz is a whole FFT bin
    stopped = bandpass_kernel(sine(20.0), frame_rate_hz=fs, tau_rise_s=0.1, tau_decay_s=0.3)
    assert np.abs(stopped).max() < 1e-9
    x32 = sine(1.0).astype(np.float32)
    assert (
        bandpass_kernel(x32, frame_rate_hz=fs, tau_rise_s=0.1, tau_decay_s=0.3).dtype == np.float32
    )
    with pytest.raises(ParameterError, match="kernel band is empty"):
        bandpass_kernel(x32, frame_rate_hz=fs, tau_rise_s=10.0, tau_decay_s=0.1)
    with pytest.raises(ShapeError, match="at least 8"):
        bandpass_kernel(np.ones(5), frame_rate_hz=fs, tau_rise_s=0.1, tau_decay_s=0.3)
    with pytest.raises(ParameterError, match="tau_rise_s must be a finite number"):
        kernel_band_hz(-1, 0.3, fs)


# --------------------------------------------------------------------------------------------------
# Smoothing
# --------------------------------------------------------------------------------------------------
def test_smooth_methods_equal_scipy():
    x = make_traces(n_rois=3, n_frames=300)
    np.testing.assert_allclose(
        smooth(x, frame_rate_hz=20.0, sigma_s=0.25),
        ndi.gaussian_filter1d(x, 5.0, axis=-1, mode="nearest"),
    )
    np.testing.assert_allclose(
        smooth(x, frame_rate_hz=20.0, method="boxcar", window_s=0.5, mode="reflect"),
        ndi.uniform_filter1d(x, 11, axis=-1, mode="reflect"),  # 10 frames -> odd 11
    )
    np.testing.assert_allclose(
        smooth(x, frame_rate_hz=20.0, method="savgol", window_s=0.35, polyorder=3),
        scipy.signal.savgol_filter(x, 7, 3, axis=-1, mode="nearest"),
    )
    y = smooth(x[0].astype(np.float32), frame_rate_hz=20.0, sigma_s=0.1)
    assert y.dtype == np.float32 and y.shape == (300,)


def test_smooth_errors():
    x = np.ones((2, 50))
    with pytest.raises(ParameterError, match="method must be one of"):
        smooth(x, frame_rate_hz=10, method="median", sigma_s=1)
    with pytest.raises(ParameterError, match="needs sigma_s"):
        smooth(x, frame_rate_hz=10)
    with pytest.raises(ParameterError, match="takes window_s, not sigma_s"):
        smooth(x, frame_rate_hz=10, method="boxcar", window_s=1, sigma_s=1)
    with pytest.raises(ShapeError, match="fewer than the savgol window"):
        smooth(np.ones(5), frame_rate_hz=10, method="savgol", window_s=1.0, mode="interp")
