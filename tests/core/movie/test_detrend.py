"""Tests of napari_calcium.core.movie.detrend: linear detrend, debleaching, movie dF/F.

Debleaching is checked against the synthetic generator's known bleaching; the dF/F baseline
against a trace with known F0 and against a direct numpy implementation of the same windows.
"""

from __future__ import annotations

import array_api_strict as xps
import dask.array as da
import numpy as np
import pytest
import scipy.signal

from napari_calcium.core._backend import is_dask_array
from napari_calcium.core.movie.detrend import DFF_METHODS, debleach, detrend, movie_dff
from napari_calcium.core.synthetic.recording import simulate_recording
from napari_calcium.errors import ParameterError


def make_movie(n_frames=23, shape=(7, 9), seed=0, dtype=np.uint16):
    rng = np.random.default_rng(seed)
    return rng.integers(100, 4000, size=(n_frames, *shape)).astype(dtype)


# --------------------------------------------------------------------------------------------------
# Detrend / debleach
# --------------------------------------------------------------------------------------------------
def test_linear_detrend_equals_scipy_plus_mean(tmp_path):
    movie = make_movie(n_frames=53, shape=(5, 6))
    expected = scipy.signal.detrend(movie.astype(np.float64), axis=0) + movie.mean(axis=0)
    got = detrend(movie, method="linear", block_frames=10)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-3)
    lazy = detrend(da.from_array(movie, chunks=(7, 5, 6)), method="linear")
    assert is_dask_array(lazy)
    np.testing.assert_array_equal(lazy.compute(), got)
    out = np.lib.format.open_memmap(
        tmp_path / "o.npy", mode="w+", dtype=np.float32, shape=(53, 5, 6)
    )
    assert detrend(movie, method="linear", out=out) is out
    np.testing.assert_array_equal(out, got)


def test_debleach_recovers_the_generators_bleaching():
    """The fitted median-intensity model matches truth.bleaching within 1 %.

    The scene has no neuropil and a brighter background: the generator's neuropil drifts slowly
    by 5-15 % over 1,000 frames, which no per-frame statistic can tell from bleaching, and the
    default 4-photon background makes the frame median jump in 1-ADU steps of 6 % of its signal.
    """
    kw = dict(n_frames=1000, shape=(128, 128), n_neurons=30, seed=0)
    rec = simulate_recording(**kw, neuropil=False, background_photons=40.0)
    offset = rec.truth.offset_adu
    result = debleach(rec.movie, mode="divide", offset=offset)
    assert result.model == "exp"
    bleach = (result.fit - offset) / (result.fit[0] - offset)
    assert np.abs(bleach - rec.truth.bleaching).max() < 0.01
    u = np.linspace(0, 1, 1000)

    def trend(movie):  # relative change of the frame mean over the movie (linear fit)
        f = movie.mean(axis=(1, 2), dtype=np.float64) - offset
        return np.polyfit(u, f, 1)[0] / f.mean()

    assert trend(rec.movie) < -0.09  # 10 % bleaching
    assert abs(trend(result.movie)) < 0.01
    # CaImAn's mode subtracts the fitted median trend: exact for additive drift, but the frame
    # mean (brighter than the median) bleached more than the median, so a little is left
    subtracted = debleach(rec.movie, block_frames=100)
    assert abs(trend(subtracted.movie)) < 0.02


def test_debleach_subtract_is_exact_on_an_additive_trend():
    rng = np.random.default_rng(3)
    base = rng.normal(300, 5, (1, 6, 7))
    t = np.arange(400)
    trend = 80 * np.exp(-t / 150)
    movie = (base + trend[:, None, None]).astype(np.float64)
    result = debleach(movie, model="exp", mode="subtract")
    np.testing.assert_allclose(result.fit, np.median(movie.reshape(400, -1), axis=1), atol=1e-4)
    np.testing.assert_allclose(
        result.movie, base.repeat(400, axis=0) + result.reference - np.median(base), atol=1e-3
    )
    lin = debleach(movie, model="linear", statistic="mean")
    assert lin.model == "linear"
    np.testing.assert_allclose(np.diff(lin.fit, 2), 0, atol=1e-9)
    lazy = debleach(da.from_array(movie, chunks=(64, 6, 7)))
    assert is_dask_array(lazy.movie)
    np.testing.assert_allclose(lazy.movie.compute(), result.movie, rtol=1e-6)
    strict = debleach(xps.asarray(movie), block_frames=50)
    np.testing.assert_allclose(np.asarray(strict.movie), result.movie, rtol=1e-6)
    with pytest.raises(ParameterError, match="offset"):
        debleach(movie, mode="divide", offset=1e4)
    with pytest.raises(ParameterError, match="method"):
        detrend(movie, method="poly")


# --------------------------------------------------------------------------------------------------
# Movie dF/F
# --------------------------------------------------------------------------------------------------
def reference_baseline(movie, w, q):
    """The documented windows, directly: np.percentile per window, np.interp between centres."""
    n = movie.shape[0]
    starts = list(range(0, n - w + 1, w)) if n > w else [0]
    if n > w and starts[-1] + w < n:
        starts.append(n - w)
    centres = [s + (min(w, n - s) - 1) / 2 for s in starts]
    values = np.stack([np.percentile(movie[s : s + w], q, axis=0) for s in starts])
    flat = values.reshape(len(starts), -1)
    t = np.arange(n)
    f0 = np.stack([np.interp(t, centres, flat[:, i]) for i in range(flat.shape[1])], axis=1)
    return f0.reshape(movie.shape)


@pytest.mark.parametrize("n_frames", [60, 67, 9])
def test_movie_dff_baseline_matches_reference_and_is_chunk_independent(n_frames):
    movie = make_movie(n_frames=n_frames, shape=(3, 4)).astype(np.float32)
    w = 10  # window_s * frame_rate_hz
    f0 = reference_baseline(movie.astype(np.float64), w, 8.0)
    base = movie_dff(movie, frame_rate_hz=20.0, window_s=0.5, method="baseline")
    np.testing.assert_allclose(base, f0, rtol=1e-5)
    for method in DFF_METHODS:
        whole = movie_dff(movie, frame_rate_hz=20.0, window_s=0.5, method=method)
        for block_frames in (1, 10, 25):
            part = movie_dff(
                movie, frame_rate_hz=20.0, window_s=0.5, method=method, block_frames=block_frames
            )
            np.testing.assert_array_equal(part, whole)
        lazy = movie_dff(
            da.from_array(movie, chunks=(13, 3, 4)), frame_rate_hz=20.0, window_s=0.5, method=method
        )
        assert is_dask_array(lazy)
        np.testing.assert_array_equal(lazy.compute(), whole)
        strict = movie_dff(xps.asarray(movie), frame_rate_hz=20.0, window_s=0.5, method=method)
        np.testing.assert_allclose(np.asarray(strict), whole, rtol=1e-5, atol=1e-6)
    dff = movie_dff(movie, frame_rate_hz=20.0, window_s=0.5)
    np.testing.assert_allclose(dff, (movie - f0) / f0, rtol=1e-4, atol=1e-6)
    dfsqrtf = movie_dff(movie, frame_rate_hz=20.0, window_s=0.5, method="dfsqrtf")
    np.testing.assert_allclose(dfsqrtf, (movie - f0) / np.sqrt(f0), rtol=1e-4, atol=1e-5)


def test_movie_dff_baseline_follows_a_known_f0():
    """Bleaching F0, sparse calcium transients and shot noise: F0 is found within a few %.

    The quantile needs quiet frames: a window whose frames are almost all inside transients
    (e.g. 1 % spike probability per frame and 0.5 s decays, by chance) gives a baseline that is
    too high, in CaImAn as here.

    A low quantile of noisy data sits below the noise-free F0 by about ``z_q * sqrt(F0)``
    (``z_8% = -1.405``; the estimator's nature, as in CaImAn); that is checked separately.
    """
    rng = np.random.default_rng(7)
    n, fs = 3000, 30.0
    t = np.arange(n) / fs
    f0 = 5000.0 * (0.7 + 0.3 * np.exp(-t / 120.0))  # photons
    spikes = (rng.random((n, 2, 2)) < 0.005).astype(float)  # 0.15 Hz
    kernel = 0.5 * np.exp(-np.arange(90) / (0.5 * fs))  # dF/F 0.5 per spike, 0.5 s decay
    calcium = np.apply_along_axis(lambda s: np.convolve(s, kernel)[:n], 0, spikes)
    movie = rng.poisson(f0[:, None, None] * (1 + calcium)).astype(np.uint16)
    base = movie_dff(movie, frame_rate_hz=fs, window_s=5.0, quantile=8, method="baseline")
    assert np.abs(base / f0[:, None, None] - 1).max() < 0.04  # measured 2.6 %
    expected = f0 - 1.405 * np.sqrt(f0)  # the 8th percentile of the noise around F0
    inner = slice(75, n - 75)  # between the first and the last window centre
    assert np.abs(base[inner] / expected[inner, None, None] - 1).max() < 0.02  # 1.4 %
    dff = movie_dff(movie, frame_rate_hz=fs, window_s=5.0, quantile=8)
    quiet = calcium < 0.01
    np.testing.assert_allclose(
        np.median(dff[quiet]), 1.405 * np.sqrt(f0.mean()) / f0.mean(), rtol=0.2
    )
    peaks = dff[calcium > 0.4] - calcium[calcium > 0.4]  # the transients come out as dF/F
    assert abs(float(np.median(peaks))) < 0.04


def test_movie_dff_validates_and_writes_to_out(tmp_path):
    movie = make_movie(n_frames=30, shape=(2, 3))
    with pytest.raises(ParameterError, match="method"):
        movie_dff(movie, frame_rate_hz=10.0, method="zscore")
    with pytest.raises(ParameterError, match="quantile"):
        movie_dff(movie, frame_rate_hz=10.0, quantile=120)
    with pytest.raises(ParameterError, match="frame_rate_hz"):
        movie_dff(movie, frame_rate_hz=0.0)
    out = np.lib.format.open_memmap(
        tmp_path / "d.npy", mode="w+", dtype=np.float32, shape=(30, 2, 3)
    )
    got = movie_dff(
        da.from_array(movie, chunks=(7, 2, 3)), frame_rate_hz=10.0, window_s=1.0, out=out
    )
    assert got is out
    np.testing.assert_array_equal(out, movie_dff(movie, frame_rate_hz=10.0, window_s=1.0))
    zero = np.zeros((12, 1, 1), dtype=np.float32)
    assert np.isnan(movie_dff(zero, frame_rate_hz=1.0, window_s=4.0)).all()
