"""Kernel math for FISTA deconvolution: kernel, AR(2) coefficients, Lipschitz, convert_tau."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.signal import lfilter

from napari_calcium.core.spikes.deconvolution.kernels import (
    KERNEL_TAIL,
    ar2_to_tau,
    build_kernel,
    compute_lipschitz,
    convert_tau,
    kernel_iir,
    tau_to_ar2,
)
from napari_calcium.core.spikes.deconvolution.kinetics import ar1_to_tau
from napari_calcium.core.spikes.indicators import double_exponential
from napari_calcium.errors import ParameterError, ShapeError

CASES = [(0.05, 0.4, 30.0), (0.01, 0.2, 100.0), (0.1, 1.2, 15.0), (0.07, 0.8, 7.5)]


@pytest.mark.parametrize(("tr", "td", "fs"), CASES)
def test_tau_to_ar2_values_and_round_trip(tr, td, fs):
    g1, g2, d, r = tau_to_ar2(tr, td, fs)
    assert d == pytest.approx(math.exp(-1 / (td * fs)), rel=1e-12)
    assert r == pytest.approx(math.exp(-1 / (tr * fs)), rel=1e-12)
    assert g1 == pytest.approx(d + r, rel=1e-12)
    assert g2 == pytest.approx(-d * r, rel=1e-12)
    tr2, td2 = ar2_to_tau(g1, g2, fs)
    assert tr2 == pytest.approx(tr, rel=1e-9)
    assert td2 == pytest.approx(td, rel=1e-9)


@pytest.mark.parametrize(("tr", "td", "fs"), CASES)
def test_build_kernel_is_the_sampled_double_exponential(tr, td, fs):
    h = build_kernel(tr, td, fs)
    t = np.arange(h.size) / fs
    ref = np.exp(-t / td) - np.exp(-t / tr)
    assert h[0] == 0.0
    assert h.max() == pytest.approx(1.0, abs=1e-12)  # peak-normalised, as CaLab
    np.testing.assert_allclose(h, ref / ref.max(), rtol=1e-12, atol=1e-15)
    # cut at the last sample >= KERNEL_TAIL of the peak; the next one is below it
    assert h[-1] >= KERNEL_TAIL
    nxt = math.exp(-h.size / (fs * td)) - math.exp(-h.size / (fs * tr))
    assert nxt / ref.max() < KERNEL_TAIL
    # same shape as the package's continuous kernel (which peaks at 1 between samples)
    cont = double_exponential(t, tr, td)
    np.testing.assert_allclose(h / h.sum(), cont / cont.sum(), rtol=1e-9)


def test_build_kernel_length_and_normalisations():
    h = build_kernel(0.05, 0.4, 30.0, length=10)
    assert h.shape == (10,)
    area = build_kernel(0.05, 0.4, 30.0, normalize="area")
    assert area.sum() == pytest.approx(1.0)
    raw = build_kernel(0.05, 0.4, 30.0, normalize="none")
    t = np.arange(raw.size) / 30.0
    np.testing.assert_allclose(raw, np.exp(-t / 0.4) - np.exp(-t / 0.05))


@pytest.mark.parametrize(("tr", "td", "fs"), CASES)
def test_ar2_recursion_reproduces_kernel_up_to_scale(tr, td, fs):
    g1, g2, _, _ = tau_to_ar2(tr, td, fs)
    h = build_kernel(tr, td, fs)
    c = np.zeros(h.size)
    c[1] = 1.0  # impulse enters one frame later: h[0] = 0
    for t in range(2, h.size):
        c[t] = g1 * c[t - 1] + g2 * c[t - 2]
    scale = h[1] / c[1]
    np.testing.assert_allclose(c * scale, h, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(("tr", "td", "fs"), CASES)
def test_kernel_iir_equals_convolution_with_the_kernel(tr, td, fs):
    b, a, gain = kernel_iir(tr, td, fs)
    h = build_kernel(tr, td, fs)
    rng = np.random.default_rng(3)
    s = rng.poisson(0.1, 400).astype(float)
    np.testing.assert_allclose(lfilter(b, a, s), np.convolve(s, h)[:400], atol=2e-3 * s.sum())
    assert gain == pytest.approx(h.sum(), rel=1e-3)


def _conv_matrix(h, n):
    k = np.zeros((n, n))
    for j in range(n):
        m = min(h.size, n - j)
        k[j : j + m, j] = h[:m]
    return k


@pytest.mark.parametrize(("tr", "td", "fs"), CASES[:3])
def test_lipschitz_bounds_the_spectral_norm(tr, td, fs):
    h = build_kernel(tr, td, fs)
    lip = compute_lipschitz(h)
    assert lip == pytest.approx(h.sum() ** 2)  # max |H(w)|^2 is the DC gain for h >= 0
    norm2 = np.linalg.norm(_conv_matrix(h, 400), 2) ** 2
    assert norm2 <= lip * (1 + 1e-12)
    assert norm2 >= 0.8 * lip  # and it is not a loose bound


def test_lipschitz_of_a_mixed_sign_kernel_bounds_the_norm():
    h = np.array([1.0, -0.8, 0.3, -0.1])
    lip = compute_lipschitz(h)
    freq = np.abs(np.fft.rfft(h, 4096)).max() ** 2
    assert freq <= lip <= freq * 1.01
    assert np.linalg.norm(_conv_matrix(h, 300), 2) ** 2 <= lip


def test_convert_tau_is_calscipy_discrete_to_continuous():
    fs = 30.0
    for tau_s in (0.1, 0.4, 2.0):
        g = math.exp(-1 / (tau_s * fs))
        assert convert_tau(g, fs) == pytest.approx(tau_s, rel=1e-12)
        assert convert_tau(g, fs) == pytest.approx(ar1_to_tau(g, fs), rel=1e-12)


@pytest.mark.parametrize(
    ("call", "err"),
    [
        (lambda: build_kernel(0.4, 0.05, 30.0), ParameterError),
        (lambda: build_kernel(-0.1, 0.4, 30.0), ParameterError),
        (lambda: build_kernel(0.05, 0.4, 0.0), ParameterError),
        (lambda: build_kernel(0.05, 0.4, 30.0, length=1), ParameterError),
        (lambda: build_kernel(0.05, 0.4, 30.0, normalize="max"), ParameterError),
        (lambda: tau_to_ar2(0.05, float("nan"), 30.0), ParameterError),
        (lambda: ar2_to_tau(1.0, -0.5, 30.0), ParameterError),  # complex roots
        (lambda: ar2_to_tau(2.1, -1.1, 30.0), ParameterError),  # root 1.1 > 1
        (lambda: compute_lipschitz(np.zeros(5)), ParameterError),
        (lambda: compute_lipschitz(np.ones((2, 2))), ShapeError),
        (lambda: compute_lipschitz(np.array([1.0, np.nan])), ParameterError),
        (lambda: convert_tau(1.2, 30.0), ParameterError),
        (lambda: convert_tau(0.4, -30.0), ParameterError),
    ],
)
def test_bad_inputs_raise_our_errors(call, err):
    with pytest.raises(err):
        call()
