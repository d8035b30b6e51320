"""Calcium events that mean activity: onsets detected against a model of each trace's noise.

:func:`detect_events` finds the onsets of calcium transients in traces ``(n_rois, n_frames)``
with a threshold set by a noise model, not by the spread of the trace itself: a quiet ROI gets
(almost) no events, an active one all the transients that stand out of its noise. The threshold is
an **expected false-event rate** (events per second a trace of pure noise would give), converted
per ROI into a multiple of the noise σ of the detection statistic with the frame rate, the
smoothing and the noise's own correlation taken into account. The result, an :class:`EventList`,
is the usual "one sorted array of onset frames per ROI" (it *is* that list) and carries each
event's amplitude, SNR and score and the per-ROI noise and threshold.

:func:`score_events` compares events with ground-truth spike times (cell-attached recordings):
false events per second in silent stretches, and the fraction of isolated spikes and of bursts
that got an event; ``benchmarks/bench_events.py`` and ``docs/spikes.md`` use it.

The CalSciPy method (threshold relative to each trace's own derivative SD) stays available as
:func:`napari_calcium.core.spikes.events.identify_events` (alias ``identify_events_calscipy``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ...errors import ParameterError, ShapeError
from .._backend import to_host
from .._validate import frames_within_data
from .._validate import positive as _positive
from .events import _skip_flagged_rows, _traces_2d

__all__ = [
    "DEFAULT_ACTIVITY_WINDOW_S",
    "DEFAULT_FALSE_RATE_HZ",
    "DEFAULT_SMOOTH_S",
    "DEFAULT_TIMEOUT_S",
    "EventList",
    "detect_events",
    "noise_false_rate_hz",
    "score_events",
    "summarize_scores",
    "threshold_for_false_rate",
]

#: default expected false events per second on pure noise (one per 200 s of noise per ROI)
DEFAULT_FALSE_RATE_HZ = 0.005
#: default σ (s) of the Gaussian that smooths the derivative; chosen on held-in ground truth only
#: (see docs/spikes.md, "How the defaults were chosen")
DEFAULT_SMOOTH_S = 0.075
#: default minimum time (s) between two events of one ROI
DEFAULT_TIMEOUT_S = 0.5
#: MAD -> σ of a normal distribution, 1 / Φ⁻¹(3/4)
MAD_TO_SD = 1.482602218505602
#: default time after each onset (s) left out of the noise estimate (the transient and its decay)
DEFAULT_ACTIVITY_WINDOW_S = 3.0
#: most rounds of "estimate the noise, find events, leave them out" (stops when nothing changes)
NOISE_ITERATIONS = 5
#: the events left out of the noise estimate are found at the threshold of this false rate (or the
#: detection threshold, if stricter): a high `false_rate_hz` must not carve the noise's own upper
#: tail out of its estimate
MASK_FALSE_RATE_HZ = 0.005
#: the noise is estimated from at least this fraction of the frames (else the previous estimate)
MIN_QUIET_FRACTION = 0.1
#: window before an onset (s) in which the rise starts (the event's baseline is its minimum)
BASELINE_S = 0.25
#: fewest frames a trace needs for a noise estimate
MIN_FRAMES = 8
#: the smoothing is at least this many frames (σ) unless switched off: below ~13 Hz the default
#: 0.075 s would be a fraction of a frame, and a step then stands out of white noise less
MIN_SMOOTH_FRAMES = 1.0
#: largest threshold (σ) the bisection searches; a rate that asks for more gets this
_MAX_SIGMA = 38.0


# --------------------------------------------------------------------------------------------------
# The noise model: false-event rate <-> threshold in σ
# --------------------------------------------------------------------------------------------------
def noise_false_rate_hz(threshold_sigma: Any, lag1_correlation: Any, frame_rate_hz: float) -> Any:
    """Expected events per second of pure Gaussian noise above a threshold.

    Parameters
    ----------
    threshold_sigma : float or array_like
        Threshold in standard deviations of the detection statistic (≥ 0).
    lag1_correlation : float or array_like
        Correlation of the statistic between consecutive frames, in (-1, 1).
    frame_rate_hz : float
        Frames per second.

    Returns
    -------
    float or numpy.ndarray
        ``f · P(z[t-1] < k ≤ z[t]) = f · 2 T(k, √((1-ρ)/(1+ρ)))``, the up-crossing rate of level
        ``k`` of a stationary Gaussian sequence with lag-1 correlation ρ sampled at ``f`` Hz (T is
        Owen's T function, the exact bivariate-normal probability). Every up-crossing starts one
        excursion above the threshold, i.e. one candidate event before the timeout merges close
        ones, so this is an upper bound of the false-event rate of pure noise.

    References
    ----------
    Rice, S. O. (1945). Mathematical analysis of random noise. Bell Syst. Tech. J. 24, 46-156
    (the continuous-time up-crossing rate this is the sampled form of).
    Owen, D. B. (1956). Tables for computing bivariate normal probabilities. Ann. Math. Stat. 27,
    1075-1090.
    """
    from scipy.special import owens_t

    k = np.asarray(threshold_sigma, dtype=np.float64)
    rho = np.clip(np.asarray(lag1_correlation, dtype=np.float64), -0.999999, 0.999999)
    out = frame_rate_hz * 2.0 * owens_t(k, np.sqrt((1.0 - rho) / (1.0 + rho)))
    return float(out) if out.ndim == 0 else out


def threshold_for_false_rate(
    false_rate_hz: float, lag1_correlation: Any, frame_rate_hz: float
) -> Any:
    """Threshold (σ of the statistic) at which pure Gaussian noise gives `false_rate_hz` events/s.

    The inverse of :func:`noise_false_rate_hz` in the threshold (Brent's method for one
    correlation, bisection for an array; to 1e-9 σ).

    Parameters
    ----------
    false_rate_hz : float or array_like
        Expected false events per second, > 0.
    lag1_correlation : float or array_like
        Lag-1 correlation of the statistic (per ROI); broadcast with `false_rate_hz`.
    frame_rate_hz : float
        Frames per second.

    Returns
    -------
    float or numpy.ndarray
        ``k ≥ 0``; 0 where even a threshold at the median gives fewer crossings than asked (a rate
        near the frame rate), at most 38 σ.
    """
    rho = np.asarray(lag1_correlation, dtype=np.float64)
    if (
        rho.ndim == 0 and np.ndim(false_rate_hz) == 0
    ):  # one ROI: Brent's method, ~10 evaluations instead of 60
        from scipy.optimize import brentq

        def excess(k: float) -> float:
            return math.log(max(noise_false_rate_hz(k, rho, frame_rate_hz), 1e-300) / false_rate_hz)

        if excess(0.0) <= 0:
            return 0.0
        if excess(_MAX_SIGMA) >= 0:
            return _MAX_SIGMA
        return float(brentq(excess, 0.0, _MAX_SIGMA, xtol=1e-9))
    shape = np.broadcast_shapes(rho.shape, np.shape(false_rate_hz))
    lo = np.zeros(shape)
    hi = np.full(shape, _MAX_SIGMA)
    for _ in range(60):  # 38 / 2**60: far below any meaningful threshold difference
        mid = 0.5 * (lo + hi)
        above = noise_false_rate_hz(mid, rho, frame_rate_hz) > false_rate_hz
        lo = np.where(above, mid, lo)
        hi = np.where(above, hi, mid)
    k = 0.5 * (lo + hi)
    k = np.where(noise_false_rate_hz(0.0, rho, frame_rate_hz) <= false_rate_hz, 0.0, k)
    return float(k) if k.ndim == 0 else k


class _ThresholdTable:
    """``k(ρ)`` of :func:`threshold_for_false_rate` for one rate and frame rate, tabulated.

    The detector needs a threshold for every ROI and every round of the noise estimate; the
    threshold depends on ρ only through ``a = √((1-ρ)/(1+ρ))``, smoothly, so one vectorised
    bisection on 4,097 values of ``log a`` (ρ from -0.999 to 0.999999) and linear interpolation
    replace thousands of root searches (interpolation error below 1e-3 σ).
    """

    def __init__(self, false_rate_hz: float, frame_rate_hz: float) -> None:
        lo, hi = math.log(math.sqrt((1 - 0.999999) / (1 + 0.999999))), math.log(math.sqrt(1999.0))
        self.log_a = np.linspace(lo, hi, 4097)
        a2 = np.exp(2 * self.log_a)
        rho = (1 - a2) / (1 + a2)
        self.k = np.asarray(threshold_for_false_rate(false_rate_hz, rho, frame_rate_hz))

    def __call__(self, rho: float) -> float:
        r = min(max(rho, -0.999), 0.999999)
        return float(np.interp(0.5 * math.log((1 - r) / (1 + r)), self.log_a, self.k))


# --------------------------------------------------------------------------------------------------
# The result
# --------------------------------------------------------------------------------------------------
class EventList(list):
    """Event onsets per ROI with their amplitude and SNR: a ``list`` of ``n_rois`` frame arrays.

    It is the plain "one sorted ``intp`` array of onset frames per ROI" every event function takes
    (:func:`~napari_calcium.core.spikes.events.event_counts`, ``generate_raster``,
    ``save_traces(events=...)``, the Events widget): indexing, ``len`` and iteration give the
    frame arrays. The attributes hold the rest.

    Attributes
    ----------
    amplitude : list of numpy.ndarray
        Per ROI, float64, one value per event: the rise of the trace, in the trace's units
        (ΔF/F for ΔF/F): the maximum of the smoothed trace in the timeout after the onset minus
        its minimum from 0.25 s before the rise (before the smoothing's half-width) to the onset,
        so that a transient riding on the decay of the last one counts from its trough. On the
        smoothed trace, a rise faster than the smoothing loses what it decays within it (about
        15 % for τ = 1 s at the default 0.075 s).
    snr : list of numpy.ndarray
        Per ROI, ``amplitude / noise_sd`` (inf where the noise is 0).
    score : list of numpy.ndarray
        Per ROI, the peak of the detection statistic in σ of its noise (``≥ threshold_sigma``).
    noise_sd : numpy.ndarray, shape (n_rois,)
        Frame-to-frame noise σ of each trace, in its units: ``1.4826 · MAD(Δx) / √2`` over the
        frames outside events; NaN for rows skipped as NaN throughout.
    threshold_sigma : numpy.ndarray, shape (n_rois,)
        The threshold used, in σ of the detection statistic (NaN for skipped rows).
    false_rate_hz : numpy.ndarray, shape (n_rois,)
        The false-event rate pure Gaussian noise would give at that threshold, events/s.
    frame_rate_hz : float
    parameters : dict
        The settings (``method``, ``smooth_s``, ``false_rate_hz``, ``threshold_sigma``,
        ``timeout_s``, ``frame_rate_hz``), JSON-serialisable.
    """

    amplitude: list[np.ndarray]
    snr: list[np.ndarray]
    score: list[np.ndarray]
    noise_sd: np.ndarray
    threshold_sigma: np.ndarray
    false_rate_hz: np.ndarray
    frame_rate_hz: float
    parameters: dict[str, Any]

    def __init__(
        self,
        frames: list[np.ndarray],
        *,
        amplitude: list[np.ndarray],
        snr: list[np.ndarray],
        score: list[np.ndarray],
        noise_sd: np.ndarray,
        threshold_sigma: np.ndarray,
        false_rate_hz: np.ndarray,
        frame_rate_hz: float,
        parameters: Mapping[str, Any],
    ) -> None:
        super().__init__(frames)
        n = len(frames)
        for name, rows in (("amplitude", amplitude), ("snr", snr), ("score", score)):
            if len(rows) != n or any(len(r) != len(f) for r, f in zip(rows, frames, strict=True)):
                raise ShapeError(f"EventList: {name} must hold one value per event of each ROI")
        self.amplitude = list(amplitude)
        self.snr = list(snr)
        self.score = list(score)
        self.noise_sd = np.asarray(noise_sd, dtype=np.float64)
        self.threshold_sigma = np.asarray(threshold_sigma, dtype=np.float64)
        self.false_rate_hz = np.asarray(false_rate_hz, dtype=np.float64)
        self.frame_rate_hz = float(frame_rate_hz)
        self.parameters = dict(parameters)

    @property
    def counts(self) -> np.ndarray:
        """Events per ROI, ``(n_rois,)`` int64."""
        return np.array([len(f) for f in self], dtype=np.int64)

    def table(self) -> dict[str, np.ndarray]:
        """One row per event, ROI by ROI and in time order, as a dict of equal-length columns.

        Returns
        -------
        dict of numpy.ndarray
            ``roi`` (row index, int64), ``frame`` (int64), ``time_s`` (``frame / frame_rate_hz``),
            ``amplitude``, ``snr``, ``score`` (float64). ``pandas.DataFrame(events.table())``
            makes a data frame of it.
        """
        counts = self.counts
        cat = lambda rows, dt: (  # noqa: E731
            np.concatenate([np.asarray(r, dtype=dt) for r in rows]) if rows else np.zeros(0, dt)
        )
        frame = cat(list(self), np.int64)
        return {
            "roi": np.repeat(np.arange(len(self), dtype=np.int64), counts),
            "frame": frame,
            "time_s": frame / self.frame_rate_hz,
            "amplitude": cat(self.amplitude, np.float64),
            "snr": cat(self.snr, np.float64),
            "score": cat(self.score, np.float64),
        }

    def __repr__(self) -> str:
        return (
            f"EventList({len(self)} ROIs, {int(self.counts.sum())} events, "
            f"{self.parameters.get('method', '?')!r})"
        )


# --------------------------------------------------------------------------------------------------
# Detection
# --------------------------------------------------------------------------------------------------
def _robust(v: np.ndarray) -> tuple[float, float]:
    """(median, 1.4826 · MAD) of a 1-D array."""
    m = float(np.median(v))
    return m, MAD_TO_SD * float(np.median(np.abs(v - m)))


def _noise_of(z: np.ndarray, quiet: np.ndarray) -> tuple[float, float, float]:
    """(centre, σ, lag-1 correlation) of the statistic `z` over the `quiet` frames."""
    centre, sd = _robust(z[quiet])
    pair = quiet[1:] & quiet[:-1]
    _, sd_diff = _robust(np.diff(z)[pair]) if pair.any() else (0.0, 0.0)
    if sd == 0.0:  # most frames do not change (noise-free or quantised trace): plain RMS
        sd = float(np.sqrt(np.mean((z[quiet] - centre) ** 2)))
        sd_diff = float(np.sqrt(np.mean(np.diff(z)[pair] ** 2))) if pair.any() else 0.0
    rho = 1.0 - sd_diff**2 / (2.0 * sd**2) if sd > 0 else 0.0  # var(Δz) = 2σ²(1 - ρ)
    return centre, sd, float(np.clip(rho, -0.999, 0.999999))


def _excursions(z: np.ndarray, thr: float, timeout: int) -> tuple[np.ndarray, np.ndarray]:
    """Onset frames and peak values of the excursions of `z` at or above `thr`.

    The onset of an excursion is the frame of its maximum; an excursion that starts less than
    `timeout` frames after the last kept onset joins that event (its peak can raise the event's
    peak, its onset is dropped).
    """
    above = z >= thr
    if not above.any():
        return np.zeros(0, np.intp), np.zeros(0)
    edges = np.diff(np.concatenate(([0], above.view(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    peaks = np.array([z[s:e].max() for s, e in zip(starts, ends, strict=True)])
    where = np.array([s + int(np.argmax(z[s:e])) for s, e in zip(starts, ends, strict=True)])
    onsets: list[int] = []
    heights: list[float] = []
    for s, w, h in zip(starts, where, peaks, strict=True):
        if onsets and s - onsets[-1] < timeout:
            heights[-1] = max(heights[-1], float(h))
            continue
        onsets.append(int(w))
        heights.append(float(h))
    return np.asarray(onsets, dtype=np.intp), np.asarray(heights)


def _smoothed(x: np.ndarray, sigma_frames: float) -> np.ndarray:
    """Each row Gaussian-smoothed along time (``mode="nearest"``), or `x` itself for σ = 0."""
    if sigma_frames <= 0:
        return x
    from scipy.ndimage import gaussian_filter1d

    return gaussian_filter1d(x, sigma_frames, axis=1, mode="nearest")


def _statistic(xs: np.ndarray) -> np.ndarray:
    """Backward difference of the smoothed rows, ``z[:, 0] = 0`` (trace units per frame).

    ``Δ(G * x) = G * Δx`` inside the trace; smoothing the trace first (its ends extended flat)
    keeps the last frames' differences from being repeated into the padding, which would give
    false events at the ends.
    """
    z = np.zeros_like(xs)
    if xs.shape[1] > 1:
        z[:, 1:] = np.diff(xs, axis=1)
    return z


def detect_events(
    traces: Any,
    *,
    frame_rate_hz: float,
    smooth_s: float | None = DEFAULT_SMOOTH_S,
    false_rate_hz: float = DEFAULT_FALSE_RATE_HZ,
    threshold_sigma: float | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    activity_window_s: float = DEFAULT_ACTIVITY_WINDOW_S,
) -> EventList:
    """Event onsets of each ROI, thresholded against a robust model of the trace's noise.

    Parameters
    ----------
    traces : array_like, shape (n_rois, n_frames) or (n_frames,)
        ΔF/F or fluorescence traces (numpy or cupy; computed on the host). A 1-D trace is one
        ROI. Units do not matter (the noise is measured in the same units), but amplitudes are
        reported in them.
    frame_rate_hz : float
        Frames per second.
    smooth_s : float or None, optional
        σ in seconds of the Gaussian that smooths the first difference (the detection statistic),
        at least one frame (``max(smooth_s · f, 1)`` frames); ``None`` or 0: no smoothing.
        Default 0.075 s, chosen on four ground-truth datasets (30-158 Hz) and checked on five
        held out (``docs/spikes.md``, "How the defaults were chosen").
    false_rate_hz : float, optional
        Expected false events per second that a trace of pure noise (of the ROI's measured
        level and correlation) would give: the threshold's unit. Default 0.005/s, i.e. one
        false event per 200 s of noise per ROI. Lower it for fewer false events and fewer
        small transients; must be below ``frame_rate_hz``.
    threshold_sigma : float, optional
        A threshold in σ of the detection statistic's noise instead, the same for every ROI
        (``false_rate_hz`` is then ignored; the rate it implies is in the result).
    timeout_s : float, optional
        Minimum time between two events of one ROI, seconds (``max(1, round(timeout_s · f))``
        frames): a rise within it is part of the same event (a burst gives one event, at its
        first rise). Default 0.5 s.
    activity_window_s : float, optional
        The noise is measured outside events: the frames from just before each onset to this
        long after it are left out of the estimate (the transient and its decay, which inflate
        the spread of the statistic). Default 3 s, chosen with `smooth_s`; 0 measures the noise on
        every frame (and gives fewer events on active traces).

    Returns
    -------
    EventList
        One sorted ``intp`` array of onset frames per ROI (a ``list``), with ``.amplitude``,
        ``.snr``, ``.score`` per event, ``.noise_sd``, ``.threshold_sigma``,
        ``.false_rate_hz`` per ROI and ``.parameters``. Rows that are NaN throughout (flagged by
        :func:`~napari_calcium.core.traces.dff.compute_dff`) get no events and NaN noise.

    Warns
    -----
    DegenerateTraceWarning
        Naming the rows that are NaN throughout and were skipped.

    Raises
    ------
    ParameterError
        A bad parameter, fewer than 8 frames, or NaN/inf in some frames of a row.
    ShapeError
        Traces that are not 1-D or 2-D numbers.

    Notes
    -----
    1. The statistic is the backward difference of the trace smoothed by a Gaussian of σ =
       ``max(smooth_s · f, 1)`` frames, ``z[t] = (G_σ * x)[t] - (G_σ * x)[t-1]`` (= ``G_σ * Δx``:
       the smoothed derivative of CalSciPy, per frame; the trace's ends are extended flat).
    2. Its noise is measured robustly: centre ``m`` = median and σ_z = 1.4826 · MAD of ``z``,
       lag-1 correlation ``ρ = 1 - σ_Δz² / (2 σ_z²)`` from the MAD of ``Δz`` (so smoothing,
       frame rate and coloured — AR(1), pink — noise are all measured, not assumed), over the
       frames outside events: estimate, detect, leave the frames from just before each onset to
       `activity_window_s` after it out, estimate again, up to 5 rounds or until nothing changes
       (activity otherwise inflates the MAD by 1.2-2.3× on real recordings). At least 10 % of
       the frames stay in the estimate. The events left out are those above the detection
       threshold or that of 0.005 false events/s, whichever is higher, so that a high
       `false_rate_hz` does not cut the noise's own upper tail out of its estimate.
    3. The threshold ``k`` (σ) solves ``f · 2 T(k, √((1-ρ)/(1+ρ))) = false_rate_hz``, the rate of
       up-crossings of a Gaussian sequence (:func:`noise_false_rate_hz`); e.g. 0.005/s on white
       noise with the default smoothing is k = 3.2 σ at 7 Hz and 3.5 σ at 30-160 Hz.
    4. Events are the excursions of ``z - m`` above ``k σ_z``; the onset is the frame of the
       excursion's maximum (the steepest rise; for an abrupt rise, the first frame at the raised
       level) and excursions closer than the timeout are one event.
    5. ``noise_sd`` is the per-frame noise σ of the trace, ``1.4826 · MAD(Δx) / √2`` over the
       frames outside events (the estimate of Pachitariu et al. and of CASCADE's standardized
       noise level); ``snr = amplitude / noise_sd``.

    A trace whose statistic has zero MAD (noise-free or heavily quantised) uses the RMS instead;
    a constant trace has no events.

    References
    ----------
    Rice, S. O. (1945). Mathematical analysis of random noise. Bell Syst. Tech. J. 24, 46-156.
    Owen, D. B. (1956). Ann. Math. Stat. 27, 1075-1090 (Owen's T function).
    Donoho, D. L. & Johnstone, I. M. (1994). Ideal spatial adaptation by wavelet shrinkage.
    Biometrika 81, 425-455 (the MAD/0.6745 noise estimate).
    Pachitariu, M., Stringer, C. & Harris, K. D. (2018). Robustness of spike deconvolution for
    neuronal calcium imaging. J. Neurosci. 38, 7976-7985.
    Rupprecht, P. et al. (2021). A database and deep learning toolbox for noise-optimized,
    generalized spike inference from calcium imaging. Nat. Neurosci. 24, 1324-1337.
    O'Neil, D. A. CalSciPy ``identify_events`` (the smoothed-derivative onset this thresholds).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(2)
    >>> x = rng.normal(scale=0.05, size=3000)          # 100 s of noise at 30 Hz
    >>> for k in (600, 1800):                          # two transients of 0.5, τ = 1 s
    ...     x[k:] += 0.5 * np.exp(-np.arange(3000 - k) / 30.0)
    >>> ev = detect_events(x, frame_rate_hz=30.0)
    >>> ev[0].tolist(), ev.snr[0].round(1).tolist(), ev.amplitude[0].round(2).tolist()
    ([600, 1800], [8.9, 8.5], [0.46, 0.44])
    >>> ev.threshold_sigma.round(2).tolist(), ev.false_rate_hz.round(6).tolist()
    ([3.51], [0.005])
    """
    fs = _positive(frame_rate_hz, "frame_rate_hz")
    sigma_s = 0.0 if smooth_s is None else _positive(smooth_s, "smooth_s", allow_zero=True)
    rate = _positive(false_rate_hz, "false_rate_hz")
    if rate >= fs:
        raise ParameterError(
            f"false_rate_hz={false_rate_hz!r} must be below the frame rate ({fs:g} Hz): it is "
            "the number of false events per second pure noise may give"
        )
    fixed_k = None
    if threshold_sigma is not None:
        fixed_k = _positive(threshold_sigma, "threshold_sigma", allow_zero=True)
    timeout = max(1, round(_positive(timeout_s, "timeout_s", allow_zero=True) * fs))
    window_s = _positive(activity_window_s, "activity_window_s", allow_zero=True)
    work, flagged = _skip_flagged_rows(_traces_2d(traces), "detect_events", stacklevel=2)
    x = np.asarray(to_host(work), dtype=np.float64)
    n_rois, n_frames = x.shape
    if n_frames < MIN_FRAMES:
        raise ParameterError(
            f"traces have {n_frames} frames; detect_events needs at least {MIN_FRAMES} to "
            "measure the noise"
        )
    sigma_frames = max(sigma_s * fs, MIN_SMOOTH_FRAMES) if sigma_s > 0 else 0.0
    if sigma_frames > 0:
        frames_within_data(4 * sigma_frames, n_frames, "smooth_s", smooth_s)
    xs = _smoothed(x, sigma_frames)
    z = _statistic(xs)
    guard = math.ceil(2 * sigma_frames)  # the smoothing's half-width, frames
    pre, post = guard + 1, max(1, round(window_s * fs))
    base_n = max(1, round(BASELINE_S * fs))
    after_n = timeout
    min_quiet = max(MIN_FRAMES, int(MIN_QUIET_FRACTION * n_frames))

    k_of = _ThresholdTable(rate, fs)
    k_mask_of = k_of if rate <= MASK_FALSE_RATE_HZ else _ThresholdTable(MASK_FALSE_RATE_HZ, fs)
    frames, amps, snrs, scores = [], [], [], []
    noise_sd = np.full(n_rois, np.nan)
    thr_sigma = np.full(n_rois, np.nan)
    implied = np.full(n_rois, np.nan)
    empty_i, empty_f = np.zeros(0, np.intp), np.zeros(0)
    for i in range(n_rois):
        if flagged[i]:
            frames.append(empty_i)
            amps.append(empty_f)
            snrs.append(empty_f)
            scores.append(empty_f)
            continue
        zi = z[i]
        quiet = np.ones(n_frames, bool)
        centre, sd, rho = _noise_of(zi, quiet)
        for _ in range(NOISE_ITERATIONS if sd > 0 else 0):
            k = fixed_k if fixed_k is not None else k_of(rho)
            k_mask = max(k, k_mask_of(rho))
            onsets, _ = _excursions(zi - centre, k_mask * sd, 1)
            if onsets.size == 0:
                break
            cover = np.zeros(n_frames + 1, np.int32)
            np.add.at(cover, np.maximum(onsets - pre, 0), 1)
            np.add.at(cover, np.minimum(onsets + post, n_frames), -1)
            new_quiet = np.cumsum(cover[:-1]) == 0
            if new_quiet.sum() < min_quiet or np.array_equal(new_quiet, quiet):
                break
            quiet = new_quiet
            centre, sd, rho = _noise_of(zi, quiet)
        k = fixed_k if fixed_k is not None else k_of(rho)
        pair = quiet[1:] & quiet[:-1]
        dx = np.diff(x[i])[pair] if pair.any() else np.diff(x[i])
        noise_sd[i] = _robust(dx)[1] / math.sqrt(2.0) if dx.size else 0.0
        thr_sigma[i] = k
        implied[i] = noise_false_rate_hz(k, rho, fs)
        if sd > 0:
            onsets, peaks = _excursions(zi - centre, k * sd, timeout)
            score = peaks / sd
        else:  # a constant statistic: nothing rises
            onsets, score = empty_i, empty_f
        amp = np.empty(onsets.size)
        for j, e in enumerate(onsets):
            b0 = max(e - guard - base_n, 0)
            amp[j] = xs[i, e : min(e + after_n, n_frames)].max() - xs[i, b0 : e + 1].min()
        with np.errstate(divide="ignore", invalid="ignore"):
            snr = amp / noise_sd[i] if noise_sd[i] > 0 else np.where(amp > 0, np.inf, 0.0)
        frames.append(onsets)
        amps.append(amp)
        snrs.append(np.asarray(snr, dtype=np.float64))
        scores.append(np.asarray(score, dtype=np.float64))
    parameters = {
        "method": "noise-model",
        "frame_rate_hz": fs,
        "smooth_s": sigma_s,
        "false_rate_hz": None if fixed_k is not None else rate,
        "threshold_sigma": fixed_k,
        "timeout_s": float(timeout_s),
        "activity_window_s": window_s,
    }
    return EventList(
        frames,
        amplitude=amps,
        snr=snrs,
        score=scores,
        noise_sd=noise_sd,
        threshold_sigma=thr_sigma,
        false_rate_hz=implied,
        frame_rate_hz=fs,
        parameters=parameters,
    )


# --------------------------------------------------------------------------------------------------
# Scoring against ground-truth spikes
# --------------------------------------------------------------------------------------------------
def score_events(
    event_times_s: Any,
    spike_times_s: Any,
    *,
    start_s: float,
    stop_s: float,
    silent_s: float = 5.0,
    isolation_s: float = 1.0,
    burst_span_s: float = 0.5,
    before_s: float = 0.2,
    after_s: float = 0.5,
) -> dict[str, float]:
    """Events of one recording against its ground-truth spikes: false rate and recall.

    Parameters
    ----------
    event_times_s : array_like, shape (n_events,)
        Event onset times, seconds (e.g. ``frame_times[events[i]]``).
    spike_times_s : array_like, shape (n_spikes,)
        Spike times of the same neuron, seconds.
    start_s, stop_s : float
        The imaged interval (first and last frame time); spikes outside it are ignored.
    silent_s : float, optional
        A silent stretch is a gap of at least this long between consecutive spikes (or the
        recording's ends). Default 5 s.
    isolation_s : float, optional
        Spikes closer than this are grouped (single linkage); a group of one is an *isolated*
        spike. Default 1 s.
    burst_span_s : float, optional
        A group of ≥ 2 spikes spanning at most this is a *burst*. Default 0.5 s.
    before_s, after_s : float, optional
        An event from ``before_s`` before a group's first spike to ``after_s`` after its last
        one detects it (smoothing can place the onset early; slow rises late). Silent stretches
        are counted from ``after_s`` after the spike that opens them to ``before_s`` before the
        one that closes them. Defaults 0.2 s and 0.5 s.

    Returns
    -------
    dict
        ``false_events`` and ``silent_s`` (events and seconds in silent stretches),
        ``isolated``/``isolated_hit`` and ``bursts``/``bursts_hit`` (counts), all floats, so
        that recordings add up; ``false_rate_hz = false_events / silent_s`` and recall
        ``isolated_hit / isolated`` are left to the caller (see :func:`summarize_scores`).
    """
    ev = np.sort(np.asarray(event_times_s, dtype=np.float64).ravel())
    sp = np.sort(np.asarray(spike_times_s, dtype=np.float64).ravel())
    t0, t1 = float(start_s), float(stop_s)
    if not t1 > t0:
        raise ParameterError(f"stop_s ({stop_s!r}) must be after start_s ({start_s!r})")
    sp = sp[(sp >= t0) & (sp <= t1)]
    bounds = np.concatenate(([t0 - after_s], sp, [t1 + before_s]))
    false_events, silent = 0, 0.0
    for a, b in itertools.pairwise(bounds):
        if b - a >= silent_s:
            lo, hi = max(a + after_s, t0), min(b - before_s, t1)
            if hi > lo:
                silent += hi - lo
                false_events += int(np.count_nonzero((ev >= lo) & (ev < hi)))
    groups = np.split(sp, np.flatnonzero(np.diff(sp) >= isolation_s) + 1) if sp.size else []
    isolated = [g for g in groups if g.size == 1]
    bursts = [g for g in groups if g.size >= 2 and g[-1] - g[0] <= burst_span_s]

    def hit(g: np.ndarray) -> bool:
        return bool(np.any((ev >= g[0] - before_s) & (ev <= g[-1] + after_s)))

    return {
        "false_events": float(false_events),
        "silent_s": float(silent),
        "isolated": float(len(isolated)),
        "isolated_hit": float(sum(hit(g) for g in isolated)),
        "bursts": float(len(bursts)),
        "bursts_hit": float(sum(hit(g) for g in bursts)),
    }


def summarize_scores(scores: list[dict[str, float]]) -> dict[str, float]:
    """Pool :func:`score_events` of several recordings: totals, false rate and recalls.

    Parameters
    ----------
    scores : list of dict
        From :func:`score_events`, one per recording.

    Returns
    -------
    dict
        The summed counts plus ``false_rate_hz`` (false events per silent second; NaN without
        silent time), ``isolated_recall`` and ``burst_recall`` (NaN without such groups).
    """
    keys = ("false_events", "silent_s", "isolated", "isolated_hit", "bursts", "bursts_hit")
    tot = {k: float(sum(s[k] for s in scores)) for k in keys}
    ratio = lambda a, b: tot[a] / tot[b] if tot[b] > 0 else float("nan")  # noqa: E731
    tot["false_rate_hz"] = ratio("false_events", "silent_s")
    tot["isolated_recall"] = ratio("isolated_hit", "isolated")
    tot["burst_recall"] = ratio("bursts_hit", "bursts")
    return tot
