"""OASIS AR(1): agreement with a generic convex solver, synthetic accuracy, batching, errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d
from scipy.optimize import minimize, nnls
from scipy.signal import lfilter

from napari_calcium.core.spikes.deconvolution.kinetics import ar1_to_tau, estimate_ar1, tau_to_ar1
from napari_calcium.core.spikes.deconvolution.oasis import oasis_ar1, oasis_ar1_batch
from napari_calcium.errors import ParameterError, ShapeError


def _ar1_kernel_matrix(n: int, g: float) -> np.ndarray:
    """K with c = K s: K[t, j] = g^(t - j) for t >= j (c_0 = 0, so s_1 = c_1)."""
    t = np.arange(n)
    diff = t[:, None] - t[None, :]
    return np.where(diff >= 0, g ** np.maximum(diff, 0), 0.0)


def _generic_solution(y: np.ndarray, g: float, lam: float) -> np.ndarray:
    """Solve min 1/2 ||y - K s||^2 + lam sum(s), s >= 0, with scipy alone (no OASIS ideas)."""
    k = _ar1_kernel_matrix(y.size, g)
    if lam == 0.0:
        s, _ = nnls(k, y, maxiter=50 * y.size)
        return k @ s

    def fun(s):
        r = k @ s - y
        return 0.5 * r @ r + lam * s.sum(), k.T @ r + lam

    s0, _ = nnls(k, y)
    res = minimize(
        fun,
        s0,
        jac=True,
        method="L-BFGS-B",
        bounds=[(0.0, None)] * y.size,
        options={"ftol": 1e-16, "gtol": 1e-12, "maxiter": 100000, "maxfun": 100000},
    )
    return k @ res.x


def _spiky_trace(rng, n, g, rate, sigma):
    spikes = rng.poisson(rate, n).astype(np.float64)
    calcium = lfilter([1.0], [1.0, -g], spikes)
    return spikes, calcium + sigma * rng.standard_normal(n)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("lam", [0.0, 0.3])
def test_matches_generic_convex_solver(seed, lam):
    rng = np.random.default_rng(seed)
    n = 30 + 6 * seed
    g = float(rng.uniform(0.6, 0.97))
    _, y = _spiky_trace(rng, n, g, 0.15, 0.3)
    y[0] -= 0.5  # exercise the c_1 >= 0 bound on the first pool
    c, s = oasis_ar1(y, g, lam=lam)
    c_ref = _generic_solution(y, g, lam)
    assert np.max(np.abs(c - c_ref)) < 1e-4
    assert np.all(s >= -1e-12)
    np.testing.assert_allclose(s[1:], c[1:] - g * c[:-1], atol=1e-12)


def test_synthetic_accuracy():
    rng = np.random.default_rng(7)
    rate_hz, tau_s, n = 30.0, 0.4, 9000
    g = tau_to_ar1(tau_s, rate_hz)
    spikes, y = _spiky_trace(rng, n, g, 0.5 / rate_hz, 0.2)  # 0.5 Hz, spike 1, noise 0.2: SNR 5
    _, s = oasis_ar1(y, g, s_min=0.5)
    corr = np.corrcoef(gaussian_filter1d(s, 2.0), gaussian_filter1d(spikes, 2.0))[0, 1]
    print(f"smoothed correlation {corr:.4f}")
    assert corr >= 0.95


def test_s_min_and_lam_effects():
    rng = np.random.default_rng(3)
    g = 0.9
    _, y = _spiky_trace(rng, 2000, g, 0.02, 0.2)
    _, s0 = oasis_ar1(y, g)
    _, s_min = oasis_ar1(y, g, s_min=0.4)
    _, s_lam = oasis_ar1(y, g, lam=0.5)
    nz = s_min[1:][s_min[1:] > 0]
    assert nz.size > 0 and nz.min() >= 0.4 - 1e-9
    assert np.count_nonzero(s_min) < np.count_nonzero(s0)
    assert np.count_nonzero(s_lam) < np.count_nonzero(s0)


def test_batch_equals_per_trace():
    rng = np.random.default_rng(1)
    traces = np.stack([_spiky_trace(rng, 500, 0.9, 0.05, 0.2)[1] for _ in range(9)])
    g = rng.uniform(0.8, 0.95, 9)
    lam = rng.uniform(0.0, 0.3, 9)
    c, s = oasis_ar1_batch(traces, g, lam=lam, s_min=0.1)
    for i in range(9):
        ci, si = oasis_ar1(traces[i], g[i], lam=lam[i], s_min=0.1)
        np.testing.assert_array_equal(c[i], ci)
        np.testing.assert_array_equal(s[i], si)
    c32, s32 = oasis_ar1_batch(traces.astype(np.float32), g)
    c64, _ = oasis_ar1_batch(traces, g)
    assert c32.dtype == np.float32 and s32.dtype == np.float32
    np.testing.assert_allclose(c32, c64, atol=1e-4)


def test_kinetics_round_trip_and_estimate():
    g = tau_to_ar1(0.4, 30.0)
    assert g == pytest.approx(np.exp(-1 / 12))
    assert ar1_to_tau(g, 30.0) == pytest.approx(0.4)
    rng = np.random.default_rng(2)
    _, y = _spiky_trace(rng, 30000, g, 0.05, 0.3)
    assert estimate_ar1(y) == pytest.approx(g, abs=0.02)
    both = estimate_ar1(np.stack([y, y]))
    assert both.shape == (2,)


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: oasis_ar1(np.zeros((2, 5)), 0.9), ShapeError),
        (lambda: oasis_ar1(np.zeros(0), 0.9), ShapeError),
        (lambda: oasis_ar1(np.zeros(5), 1.0), ParameterError),
        (lambda: oasis_ar1(np.zeros(5), -0.1), ParameterError),
        (lambda: oasis_ar1(np.zeros(5), 0.9, lam=-1.0), ParameterError),
        (lambda: oasis_ar1(np.zeros(5), 0.9, s_min=np.nan), ParameterError),
        (lambda: oasis_ar1(np.array([0.0, np.nan, 1.0]), 0.9), ParameterError),
        (lambda: oasis_ar1_batch(np.zeros(5), 0.9), ShapeError),
        (lambda: oasis_ar1_batch(np.zeros((3, 5)), [0.9, 0.9]), ShapeError),
        (lambda: oasis_ar1_batch(np.array([["a"]]), 0.9), ShapeError),
        (lambda: tau_to_ar1(0.0, 30.0), ParameterError),
        (lambda: ar1_to_tau(1.0, 30.0), ParameterError),
        (lambda: estimate_ar1(np.zeros(3)), ShapeError),
    ],
)
def test_bad_input(call, error):
    with pytest.raises(error):
        call()
