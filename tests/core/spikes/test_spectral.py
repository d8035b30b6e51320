"""Tests of napari_calcium.core.spikes.spectral: derivative events, Hilbert phase, multitaper."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal.windows import dpss

from napari_calcium.core.spikes.spectral import (
    Spectrogram,
    derivative_events,
    hilbert_phase,
    multitaper_spectrogram,
)
from napari_calcium.errors import ParameterError, ShapeError


def wrap(a):
    return np.angle(np.exp(1j * a))


# --------------------------------------------------------------------------------------------------
# derivative events
# --------------------------------------------------------------------------------------------------
def staircase(steps, heights, n=400, noise=0.05, seed=0):
    rng = np.random.default_rng(seed)
    x = np.zeros(n)
    for k, h in zip(steps, heights, strict=True):
        x[k:] += h
    return x + rng.normal(scale=noise, size=n)


def test_first_derivative_events_on_known_steps():
    steps = [50, 120, 260]
    x = staircase(steps, [10, 8, 12])
    ev = derivative_events(x, derivative="first", event_height=5)
    assert len(ev) == 1
    np.testing.assert_array_equal(ev[0], steps)  # first raised frame
    # a step smaller than event_height (raw units) is not an event
    small = staircase(steps, [10, 3, 12])
    np.testing.assert_array_equal(derivative_events(small, event_height=5)[0], [50, 260])


def test_second_and_zeroth_derivative_events():
    steps = [50, 120, 260]
    x = staircase(steps, [10, 8, 12], noise=0.02)
    ev2 = derivative_events(x, derivative="second", event_height=5)[0]
    np.testing.assert_array_equal(ev2, np.array(steps) - 1)  # the corner before each rise
    # zeroth: peaks of the trace itself above the height
    pulses = np.zeros(300)
    pulses[[40, 41, 42]] = [3, 9, 3]
    pulses[[200, 201, 202]] = [2, 4, 2]
    np.testing.assert_array_equal(derivative_events(pulses, derivative="zeroth")[0], [41])


def test_derivative_events_zscore_and_rows():
    steps = [[60, 200], [100]]
    rows = np.stack(
        [staircase(steps[0], [1.0, 1.0], seed=1) * 0.01, staircase(steps[1], [100.0], seed=2)]
    )
    raw = derivative_events(rows, event_height=5)
    assert raw[0].size == 0 and raw[1].tolist() == [100]
    z = derivative_events(rows, event_height=5, zscore=True)
    assert z[0].tolist() == [60, 200] and z[1].tolist() == [100]


def test_derivative_events_bad_input():
    with pytest.raises(ParameterError, match="derivative"):
        derivative_events(np.zeros(10), derivative="third")
    with pytest.raises(ParameterError, match="event_height"):
        derivative_events(np.zeros(10), event_height="high")
    with pytest.raises(ParameterError, match="min_distance_frames"):
        derivative_events(np.zeros(10), min_distance_frames=0)
    with pytest.raises(ShapeError):
        derivative_events(np.zeros((2, 2, 2)))


# --------------------------------------------------------------------------------------------------
# Hilbert phase
# --------------------------------------------------------------------------------------------------
def test_hilbert_phase_of_pure_sinusoid():
    fs, f, phi0 = 20.0, 0.73, 0.4  # 73.73 periods: not a whole number of cycles
    t = np.arange(2020) / fs
    x = 3.0 + 2.0 * np.cos(2 * np.pi * f * t + phi0)  # DC offset is removed
    phase = hilbert_phase(x)
    assert phase.shape == x.shape
    assert phase.min() >= -np.pi and phase.max() <= np.pi
    err = np.abs(wrap(phase - (2 * np.pi * f * t + phi0)))
    inner = slice(int(5 * fs / f), -int(5 * fs / f))  # 5 periods away from the edges
    assert err[inner].max() < 0.05
    # advances by 2 pi per period
    unwrapped = np.unwrap(phase)
    period = fs / f
    i0 = 400
    adv = np.interp(i0 + period, np.arange(t.size), unwrapped) - unwrapped[i0]
    assert abs(adv - 2 * np.pi) < 0.05


def test_hilbert_phase_band_and_rows():
    fs = 20.0
    t = np.arange(4000) / fs
    slow = np.sin(2 * np.pi * 0.5 * t)
    x = np.stack([slow + 0.8 * np.sin(2 * np.pi * 5.0 * t), np.cos(2 * np.pi * 0.5 * t)])
    phase = hilbert_phase(x, band_hz=(0.2, 1.0), frame_rate_hz=fs)
    assert phase.shape == x.shape
    truth = 2 * np.pi * 0.5 * t - np.pi / 2  # sin = cos(. - pi/2)
    inner = slice(400, -400)
    assert np.abs(wrap(phase[0] - truth))[inner].max() < 0.05
    assert np.abs(wrap(phase[1] - truth - np.pi / 2))[inner].max() < 0.05
    with pytest.raises(ParameterError, match="frame_rate_hz"):
        hilbert_phase(x, band_hz=(0.2, 1.0))
    with pytest.raises(ParameterError, match="band_hz"):
        hilbert_phase(x, band_hz=0.5, frame_rate_hz=fs)
    with pytest.raises(ParameterError, match="NaN"):
        hilbert_phase(np.array([1.0, np.nan, 2.0]))


# --------------------------------------------------------------------------------------------------
# Multitaper spectrogram
# --------------------------------------------------------------------------------------------------
def test_multitaper_peak_and_parseval():
    fs, f0 = 30.0, 3.3
    rng = np.random.default_rng(21)
    t = np.arange(int(300 * fs)) / fs
    x = 2.0 * np.sin(2 * np.pi * f0 * t) + rng.normal(scale=1.0, size=t.size)
    spec = multitaper_spectrogram(x, fs, window_s=30, step_s=3, freq_range_hz=(0, fs / 2))
    assert isinstance(spec, Spectrogram)
    times, freqs, power = spec
    win = 900
    n_windows = (t.size - win) // 90 + 1
    assert power.shape == (freqs.size, n_windows)
    np.testing.assert_allclose(times, (np.arange(n_windows) * 90 + win / 2) / fs)
    # peak at the injected frequency in every window (resolution 2 NW / T = 0.13 Hz)
    peaks = freqs[power.argmax(axis=0)]
    assert np.abs(peaks - f0).max() < 2 * 2 / 30
    # Parseval: integral of the one-sided PSD = mean square of each (detrended) window
    df = freqs[1] - freqs[0]
    total = power.sum(axis=0) * df
    ms = np.array([np.var(x[s : s + win]) for s in range(0, t.size - win + 1, 90)])
    np.testing.assert_allclose(total, ms, rtol=0.10)
    assert abs(total.mean() / (2.0**2 / 2 + 1.0) - 1) < 0.10  # sine power A^2/2 + noise var


def test_multitaper_tapers_range_and_rows():
    fs = 10.0
    rng = np.random.default_rng(22)
    x = rng.normal(size=(2, 1200))
    spec = multitaper_spectrogram(x, fs, window_s=20, step_s=5, freq_range_hz=(1, 15))
    assert spec.power.ndim == 3 and spec.power.shape[0] == 2
    assert spec.freqs_hz.min() >= 1 and spec.freqs_hz.max() == pytest.approx(5.0)  # Nyquist
    one = multitaper_spectrogram(x[1], fs, window_s=20, step_s=5, freq_range_hz=(1, 15))
    np.testing.assert_allclose(one.power, spec.power[1])
    # K = 2 NW - 1 tapers by default: K = 1 with NW = 1 equals one DPSS-tapered periodogram
    s1 = multitaper_spectrogram(
        x[0], fs, window_s=20, step_s=20, time_bandwidth=1, detrend=None, nfft=200
    )
    seg = x[0, :200]
    direct = np.abs(np.fft.rfft(seg * dpss(200, 1, 1)[0])) ** 2 / fs
    direct[1:-1] *= 2
    keep = (np.fft.rfftfreq(200, 1 / fs) <= 15) & (np.fft.rfftfreq(200, 1 / fs) >= 0)
    np.testing.assert_allclose(s1.power[:, 0], direct[keep], rtol=1e-10)


def test_multitaper_bad_input():
    x = np.zeros(300)
    with pytest.raises(ParameterError, match="window_s"):
        multitaper_spectrogram(x, 10.0, window_s=60)
    with pytest.raises(ParameterError, match="frame_rate_hz"):
        multitaper_spectrogram(x, -1.0)
    with pytest.raises(ParameterError, match="time_bandwidth"):
        multitaper_spectrogram(x, 10.0, window_s=10, time_bandwidth=0.5)
    with pytest.raises(ParameterError, match="freq_range_hz"):
        multitaper_spectrogram(x, 10.0, window_s=10, freq_range_hz=(3, 1))
    with pytest.raises(ParameterError, match="detrend"):
        multitaper_spectrogram(x, 10.0, window_s=10, detrend="quadratic")
    with pytest.raises(ShapeError):
        multitaper_spectrogram(np.zeros((2, 2, 300)), 10.0, window_s=10)
