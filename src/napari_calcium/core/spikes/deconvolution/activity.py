"""A calibrated activity (spike-rate-like) estimate from fluorescence traces.

Raw OASIS spikes are sparse and jittered by a frame or two; correlated with true spikes in 40 ms
bins they lose to a plain smoothed derivative (Berens et al. 2018). The gain comes from turning
the deconvolved ``s`` into a rate whose smoothing, delay and dynamic range fit the indicator and
the data. :func:`~napari_calcium.core.spikes.deconvolution.api.deconvolve` does, with the pieces
here:

1. **baseline** (:func:`remove_baseline`): subtract a running 8th percentile over
   ``baseline_window_s`` (drift removal), then the noise floor of what is left, the mode of its
   histogram (the offset OASIS with λ = 0 would otherwise fit as spikes; the median sits
   higher under dense activity);
2. **deconvolution** (default): exact AR(1) OASIS with ``g = exp(-1/(τ_d f))``
   and no sparsity penalty (λ = 0, ``s_min`` = 0: on real data the penalties lost accuracy);
3. **smoothing**: a Gaussian of ``σ = max(min_sigma_s, 1 / (2 f_eff))`` seconds, where ``f_eff``
   is the highest frequency with signal power (:func:`effective_bandwidth_hz`; the Nyquist
   frequency for data at their native frame rate, lower for upsampled data), so σ is at least
   one *effective* frame;
4. **delay**: shift earlier by the delay that an AR(1) model leaves after each spike (it has no
   rise, so the response's rise comes out as ``s`` spread after the spike): measured from the
   data (:func:`estimate_response_rise_s`, :func:`activity_delay_s`), or the rise time ``τ_r``
   when it is given;
5. **compression**: ``activity = max(s_smooth, 0) ** exponent`` (``exponent < 1`` keeps large
   bursts from dominating; the output stays monotonic in ``s``).

The two free parameters, the smallest σ (:data:`DEFAULT_MIN_SIGMA_S`) and the exponent
(:data:`DEFAULT_EXPONENT`), were fitted on the spikefinder training
data (datasets 4, 5, 6: OGB-1, GCaMP6s, GCaMP5k?) by maximising the mean over datasets of the
per-dataset mean correlation, and validated by leave-one-cell-out and leave-one-dataset-out
cross-validation (``benchmarks/bench_spikefinder_cv.py``, ``docs/spikes.md``).

References
----------
Friedrich, J., Zhou, P. & Paninski, L. (2017). Fast online deconvolution of calcium imaging data.
*PLoS Comput Biol* 13(3), e1005423.
Berens, P. et al. (2018). Community-based benchmarking improves spike rate inference from
two-photon calcium imaging data. *PLoS Comput Biol* 14(5), e1006157.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import welch

from ....errors import ParameterError, ShapeError
from ..._validate import frames_within_data
from ..._validate import positive as _positive
from ...traces.baseline import baseline_sliding_percentile

__all__ = [
    "DEFAULT_EXPONENT",
    "DEFAULT_MIN_SIGMA_S",
    "DELAY_PER_RISE",
    "MAX_DELAY_S",
    "MIN_EVENT_SNR",
    "MIN_TRANSIENT_SNR",
    "activity_delay_s",
    "average_transients",
    "effective_bandwidth_hz",
    "estimate_decay_s",
    "estimate_response_rise_s",
    "remove_baseline",
    "rise_of_average",
    "smooth_activity",
    "transient_snr",
]

#: smallest Gaussian σ of the smoothing, seconds (fitted on spikefinder 4/5/6, see module doc)
DEFAULT_MIN_SIGMA_S = 0.03
#: compression exponent of the rate (fitted on spikefinder 4/5/6)
DEFAULT_EXPONENT = 0.75
#: the activity's delay is this fraction of the response's 10-90 % rise time ...
DELAY_PER_RISE = 0.3
#: ... and at most this, seconds (both chosen leave-one-dataset-out on nine ground-truth sets,
#: ``benchmarks/bench_spike_timing.py``)
MAX_DELAY_S = 0.1
#: fewest transients the rise-time estimate needs (else the delay is not measured)
MIN_RISE_EVENTS = 5
#: :func:`transient_snr` below which a ROI's activity is flagged unreliable (chosen leaving one
#: dataset out on the nine ground-truth sets: 20 in 6 of 9 folds; ``docs/spikes.md``)
MIN_TRANSIENT_SNR = 20.0
#: ... and the same per transient (``transient_snr / sqrt(n_events)``) below which it is
#: flagged too: noise alone reaches 0.1-0.9 (its peaks' echo in OASIS's pools), real cells >= 5
#: in 95 % of the ground-truth recordings
MIN_EVENT_SNR = 3.0
_CLIFF_DECADES = 4.0  # power this far below the 0.5-2 Hz level marks the end of the signal band


def _as_2d(traces: Any, name: str) -> tuple[np.ndarray, bool]:
    x = np.asarray(traces, dtype=np.float64)
    if x.ndim not in (1, 2):
        raise ShapeError(f"{name} must be 1-D or 2-D (n_rois, n_frames); got shape {x.shape}")
    if x.shape[-1] < 2:
        raise ShapeError(f"{name} needs at least 2 frames; got shape {x.shape}")
    return np.atleast_2d(x), x.ndim == 1


def effective_bandwidth_hz(traces: Any, *, frame_rate_hz: float) -> np.ndarray:
    """Highest frequency at which each trace still carries power (signal or noise), in Hz.

    Data at their native frame rate have white noise up to the Nyquist frequency; data that were
    resampled to a higher rate (as the spikefinder traces, all given at 100 Hz) show a cliff in
    the power spectrum at the original Nyquist frequency. The cliff is where the Welch power
    first stays more than 4 decades below its median level at 0.5-2 Hz.

    Parameters
    ----------
    traces : array_like, shape (n_frames,) or (n_rois, n_frames)
        Finite fluorescence traces.
    frame_rate_hz : float
        Frame rate in Hz.

    Returns
    -------
    ndarray, shape (n_rois,)
        Effective bandwidth per ROI in Hz, at most ``frame_rate_hz / 2``.
    """
    x, _ = _as_2d(traces, "traces")
    fs = _positive(frame_rate_hz, "frame_rate_hz")
    nyq = fs / 2
    nper = int(min(512, x.shape[1]))
    out = np.full(x.shape[0], nyq)
    for start in range(0, x.shape[0], 64):  # blocks of rows: fewer, smaller temporaries
        rows = x[start : start + 64]
        centred = (rows - rows.mean(axis=1, keepdims=True)).astype(np.float32)
        f, p = welch(centred, fs=fs, nperseg=nper, noverlap=0, axis=-1)  # no overlap: 2x faster
        ref_band = (f >= 0.5) & (f <= 2.0)
        if ref_band.sum() < 1:
            return out
        with np.errstate(divide="ignore"):
            lp = np.log10(np.maximum(p, 1e-300))
        ref = np.median(lp[:, ref_band], axis=1)
        for j in range(rows.shape[0]):
            above = np.flatnonzero(lp[j] > ref[j] - _CLIFF_DECADES)
            if above.size:
                out[start + j] = min(nyq, max(float(f[above.max()]), f[1]))
    return out


def smooth_activity(
    s: Any,
    frame_rate_hz: float,
    sigma_s: Any,
    *,
    shift_s: Any = 0.0,
    exponent: float = 1.0,
) -> np.ndarray:
    """Turn sparse deconvolved spikes (from any solver) into a smooth, non-negative rate.

    Parameters
    ----------
    s : array_like, shape (n_frames,) or (n_rois, n_frames)
        Deconvolved activity (spikes per frame, any scale).
    frame_rate_hz : float
        Frame rate in Hz.
    sigma_s : float or array_like, shape (n_rois,)
        Gaussian standard deviation in seconds (0: no smoothing).
    shift_s : float or array_like, shape (n_rois,), optional
        Move the output this many seconds earlier (>= 0; e.g. :func:`activity_delay_s`), filling
        the end with 0; a fraction of a frame is interpolated linearly.
    exponent : float, optional
        ``output = max(smoothed, 0) ** exponent`` (> 0; default 1).

    Returns
    -------
    ndarray, same shape as `s`
        float64 rate-like activity, >= 0.

    Examples
    --------
    >>> s = np.zeros(100); s[50] = 1.0
    >>> r = smooth_activity(s, 100.0, 0.02, shift_s=0.01)
    >>> int(np.argmax(r)), round(float(r.sum()), 3)
    (49, 1.0)
    """
    x, one = _as_2d(s, "s")
    fs = _positive(frame_rate_hz, "frame_rate_hz")
    sig = np.broadcast_to(np.asarray(sigma_s, dtype=np.float64), (x.shape[0],))
    if not np.all(np.isfinite(sig) & (sig >= 0)):
        raise ParameterError(f"sigma_s must be finite seconds >= 0; got {sigma_s!r}")
    shifts = np.broadcast_to(np.asarray(shift_s, dtype=np.float64), (x.shape[0],))
    if not np.all(np.isfinite(shifts) & (shifts >= 0)):
        raise ParameterError(f"shift_s must be finite seconds >= 0; got {shift_s!r}")
    power = _positive(exponent, "exponent")
    widest = float(sig.max(initial=0.0))
    frames_within_data(4 * widest * fs, x.shape[1], "sigma_s", widest)
    out = np.zeros_like(x)
    n = x.shape[1]
    # rows that share a width are filtered together (the default gives most rows one width)
    widths, groups = np.unique(sig, return_inverse=True)
    for g, width in enumerate(widths):
        if widths.size == 1:  # one width: filter in place, no copies
            if width > 0:
                gaussian_filter1d(x, width * fs, mode="nearest", axis=1, output=out)
            else:
                out[:] = x
            break
        rows = np.flatnonzero(groups == g)
        sub = x[rows]
        out[rows] = gaussian_filter1d(sub, width * fs, mode="nearest", axis=1) if width else sub
    for i in np.flatnonzero(shifts > 0):
        frames = shifts[i] * fs
        k = min(int(np.floor(frames)), n)
        row = out[i].copy()
        out[i, : n - k] = row[k:]
        out[i, n - k :] = 0.0
        frac = frames - k
        if frac > 1e-9 and k < n:  # between frames: interpolate (the last frame: 0 after)
            nxt = np.zeros(n)
            nxt[: n - k - 1] = row[k + 1 :]
            out[i] = (1.0 - frac) * out[i] + frac * nxt
    np.clip(out, 0.0, None, out=out)
    if power != 1.0:
        np.power(out, power, out=out)
    return out[0] if one else out


def _align_sigma_frames(fs: float) -> float:
    """Gaussian σ (frames) that smooths ``s`` before its peaks align the cuts: 10 ms, >= 1."""
    return max(1.0, 0.01 * fs)


def average_transients(
    y: Any, s: Any, *, frame_rate_hz: float, post_s: float = 1.0, quantile: float = 99.0
) -> tuple[np.ndarray, np.ndarray, int]:
    """Each ROI's average calcium transient, aligned where its deconvolved activity peaks.

    The transients are the local maxima of ``s`` (smoothed by a Gaussian of 10 ms, at least one
    frame; at most one per 0.5 s) above its `quantile`-th percentile. The baseline-removed trace
    ``y`` is cut from 0.5 s before to `post_s` after each of them, each cut is referred to its
    mean over its first 0.3 s, and the cuts are averaged. Each ROI is measured alone.

    Parameters
    ----------
    y : array_like, shape (n_rois, n_frames) or (n_frames,)
        Baseline-removed traces (:func:`remove_baseline`).
    s : array_like, same shape
        Their deconvolved activity (e.g. AR(1) OASIS with λ = 0).
    frame_rate_hz : float
        Frame rate in Hz.
    post_s : float, optional
        Seconds after the alignment point in each cut (default 1).
    quantile : float, optional
        Percentile of each ROI's smoothed ``s`` that a transient must reach (default 99).

    Returns
    -------
    eta : numpy.ndarray, shape (n_rois, n_cut)
        The average transients (float64; NaN rows where fewer than 5 were found),
        ``n_cut = round(0.5 f) + round(post_s f)`` frames; ``n_cut = 0`` when the traces are
        shorter than a cut (or the rate is below 4 Hz).
    n_events : numpy.ndarray of int, shape (n_rois,)
        How many transients each average holds.
    at : int
        Index of the alignment point in a cut (``round(0.5 f)``).
    """
    from scipy.ndimage import maximum_filter1d

    fs = _positive(frame_rate_hz, "frame_rate_hz")
    yy, _ = _as_2d(y, "y")
    ss, _ = _as_2d(s, "s")
    if yy.shape != ss.shape:
        raise ShapeError(f"y {yy.shape} and s {ss.shape} must have the same shape")
    n_rois, n_frames = yy.shape
    pre, post = round(0.5 * fs), round(_positive(post_s, "post_s") * fs)
    ref = max(1, round(0.3 * fs))
    count = np.zeros(n_rois, np.int64)
    if pre + post + 1 > n_frames or pre < 2:  # checked before allocating: fs may be absurd
        return np.full((n_rois, 0), np.nan), count, 0
    eta = np.full((n_rois, pre + post), np.nan)
    offsets = np.arange(-pre, post)
    for start in range(0, n_rois, 64):  # blocks of rows: 3x faster than row by row
        block = slice(start, min(start + 64, n_rois))
        sm = gaussian_filter1d(ss[block].astype(np.float64), _align_sigma_frames(fs), axis=1)
        thr = np.percentile(sm, quantile, axis=1)
        local = sm == maximum_filter1d(sm, 2 * round(0.5 * fs) + 1, axis=1)
        local &= (sm >= thr[:, None]) & (thr[:, None] > 0)
        for j, i in enumerate(range(block.start, block.stop)):
            peaks = np.flatnonzero(local[j])
            peaks = peaks[(peaks >= pre) & (peaks < n_frames - post)]
            count[i] = peaks.size
            if peaks.size < MIN_RISE_EVENTS:
                continue
            cuts = yy[i][peaks[:, None] + offsets[None, :]].astype(np.float64)
            cuts -= cuts[:, :ref].mean(axis=1, keepdims=True)
            eta[i] = cuts.mean(axis=0)
    return eta, count, pre


def estimate_response_rise_s(
    y: Any, s: Any, *, frame_rate_hz: float, quantile: float = 99.0
) -> tuple[np.ndarray, np.ndarray]:
    """10-90 % rise time of each ROI's average calcium transient, from its own trace.

    The average transient is :func:`average_transients` (0.5 s before to 1 s after each peak of
    ``s``); the rise time is the time from 10 % to 90 % of its peak after the alignment point,
    found backwards and forwards from it with linear interpolation between frames. Each ROI is
    measured alone, so a row's result does not depend on the others.

    Parameters
    ----------
    y : array_like, shape (n_rois, n_frames) or (n_frames,)
        Baseline-removed traces (:func:`remove_baseline`).
    s : array_like, same shape
        Their deconvolved activity (e.g. AR(1) OASIS with λ = 0).
    frame_rate_hz : float
        Frame rate in Hz.
    quantile : float, optional
        Percentile of each ROI's smoothed ``s`` that a transient must reach (default 99).

    Returns
    -------
    rise_s : numpy.ndarray, shape (n_rois,)
        Rise time in seconds; NaN where fewer than 5 transients were found (or the trace is
        shorter than 1.5 s).
    n_events : numpy.ndarray of int, shape (n_rois,)
        How many transients were averaged.

    Notes
    -----
    An AR(1) model has no rise: deconvolving a transient that rises over ``t_r`` spreads its
    ``s`` over the rise, after the spike, so the smoothed activity lags the spikes. On the nine
    ground-truth sets of ``docs/spikes.md`` the lag that maximises the correlation with the true
    spikes grows with this rise time (about a quarter of it: −0.10 s for zebrafish GCaMP6f at
    30 Hz, rise ~0.3 s; 0 for jGCaMP8m at 120 Hz, rise ~0.02 s); :func:`activity_delay_s` turns
    it into the shift :func:`smooth_activity` applies.
    """
    fs = _positive(frame_rate_hz, "frame_rate_hz")
    eta, count, at = average_transients(y, s, frame_rate_hz=fs, quantile=quantile)
    return rise_of_average(eta, at, frame_rate_hz=fs), count


def rise_of_average(eta: np.ndarray, at: int, *, frame_rate_hz: float) -> np.ndarray:
    """10-90 % rise time (s) of each average transient of :func:`average_transients`.

    Returns
    -------
    numpy.ndarray, shape (n_rois,)
        Seconds; NaN where the average is not defined or has no positive peak.
    """
    fs = _positive(frame_rate_hz, "frame_rate_hz")
    return np.array(
        [
            _rise_10_90(row, at) / fs if row.size and np.isfinite(row).all() else np.nan
            for row in eta
        ]
    )


def transient_snr(
    eta: np.ndarray, n_events: np.ndarray, at: int, *, noise: Any, frame_rate_hz: float
) -> np.ndarray:
    """z-score of each ROI's average transient against the noise: a per-ROI quality score.

    ``z = mean(eta[k : k+m]) / (σ / sqrt(n_events × m))``: the average transient over
    ``m = max(2, round(0.1 s × f))`` frames, against the noise of an average of
    ``m × n_events`` samples. The window starts ``k`` frames after the alignment point, past
    the reach of the smoothing that placed it (3 σ of :func:`average_transients`' 10 ms
    Gaussian, at least 3 frames); real calcium stays up after its peak. Noise alone still
    leaves an echo there (OASIS places ``s`` where the frames that follow are high): per
    transient, ``z / sqrt(n_events)`` is 0.1-0.9 for white noise against >= 5 for 95 % of real
    recordings, which :data:`MIN_EVENT_SNR` uses.

    Parameters
    ----------
    eta, n_events, at
        The output of :func:`average_transients`.
    noise : float or array_like, shape (n_rois,)
        Noise σ per frame, in the units of the traces (e.g. ``DeconvolutionResult.noise``).
    frame_rate_hz : float
        Frame rate in Hz.

    Returns
    -------
    numpy.ndarray, shape (n_rois,)
        The score (dimensionless); NaN where the average transient is not defined (fewer than
        5 transients, or traces shorter than a cut).

    Notes
    -----
    On the nine shared ground-truth sets (221 recordings) the score ranks recordings by the
    correlation of the activity with the true spikes within every set (Spearman 0.16-0.78, mean
    0.42) and across sets (0.22). Flagging below :data:`MIN_TRANSIENT_SNR` (chosen leaving one
    dataset out) or :data:`MIN_EVENT_SNR` per transient separated 19 held-out recordings with
    mean r 0.30 from the other 202 (0.55; ``docs/spikes.md``, "How far to trust the
    activity").
    """
    fs = _positive(frame_rate_hz, "frame_rate_hz")
    n_rois = eta.shape[0]
    sigma = np.broadcast_to(np.asarray(noise, dtype=np.float64), (n_rois,))
    out = np.full(n_rois, np.nan)
    m = max(2, round(0.1 * fs))
    first = at + 1 + math.ceil(3 * _align_sigma_frames(fs))  # past the alignment's reach
    if eta.shape[1] < first + m:
        return out
    for i in range(n_rois):
        if np.isfinite(eta[i]).all() and sigma[i] > 0:
            window = float(eta[i, first : first + m].mean())
            out[i] = window / (sigma[i] / np.sqrt(n_events[i] * m))
    return out


def estimate_decay_s(
    y: Any,
    s: Any,
    *,
    frame_rate_hz: float,
    bounds_s: tuple[float, float] = (0.1, 3.0),
    quantile: float = 99.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Decay time constant of each ROI's average calcium transient, from its own trace.

    The average transient is :func:`average_transients` over 4 s after each peak of ``s``. From
    its maximum (within 0.5 s of the alignment point) it is followed down to where it first
    falls below 20 % of that maximum (or the end of the cut); ``log`` of the part below 80 % is
    fitted by a line in time, and ``τ = -1 / slope``, clipped to `bounds_s`.

    Parameters
    ----------
    y : array_like, shape (n_rois, n_frames) or (n_frames,)
        Baseline-removed traces (:func:`remove_baseline`).
    s : array_like, same shape
        Their deconvolved activity (any τ: it only places the transients).
    frame_rate_hz : float
        Frame rate in Hz.
    bounds_s : (float, float), optional
        Range of the result, seconds (default 0.1-3 s).
    quantile : float, optional
        See :func:`average_transients`.

    Returns
    -------
    tau_decay_s : numpy.ndarray, shape (n_rois,)
        NaN where fewer than 5 transients were found, the trace is shorter than 4.5 s, or fewer
        than 3 frames lie between 80 % and 20 % of the peak.
    n_events : numpy.ndarray of int, shape (n_rois,)

    Notes
    -----
    The noise-corrected autocovariance (:func:`.noise.estimate_tau`) mixes every transient's
    shape with the spike train's own correlation (bursts) and slow drift; on four of the nine
    ground-truth sets of ``docs/spikes.md`` its median sat at the 3 s clip. ``deconvolve`` uses
    this estimate where the autocovariance's hits a bound. Later spikes within the 4 s window
    bias it up (by up to a third on synthetic Poisson trains at 0.15 Hz).
    """
    fs = _positive(frame_rate_hz, "frame_rate_hz")
    lo, hi = (float(b) for b in bounds_s)
    eta, count, at = average_transients(y, s, frame_rate_hz=fs, post_s=4.0, quantile=quantile)
    out = np.full(eta.shape[0], np.nan)
    for i, row in enumerate(eta):
        if row.size == 0 or not np.isfinite(row).all():
            continue
        ip = at + int(np.argmax(row[at : at + max(1, round(0.5 * fs))]))
        peak = row[ip]
        if not peak > 0:
            continue
        tail = row[ip:]
        end = np.flatnonzero(tail < 0.2 * peak)
        seg = tail[: end[0] if end.size else tail.size]
        start = np.flatnonzero(seg < 0.8 * peak)
        seg = seg[start[0] if start.size else 0 :]
        t = np.flatnonzero(seg > 0) / fs
        if t.size < 3:
            continue
        slope = np.polyfit(t, np.log(seg[seg > 0]), 1)[0]
        out[i] = hi if slope >= 0 else float(np.clip(-1.0 / slope, lo, hi))
    return out, count


def _rise_10_90(eta: np.ndarray, at: int) -> float:
    """Frames from 10 % to 90 % of the peak of `eta` after index `at` (NaN if not found)."""
    peak = float(eta[at:].max())
    if not peak > 0:
        return float("nan")
    i90 = at + int(np.argmax(eta[at:] >= 0.9 * peak))
    below = np.flatnonzero(eta[: i90 + 1] < 0.1 * peak)
    if below.size == 0:
        return float("nan")
    i10 = int(below[-1])

    def crossing(i: int, level: float) -> float:  # frames, between i and i + 1
        a, b = eta[i], eta[i + 1]
        return i + ((level - a) / (b - a) if b != a else 0.0)

    return max(0.0, crossing(i90 - 1, 0.9 * peak) - crossing(i10, 0.1 * peak))


def activity_delay_s(rise_s: Any) -> np.ndarray:
    """The shift (s) that aligns an AR(1) activity with the spikes, from the response's rise.

    ``min(DELAY_PER_RISE · rise_s, MAX_DELAY_S)`` = ``min(0.3 · rise, 0.1 s)`` per ROI
    (float64 array of the shape of `rise_s`); 0 where the rise is NaN (not measured). Both
    constants were chosen leave-one-dataset-out on the nine ground-truth sets (``docs/spikes.md``,
    "Timing, kinetics and noise from the data"): each held-out set got the values chosen on the
    other eight, and the pair chosen most often (9 of 18 folds, native and 30 Hz) is the
    default.
    """
    r = np.asarray(rise_s, dtype=np.float64)
    out = np.minimum(DELAY_PER_RISE * np.maximum(r, 0.0), MAX_DELAY_S)
    return np.where(np.isfinite(r), out, 0.0)


def remove_baseline(
    traces: Any, *, frame_rate_hz: float, window_s: float = 30.0
) -> tuple[np.ndarray, np.ndarray]:
    """Subtract a slow baseline: a running 8th percentile, then the noise floor of what is left.

    The running percentile removes drift; the noise floor (the mode of the rest, see
    :func:`_offset`) is what OASIS with λ = 0 would otherwise fit as activity (it sits above a
    low percentile, and below the median when activity is dense).

    Parameters
    ----------
    traces : array_like, shape (n_rois, n_frames)
        Finite fluorescence traces (float32 stays float32, other dtypes float64).
    frame_rate_hz : float
        Frame rate in Hz.
    window_s : float, optional
        Window of the running percentile in seconds (default 30; capped at the trace length).

    Returns
    -------
    y : ndarray, shape (n_rois, n_frames)
        ``traces - baseline``.
    baseline : ndarray, shape (n_rois, n_frames)
        The subtracted baseline, in the traces' units.
    """
    x = np.asarray(traces)
    if x.ndim != 2:
        raise ShapeError(f"traces must be (n_rois, n_frames); got shape {x.shape}")
    x = x if x.dtype in (np.float32, np.float64) else x.astype(np.float64)
    fs = _positive(frame_rate_hz, "frame_rate_hz")
    win = min(_positive(window_s, "window_s"), x.shape[1] / fs)
    f0 = np.asarray(
        baseline_sliding_percentile(x, frame_rate_hz=fs, window_s=win, percentile=8.0),
        dtype=x.dtype,
    )
    y = x - f0
    offset = _offset(y, mode="mode").astype(x.dtype)
    y -= offset
    return y, f0 + offset


def _offset(y: np.ndarray, mode: str) -> np.ndarray:
    """Per-row level of the noise floor of ``y``: its median, or the mode of its histogram.

    The mode: a 512-bin histogram of each row between its 0.5th and 99.5th percentiles, smoothed
    by a Gaussian of half the row's robust spread (1.4826 MAD, at least two bins), and its
    highest bin's centre, from every k-th frame (at least 5,000 per row). The histograms of all
    rows come from one ``np.bincount``.
    """
    if mode == "median":
        return np.median(y, axis=1, keepdims=True)
    n_bins = 512
    # every k-th frame (at least 5,000 per row): the histogram's shape is the same, 4x cheaper
    # on a 20,000-frame trace
    y32 = y[:, :: max(1, y.shape[1] // 5000)].astype(np.float32, copy=False)
    lo, med, hi = np.percentile(y32, [0.5, 50.0, 99.5], axis=1)
    flat = hi <= lo
    hi = np.where(flat, lo + 1.0, hi)
    width = (hi - lo) / n_bins
    mad = np.median(np.abs(y32 - med[:, None]), axis=1)
    sig = np.maximum(1.4826 * mad, 2 * width)
    idx = np.floor((y32 - lo[:, None]) / width[:, None]).astype(np.int64)
    np.clip(idx, 0, n_bins - 1, out=idx)
    idx += (np.arange(y.shape[0]) * n_bins)[:, None]
    counts = np.bincount(idx.ravel(), minlength=y.shape[0] * n_bins).reshape(-1, n_bins)
    out = np.empty((y.shape[0], 1))
    for i in range(y.shape[0]):
        smooth = gaussian_filter1d(counts[i].astype(np.float64), 0.5 * sig[i] / width[i])
        k = int(np.argmax(smooth))
        out[i] = med[i] if flat[i] else lo[i] + (k + 0.5) * width[i]
    return out
