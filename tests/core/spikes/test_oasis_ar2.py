"""OASIS AR(2): exact agreement with a generic NNLS solver, synthetic accuracy, batching, errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d
from scipy.optimize import nnls
from scipy.signal import lfilter

from napari_calcium.core.spikes.deconvolution.kernels import tau_to_ar2
from napari_calcium.core.spikes.deconvolution.oasis import oasis_ar1
from napari_calcium.core.spikes.deconvolution.oasis_ar2 import oasis_ar2, oasis_ar2_batch
from napari_calcium.errors import ParameterError, ShapeError


def _kernel_matrix(n: int, g1: float, g2: float) -> np.ndarray:
    """K with c = K s (impulse response of the AR(2) filter, c_0 = c_-1 = 0)."""
    h = lfilter([1.0], [1.0, -g1, -g2], np.r_[1.0, np.zeros(n - 1)])
    t = np.arange(n)
    diff = t[:, None] - t[None, :]
    return np.where(diff >= 0, h[np.maximum(diff, 0)], 0.0)


def _generic_solution(y, g1, g2, lam):
    """min 1/2 ||y - K s||^2 + lam sum(s), s >= 0, by scipy NNLS.

    ``lam 1^T s = lam (K^{-T} 1)^T K s``, so it is NNLS on ``y - lam K^{-T} 1`` (d solved here
    numerically from K, independently of the OASIS code).
    """
    k = _kernel_matrix(y.size, g1, g2)
    d = np.linalg.solve(k.T, np.ones(y.size))
    s, _ = nnls(k, y - lam * d, maxiter=50 * y.size)
    return k @ s, s


def _objective(y, c, s, lam):
    return 0.5 * np.sum((y - c) ** 2) + lam * np.sum(s)


def _synthetic(rng, n, g1, g2, rate, sigma, n_rois=None):
    shape = (n,) if n_rois is None else (n_rois, n)
    spikes = rng.poisson(rate, shape).astype(np.float64)
    calcium = lfilter([1.0], [1.0, -g1, -g2], spikes, axis=-1)
    return spikes, calcium + sigma * rng.standard_normal(shape)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("lam", [0.0, 0.3])
def test_matches_generic_solver(seed, lam):
    rng = np.random.default_rng(seed)
    n = 40 + 10 * seed
    d = float(rng.uniform(0.6, 0.97))
    r = float(rng.uniform(0.05, d))
    g1, g2 = d + r, -d * r
    _, y = _synthetic(rng, n, g1, g2, 0.1, 0.3)
    y[0] -= 0.5  # exercise c_1 >= 0
    c, s = oasis_ar2(y, g1, g2, lam=lam)
    c_ref, s_ref = _generic_solution(y, g1, g2, lam)
    scale = np.max(np.abs(c_ref))
    assert np.max(np.abs(c - c_ref)) <= 1e-4 * scale
    assert _objective(y, c, s, lam) <= _objective(y, c_ref, s_ref, lam) * (1 + 1e-9) + 1e-12
    assert np.all(s >= -1e-12)
    ss = c.copy()
    ss[1:] -= g1 * c[:-1]
    ss[2:] -= g2 * c[:-2]
    np.testing.assert_allclose(s, ss, atol=1e-9)


def test_ar1_special_case():
    rng = np.random.default_rng(11)
    _, y = _synthetic(rng, 400, 0.9, 0.0, 0.05, 0.2)
    c2, s2 = oasis_ar2(y, 0.9, 0.0, lam=0.2)
    c1, s1 = oasis_ar1(y, 0.9, lam=0.2)
    np.testing.assert_allclose(c2, c1, atol=1e-9)
    np.testing.assert_allclose(s2, s1, atol=1e-9)


def test_synthetic_accuracy_true_kinetics():
    rng = np.random.default_rng(7)
    g1, g2, *_ = tau_to_ar2(0.05, 0.5, 30.0)
    spikes, y = _synthetic(rng, 9000, g1, g2, 0.7 / 30.0, 0.2)  # 0.7 Hz, spike 1, noise 0.2
    _, s = oasis_ar2(y, g1, g2)
    corr = np.corrcoef(gaussian_filter1d(s, 2.0), gaussian_filter1d(spikes, 2.0))[0, 1]
    print(f"AR(2) smoothed correlation {corr:.4f}")
    assert corr >= 0.99


def test_s_min_and_batch():
    rng = np.random.default_rng(3)
    g1, g2, *_ = tau_to_ar2(0.1, 0.6, 30.0)
    _, traces = _synthetic(rng, 1500, g1, g2, 0.03, 0.2, n_rois=5)
    lam = rng.uniform(0.0, 0.3, 5)
    c, s = oasis_ar2_batch(traces, g1, g2, lam=lam, s_min=0.3)
    for i in range(5):
        ci, si = oasis_ar2(traces[i], g1, g2, lam=lam[i], s_min=0.3)
        np.testing.assert_array_equal(c[i], ci)
        np.testing.assert_array_equal(s[i], si)
        nz = si[1:][si[1:] > 0]
        assert nz.size > 0 and nz.min() >= 0.3 - 1e-9
    _, s0 = oasis_ar2_batch(traces, g1, g2)
    assert np.count_nonzero(s) < np.count_nonzero(s0)
    c32, s32 = oasis_ar2_batch(traces.astype(np.float32), g1, g2)
    c64, _ = oasis_ar2_batch(traces, g1, g2)
    assert c32.dtype == np.float32 and s32.dtype == np.float32
    np.testing.assert_allclose(c32, c64, atol=1e-3)


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: oasis_ar2(np.zeros((2, 5)), 1.2, -0.35), ShapeError),
        (lambda: oasis_ar2(np.zeros(0), 1.2, -0.35), ShapeError),
        (lambda: oasis_ar2(np.zeros(5), 1.0, 0.1), ParameterError),  # root > 1
        (lambda: oasis_ar2(np.zeros(5), 1.0, -0.5), ParameterError),  # complex roots
        (lambda: oasis_ar2(np.zeros(5), 1.5, -0.5), ParameterError),  # root 1
        (lambda: oasis_ar2(np.zeros(5), -0.2, 0.0), ParameterError),  # negative root
        (lambda: oasis_ar2(np.zeros(5), np.nan, -0.1), ParameterError),
        (lambda: oasis_ar2(np.zeros(5), 1.2, -0.35, lam=-1.0), ParameterError),
        (lambda: oasis_ar2(np.array([0.0, np.nan, 1.0]), 1.2, -0.35), ParameterError),
        (lambda: oasis_ar2_batch(np.zeros(5), 1.2, -0.35), ShapeError),
        (lambda: oasis_ar2_batch(np.zeros((3, 5)), [1.2, 1.2], -0.35), ShapeError),
        (lambda: oasis_ar2_batch(np.array([["a"]]), 1.2, -0.35), ShapeError),
        (lambda: tau_to_ar2(0.0, 0.5, 30.0), ParameterError),
    ],
)
def test_bad_input(call, error):
    with pytest.raises(error):
        call()
