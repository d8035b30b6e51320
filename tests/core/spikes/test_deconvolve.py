"""``deconvolve``: each method recovers known spikes; kinetics, λ and inputs work as documented."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import lfilter

from napari_calcium.core.spikes.deconvolution.activity import smooth_activity
from napari_calcium.core.spikes.deconvolution.api import DECONVOLUTION_METHODS, deconvolve
from napari_calcium.core.spikes.deconvolution.evaluation import smoothed_correlation
from napari_calcium.core.spikes.deconvolution.kernels import tau_to_ar2
from napari_calcium.core.traces.extraction import TraceSet
from napari_calcium.errors import ParameterError, ShapeError

FS = 30.0


def _simulate(n_rois=6, n_frames=9000, *, tau_d=0.5, tau_r=0.0, rate_hz=0.7, snr=5.0, seed=0):
    """Poisson spikes (amplitude 1), AR(1) or AR(2) calcium, white noise of σ = 1/snr, offset 2."""
    rng = np.random.default_rng(seed)
    spikes = rng.poisson(rate_hz / FS, (n_rois, n_frames)).astype(np.float64)
    if tau_r > 0:
        g1, g2, *_ = tau_to_ar2(tau_r, tau_d, FS)
        calcium = lfilter([1.0], [1.0, -g1, -g2], spikes, axis=1)
    else:
        calcium = lfilter([1.0], [1.0, -np.exp(-1 / (tau_d * FS))], spikes, axis=1)
    noisy = calcium + rng.standard_normal(spikes.shape) / snr + 2.0
    return noisy, spikes, calcium


@pytest.mark.parametrize(
    ("method", "tau_r", "options", "floor"),
    [
        ("oasis-ar1", 0.0, {"s_min": "noise"}, 0.99),  # the synthetic target
        ("oasis-ar1", 0.0, {}, 0.98),  # default λ = 0: noise leaves small spikes
        ("oasis-ar2", 0.1, {"lam": "noise"}, 0.99),
        ("oasis-ar2", 0.1, {}, 0.985),
        ("fista", 0.1, {"lam": "noise"}, 0.98),
    ],
)
def test_methods_recover_known_spikes(method, tau_r, options, floor):
    y, spikes, _ = _simulate(tau_r=tau_r)
    kin = {"tau_decay_s": 0.5} if tau_r == 0 else {"tau_decay_s": 0.5, "tau_rise_s": tau_r}
    res = deconvolve(y, frame_rate_hz=FS, method=method, **kin, **options)
    r = smoothed_correlation(res.s, spikes, sigma_frames=2.0)
    assert np.median(r) >= floor, r
    assert res.method == method and res.s.shape == y.shape
    assert (res.s >= -1e-9).all() and (res.activity >= 0).all()
    # the reconvolved model explains the trace down to the noise (σ = 0.2)
    resid = np.std(y - res.fit, axis=1)
    assert np.all(resid < 0.25), resid
    assert np.allclose(res.noise, 0.2, rtol=0.15)


def test_default_is_oasis_ar1_with_lambda_zero_and_calibrated_activity():
    y, spikes, _ = _simulate(seed=1)
    res = deconvolve(y, frame_rate_hz=FS, tau_decay_s=0.5)
    assert res.method == DECONVOLUTION_METHODS[0] == "oasis-ar1"
    assert np.all(res.lam == 0)
    # activity is the documented calibration of s: Gaussian of max(0.03 s, 1 / (2 f_eff)) with
    # f_eff the Nyquist frequency here (white noise), moved earlier by a quarter of each ROI's
    # measured rise (under half a frame here: the simulated rise is instant), power 0.75
    sigma = max(0.03, 1 / FS)
    assert res.parameters["smoothing_s"] == pytest.approx([sigma] * y.shape[0])
    shift = np.asarray(res.parameters["activity_shift_s"])
    assert np.all((shift >= 0) & (shift < 0.5 / FS)), shift
    expected = smooth_activity(res.s.astype(np.float64), FS, sigma, shift_s=shift, exponent=0.75)
    np.testing.assert_allclose(res.activity, expected, rtol=1e-6, atol=1e-9)
    assert np.median(smoothed_correlation(res.activity, spikes, sigma_frames=2.0)) > 0.97
    assert res.spike_rate_hz().shape == y.shape
    assert res.time_s[-1] == pytest.approx((y.shape[1] - 1) / FS)


def test_tau_from_preset_given_per_roi_or_estimated():
    y, spikes, _ = _simulate(tau_d=0.7, seed=2)
    preset = deconvolve(y, frame_rate_hz=FS, indicator="OGB-1")
    # the preset's 0.7 s and the data's own estimate (0.7 s here) combined
    assert np.allclose(preset.tau_decay_s, 0.7, rtol=0.15)
    assert "OGB-1" in preset.parameters["kinetics"]
    per_roi = np.linspace(0.4, 0.9, y.shape[0])
    given = deconvolve(y, frame_rate_hz=FS, tau_decay_s=per_roi)
    assert np.array_equal(given.tau_decay_s, per_roi)
    est = deconvolve(y, frame_rate_hz=FS)
    assert "estimated" in est.parameters["kinetics"]
    assert abs(np.median(est.tau_decay_s) - 0.7) < 0.07, est.tau_decay_s
    assert np.allclose(est.tau_decay_s, 0.7, rtol=0.3), est.tau_decay_s
    r = smoothed_correlation(est.s, spikes, sigma_frames=2.0)
    assert np.median(r) > 0.97


def test_noise_constrained_lambda_meets_the_noise_level():
    y, spikes, _ = _simulate(seed=3)
    res = deconvolve(y, frame_rate_hz=FS, tau_decay_s=0.5, lam="noise")
    assert np.all(res.lam > 0)
    resid = y - res.fit
    assert np.allclose(np.sqrt(np.mean(resid**2, axis=1)), res.noise, rtol=0.02)
    assert np.median(smoothed_correlation(res.s, spikes, sigma_frames=2.0)) > 0.98


def test_traceset_input_gives_ids_and_rate_and_float32_stays():
    y, _, _ = _simulate(n_rois=3, n_frames=3000, seed=4)
    f = y.astype(np.float32)
    ts = TraceSet(
        F=f, Fneu=None, corrected=f, coefficients=np.zeros(3, np.float32),
        ids=np.array([5, 9, 12]), frame_rate_hz=FS,
    )  # fmt: skip
    res = deconvolve(ts, tau_decay_s=0.5)
    assert res.ids.tolist() == [5, 9, 12] and res.frame_rate_hz == FS
    assert res.row(9) == 1
    assert res.s.dtype == np.float32 and res.activity.dtype == np.float32
    direct = deconvolve(f, frame_rate_hz=FS, tau_decay_s=0.5)
    assert np.array_equal(res.s, direct.s)
    one = deconvolve(f[1], frame_rate_hz=FS, tau_decay_s=0.5)
    assert one.s.shape == (1, f.shape[1])


def test_bad_input_raises_our_errors():
    y, _, _ = _simulate(n_rois=2, n_frames=600, seed=5)
    with pytest.raises(ParameterError, match="method"):
        deconvolve(y, frame_rate_hz=FS, method="mlspike")
    with pytest.raises(ParameterError, match="frame_rate_hz"):
        deconvolve(y)
    bad = y.copy()
    bad[1, 10] = np.nan
    with pytest.raises(ParameterError, match=r"rows \[1\]"):
        deconvolve(bad, frame_rate_hz=FS)
    with pytest.raises(ShapeError, match="32 frames"):
        deconvolve(y[:, :10], frame_rate_hz=FS)
    with pytest.raises(ParameterError, match="lam"):
        deconvolve(y, frame_rate_hz=FS, lam="auto")
    with pytest.raises(ParameterError, match="lam"):
        deconvolve(y, frame_rate_hz=FS, lam=-1.0)
    with pytest.raises(ShapeError, match="tau_decay_s"):
        deconvolve(y, frame_rate_hz=FS, tau_decay_s=[0.5, 0.5, 0.5])
    with pytest.raises(ParameterError, match=r"indicator|GCaMP"):
        deconvolve(y, frame_rate_hz=FS, indicator="GCaMP99")
    with pytest.raises(ShapeError):
        deconvolve(np.zeros((2, 3, 100)), frame_rate_hz=FS)


def test_fista_and_oasis_ar2_solve_the_same_problem():
    """CaLab's kernel is the AR(2) impulse response one frame later: same fit, same spikes."""
    y, _, _ = _simulate(n_rois=3, n_frames=3000, tau_r=0.1, seed=6)
    kin = {"tau_decay_s": 0.5, "tau_rise_s": 0.1, "lam": "noise"}
    oasis = deconvolve(y, frame_rate_hz=FS, method="oasis-ar2", **kin)
    fista = deconvolve(y, frame_rate_hz=FS, method="fista", **kin)
    np.testing.assert_array_equal(fista.lam, oasis.lam)
    for a, b in zip(oasis.s, fista.s, strict=True):
        assert np.corrcoef(a, b)[0, 1] > 0.99
    diff = np.abs(oasis.fit - fista.fit)  # noise σ = 0.2
    assert diff.max() < 0.1 and diff.mean() < 0.01, (diff.max(), diff.mean())


def test_mode_offset_finds_the_noise_floor_better_than_the_median():
    """The histogram mode sits closer to the true baseline than the median does."""
    from napari_calcium.core.spikes.deconvolution.activity import _offset, remove_baseline

    y, _, _ = _simulate(seed=7)  # dense activity (0.7 Hz, τ 0.5 s) on a flat baseline of 2.0
    err_mode = np.abs(_offset(y - 2.0, "mode")[:, 0])
    err_median = np.abs(_offset(y - 2.0, "median")[:, 0])
    assert np.all(err_mode < 0.7 * err_median), (err_mode, err_median)
    _, base = remove_baseline(y, frame_rate_hz=FS)  # the whole baseline step: within one σ
    assert np.all(np.abs(base.mean(axis=1) - 2.0) < 0.2)


@pytest.mark.parametrize(
    "options",
    [{}, {"method": "oasis-ar2", "lam": "noise"}, {"method": "fista"}, {"s_min": "noise"}],
)
def test_no_rois_give_empty_results(options):
    """A movie where no ROI was found: empty results, not an error from the noise estimate."""
    res = deconvolve(np.zeros((0, 300), np.float32), frame_rate_hz=30.0, **options)
    assert res.s.shape == res.c.shape == res.activity.shape == (0, 300)
    assert res.lam.shape == res.noise.shape == res.tau_decay_s.shape == (0,)
    with pytest.raises(ParameterError, match="method"):
        deconvolve(np.zeros((0, 300)), frame_rate_hz=30.0, method="magic")
