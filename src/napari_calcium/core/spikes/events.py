"""Event analysis of traces: event onsets, firing rates, waveforms and rasters (CalSciPy).

Traces are ``(n_rois, n_frames)``; a single 1-D trace is one ROI. Events are kept as **one
sorted integer array of frame indices per ROI** (a ``list`` of ``n_rois`` arrays of dtype
``intp``), CalSciPy's ``Tuple[List[int]]``: ragged, small, and directly usable for indexing
(``traces[i, events[i]]``). :func:`generate_raster` turns it into a boolean ``(n_rois,
n_frames)`` raster, and every function that takes events also accepts such a boolean raster, a
sequence of sequences of ints, or a mapping ``{roi_index: frames}`` (ACE's dict).

Times are in seconds and rates in Hz; frame indices are 0-based.

CalSciPy 0.3 names (``get_event_onset_intensities``, ``get_inter_event_intervals``,
``get_num_events``, ``calculate_firing_rates``, ``calculate_mean_firing_rates``) are aliases.

:func:`identify_events` is CalSciPy's rule (threshold relative to each trace's own derivative
spread; also named ``identify_events_calscipy``): on pure noise it finds about one event per second
whatever the noise level. For events that mean activity use
:func:`~napari_calcium.core.spikes.event_detection.detect_events` (threshold from a noise model,
as an expected false-event rate), whose :class:`~.event_detection.EventList` result every function
here accepts.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ...errors import ParameterError, ShapeError
from .._backend import array_module, ndimage_module, to_host
from .._validate import frames_within_data
from .._validate import positive as _positive
from ..traces.dff import DegenerateTraceWarning, _rows_text

__all__ = [
    "calc_firing_rates",
    "calc_mean_firing_rates",
    "calculate_firing_rates",
    "calculate_mean_firing_rates",
    "collect_waveforms",
    "event_counts",
    "event_onset_intensities",
    "generate_raster",
    "get_event_onset_intensities",
    "get_inter_event_intervals",
    "get_num_events",
    "identify_events",
    "identify_events_calscipy",
    "inter_event_intervals",
    "normalize_firing_rates",
    "scale_waveforms",
]


# --------------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------------


def _as_array(x: Any, name: str) -> Any:
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        try:
            x = np.asarray(x)
        except (TypeError, ValueError):
            raise ShapeError(f"{name} must be a rectangular numeric array") from None
    if not (np.issubdtype(np.dtype(str(x.dtype)), np.number) or x.dtype == bool):
        raise ShapeError(f"{name} must be numeric, got dtype {x.dtype}")
    return x


def _traces_2d(traces: Any, name: str = "traces") -> Any:
    """`traces` as a 2-D float array (numpy or cupy; 1-D becomes one row)."""
    traces = _as_array(traces, name)
    if traces.ndim not in (1, 2) or traces.shape[-1] < 1:
        raise ShapeError(
            f"{name} has shape {tuple(traces.shape)}; expected (n_rois, n_frames) or a single "
            "trace (n_frames,) with at least one frame"
        )
    xp = array_module(traces)
    if not np.issubdtype(np.dtype(str(traces.dtype)), np.floating):
        traces = xp.astype(traces, xp.float64)
    return traces[None, :] if traces.ndim == 1 else traces


def _event_list(events: Any, name: str = "events", n_frames: int | None = None) -> list:
    """Normalise any accepted event representation to a list of sorted ``intp`` arrays."""
    if isinstance(events, Mapping):
        try:
            keys = sorted(events)
        except TypeError:
            raise ParameterError(f"{name}: mapping keys must be ROI indices (ints)") from None
        rows: Iterable = [events[k] for k in keys]
    elif hasattr(events, "shape") and hasattr(events, "dtype"):
        arr = to_host(events)
        if arr.dtype == bool:
            if arr.ndim != 2:
                raise ShapeError(
                    f"{name} as a boolean raster must be 2-D (n_rois, n_frames), got shape "
                    f"{arr.shape}"
                )
            return [np.flatnonzero(row).astype(np.intp) for row in arr]
        if arr.ndim == 1:
            rows = [arr]
        elif arr.ndim == 2:
            rows = list(arr)
        else:
            raise ShapeError(
                f"{name} must be a sequence of per-ROI frame indices, got an array of shape "
                f"{arr.shape}"
            )
    elif isinstance(events, Sequence) and not isinstance(events, str | bytes):
        rows = events
    else:
        raise ParameterError(
            f"{name} must be a sequence of per-ROI frame-index sequences, a boolean raster "
            f"(n_rois, n_frames) or a mapping {{roi: frames}}, got {type(events).__name__}"
        )
    out = []
    for i, row in enumerate(rows):
        try:
            a = np.asarray(to_host(row) if hasattr(row, "shape") else row).ravel()
        except (TypeError, ValueError):
            raise ParameterError(f"{name}[{i}] is not a sequence of frame indices") from None
        if a.size == 0:
            out.append(np.zeros(0, dtype=np.intp))
            continue
        if a.dtype == bool or not np.issubdtype(a.dtype, np.number):
            raise ParameterError(f"{name}[{i}] must hold integer frame indices, got {a.dtype}")
        if not np.issubdtype(a.dtype, np.integer) and (
            not np.all(np.isfinite(a)) or np.any(a != np.round(a))
        ):
            raise ParameterError(f"{name}[{i}] must hold whole frame indices, got {a[:5]}")
        a = np.sort(a.astype(np.intp))
        if a[0] < 0 or (n_frames is not None and a[-1] >= n_frames):
            bound = f"[0, {n_frames})" if n_frames is not None else ">= 0"
            raise ParameterError(
                f"{name}[{i}] has frame indices outside {bound} (min {a[0]}, max {a[-1]})"
            )
        out.append(a)
    return out


def _rates_array(x: Any) -> Any:
    x = _as_array(x, "firing_rates")
    if x.ndim not in (1, 2, 3) or x.shape[-1] < 1:
        raise ShapeError(
            f"firing_rates has shape {tuple(x.shape)}; expected (n_rois, n_frames), (n_frames,) "
            "or (n_trials, n_rois, n_frames) with at least one frame"
        )
    return x


def _skip_flagged_rows(work: Any, who: str, *, stacklevel: int) -> tuple[Any, np.ndarray]:
    """Rows NaN throughout zeroed and flagged (with a warning); NaN/inf elsewhere refused.

    Returns `work` (NaN rows replaced by zeros) and a boolean ``(n_rois,)`` host array of the
    flagged rows. `stacklevel` is what the public function would give ``warnings.warn`` (2: its
    caller).
    """
    xp = array_module(work)
    flagged = np.zeros(int(work.shape[0]), dtype=bool)
    finite = xp.isfinite(work)
    if bool(xp.all(finite)):
        return work, flagged
    nan_rows = xp.all(xp.isnan(work), axis=-1)
    if not bool(xp.all(finite | nan_rows[:, None])):
        raise ParameterError(
            "traces contain NaN or infinite values in some frames; interpolate or drop them "
            "(rows that are NaN throughout, as compute_dff flags them, are skipped)"
        )
    flagged = to_host(nan_rows).astype(bool)
    rows = np.flatnonzero(flagged)
    warnings.warn(
        f"{who}: rows {_rows_text(rows)} are NaN throughout (flagged, e.g. by "
        "compute_dff where the baseline is not positive) and were skipped; their empty event "
        "lists mean 'no data', not 'no activity'",
        DegenerateTraceWarning,
        stacklevel=stacklevel + 1,
    )
    return xp.where(nan_rows[:, None], xp.zeros((), dtype=work.dtype), work), flagged


def _check_roi_count(events: list, n_rois: int, name: str = "event_frames") -> None:
    if len(events) != n_rois:
        raise ShapeError(f"{name} lists {len(events)} ROIs but the traces have {n_rois}")


# --------------------------------------------------------------------------------------------------
# Event onsets
# --------------------------------------------------------------------------------------------------
def identify_events(
    traces: Any,
    *,
    frame_rate_hz: float,
    smooth_s: float | None = 0.1,
    threshold_sd: float = 0.5,
    timeout_s: float = 0.5,
    force_nonneg: bool = True,
) -> list[np.ndarray]:
    """Event onsets of each ROI from the smoothed, non-negative first derivative (CalSciPy).

    The threshold is relative to each trace's own derivative: pure noise gives about one event
    per second (7-100 Hz, any noise level) and quiet ROIs get as many events as active ones. Use
    :func:`~napari_calcium.core.spikes.event_detection.detect_events` for a threshold set by a
    noise model; this function keeps CalSciPy's results (also named
    ``identify_events_calscipy``).

    Parameters
    ----------
    traces : array_like, shape (n_rois, n_frames) or (n_frames,)
        Fluorescence or ΔF/F traces (numpy or cupy). A 1-D trace is one ROI.
    frame_rate_hz : float
        Sampling rate in Hz.
    smooth_s : float or None, optional
        Standard deviation in seconds of the Gaussian that smooths the derivative (CalSciPy
        ``smooth=True``); ``None`` or 0 disables smoothing. Default 0.1 s.
    threshold_sd : float, optional
        An event needs a derivative of at least ``threshold_sd`` standard deviations of the
        (smoothed, non-negative) derivative of its ROI. CalSciPy: 0.5.
    timeout_s : float, optional
        Minimum time between two events of one ROI, seconds (CalSciPy ``timeout=15`` frames,
        i.e. 0.5 s at 30 Hz). Converted to ``max(1, round(timeout_s * frame_rate_hz))`` frames.
        Within a timeout the larger derivative peak wins (``scipy.signal.find_peaks``
        ``distance``), so consecutive events are at least that many frames apart.
    force_nonneg : bool, optional
        Set negative derivative values to 0 before thresholding (CalSciPy default True).

    Returns
    -------
    list of numpy.ndarray
        ``n_rois`` sorted arrays (dtype ``intp``) of event-onset frames; a 1-D input gives a
        list of one array. :func:`generate_raster` turns it into a boolean raster. Rows that are
        NaN throughout (flagged by :func:`~napari_calcium.core.traces.dff.compute_dff`) get an
        empty array.

    Warns
    -----
    DegenerateTraceWarning
        Naming the rows that are NaN throughout and were skipped.

    Raises
    ------
    ParameterError
        For a bad parameter, or NaN/inf in some frames of a row.

    Notes
    -----
    The derivative is the backward difference ``d[t] = (x[t] - x[t-1]) * frame_rate_hz``
    (units per second, ``d[0] = 0``), so for an abrupt rise the event frame is the first frame
    at the raised level. It is Gaussian-smoothed, clipped at zero (`force_nonneg`), and its
    local maxima of height ``>= threshold_sd * std(d)`` at least the timeout apart are the
    events. The threshold is relative, so the traces' units do not matter; a flat trace has no
    events.

    References
    ----------
    O'Neil, D. A. CalSciPy, ``event_processing.identify_events`` (version 0.3).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.zeros(300)
    >>> for k in (50, 170):
    ...     x[k:] += np.exp(-np.arange(300 - k) / 30.0)
    >>> [e.tolist() for e in identify_events(x, frame_rate_hz=30.0)]
    [[50, 170]]
    """
    import scipy.signal

    fs = _positive(frame_rate_hz, "frame_rate_hz")
    sigma_s = 0.0 if smooth_s is None else _positive(smooth_s, "smooth_s", allow_zero=True)
    thr_sd = _positive(threshold_sd, "threshold_sd", allow_zero=True)
    distance = max(1, round(_positive(timeout_s, "timeout_s", allow_zero=True) * fs))
    work, flagged = _skip_flagged_rows(_traces_2d(traces), "identify_events", stacklevel=2)
    xp = array_module(work)
    n_rois, n_frames = int(work.shape[0]), int(work.shape[1])
    deriv = xp.zeros(work.shape, dtype=work.dtype)
    if n_frames > 1:
        deriv[:, 1:] = (work[:, 1:] - work[:, :-1]) * fs
    if sigma_s > 0:
        frames_within_data(4 * sigma_s * fs, n_frames, "smooth_s", smooth_s)
        deriv = ndimage_module(xp).gaussian_filter1d(deriv, sigma_s * fs, axis=-1, mode="nearest")
    if force_nonneg:
        deriv = xp.clip(deriv, 0, None)
    deriv = to_host(deriv)
    sd = deriv.std(axis=1)
    events = []
    for i in range(n_rois):
        if flagged[i] or not sd[i] > 0:  # no data, or a flat derivative: nothing rises
            events.append(np.zeros(0, dtype=np.intp))
            continue
        peaks, _ = scipy.signal.find_peaks(deriv[i], height=thr_sd * sd[i], distance=distance)
        events.append(peaks.astype(np.intp))
    return events


def event_onset_intensities(traces: Any, event_frames: Any) -> list[np.ndarray]:
    """Trace value at each event frame, per ROI (CalSciPy ``get_event_onset_intensities``).

    Parameters
    ----------
    traces : array_like, shape (n_rois, n_frames) or (n_frames,)
    event_frames : events
        Per-ROI frame indices (see the module docstring), one entry per ROI.

    Returns
    -------
    list of numpy.ndarray
        ``traces[i, event_frames[i]]`` for every ROI, in the traces' float dtype.
    """
    work = _traces_2d(traces)
    events = _event_list(event_frames, "event_frames", n_frames=int(work.shape[1]))
    _check_roi_count(events, int(work.shape[0]))
    host = to_host(work)
    return [host[i, ev] for i, ev in enumerate(events)]


def inter_event_intervals(event_frames: Any, *, frame_rate_hz: float) -> list[np.ndarray]:
    """Intervals between consecutive events of each ROI, in seconds.

    Parameters
    ----------
    event_frames : events
        Per-ROI frame indices (see the module docstring).
    frame_rate_hz : float

    Returns
    -------
    list of numpy.ndarray
        Per ROI, ``np.diff(sorted frames) / frame_rate_hz`` (float64, one fewer than the events;
        empty for fewer than two events).

    References
    ----------
    O'Neil, D. A. CalSciPy, ``event_processing.get_inter_event_intervals``.
    """
    fs = _positive(frame_rate_hz, "frame_rate_hz")
    return [np.diff(ev).astype(np.float64) / fs for ev in _event_list(event_frames, "event_frames")]


def event_counts(event_frames: Any) -> np.ndarray:
    """Number of events of each ROI (CalSciPy ``get_num_events``).

    Parameters
    ----------
    event_frames : events
        Per-ROI frame indices (see the module docstring).

    Returns
    -------
    numpy.ndarray, shape (n_rois,), int64
    """
    return np.array([ev.size for ev in _event_list(event_frames, "event_frames")], dtype=np.int64)


# --------------------------------------------------------------------------------------------------
# Firing rates
# --------------------------------------------------------------------------------------------------
def calc_firing_rates(
    spike_prob: Any,
    frame_rate_hz: float | None = None,
    *,
    bin_duration_s: float | None = None,
    in_place: bool = False,
) -> Any:
    """Instantaneous firing rates in Hz from spike probabilities per frame (CalSciPy).

    Parameters
    ----------
    spike_prob : array_like, shape (..., n_frames)
        Probability (or expected number) of spikes in each frame, e.g. inferred activity from
        deconvolution; ought to be non-negative, may exceed 1 (several spikes per frame).
        numpy or cupy.
    frame_rate_hz : float, optional
        Frames per second. Give this or `bin_duration_s`.
    bin_duration_s : float, optional
        Duration of each sample in seconds (for re-binned data).
    in_place : bool, optional
        Multiply `spike_prob` (floating point) in place and return it.

    Returns
    -------
    array, same shape as `spike_prob`
        ``spike_prob * frame_rate_hz`` (or ``/ bin_duration_s``), spikes per second.

    References
    ----------
    O'Neil, D. A. CalSciPy, ``events.calc_firing_rates`` (0.3: ``calculate_firing_rates``).
    """
    if (frame_rate_hz is None) == (bin_duration_s is None):
        raise ParameterError("give exactly one of frame_rate_hz and bin_duration_s")
    if frame_rate_hz is not None:
        factor = _positive(frame_rate_hz, "frame_rate_hz")
    else:
        factor = 1.0 / _positive(bin_duration_s, "bin_duration_s")
    spike_prob = _as_array(spike_prob, "spike_prob")
    xp = array_module(spike_prob)
    floating = np.issubdtype(np.dtype(str(spike_prob.dtype)), np.floating)
    if in_place:
        if not floating:
            raise ParameterError(
                f"in_place=True needs floating-point spike_prob, got dtype {spike_prob.dtype}"
            )
        spike_prob *= factor
        return spike_prob
    return xp.astype(spike_prob, spike_prob.dtype if floating else xp.float64) * factor


def calc_mean_firing_rates(firing_rates: Any) -> Any:
    """Mean firing rate of each ROI over time, NaN ignored (CalSciPy).

    Parameters
    ----------
    firing_rates : array_like, shape (n_rois, n_frames), (n_frames,) or (n_trials, n_rois,
        n_frames)
        Instantaneous rates (Hz) or a spike raster.

    Returns
    -------
    array, shape ``firing_rates.shape[:-1]``
        ``nanmean`` over the last (time) axis; NaN where a row is all NaN.
    """
    firing_rates = _rates_array(firing_rates)
    xp = array_module(firing_rates)
    x = xp.astype(firing_rates, xp.float64) if firing_rates.dtype == bool else firing_rates
    finite = ~xp.isnan(x)
    n = xp.sum(finite, axis=-1)
    total = xp.sum(xp.where(finite, x, 0), axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / n


def normalize_firing_rates(firing_rates: Any, *, in_place: bool = False) -> Any:
    """Scale each ROI's rates to a maximum of 1, negatives clipped to 0 (CalSciPy).

    Parameters
    ----------
    firing_rates : array_like, shape (n_rois, n_frames), (n_frames,) or (n_trials, n_rois,
        n_frames)
        Instantaneous rates or spike raster (numpy or cupy).
    in_place : bool, optional
        Write into `firing_rates` (floating point) and return it.

    Returns
    -------
    array, same shape
        ``max(r, 0) / nanmax(r)`` per row (each trial x ROI for 3-D input). A row whose maximum
        is not positive (silent ROI) becomes all zeros (CalSciPy gives NaN there); NaN stays NaN.
    """
    firing_rates = _rates_array(firing_rates)
    xp = array_module(firing_rates)
    floating = np.issubdtype(np.dtype(str(firing_rates.dtype)), np.floating)
    if in_place and not floating:
        raise ParameterError(
            f"in_place=True needs floating-point firing_rates, got dtype {firing_rates.dtype}"
        )
    if in_place:
        work = firing_rates
    else:
        work = xp.astype(firing_rates, firing_rates.dtype if floating else xp.float64, copy=True)
    finite = ~xp.isnan(work)
    peak = xp.max(xp.where(finite, work, -xp.inf), axis=-1, keepdims=True)
    scale = xp.where(peak > 0, peak, xp.inf)
    work[...] = xp.where(finite, xp.clip(work, 0, None) / scale, work)
    return work


# --------------------------------------------------------------------------------------------------
# Waveforms
# --------------------------------------------------------------------------------------------------
def _window(window: Any) -> tuple[int, int]:
    try:
        pre, post = window
    except (TypeError, ValueError):
        raise ParameterError(
            f"window must be a pair (pre, post) of frames, got {window!r}"
        ) from None
    for name, v in (("pre", pre), ("post", post)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0:
            raise ParameterError(f"window {name} must be a non-negative integer, got {v!r}")
    if pre + post < 1:
        raise ParameterError(f"window={window!r} is empty; pre + post must be at least 1")
    return int(pre), int(post)


def collect_waveforms(
    traces: Any,
    event_frames: Any,
    *,
    window: tuple[int, int] = (150, 450),
    edge: str = "nan",
    per_roi: bool = False,
) -> np.ndarray | list[np.ndarray]:
    """Cut the trace around every event (CalSciPy ``collect_waveforms``).

    Parameters
    ----------
    traces : array_like, shape (n_rois, n_frames) or (n_frames,)
    event_frames : events
        Per-ROI frame indices (see the module docstring), one entry per ROI.
    window : (int, int), optional
        ``(pre, post)`` in frames (CalSciPy: 150, 450). A waveform covers frames
        ``[e - pre, e + post)``, so the event sits at column ``pre``.
    edge : {"nan", "drop"}, optional
        Events whose window runs past either end of the trace: ``"nan"`` fills the missing
        samples with NaN (rows stay aligned with the events); ``"drop"`` leaves them out.
    per_roi : bool, optional
        Return a list with one ``(n_events_i, pre + post)`` array per ROI (CalSciPy's tuple)
        instead of one stacked array.

    Returns
    -------
    numpy.ndarray, shape (n_events, pre + post), or list of them
        float64 waveforms, ROI 0's events first, each ROI's in time order.

    References
    ----------
    O'Neil, D. A. CalSciPy, ``event_processing.collect_waveforms``.
    """
    pre, post = _window(window)
    if edge not in ("nan", "drop"):
        raise ParameterError(f"edge must be 'nan' or 'drop', got {edge!r}")
    host = to_host(_traces_2d(traces)).astype(np.float64, copy=False)
    n_rois, n_frames = host.shape
    events = _event_list(event_frames, "event_frames", n_frames=n_frames)
    _check_roi_count(events, n_rois)
    # NaN-padded copy: every window is a plain slice of it.
    padded = np.full((n_rois, pre + n_frames + post), np.nan)
    padded[:, pre : pre + n_frames] = host
    offsets = np.arange(pre + post)
    out = []
    for i, ev in enumerate(events):
        if edge == "drop":
            ev = ev[(ev - pre >= 0) & (ev + post <= n_frames)]
        out.append(padded[i, ev[:, None] + offsets[None, :]])  # starts at e - pre + pre = e
    if per_roi:
        return out
    return np.concatenate(out, axis=0) if out else np.zeros((0, pre + post))


def scale_waveforms(waveforms: Any, *, axis: int = 1) -> Any:
    """Z-score waveforms: zero mean, unit standard deviation (sklearn ``StandardScaler`` maths).

    Parameters
    ----------
    waveforms : array_like, shape (n_events, n_samples), or a list of them
        From :func:`collect_waveforms` (a list from ``per_roi=True`` is scaled element-wise).
    axis : {1, 0}, optional
        1 (default): each waveform (row) is scaled on its own, for comparing shapes across
        neurons. 0: each sample (column) across events, what ``StandardScaler().fit_transform``
        does to an ``(events, samples)`` matrix (CalSciPy's default scaler).

    Returns
    -------
    numpy.ndarray or list of numpy.ndarray
        ``(w - mean) / std`` with the population std (``ddof=0``), NaN ignored; where the std is
        0 (a flat waveform) the result is 0, as StandardScaler does.

    References
    ----------
    O'Neil, D. A. CalSciPy, ``event_processing.scale_waveforms``. Pedregosa et al. (2011),
    scikit-learn ``StandardScaler``.
    """
    if axis not in (0, 1):
        raise ParameterError(f"axis must be 0 (per sample) or 1 (per waveform), got {axis!r}")
    if isinstance(waveforms, list | tuple):
        return [scale_waveforms(w, axis=axis) for w in waveforms]
    w = to_host(_as_array(waveforms, "waveforms")).astype(np.float64)
    if w.ndim != 2:
        raise ShapeError(f"waveforms must be 2-D (n_events, n_samples), got shape {w.shape}")
    if w.size == 0:
        return w
    with warnings.catch_warnings():  # all-NaN rows: nanmean warns, result NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(w, axis=axis, keepdims=True)
        sd = np.nanstd(w, axis=axis, keepdims=True)
    sd = np.where(sd > 0, sd, 1.0)
    return (w - mean) / sd


# --------------------------------------------------------------------------------------------------
# Raster
# --------------------------------------------------------------------------------------------------
def generate_raster(events: Any, n_frames: int | None = None, *, dtype: Any = bool) -> np.ndarray:
    """Binary raster ``(n_rois, n_frames)`` from per-ROI event frames (CalSciPy).

    Parameters
    ----------
    events : events
        Per-ROI frame indices (see the module docstring).
    n_frames : int, optional
        Number of frames of the raster. Default (CalSciPy): the last event frame + 1.
    dtype : numpy dtype, optional
        ``bool`` (default); ``np.int32`` gives CalSciPy's 0/1 matrix exactly.

    Returns
    -------
    numpy.ndarray, shape (n_rois, n_frames)
        1 (True) at each event frame, 0 elsewhere; repeated frames count once.

    References
    ----------
    O'Neil, D. A. CalSciPy, ``reorganization.generate_raster`` (0.8: ``events.generate_raster``).
    """
    if n_frames is not None and (
        isinstance(n_frames, bool) or not isinstance(n_frames, int | np.integer) or n_frames < 1
    ):
        raise ParameterError(f"n_frames must be a positive integer, got {n_frames!r}")
    ev = _event_list(events, "events", n_frames=None if n_frames is None else int(n_frames))
    if n_frames is None:
        lasts = [int(e[-1]) for e in ev if e.size]
        if not lasts:
            raise ParameterError("events are all empty; give n_frames to size the raster")
        n_frames = max(lasts) + 1
    raster = np.zeros((len(ev), int(n_frames)), dtype=dtype)
    for i, e in enumerate(ev):
        raster[i, e] = 1
    return raster


# CalSciPy's event rule under its own name (``identify_events`` may later become the noise-model
# detector; this name keeps CalSciPy's results).
identify_events_calscipy = identify_events

# CalSciPy 0.3 names.
get_event_onset_intensities = event_onset_intensities
get_inter_event_intervals = inter_event_intervals
get_num_events = event_counts
calculate_firing_rates = calc_firing_rates
calculate_mean_firing_rates = calc_mean_firing_rates
