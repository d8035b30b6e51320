"""Noise level from the power spectrum, and indicator time constants from the autocovariance.

References
----------
Pnevmatikakis, E. A. et al. (2016). Simultaneous denoising, deconvolution, and demixing of calcium
imaging data. *Neuron* 89(2), 285-299 (noise from the high-frequency PSD; AR(p) time constants from
the autocovariance with the noise variance removed).
Welch, P. (1967). The use of fast Fourier transform for the estimation of power spectra. *IEEE
Trans. Audio Electroacoust.* 15(2), 70-73.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.signal

from ....errors import ParameterError, ShapeError
from ..._backend import to_host
from .kernels import ar2_to_tau

__all__ = ["NOISE_METHODS", "estimate_tau", "noise_sigma_psd"]

#: Ways of averaging the PSD in :func:`noise_sigma_psd`.
NOISE_METHODS = ("logmexp", "mean", "median")

# Largest AR(1) factor / root we report (τ of ~10 000 frames): beyond that there is no decay.
_G_MAX = 0.9999


def _rows(traces: Any, min_frames: int, dtype: Any = np.float64) -> tuple[np.ndarray, bool]:
    x = to_host(traces) if hasattr(traces, "shape") else np.asarray(traces)
    if x.ndim not in (1, 2):
        raise ShapeError(f"traces has shape {x.shape}; expected (n_rois, n_frames) or (n_frames,)")
    if np.dtype(x.dtype).kind not in "biuf":
        raise ShapeError(f"traces must be real numbers; got dtype {x.dtype}")
    if x.shape[-1] < min_frames:
        raise ShapeError(f"traces need at least {min_frames} frames; got shape {x.shape}")
    rows = np.atleast_2d(np.asarray(x, dtype=dtype))
    if not np.all(np.isfinite(rows)):
        raise ParameterError("traces must be finite (no NaN or inf)")
    return rows, x.ndim == 1


def noise_sigma_psd(
    traces: Any,
    *,
    freq_range: tuple[float, float] = (0.25, 0.5),
    method: str = "logmexp",
    nperseg: int = 256,
) -> Any:
    """Standard deviation of the white noise in each trace, from its high-frequency power.

    Parameters
    ----------
    traces : array_like, shape (n_rois, n_frames) or (n_frames,)
        Traces (numpy or cupy; the estimate is computed on the host). At least 16 frames.
    freq_range : (float, float)
        Band of normalised frequencies (fractions of the sampling rate, ``0 <= lo < hi <= 0.5``)
        over which the PSD is averaged. The default upper half of the band holds little calcium
        signal for indicators slower than a few frames.
    method : {"logmexp", "mean", "median"}
        How the PSD is averaged over the band: exponential of the mean log (robust to a few
        signal-carrying bins, the default), arithmetic mean, or median.
    nperseg : int
        Welch segment length in frames (default 256, capped at ``n_frames``).

    Returns
    -------
    float or numpy.ndarray, shape (n_rois,)
        σ in the units of the traces (a float for a 1-D input).

    Raises
    ------
    ShapeError
        For a bad shape or dtype, or fewer than 16 frames.
    ParameterError
        For a bad `freq_range`, `method` or `nperseg`, or non-finite traces.

    Notes
    -----
    For white noise of variance σ² the one-sided PSD (Welch, Hann window, 50 % overlap, sampling
    rate 1) is flat at ``2 σ²``; so ``σ = sqrt(avg(PSD) / 2)`` over the band, with the DC and
    Nyquist bins (which are not doubled) left out. The idea is CaImAn's ``GetSn``; this is our own
    implementation. Signal power in the band (fast indicators at low frame rates) biases σ up.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> round(noise_sigma_psd(0.3 * rng.standard_normal(20000)), 2)
    0.3
    """
    rows, was_1d = _rows(traces, 16, np.float32)  # the PSD needs no more precision
    try:
        lo, hi = (float(v) for v in freq_range)
    except (TypeError, ValueError):
        raise ParameterError(f"freq_range must be two numbers; got {freq_range!r}") from None
    if not (0.0 <= lo < hi <= 0.5):
        raise ParameterError(f"freq_range must satisfy 0 <= lo < hi <= 0.5; got {freq_range!r}")
    if method not in NOISE_METHODS:
        raise ParameterError(f"method must be one of {NOISE_METHODS}; got {method!r}")
    if isinstance(nperseg, bool) or int(nperseg) != nperseg or nperseg < 8:
        raise ParameterError(f"nperseg must be an integer >= 8; got {nperseg!r}")
    if rows.shape[0] == 0:  # no ROIs: nothing to estimate
        return np.zeros(0)
    seg = min(int(nperseg), rows.shape[1])
    # mean-removed float32 rows, segments without overlap and without a per-segment detrend:
    # the band is far from DC, and this is 3-4x faster than scipy's defaults on long traces
    centred = rows - rows.mean(axis=1, keepdims=True, dtype=np.float64).astype(np.float32)
    freqs, psd = scipy.signal.welch(
        centred, fs=1.0, nperseg=seg, noverlap=0, axis=-1, detrend=False
    )
    psd = psd.astype(np.float64)
    band = (freqs >= lo) & (freqs <= hi) & (freqs > 0) & (freqs < 0.5)
    if not np.any(band):
        raise ParameterError(
            f"freq_range={freq_range!r} contains no frequency bin at nperseg={seg}; widen it"
        )
    p = psd[:, band] / 2.0
    if method == "mean":
        var = p.mean(axis=1)
    elif method == "median":
        var = np.median(p, axis=1)
    else:
        var = np.exp(np.mean(np.log(np.maximum(p, np.finfo(np.float64).tiny)), axis=1))
    sigma = np.sqrt(var)
    return float(sigma[0]) if was_1d else sigma


def _autocov(rows: np.ndarray, max_lag: int) -> np.ndarray:
    """Biased autocovariance ``gamma[:, k]``, ``k = 0..max_lag``, of mean-removed rows.

    Computed lag by lag (``max_lag + 1`` dot products per row): for the few lags the
    Yule-Walker equations need this is ~15x faster than an FFT of twice the trace's length.
    """
    n = rows.shape[1]
    d = rows - rows.mean(axis=1, keepdims=True)
    acf = np.empty((rows.shape[0], max_lag + 1))
    for k in range(min(max_lag, n - 1) + 1):
        acf[:, k] = np.einsum("ij,ij->i", d[:, : n - k], d[:, k:])
    acf[:, n:] = 0.0
    return acf / n


def estimate_tau(
    traces: Any,
    frame_rate_hz: float,
    *,
    order: int = 1,
    lags: int | None = None,
    method: str = "hoyw",
    sigma: Any = None,
    tau_bounds_s: tuple[float, float] | None = None,
) -> Any:
    """Decay (and rise) time constants per trace from the noise-corrected autocovariance.

    Parameters
    ----------
    traces : array_like, shape (n_rois, n_frames) or (n_frames,)
        Traces, ideally detrended (slow drift biases τ up). Numpy or cupy (computed on the host).
    frame_rate_hz : float
        Frame rate in Hz.
    order : {1, 2}
        1: single exponential decay (AR(1)). 2: double exponential (AR(2)), gives the rise too.
    lags : int, optional
        Number of Yule-Walker equations (autocovariance lags ``1..lags``; default ``order + 4``).
    method : {"hoyw", "yw"}
        ``"hoyw"`` (default): high-order Yule-Walker, the equations for lags ``k > order``, which
        do not involve ``gamma(0)`` and hence not the noise. ``"yw"``: the equations for
        ``k >= 1`` with σ² removed from ``gamma(0)``; lower variance, but any error of σ (e.g. the
        upward bias of the PSD estimate when calcium has high-frequency power) biases τ.
    sigma : float or array_like of shape (n_rois,), optional
        Noise σ per trace for ``method="yw"``; default :func:`noise_sigma_psd`.
    tau_bounds_s : (float, float), optional
        Range the time constants are clipped to, in seconds. Default
        ``(0.1 / frame_rate_hz, -1 / (frame_rate_hz ln 0.9999))`` (a tenth of a frame to ~10 000
        frames).

    Returns
    -------
    order 1: float or numpy.ndarray, shape (n_rois,)
        Decay time constant in seconds.
    order 2: tuple (tau_rise_s, tau_decay_s) of floats or arrays of shape (n_rois,)
        Rise and decay time constants in seconds.

    Raises
    ------
    ShapeError, ParameterError
        For bad input (shape, non-finite values, fewer than ``4 (lags + 1)`` frames, bad `order`,
        `lags`, `sigma` or bounds).

    Notes
    -----
    For ``y = c + noise`` with ``c`` an AR(p) process driven by white (Poisson) activity, the
    autocovariance obeys the Yule-Walker equations ``gamma(k) = sum_j g_j gamma(k - j)`` for
    ``k >= 1``, except that white noise of variance σ² adds σ² to ``gamma(0)`` only. Either the
    equations that never touch ``gamma(0)`` (``k > order``) are used, or σ² (from the PSD) is
    subtracted from ``gamma(0)`` (Pnevmatikakis et al. 2016); the ``lags`` equations are solved
    by least squares. For order 1 ``tau = -1 / (fs ln g)``; for order 2 the roots
    ``d > r`` of ``z^2 - g1 z - g2`` give the decay and rise. A rise faster than the bounds allow
    (``r <= 0``, a root that is complex or negative) is reported at the lower bound.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> from scipy.signal import lfilter
    >>> c = lfilter([1.0], [1.0, -0.95], rng.poisson(0.05, 50000).astype(float))
    >>> tau = estimate_tau(c + 0.1 * rng.standard_normal(50000), 30.0)
    >>> bool(abs(tau - (-1 / (30 * np.log(0.95)))) < 0.05)
    True
    """
    fs = float(frame_rate_hz) if isinstance(frame_rate_hz, int | float) else np.nan
    if not (math.isfinite(fs) and fs > 0):
        raise ParameterError(f"frame_rate_hz must be a finite number > 0; got {frame_rate_hz!r}")
    if order not in (1, 2) or isinstance(order, bool):
        raise ParameterError(f"order must be 1 or 2; got {order!r}")
    n_lags = order + 4 if lags is None else lags
    if isinstance(n_lags, bool) or int(n_lags) != n_lags or n_lags < order:
        raise ParameterError(f"lags must be an integer >= order ({order}); got {lags!r}")
    n_lags = int(n_lags)
    rows, was_1d = _rows(traces, max(16, 4 * (n_lags + 1)))
    n_rois = rows.shape[0]
    if method not in ("hoyw", "yw"):
        raise ParameterError(f"method must be 'hoyw' or 'yw'; got {method!r}")
    if method == "hoyw":
        sig = np.zeros(n_rois)  # unused: no equation involves gamma(0)
    elif sigma is None:
        sig = np.atleast_1d(noise_sigma_psd(rows))
    else:
        sig = np.asarray(to_host(sigma), dtype=np.float64).reshape(-1)
        sig = np.full(n_rois, sig[0]) if sig.size == 1 else sig
        if sig.shape != (n_rois,) or not np.all(np.isfinite(sig) & (sig >= 0)):
            raise ParameterError(f"sigma must be >= 0 and a number or shape ({n_rois},)")
    lo_s, hi_s = (
        (0.1 / fs, -1.0 / (fs * math.log(_G_MAX))) if tau_bounds_s is None else tau_bounds_s
    )
    if not (0 < float(lo_s) < float(hi_s) < np.inf):
        raise ParameterError(
            f"tau_bounds_s must be (low, high) with 0 < low < high; got {tau_bounds_s!r}"
        )
    g_lo, g_hi = math.exp(-1.0 / (float(lo_s) * fs)), math.exp(-1.0 / (float(hi_s) * fs))

    gam = _autocov(rows, n_lags + 2 * order)
    gam0 = gam.copy()
    gam0[:, 0] = np.maximum(gam[:, 0] - sig**2, 1e-12 * gam[:, 0] + 1e-300)
    first = 1 if method == "yw" else order + 1  # "hoyw": equations free of gamma(0)
    k = np.arange(first, first + n_lags)
    # design[:, k-1, j-1] = gamma~(|k - j|), target gamma(k)
    design = np.stack([gam0[:, np.abs(k - j)] for j in range(1, order + 1)], axis=-1)
    target = gam[:, k]
    coef = np.empty((n_rois, order))
    for i in range(n_rois):
        coef[i] = np.linalg.lstsq(design[i], target[i], rcond=None)[0]

    def to_tau(g: np.ndarray) -> np.ndarray:
        g = np.clip(g, g_lo, g_hi)
        return -1.0 / (fs * np.log(g))

    if order == 1:
        tau = to_tau(coef[:, 0])
        return float(tau[0]) if was_1d else tau
    rise = np.empty(n_rois)
    decay = np.empty(n_rois)
    for i, (g1, g2) in enumerate(coef):
        try:
            tr, td = ar2_to_tau(g1, g2, fs)
            rise[i], decay[i] = tr, td
        except ParameterError:  # complex / out-of-range roots: keep what is meaningful
            disc = g1 * g1 + 4.0 * g2
            d = (g1 + math.sqrt(max(disc, 0.0))) / 2.0
            r = (g1 - math.sqrt(max(disc, 0.0))) / 2.0 if disc > 0 else 0.0
            decay[i] = to_tau(np.array([d]))[0] if d > 0 else lo_s
            rise[i] = to_tau(np.array([r]))[0] if r > 0 else lo_s
    rise, decay = np.clip(rise, lo_s, hi_s), np.clip(decay, lo_s, hi_s)
    if was_1d:
        return float(rise[0]), float(decay[0])
    return rise, decay
