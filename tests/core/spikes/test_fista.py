"""FISTA deconvolution, noise σ from the PSD and τ estimation, against known ground truth."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d
from scipy.optimize import minimize
from scipy.signal import lfilter

from napari_calcium.core._backend import gpu_available
from napari_calcium.core.spikes.deconvolution.fista import fista_deconvolve
from napari_calcium.core.spikes.deconvolution.kernels import build_kernel, kernel_iir
from napari_calcium.core.spikes.deconvolution.noise import estimate_tau, noise_sigma_psd
from napari_calcium.errors import ParameterError, ShapeError

FS, TR, TD = 30.0, 0.05, 0.4
KW = {"frame_rate_hz": FS, "tau_rise_s": TR, "tau_decay_s": TD}


def _synthetic(n_rois, n_frames, *, rate_hz=1.0, sigma=0.2, seed=0, base=1.0):
    """Poisson spikes, peak-1 double-exponential calcium, white noise (SNR = 1 / sigma)."""
    rng = np.random.default_rng(seed)
    spikes = rng.poisson(rate_hz / FS, (n_rois, n_frames)).astype(float)
    b, a, _ = kernel_iir(TR, TD, FS)
    calcium = lfilter(b, a, spikes, axis=-1)
    return spikes, calcium + base + sigma * rng.standard_normal((n_rois, n_frames))


def _objective(s, beta, y, kmat, lam_eff):
    r = y - kmat @ s - beta
    return 0.5 * r @ r + lam_eff * s.sum()


@pytest.mark.parametrize("baseline", [True, False])
def test_matches_a_generic_bounded_solver(baseline):
    n = 150
    _, y2 = _synthetic(1, n, sigma=0.1, seed=4, base=0.5 if baseline else 0.0)
    y = y2[0]
    lam = 0.05
    h = build_kernel(TR, TD, FS, length=n)  # the first n samples of the exact (IIR) kernel
    kmat = np.array([[h[i - j] if i >= j else 0.0 for j in range(n)] for i in range(n)])
    res = fista_deconvolve(y, lam=lam, n_iter=50000, tol=1e-14, baseline=baseline, **KW)
    lam_eff = res.lam_eff
    assert lam_eff == pytest.approx(lam * kernel_iir(TR, TD, FS)[2])

    def fun(x):
        s, beta = x[:n], (x[n] if baseline else 0.0)
        r = kmat @ s + beta - y
        grad = np.concatenate([kmat.T @ r + lam_eff, [r.sum() if baseline else 0.0]])
        return 0.5 * r @ r + lam_eff * s.sum(), grad

    bounds = [(0, None)] * n + [(None, None)]
    ref = minimize(
        fun,
        np.zeros(n + 1),
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": 50000, "ftol": 1e-15, "gtol": 1e-12, "maxcor": 50},
    )
    s_ref, b_ref = ref.x[:n], (ref.x[n] if baseline else 0.0)
    f_ref = _objective(s_ref, b_ref, y, kmat, lam_eff)
    f_us = _objective(res.s, res.baseline, y, kmat, lam_eff)
    assert abs(f_us - f_ref) <= 1e-4 * abs(f_ref)
    assert f_us <= f_ref * (1 + 1e-9)  # FISTA is at least as good as L-BFGS-B
    assert np.max(np.abs(res.s - s_ref)) <= 1e-3 * max(1.0, s_ref.max())
    np.testing.assert_allclose(res.c, kmat @ res.s, atol=1e-9)
    if baseline:
        assert res.baseline == pytest.approx(b_ref, abs=1e-3)
    else:
        assert res.baseline == 0.0
    assert res.s.min() >= 0.0


def test_recovers_spikes_at_snr_5():
    spikes, y = _synthetic(8, 3000, rate_hz=1.0, sigma=0.2, seed=1)
    res = fista_deconvolve(y.astype(np.float32), lam=0.2, **KW)
    assert res.s.dtype == np.float32 and res.s.shape == y.shape
    assert bool(res.converged.all()) and int(res.n_iter_run.max()) < 2000
    est = gaussian_filter1d(res.s.astype(float), 2.0, axis=1)
    true = gaussian_filter1d(spikes, 2.0, axis=1)
    corr = [np.corrcoef(est[i], true[i])[0, 1] for i in range(len(y))]
    assert np.mean(corr) > 0.9  # measured ~0.94
    # the baseline is the exact minimiser given s: the mean residual is zero; the L1 penalty
    # shifts part of the mean calcium into it, so it lies between the true 1.0 and mean(y)
    resid = y - res.c - res.baseline[:, None]
    np.testing.assert_allclose(resid.mean(axis=1), 0.0, atol=1e-4)
    assert np.all((res.baseline > 0.95) & (res.baseline < y.mean(axis=1)))
    assert res.s.sum() == pytest.approx(spikes.sum(), rel=0.5)  # activity in spike units


def test_blocks_and_threads_give_the_per_row_answer():
    _, y = _synthetic(70, 400, seed=2)  # > one CPU block of rows
    lam = np.linspace(0.05, 0.3, 70)
    res = fista_deconvolve(y, lam=lam, tol=0.0, n_iter=300, **KW)
    for i in (0, 33, 69):
        one = fista_deconvolve(y[i], lam=float(lam[i]), tol=0.0, n_iter=300, **KW)
        np.testing.assert_allclose(res.s[i], one.s, atol=1e-10)
        assert res.baseline[i] == pytest.approx(one.baseline, abs=1e-10)
    assert res.s.shape == y.shape and res.n_iter_run.shape == (70,)


def test_larger_lambda_gives_sparser_activity():
    _, y = _synthetic(1, 1500, seed=5)
    counts = [
        np.count_nonzero(fista_deconvolve(y[0], lam=lam, **KW).s > 1e-6) for lam in (0.02, 0.2, 1.0)
    ]
    assert counts[0] > counts[1] > counts[2]


@pytest.mark.parametrize(
    ("kwargs", "err"),
    [
        ({"traces": np.zeros((2, 3, 4))}, ShapeError),
        ({"traces": np.zeros(1)}, ShapeError),
        ({"traces": np.array(["a", "b"])}, ShapeError),
        ({"traces": np.array([1.0, np.nan, 2.0])}, ParameterError),
        ({"lam": -1.0}, ParameterError),
        ({"lam": np.ones(3)}, ShapeError),
        ({"n_iter": 0}, ParameterError),
        ({"tol": -1.0}, ParameterError),
        ({"tau_rise_s": 0.5}, ParameterError),
        ({"frame_rate_hz": 0.0}, ParameterError),
    ],
)
def test_bad_inputs_raise_our_errors(kwargs, err):
    args = {"traces": np.ones((2, 50)), **KW, **kwargs}
    with pytest.raises(err):
        fista_deconvolve(args.pop("traces"), **args)


@pytest.mark.gpu
@pytest.mark.skipif(not gpu_available(), reason="needs CuPy and a working CUDA device")
def test_cupy_matches_numpy():
    import cupy as cp

    _, y = _synthetic(40, 2000, seed=6)
    for dtype, atol in ((np.float64, 1e-8), (np.float32, 2e-3)):
        yy = y.astype(dtype)
        ref = fista_deconvolve(yy, lam=0.2, tol=1e-8, **KW)
        gpu = fista_deconvolve(cp.asarray(yy), lam=0.2, tol=1e-8, **KW)
        assert isinstance(gpu.s, cp.ndarray) and gpu.s.dtype == dtype
        np.testing.assert_allclose(cp.asnumpy(gpu.s), ref.s, atol=atol)
        np.testing.assert_allclose(cp.asnumpy(gpu.baseline), ref.baseline, atol=atol)


# --------------------------------------------------------------------------------------------------
# noise σ and τ
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["logmexp", "mean", "median"])
def test_noise_sigma_psd_recovers_known_sigma(method):
    rng = np.random.default_rng(7)
    sig = np.array([0.2, 0.3, 0.5, 1.0])  # at sigma 0.1 this calcium biases sigma +12%
    g = np.exp(-1 / (0.5 * FS))
    calcium = lfilter([1.0], [1.0, -g], rng.poisson(0.3 / FS, (4, 20000)).astype(float), axis=-1)
    y = calcium + sig[:, None] * rng.standard_normal((4, 20000))
    est = noise_sigma_psd(y, method=method)
    assert est.shape == (4,)
    np.testing.assert_allclose(est, sig, rtol=0.05)
    assert isinstance(noise_sigma_psd(y[1], method=method), float)


def test_estimate_tau_order1_recovers_decay_at_snr5():
    rng = np.random.default_rng(8)
    tau = 0.5
    g = np.exp(-1 / (tau * FS))
    calcium = lfilter([1.0], [1.0, -g], rng.poisson(1.0 / FS, (6, 30000)).astype(float), axis=-1)
    y = calcium + 0.2 * rng.standard_normal(calcium.shape)
    est = estimate_tau(y, FS)
    assert est.shape == (6,)
    assert np.median(est) == pytest.approx(tau, rel=0.10)
    assert np.all(np.abs(est / tau - 1) < 0.2)


def test_estimate_tau_order2_recovers_decay_and_rise():
    _, y = _synthetic(8, 30000, rate_hz=1.0, sigma=0.2, seed=9)
    rise, decay = estimate_tau(y, FS, order=2)
    assert np.median(decay) == pytest.approx(TD, rel=0.2)
    assert 0.3 * TR < np.median(rise) < 2.5 * TR
    assert np.all(rise < decay)


def test_estimate_tau_bad_input():
    with pytest.raises(ParameterError):
        estimate_tau(np.ones(100), -1.0)
    with pytest.raises(ParameterError):
        estimate_tau(np.ones(100), 30.0, order=3)
    with pytest.raises(ShapeError):
        estimate_tau(np.ones(10), 30.0)
    with pytest.raises(ParameterError):
        noise_sigma_psd(np.ones(100), freq_range=(0.4, 0.3))
    with pytest.raises(ParameterError):
        noise_sigma_psd(np.ones(100), method="max")


# --------------------------------------------------------------------------------------------------
# blocked convolution
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("tr", "td", "fs"), [(TR, TD, FS), (0.1, 2.0, 100.0), (0.01, 0.2, 10.0)])
@pytest.mark.parametrize("n", [5, 32, 1000, 7001])
def test_blocked_kernel_matches_lfilter_and_its_adjoint(tr, td, fs, n):
    from napari_calcium.core.spikes.deconvolution.fista import BlockedKernel
    from napari_calcium.core.spikes.deconvolution.kernels import tau_to_ar2

    b, a, _ = kernel_iir(tr, td, fs)
    _, _, d, r = tau_to_ar2(tr, td, fs)
    kern = BlockedKernel(np, np.float64, b[1] / (d - r), d, r, 0.5, 32)
    nb = kern.n_blocks(n)
    assert nb * 32 >= n and nb % -(-nb // 192) == 0
    rng = np.random.default_rng(n)
    x = np.zeros((3, nb * 32))
    x[:, :n] = rng.standard_normal((3, n))
    bias = np.array([[0.0], [1.0], [-2.0]])
    fwd = kern.forward(x.reshape(3, nb, 32)).reshape(3, -1)
    np.testing.assert_allclose(fwd, lfilter(b, a, x, axis=-1), atol=1e-10)
    adj = kern.adjoint(x.reshape(3, nb, 32), bias).reshape(3, -1)[:, :n]
    ref = 0.5 * lfilter(b, a, x[:, :n][:, ::-1], axis=-1)[:, ::-1] + bias
    np.testing.assert_allclose(adj, ref, atol=1e-10)


def test_float32_objective_matches_float64():
    _, y = _synthetic(20, 5000, seed=11)
    r32 = fista_deconvolve(y.astype(np.float32), lam=0.2, **KW)
    r64 = fista_deconvolve(y, lam=0.2, **KW)
    b, a, _ = kernel_iir(TR, TD, FS)

    def obj(res):
        s = res.s.astype(float)
        resid = y - lfilter(b, a, s, axis=-1)
        resid -= resid.mean(axis=1, keepdims=True)
        return 0.5 * (resid**2).sum(axis=1) + res.lam_eff * s.sum(axis=1)

    np.testing.assert_allclose(obj(r32), obj(r64), rtol=1e-4)
    assert bool(r32.converged.all())
