"""Baseline estimators: each reproduces its formula; the default wins on drifting traces."""

import numpy as np
import pytest
import scipy.ndimage as ndi
from scipy.signal import filtfilt, firwin

from napari_calcium.core.synthetic.traces import simulate_drifting_traces
from napari_calcium.core.traces import baseline as B
from napari_calcium.errors import ParameterError, ShapeError

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", ["reflect", "nearest", "mirror", "wrap"])
@pytest.mark.parametrize(("window_s", "pct"), [(3.3, 8.0), (10.0, 50.0), (0.2, 0.0), (40, 100)])
def test_sliding_percentile_equals_scipy(dtype, mode, window_s, pct):
    x = RNG.normal(size=(3, 700)).astype(dtype)
    x[:, 50:90] = 1.5  # ties
    got = B.baseline_sliding_percentile(
        x, frame_rate_hz=10.0, window_s=window_s, percentile=pct, mode=mode
    )
    w = round(window_s * 10)
    ref = np.stack([ndi.percentile_filter(r, pct, size=w, mode=mode) for r in x])
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, ref)


def test_sliding_percentile_fast_is_close():
    x, _, _ = simulate_drifting_traces(4, 3000, seed=3)
    exact = B.baseline_sliding_percentile(x, frame_rate_hz=30.0, window_s=10)
    fast = B.baseline_sliding_percentile(x, frame_rate_hz=30.0, window_s=10, fast=True)
    assert np.median(np.abs(fast - exact) / exact) < 0.01


def test_maximin_equals_scipy():
    x = RNG.normal(size=(4, 2000)).astype(np.float32).cumsum(axis=1)
    got = B.baseline_maximin(x, frame_rate_hz=20.0, window_s=3.0, sigma_frames=4.0)
    w = 61  # int(3 * 20) = 60, made odd
    g = ndi.gaussian_filter1d(x.astype(np.float64), 4.0, axis=1, mode="nearest", truncate=3.0)
    ref = ndi.maximum_filter1d(ndi.minimum_filter1d(g, w, mode="nearest"), w, mode="nearest")
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-4)


def test_calscipy_matches_its_formula():
    x = (100 + RNG.normal(size=(3, 900))).astype(np.float64)
    got = B.baseline_calscipy(x, frame_rate_hz=30.0)
    h = firwin(29, cutoff=1.0, fs=30.0, window="hamming")
    ref = np.percentile(filtfilt(h, [1.0], x, axis=-1, padlen=87), 5, axis=-1)
    np.testing.assert_allclose(got, np.repeat(ref[:, None], 900, axis=1), rtol=1e-12)
    short = B.baseline_calscipy(x[:, :60], frame_rate_hz=30.0)  # taps = 20 -> 19
    ref = np.percentile(filtfilt(firwin(19, 1.0, fs=30.0), [1.0], x[:, :60], padlen=57), 5, -1)
    np.testing.assert_allclose(short[:, 0], ref, rtol=1e-12)


def test_percentile_and_noise_sigma():
    x = RNG.normal(5.0, 2.0, size=(2, 50000))
    np.testing.assert_allclose(
        B.baseline_percentile(x, percentile=30)[:, 7], np.percentile(x, 30, 1)
    )
    np.testing.assert_allclose(B.noise_sigma(x), 2.0, rtol=0.03)
    assert B.baseline_percentile(np.arange(10.0)).shape == (1, 10)


def test_default_is_most_accurate_on_drifting_traces():
    f, f0, _ = simulate_drifting_traces(40, 9000, seed=1)
    fs = 30.0

    def err(est):
        return float(np.median(np.mean(np.abs(est - f0) / f0, axis=1)))

    robust = err(B.baseline_robust(f, frame_rate_hz=fs))
    maximin = err(B.baseline_maximin(f, frame_rate_hz=fs))
    sliding = err(np.stack([ndi.percentile_filter(r, 8, size=500) for r in f]))
    calscipy = err(B.baseline_calscipy(f, frame_rate_hz=fs))
    assert robust <= 0.03
    assert robust < maximin < sliding < calscipy


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: B.baseline_percentile(np.zeros((2, 3, 4))), ShapeError),
        (lambda: B.baseline_percentile(np.zeros((2, 1))), ShapeError),
        (lambda: B.baseline_percentile(np.array([1.0, np.nan, 2.0])), ParameterError),
        (lambda: B.baseline_percentile(np.ones(9), percentile=101), ParameterError),
        (lambda: B.baseline_sliding_percentile(np.ones(9), frame_rate_hz=0), ParameterError),
        (
            lambda: B.baseline_sliding_percentile(np.ones(9), frame_rate_hz=1, window_s=0.1),
            ParameterError,
        ),
        (
            lambda: B.baseline_sliding_percentile(np.ones(9), frame_rate_hz=1, mode="x"),
            ParameterError,
        ),
        (lambda: B.baseline_calscipy(np.ones(90), frame_rate_hz=1.5), ParameterError),
        (lambda: B.baseline_maximin(np.ones(9), frame_rate_hz=1, sigma_frames=-1), ParameterError),
        (lambda: B.baseline_robust(np.ones(9), frame_rate_hz=1, clip=(1, 0)), ParameterError),
    ],
)
def test_bad_input(call, error):
    with pytest.raises(error):
        call()


def test_clipped_mean_kernel_equals_its_vectorised_twin():
    """The numba iterations of the robust baseline and the xp (cupy) twin agree exactly."""
    from napari_calcium.core.traces import _baseline_kernels as k

    rng = np.random.default_rng(3)
    x = (100 + rng.normal(0, 5, (12, 2500)) + 40 * (rng.random((12, 2500)) < 0.05)).astype(
        np.float32
    )
    f0 = np.full(x.shape, 99.0)
    sigma = np.full(12, 5.0)
    mu = -0.2829  # clipping bias of a unit gaussian kept on (-3, 1)
    fast = k.clipped_mean_iterations(x, f0, sigma, 3.0, 1.0, mu, 120, 5)
    twin = k._clipped_mean_xp(x, f0, sigma, 3.0, 1.0, mu, 120, 5, np)
    np.testing.assert_allclose(fast, twin, rtol=0, atol=1e-9)
    assert (f0 == 99.0).all()  # the caller's array is left alone
    assert abs(float(np.median(fast)) - 100.0) < 1.0  # the spikes do not pull the baseline up
