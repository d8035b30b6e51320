"""Accuracy metrics for spike inference against ground-truth spike trains.

Three scores of an inferred activity trace (a rate, a deconvolved ``s``, anything non-negative
and spike-like) against the true spike counts recorded at the same frames:

* :func:`spikefinder_correlation`: the spikefinder challenge score (Berens et al. 2018), Pearson
  correlation after summing both signals into 40 ms bins (25 Hz);
* :func:`smoothed_correlation`: Pearson correlation after smoothing both with a Gaussian of σ
  frames (the usual score on synthetic data, where spike times are known exactly);
* :func:`spike_time_f1`: precision / recall / F1 of discrete spike times matched within a
  tolerance (for methods that output events).

References
----------
Berens, P. et al. (2018). Community-based benchmarking improves spike rate inference from
two-photon calcium imaging data. *PLoS Comput Biol* 14(5), e1006157.
Theis, L. et al. (2016). Benchmarking spike rate inference in population calcium imaging.
*Neuron* 90(3), 471-482.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from scipy.ndimage import gaussian_filter1d

from ....errors import ParameterError, ShapeError

__all__ = [
    "SpikeF1",
    "bin_counts",
    "smoothed_correlation",
    "spike_time_f1",
    "spikefinder_correlation",
    "time_binned_correlation",
]


def _pair(predicted: Any, true_spikes: Any) -> tuple[np.ndarray, np.ndarray, bool]:
    """Both inputs as float64 ``(n_rois, n_frames)``; flag whether they were 1-D."""
    p = np.asarray(predicted, dtype=np.float64)
    t = np.asarray(true_spikes, dtype=np.float64)
    if p.ndim not in (1, 2):
        raise ShapeError(f"predicted must be 1-D or 2-D (n_rois, n_frames); got shape {p.shape}")
    if p.shape != t.shape:
        raise ShapeError(f"predicted {p.shape} and true_spikes {t.shape} must have the same shape")
    one = p.ndim == 1
    return np.atleast_2d(p), np.atleast_2d(t), one


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r of two 1-D arrays; NaN when either is constant or shorter than 2."""
    if a.size < 2:
        return float("nan")
    a = a - a.mean()
    b = b - b.mean()
    den = np.sqrt(np.dot(a, a) * np.dot(b, b))
    return float(np.dot(a, b) / den) if den > 0 else float("nan")


def bin_counts(x: Any, factor: int) -> np.ndarray:
    """Sum consecutive, non-overlapping groups of `factor` samples; drop an incomplete last group.

    Parameters
    ----------
    x : array_like, shape (n_frames,)
        One signal.
    factor : int
        Samples per bin (>= 1).

    Returns
    -------
    ndarray, shape (n_frames // factor,)
        Bin ``k`` is ``sum(x[k * factor:(k + 1) * factor])``.

    Examples
    --------
    >>> bin_counts([1, 2, 3, 4, 5], 2).tolist()
    [3.0, 7.0]
    """
    a = np.asarray(x, dtype=np.float64).ravel()
    f = int(factor)
    if f < 1:
        raise ParameterError(f"factor must be an integer >= 1; got {factor!r}")
    n = a.size // f
    return a[: n * f].reshape(n, f).sum(axis=1)


def spikefinder_correlation(
    predicted: Any, true_spikes: Any, *, frame_rate_hz: float, bin_s: float = 0.04
) -> Any:
    """Spikefinder score: Pearson r between predicted activity and true spikes in 40 ms bins.

    Parameters
    ----------
    predicted : array_like, shape (n_frames,) or (n_rois, n_frames)
        Inferred activity (any scale; the correlation ignores offset and gain).
    true_spikes : array_like, same shape
        True spike counts per frame.
    frame_rate_hz : float
        Frame rate of both signals in Hz.
    bin_s : float, optional
        Bin width in seconds (default 0.04: the challenge's 25 Hz). The number of frames per bin
        is ``round(bin_s * frame_rate_hz)``, at least 1.

    Returns
    -------
    float or ndarray, shape (n_rois,)
        Pearson r per ROI (a float for 1-D input); NaN where a binned signal is constant.

    Notes
    -----
    Follows the challenge's evaluation code: frames where either signal is NaN (the padding at
    the end of shorter recordings) are dropped first, the remaining samples are summed in
    consecutive non-overlapping bins starting at the first kept frame, an incomplete last bin is
    discarded, and the correlation is taken over the bins.

    References
    ----------
    Berens, P. et al. (2018). *PLoS Comput Biol* 14(5), e1006157.

    Examples
    --------
    >>> s = np.zeros(400); s[[10, 50, 51, 200]] = 1
    >>> round(spikefinder_correlation(s, s, frame_rate_hz=100.0), 6)
    1.0
    """
    p, t, one = _pair(predicted, true_spikes)
    rate = float(frame_rate_hz)
    width = float(bin_s)
    if not (np.isfinite(rate) and rate > 0):
        raise ParameterError(f"frame_rate_hz must be a finite number > 0; got {frame_rate_hz!r}")
    if not (np.isfinite(width) and width > 0):
        raise ParameterError(f"bin_s must be a finite number of seconds > 0; got {bin_s!r}")
    factor = max(1, round(width * rate))
    out = np.empty(p.shape[0])
    for i in range(p.shape[0]):
        keep = np.isfinite(p[i]) & np.isfinite(t[i])
        out[i] = _pearson(bin_counts(p[i][keep], factor), bin_counts(t[i][keep], factor))
    return float(out[0]) if one else out


def time_binned_correlation(
    activity: Any, frame_times_s: Any, spike_times_s: Any, *, bin_s: float = 0.04
) -> float:
    """Pearson r of an activity and true spikes in bins of time (frames need not be regular).

    The ground-truth score of ``shared/data/cascade_groundtruth_dev/PROVENANCE.md``: bins of
    `bin_s` from the first frame time; per bin, the activity is the mean over the frames whose
    time falls in it and the truth is the number of spikes in it; bins without a frame are
    dropped. Unlike :func:`spikefinder_correlation` it works on recordings with irregular or
    non-integer frames per bin (CASCADE's 30-158 Hz sets).

    Parameters
    ----------
    activity : array_like, shape (n_frames,)
        Inferred activity of one recording (any scale).
    frame_times_s : array_like, shape (n_frames,)
        Time of each frame, seconds, increasing.
    spike_times_s : array_like, shape (n_spikes,)
        True spike times, seconds.
    bin_s : float, optional
        Bin width in seconds (default 0.04).

    Returns
    -------
    float
        Pearson r over the bins; NaN when either binned signal is constant.

    Examples
    --------
    >>> t = np.arange(300) / 30.0
    >>> a = np.zeros(300); a[[30, 90, 91]] = 1.0
    >>> round(time_binned_correlation(a, t, t[[30, 90, 91]]), 6)
    1.0
    """
    a = np.asarray(activity, dtype=np.float64).ravel()
    t = np.asarray(frame_times_s, dtype=np.float64).ravel()
    width = float(bin_s)
    if a.shape != t.shape or a.size < 2:
        raise ShapeError(
            f"activity {a.shape} and frame_times_s {t.shape} must be equal 1-D arrays of >= 2"
        )
    if not (np.isfinite(width) and width > 0):
        raise ParameterError(f"bin_s must be a finite number of seconds > 0; got {bin_s!r}")
    edges = np.arange(t[0], t[-1] + 1e-9, width)
    if edges.size < 3:
        return float("nan")
    total, _ = np.histogram(t, edges, weights=a)
    frames, _ = np.histogram(t, edges)
    count, _ = np.histogram(np.asarray(spike_times_s, dtype=np.float64).ravel(), edges)
    ok = frames > 0
    return _pearson(total[ok] / frames[ok], count[ok].astype(np.float64))


def smoothed_correlation(s: Any, true: Any, *, sigma_frames: float = 2.0) -> Any:
    """Pearson r after smoothing both signals with a Gaussian of `sigma_frames`.

    Parameters
    ----------
    s : array_like, shape (n_frames,) or (n_rois, n_frames)
        Inferred activity.
    true : array_like, same shape
        True spikes (counts or amplitudes) per frame.
    sigma_frames : float, optional
        Gaussian standard deviation in frames (default 2; 0 means no smoothing).

    Returns
    -------
    float or ndarray, shape (n_rois,)
        Pearson r per ROI (a float for 1-D input); NaN where a smoothed signal is constant.

    Notes
    -----
    Frames where either signal is NaN are dropped before smoothing (the signals are joined
    across the gap). The filter uses reflected edges and a 4σ support.

    Examples
    --------
    >>> x = np.zeros(200); x[[20, 90]] = 1
    >>> round(smoothed_correlation(x, x), 6)
    1.0
    """
    p, t, one = _pair(s, true)
    sig = float(sigma_frames)
    if not (np.isfinite(sig) and sig >= 0):
        raise ParameterError(f"sigma_frames must be a finite number >= 0; got {sigma_frames!r}")
    out = np.empty(p.shape[0])
    for i in range(p.shape[0]):
        keep = np.isfinite(p[i]) & np.isfinite(t[i])
        a, b = p[i][keep], t[i][keep]
        if sig > 0 and a.size:
            a = gaussian_filter1d(a, sig, mode="reflect")
            b = gaussian_filter1d(b, sig, mode="reflect")
        out[i] = _pearson(a, b)
    return float(out[0]) if one else out


class SpikeF1(NamedTuple):
    """Spike-time matching scores (each a float, or an array of shape ``(n_rois,)``).

    Attributes
    ----------
    precision, recall, f1 : float or ndarray
        Matched / detected, matched / true, and their harmonic mean (NaN when undefined).
    n_matched, n_detected, n_true : int or ndarray
        Counts (a frame with k spikes counts k times).
    """

    precision: Any
    recall: Any
    f1: Any
    n_matched: Any
    n_detected: Any
    n_true: Any


def _times(counts: np.ndarray) -> np.ndarray:
    """Frame index of every spike, a frame with count k repeated k times (sorted)."""
    k = np.clip(np.rint(np.nan_to_num(counts)), 0, None).astype(np.int64)
    return np.repeat(np.arange(k.size), k)


def _greedy_match(a: np.ndarray, b: np.ndarray, tol: float) -> int:
    """Size of a maximum one-to-one matching of sorted times with ``|a_i - b_j| <= tol``.

    For points on a line with an interval tolerance the two-pointer greedy (pair the earliest
    unmatched pair that is close enough, else advance the earlier one) is optimal.
    """
    i = j = n = 0
    while i < a.size and j < b.size:
        d = a[i] - b[j]
        if abs(d) <= tol:
            n += 1
            i += 1
            j += 1
        elif d < 0:
            i += 1
        else:
            j += 1
    return n


def spike_time_f1(
    detected: Any, true_spikes: Any, *, frame_rate_hz: float, tolerance_s: float = 0.1
) -> SpikeF1:
    """Match detected to true spike times within a tolerance; precision, recall and F1.

    Parameters
    ----------
    detected : array_like, shape (n_frames,) or (n_rois, n_frames)
        Detected spike counts per frame (rounded to integers; NaN counts as 0). Threshold a
        continuous estimate first.
    true_spikes : array_like, same shape
        True spike counts per frame.
    frame_rate_hz : float
        Frame rate in Hz.
    tolerance_s : float, optional
        Largest time difference of a matched pair, in seconds (default 0.1).

    Returns
    -------
    SpikeF1
        Scores per ROI (floats for 1-D input).

    Examples
    --------
    >>> t = np.zeros(100); t[[10, 50]] = 1
    >>> d = np.zeros(100); d[[11, 80]] = 1
    >>> spike_time_f1(d, t, frame_rate_hz=100.0, tolerance_s=0.02).f1
    0.5
    """
    p, t, one = _pair(detected, true_spikes)
    rate = float(frame_rate_hz)
    tol_s = float(tolerance_s)
    if not (np.isfinite(rate) and rate > 0):
        raise ParameterError(f"frame_rate_hz must be a finite number > 0; got {frame_rate_hz!r}")
    if not (np.isfinite(tol_s) and tol_s >= 0):
        raise ParameterError(f"tolerance_s must be a finite number >= 0; got {tolerance_s!r}")
    tol = tol_s * rate + 1e-9
    n = p.shape[0]
    matched = np.zeros(n, np.int64)
    n_det = np.zeros(n, np.int64)
    n_true = np.zeros(n, np.int64)
    for i in range(n):
        a, b = _times(p[i]), _times(t[i])
        matched[i], n_det[i], n_true[i] = _greedy_match(a, b, tol), a.size, b.size
    with np.errstate(invalid="ignore", divide="ignore"):
        prec = np.where(n_det > 0, matched / np.maximum(n_det, 1), np.nan)
        rec = np.where(n_true > 0, matched / np.maximum(n_true, 1), np.nan)
        f1 = np.where((n_det + n_true) > 0, 2 * matched / np.maximum(n_det + n_true, 1), np.nan)
    if one:
        return SpikeF1(
            float(prec[0]),
            float(rec[0]),
            float(f1[0]),
            int(matched[0]),
            int(n_det[0]),
            int(n_true[0]),
        )
    return SpikeF1(prec, rec, f1, matched, n_det, n_true)
