"""Baseline fluorescence F0 of traces: percentile, sliding percentile, low-pass, maximin, robust.

Every estimator takes traces ``(n_rois, n_frames)`` (a 1-D trace is one ROI) and returns F0 with
the same shape, in the traces' units, float32 (float64 stays float64). Windows are given in
seconds (``window_s``) and converted with ``frame_rate_hz``. numpy in gives numpy out, cupy in
gives cupy out; the CPU fast paths are the numba kernels of :mod:`._baseline_kernels`.

=============================  ============================================  =====================
function                       F0                                            seed
=============================  ============================================  =====================
:func:`baseline_percentile`    constant ``P_p(F)`` per ROI                   suite2p ``prctile``
:func:`baseline_sliding_pct`   running ``P_p`` over ``window_s``             CaImAn detrend_df_f
:func:`baseline_calscipy`      ``P_5`` of F after a 1 Hz Hamming low-pass    CalSciPy calculate_dfof
:func:`baseline_maximin`       max-filter(min-filter(gauss(F)))              suite2p maximin
:func:`baseline_robust`        sigma-clipped running mean, noise-corrected   ours (default)
=============================  ============================================  =====================

(``baseline_sliding_pct`` stands for :func:`baseline_sliding_percentile`.)

References
----------
Pachitariu M. et al. (2017) Suite2p: beyond 10,000 neurons with standard two-photon microscopy.
bioRxiv 061507 (maximin baseline). Giovannucci A. et al. (2019) CaImAn, eLife 8:e38173
(running-percentile detrend_df_f). Rupprecht P. et al. (2021) Nat Neurosci 24:1324 (CASCADE
standardized noise). CalSciPy (Darcy Peterka lab), ``trace_processing.calculate_dfof``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...errors import ParameterError, ShapeError
from .._backend import array_module, signal_module
from .._validate import frames_within_data
from . import _baseline_kernels as _k

__all__ = [
    "baseline_calscipy",
    "baseline_maximin",
    "baseline_percentile",
    "baseline_robust",
    "baseline_sliding_percentile",
    "noise_sigma",
]

_MODES = tuple(_k.PAD_MODES)


# --------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------
def as_traces(traces: Any, name: str = "traces") -> Any:
    """Validate traces and return them 2-D ``(n_rois, n_frames)`` float32/float64 (no copy if ok).

    Raises
    ------
    ShapeError
        Not 1-D or 2-D, or fewer than 2 frames.
    ParameterError
        NaN or infinite values.
    """
    xp = array_module(traces)
    x = xp.asarray(traces)
    if x.ndim not in (1, 2):
        raise ShapeError(
            f"{name} must be (n_rois, n_frames) or one trace (n_frames,); got shape {x.shape}"
        )
    if x.ndim == 1:
        x = x[None, :]
    if x.shape[-1] < 2:
        raise ShapeError(f"{name} needs at least 2 frames along the last axis; got {x.shape}")
    if x.dtype != xp.float64:
        x = x.astype(xp.float32)
    if not bool(xp.all(xp.isfinite(x))):
        raise ParameterError(
            f"{name} contains NaN or infinite values; interpolate or drop those frames first"
        )
    return x


def as_flagged_traces(traces: Any, name: str = "traces") -> tuple[Any, Any]:
    """Like :func:`as_traces`, but rows that are NaN in every frame are let through.

    Such rows are traces flagged upstream (e.g. by :func:`~.dff.compute_dff` where the baseline
    is not positive); a caller computes the others and gives NaN (or nothing) for these.

    Returns
    -------
    x : array, (n_rois, n_frames)
        float32/float64, as :func:`as_traces`, flagged rows still NaN.
    flagged : array of bool, (n_rois,)
        True for the rows that are NaN throughout.

    Raises
    ------
    ShapeError
        Not 1-D or 2-D, or fewer than 2 frames.
    ParameterError
        NaN or infinite values in some frames of a row, or an infinite value anywhere.
    """
    xp = array_module(traces)
    x = xp.asarray(traces)
    if x.ndim in (1, 2) and x.shape[-1] >= 2:
        x = x[None, :] if x.ndim == 1 else x
        x = x if x.dtype == xp.float64 else x.astype(xp.float32)
        finite = xp.isfinite(x)
        if not bool(xp.all(finite)):
            flagged = xp.all(xp.isnan(x), axis=-1)
            if not bool(xp.all(finite | flagged[:, None])):
                raise ParameterError(
                    f"{name} contains NaN or infinite values in some frames; interpolate or drop "
                    "those frames first (rows that are NaN throughout, as compute_dff flags "
                    "them, are passed through)"
                )
            return x, flagged
    x = as_traces(x, name)
    return x, xp.zeros(x.shape[0], dtype=xp.bool)


def _positive(name: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a positive number; got {value!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise ParameterError(f"{name} must be a positive number; got {value!r}")
    return v


def _percentile(value: Any, name: str = "percentile") -> float:
    try:
        p = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number in [0, 100]; got {value!r}") from None
    if not 0.0 <= p <= 100.0:
        raise ParameterError(f"{name} must be in [0, 100]; got {value!r}")
    return p


def _window_frames(window_s: Any, frame_rate_hz: Any, n_frames: int) -> int:
    fs = _positive("frame_rate_hz", frame_rate_hz)
    w = round(
        frames_within_data(_positive("window_s", window_s) * fs, n_frames, "window_s", window_s)
    )
    if w < 1:
        raise ParameterError(
            f"window_s={window_s} s is shorter than one frame at {fs} Hz; use at least {1 / fs:g} s"
        )
    return w


def _mode(mode: str) -> str:
    if mode not in _MODES:
        raise ParameterError(f"mode must be one of {', '.join(_MODES)}; got {mode!r}")
    return mode


def scipy_rank(window: int, percentile: float) -> int:
    """0-based rank that ``scipy.ndimage.percentile_filter`` uses: ``int(w * p / 100)``."""
    return window - 1 if percentile == 100.0 else int(float(window) * percentile / 100.0)


# --------------------------------------------------------------------------------------------------
# Estimators
# --------------------------------------------------------------------------------------------------
def baseline_percentile(traces: Any, *, frame_rate_hz: float | None = None, percentile=8.0) -> Any:
    """Constant baseline: the `percentile`-th percentile of each trace (suite2p ``prctile``).

    Parameters
    ----------
    traces : array_like, (n_rois, n_frames) or (n_frames,)
    frame_rate_hz : float, optional
        Unused; accepted so that every estimator has the same call.
    percentile : float
        In [0, 100]; linear interpolation between order statistics (``numpy.percentile``).

    Returns
    -------
    array, (n_rois, n_frames)
        ``F0[r, t] = P_p(F[r, :])`` for every frame.

    Examples
    --------
    >>> baseline_percentile(np.arange(5.0), percentile=50)[0, 0]
    np.float32(2.0)
    """
    x = as_traces(traces)
    xp = array_module(x)
    p = _percentile(percentile)
    f0 = xp.percentile(x, p, axis=-1, keepdims=True).astype(x.dtype)
    return xp.broadcast_to(f0, x.shape).copy()


def baseline_sliding_percentile(
    traces: Any,
    *,
    frame_rate_hz: float,
    window_s: float = 20.0,
    percentile: float = 8.0,
    mode: str = "reflect",
    fast: bool = False,
    step_s: float | None = None,
) -> Any:
    """Running percentile over a window of `window_s` seconds (CaImAn ``detrend_df_f``).

    Parameters
    ----------
    traces : array_like, (n_rois, n_frames) or (n_frames,)
    frame_rate_hz : float
    window_s : float
        Window length; ``w = round(window_s * frame_rate_hz)`` frames (CaImAn's ``frames_window``).
    percentile : float
        CaImAn's ``quantileMin`` (default 8).
    mode : {"reflect", "mirror", "nearest", "wrap"}
        Boundary extension, as in ``scipy.ndimage`` (CaImAn uses the default ``"reflect"``).
    fast : bool
        CaImAn's ``use_fast``: evaluate the exact window percentile only every `step_s` seconds
        and interpolate linearly in between (an approximation, ~10x less work per frame).
    step_s : float, optional
        Grid spacing of the fast mode; default ``window_s / 10``.

    Returns
    -------
    array, (n_rois, n_frames)
        Exact mode: equal to ``scipy.ndimage.percentile_filter(F[r], percentile, size=w,
        mode=mode)`` for each row, i.e. the sample of rank ``int(w * p / 100)`` (0-based) of the
        window ``F[r, t - w//2 : t - w//2 + w]``.

    Notes
    -----
    The CPU path is an O(1)-per-frame order statistic (radix ranks + a sliding bitmap); the GPU
    path is ``cupyx.scipy.ndimage.rank_filter`` with the same rank and mode.
    """
    x = as_traces(traces)
    p = _percentile(percentile)
    w = _window_frames(window_s, frame_rate_hz, x.shape[-1])
    mode = _mode(mode)
    rank = scipy_rank(w, p)
    if not fast:
        return _k.running_rank(x, w, rank, mode)
    step = w / 10 if step_s is None else _positive("step_s", step_s) * float(frame_rate_hz)
    return _grid_percentile(x, w, rank, mode, max(1, round(step)))


def _grid_percentile(x: Any, w: int, rank: int, mode: str, step: int) -> Any:
    """Exact window rank at frames ``0, step, 2 step, ..., n-1``; linear interpolation between."""
    xp = array_module(x)
    n = x.shape[-1]
    grid = np.unique(np.append(np.arange(0, n, step), n - 1))
    src = _k.pad_index(n, w // 2, w - 1 - w // 2, mode)
    idx = xp.asarray(src[grid[:, None] + np.arange(w)[None, :]])  # (n_grid, w) source frames
    values = xp.empty((x.shape[0], grid.size), dtype=x.dtype)
    chunk = max(1, int(2**24 // idx.size))
    for r0 in range(0, x.shape[0], chunk):
        windows = x[r0 : r0 + chunk][:, idx]
        values[r0 : r0 + chunk] = xp.partition(windows, rank, axis=-1)[..., rank]
    t = np.arange(n)
    left = np.minimum(np.searchsorted(grid, t, side="right") - 1, grid.size - 2)
    frac = xp.asarray(((t - grid[left]) / (grid[left + 1] - grid[left])).astype(x.dtype))
    left = xp.asarray(left)
    return values[:, left] * (1 - frac) + values[:, left + 1] * frac


def baseline_calscipy(
    traces: Any,
    *,
    frame_rate_hz: float,
    cutoff_hz: float = 1.0,
    percentile: float = 5.0,
    taps: int = 30,
) -> Any:
    """CalSciPy's low-pass baseline: the 5th percentile of F after a 1 Hz Hamming FIR low-pass.

    Parameters
    ----------
    traces : array_like, (n_rois, n_frames) or (n_frames,)
    frame_rate_hz : float
    cutoff_hz : float
        Low-pass cut-off (CalSciPy: 1 Hz); must be below the Nyquist frequency.
    percentile : float
        Percentile of the filtered trace (CalSciPy: 5).
    taps : int
        FIR length before CalSciPy's adjustments (30).

    Returns
    -------
    array, (n_rois, n_frames)
        One constant per ROI, repeated over frames (as CalSciPy returns it).

    Notes
    -----
    Exactly CalSciPy's ``low_pass_baseline``: ``taps = min(taps, n // 3)``, made odd (type I
    linear phase) by subtracting 1; ``padlen = 3 taps`` (if that equals ``n``, one tap fewer);
    ``h = firwin(taps, cutoff_hz, fs=frame_rate_hz)`` (Hamming window), zero-phase
    ``filtfilt(h, [1], F, padlen=padlen)`` and ``F0 = percentile(filtered, p)``.
    """
    x = as_traces(traces)
    xp = array_module(x)
    fs = _positive("frame_rate_hz", frame_rate_hz)
    cutoff = _positive("cutoff_hz", cutoff_hz)
    if cutoff >= fs / 2:
        raise ParameterError(
            f"cutoff_hz={cutoff_hz} must be below the Nyquist frequency {fs / 2:g} Hz"
        )
    p = _percentile(percentile)
    n = x.shape[-1]
    ntaps = min(int(taps), n // 3)
    if ntaps % 2 == 0:
        ntaps -= 1
    padding = 3 * ntaps
    if padding == n:
        ntaps -= 1
        padding = 3 * ntaps
    if ntaps < 1:
        raise ShapeError(f"traces with {n} frames are too short for the low-pass (need >= 3)")
    sig = signal_module(xp)
    h = sig.firwin(ntaps, cutoff=cutoff, fs=fs)
    filtered = sig.filtfilt(h, xp.asarray([1.0]), x, axis=-1, padlen=padding)
    return baseline_percentile(filtered, percentile=p).astype(x.dtype)


def baseline_maximin(
    traces: Any,
    *,
    frame_rate_hz: float,
    window_s: float = 60.0,
    sigma_frames: float = 10.0,
) -> Any:
    """suite2p's maximin baseline: gaussian smoothing, running minimum, running maximum.

    Parameters
    ----------
    traces : array_like, (n_rois, n_frames) or (n_frames,)
    frame_rate_hz : float
    window_s : float
        suite2p ``win_baseline`` (60 s); ``w = int(window_s * frame_rate_hz)``, plus 1 if even.
    sigma_frames : float
        suite2p ``sig_baseline``: gaussian σ in frames (10), truncated at ``round(3 σ)``.

    Returns
    -------
    array, (n_rois, n_frames)
        ``F0 = max_w(min_w(G_σ * F))`` with every filter extending the edges by repetition
        (suite2p's ``replicate`` padding, ``scipy.ndimage`` mode ``"nearest"``): equal to
        ``maximum_filter1d(minimum_filter1d(gaussian_filter1d(F, σ, truncate=3), w), w)`` to
        float rounding.
    """
    x = as_traces(traces)
    fs = _positive("frame_rate_hz", frame_rate_hz)
    n = int(x.shape[-1])
    w = int(frames_within_data(_positive("window_s", window_s) * fs, n, "window_s", window_s))
    w += 1 if w % 2 == 0 else 0
    sigma = float(sigma_frames)
    if not math.isfinite(sigma) or sigma < 0:
        raise ParameterError(f"sigma_frames must be >= 0; got {sigma_frames!r}")
    frames_within_data(3 * sigma, n, "sigma_frames", sigma_frames, unit="frames")
    smooth = _k.gaussian_rows(x, sigma, truncate=3.0, mode="nearest")
    return _k.running_min_max(smooth, w, mode="nearest")


def noise_sigma(traces: Any) -> Any:
    """Robust white-noise σ of each trace from its frame-to-frame differences.

    ``σ = 1.4826 · median(|F[t+1] − F[t]|) / √2``: for white noise the differences have σ√2 and
    1.4826·MAD is σ for a normal distribution; slow signals (calcium, drift) barely move the median.

    Returns
    -------
    array, (n_rois,)
    """
    x = as_traces(traces)
    xp = array_module(x)
    d = xp.abs(xp.diff(x, axis=-1))
    return (1.482602218505602 / math.sqrt(2.0)) * xp.median(d, axis=-1)


def baseline_robust(
    traces: Any,
    *,
    frame_rate_hz: float,
    window_s: float = 30.0,
    percentile: float = 10.0,
    smooth_s: float = 10.0,
    clip: tuple[float, float] = (3.0, 1.0),
    n_iter: int = 5,
) -> Any:
    """Noise-corrected running percentile refined by an asymmetric sigma-clipped running mean.

    Parameters
    ----------
    traces : array_like, (n_rois, n_frames) or (n_frames,)
    frame_rate_hz : float
    window_s : float
        Window of the initial running percentile (longer than bursts of activity).
    percentile : float
        Percentile of the initial estimate.
    smooth_s : float
        Full width of the running mean of the refinement (short enough to follow the drift).
    clip : (float, float)
        ``(a, b)``: frames with ``−a σ < F − F0 < b σ`` count as baseline.
    n_iter : int
        Refinement iterations.

    Returns
    -------
    array, (n_rois, n_frames)

    Notes
    -----
    With ``σ`` the robust white-noise level of each trace (:func:`noise_sigma`):

    1. ``F0 = P_p(F over window_s) − σ Φ⁻¹(p/100)``: the p-th percentile of baseline noise lies
       ``σ Φ⁻¹(p)`` below the true baseline (``Φ⁻¹(0.1) = −1.28``); this removes that bias.
    2. Repeat `n_iter` times: keep frames with ``−a σ < F − F0 < b σ`` (activity, which is only
       positive, is cut tightly by ``b``), ``F0 = mean of kept F over smooth_s − σ μ(a, b)`` with
       ``μ(a, b) = (φ(a) − φ(b)) / (Φ(b) − Φ(−a))`` the mean of a standard normal truncated to
       ``[−a, b]``, so the clipped mean is unbiased for gaussian noise. Windows with fewer than
       10 kept frames keep the previous estimate.
    """
    x = as_traces(traces)
    xp = array_module(x)
    fs = _positive("frame_rate_hz", frame_rate_hz)
    p = _percentile(percentile)
    if not 0.0 < p < 100.0:
        raise ParameterError(f"percentile must be strictly between 0 and 100; got {percentile!r}")
    a, b = (float(v) for v in clip)
    if not (a > 0 and b > 0):
        raise ParameterError(f"clip must be two positive numbers (a, b); got {clip!r}")
    half = max(1, round(_positive("smooth_s", smooth_s) * fs / 2))
    sigma = noise_sigma(x)[:, None]
    z = _norm_ppf(p / 100.0)
    f0 = baseline_sliding_percentile(x, frame_rate_hz=fs, window_s=window_s, percentile=p)
    f0 = f0.astype(xp.float64) - z * sigma
    mu = (_norm_pdf(a) - _norm_pdf(b)) / (_norm_cdf(b) - _norm_cdf(-a))
    f0 = _k.clipped_mean_iterations(x, f0, sigma, a, b, mu, half, int(n_iter))
    return f0.astype(x.dtype)


def _norm_pdf(z: float) -> float:
    return math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def _norm_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2))


def _norm_ppf(q: float) -> float:
    """Inverse normal CDF by bisection (no scipy.stats import for one number)."""
    lo, hi = -40.0, 40.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _norm_cdf(mid) < q else (lo, mid)
    return 0.5 * (lo + hi)
