"""Noise-constrained OASIS: residual = noise, baseline, optimality at the final λ, errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d
from scipy.optimize import nnls
from scipy.signal import lfilter

from napari_calcium.core.spikes.deconvolution.constrained import (
    oasis_constrained,
    oasis_constrained_batch,
)
from napari_calcium.core.spikes.deconvolution.kernels import tau_to_ar2
from napari_calcium.errors import ParameterError, ShapeError

SIGMA = 0.2  # spike amplitude 1: SNR 5
OFFSET = 1.0


def _synthetic(rng, n_rois, n, g1, g2, rate_hz):
    spikes = rng.poisson(rate_hz / 30.0, (n_rois, n)).astype(np.float64)
    calcium = lfilter([1.0], [1.0, -g1, -g2], spikes, axis=1)
    return spikes, calcium + OFFSET + SIGMA * rng.standard_normal((n_rois, n))


def _corr(s, spikes):
    return np.corrcoef(gaussian_filter1d(s, 2.0), gaussian_filter1d(spikes, 2.0))[0, 1]


@pytest.mark.parametrize(("order", "min_corr"), [(1, 0.985), (2, 0.99)])
def test_noise_constraint_baseline_and_accuracy(order, min_corr):
    rng = np.random.default_rng(5)
    if order == 1:
        g1, g2 = float(np.exp(-1 / (0.5 * 30.0))), 0.0
        g = g1
    else:
        g1, g2, *_ = tau_to_ar2(0.05, 0.5, 30.0)
        g = (g1, g2)
    spikes, y = _synthetic(rng, 6, 9000, g1, g2, 0.7)
    res = oasis_constrained_batch(y.astype(np.float32), g, order=order, sigma=SIGMA)
    assert res.c.dtype == np.float32 and res.converged.all()
    np.testing.assert_allclose(res.rss, SIGMA**2 * 9000, rtol=1e-4)
    rss = np.sum((y - res.c - res.baseline[:, None]) ** 2, axis=1)
    np.testing.assert_allclose(rss, SIGMA**2 * 9000, rtol=1e-3)  # float32 c
    # the L1 (foopsi) baseline is biased up by ~0.25 sigma: about 5% of the offset here
    assert np.all(np.abs(res.baseline - OFFSET) < 0.08 * OFFSET)
    assert np.all(res.lam > 0)
    corrs = [_corr(res.s[i].astype(np.float64), spikes[i]) for i in range(6)]
    print(f"AR({order}) constrained: correlations {np.round(corrs, 4)}, b {res.baseline}")
    assert min(corrs) >= min_corr


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("order", [1, 2])
def test_final_solution_is_optimal_at_final_lambda(seed, order):
    rng = np.random.default_rng(100 + seed)
    n = 60 + 20 * seed
    g1, g2 = (0.9, 0.0) if order == 1 else tau_to_ar2(0.1, 0.5, 30.0)[:2]
    _, y = _synthetic(rng, 1, n, g1, g2, 3.0)
    g = g1 if order == 1 else (g1, g2)
    res = oasis_constrained(y[0], g, order=order, sigma=SIGMA)
    h = lfilter([1.0], [1.0, -g1, -g2], np.r_[1.0, np.zeros(n - 1)])
    t = np.arange(n)
    k = np.where(t[:, None] >= t[None, :], h[np.abs(t[:, None] - t[None, :])], 0.0)
    d = np.linalg.solve(k.T, np.ones(n))
    s_ref, _ = nnls(k, y[0] - res.baseline - res.lam * d, maxiter=50 * n)
    c_ref = k @ s_ref
    assert np.max(np.abs(res.c - c_ref)) <= 1e-4 * np.max(np.abs(c_ref))
    # b is the optimal baseline for that c: the mean residual is 0
    assert abs(np.mean(y[0] - res.c - res.baseline)) < 1e-6
    assert res.rss == pytest.approx(SIGMA**2 * n, rel=1e-4) or res.lam == 0.0


def test_fixed_and_no_baseline():
    rng = np.random.default_rng(9)
    g = 0.92
    _, y = _synthetic(rng, 3, 3000, g, 0.0, 0.7)
    fixed = oasis_constrained_batch(y, g, sigma=SIGMA, baseline=OFFSET)
    none = oasis_constrained_batch(y - OFFSET, g, sigma=SIGMA, baseline=None)
    np.testing.assert_array_equal(fixed.baseline, OFFSET)
    np.testing.assert_array_equal(none.baseline, 0.0)
    np.testing.assert_allclose(fixed.c, none.c, atol=1e-8)
    np.testing.assert_allclose(fixed.lam, none.lam, rtol=1e-6)
    np.testing.assert_allclose(fixed.rss, SIGMA**2 * 3000, rtol=1e-4)
    # a sigma above the whole signal's spread: λ so large that almost nothing is left
    big = oasis_constrained_batch(y, g, sigma=10.0, baseline=None)
    assert np.all(big.lam > fixed.lam)
    # sigma below what λ = 0 can reach: λ = 0
    tiny = oasis_constrained_batch(y, g, sigma=1e-3, baseline=OFFSET)
    np.testing.assert_array_equal(tiny.lam, 0.0)


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: oasis_constrained_batch(np.zeros(50), 0.9, sigma=0.1), ShapeError),
        (lambda: oasis_constrained_batch(np.zeros((2, 50)), [0.9] * 3, sigma=0.1), ShapeError),
        (lambda: oasis_constrained_batch(np.zeros((2, 50)), 0.9, sigma=[0.1] * 3), ShapeError),
        (lambda: oasis_constrained_batch(np.zeros((2, 50)), 1.1, sigma=0.1), ParameterError),
        (lambda: oasis_constrained_batch(np.zeros((2, 50)), 0.9, sigma=0.0), ParameterError),
        (
            lambda: oasis_constrained_batch(np.zeros((2, 50)), 0.9, sigma=0.1, order=3),
            ParameterError,
        ),
        (
            lambda: oasis_constrained_batch(np.zeros((2, 50)), (1.0, 0.1), sigma=0.1, order=2),
            ParameterError,
        ),
        (
            lambda: oasis_constrained_batch(
                np.zeros((2, 50)), (1.2, -0.3, 0.1), sigma=0.1, order=2
            ),
            ShapeError,
        ),
        (
            lambda: oasis_constrained_batch(np.zeros((2, 50)), 0.9, sigma=0.1, baseline="x"),
            ParameterError,
        ),
        (
            lambda: oasis_constrained_batch(np.zeros((2, 50)), 0.9, sigma=0.1, baseline=np.nan),
            ParameterError,
        ),
        (
            lambda: oasis_constrained_batch(np.array([[0.0, np.nan, 1.0]]), 0.9, sigma=0.1),
            ParameterError,
        ),
    ],
)
def test_bad_input(call, error):
    with pytest.raises(error):
        call()
