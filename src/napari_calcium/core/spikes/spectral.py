"""Derivative events, instantaneous phase and multitaper spectrogram of traces (ACE-neuro).

* :func:`derivative_events`: ACE's ``find_calcium_events_with_derivatives``: peaks of the trace
  or of its first or second derivative above a height;
* :func:`hilbert_phase`: ACE's ``compute_miniscope_phase``: instantaneous phase (radians) of
  the analytic signal, optionally after a zero-phase band-pass;
* :func:`multitaper_spectrogram`: ACE's ``compute_miniscope_spectrogram``: Thomson multitaper
  power spectral density in sliding windows, DPSS (Slepian) tapers.

Traces are ``(n_rois, n_frames)`` (a 1-D trace is one ROI), time in seconds, frequency in Hz.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from ...errors import ParameterError
from .._backend import array_module, fft_module, signal_module, to_host
from .._validate import positive as _positive
from .events import _traces_2d

__all__ = [
    "DERIVATIVES",
    "Spectrogram",
    "derivative_events",
    "hilbert_phase",
    "multitaper_spectrogram",
]

#: Accepted ``derivative`` values of :func:`derivative_events`.
DERIVATIVES = ("zeroth", "first", "second")


# --------------------------------------------------------------------------------------------------
# Derivative events (ACE)
# --------------------------------------------------------------------------------------------------
def _derivative(x: np.ndarray, order: str) -> np.ndarray:
    """Frame-aligned derivative of rows of `x` (units per frame**k, same length)."""
    d = np.zeros_like(x)
    if order == "zeroth":
        d[...] = x
    elif order == "first" and x.shape[1] > 1:  # backward: d[t] = x[t] - x[t-1]
        d[:, 1:] = x[:, 1:] - x[:, :-1]
    elif order == "second" and x.shape[1] > 2:  # centred: x[t+1] - 2 x[t] + x[t-1]
        d[:, 1:-1] = x[:, 2:] - 2 * x[:, 1:-1] + x[:, :-2]
    return d


def derivative_events(
    traces: Any,
    *,
    derivative: str = "first",
    event_height: float = 5.0,
    zscore: bool = False,
    min_distance_frames: int = 1,
) -> list[np.ndarray]:
    """Events as peaks of the trace or of its derivative above a height (ACE semantics).

    Parameters
    ----------
    traces : array_like, shape (n_rois, n_frames) or (n_frames,)
        Traces (e.g. CNMF-E ``C``, denoised calcium). A 1-D trace is one ROI.
    derivative : {"zeroth", "first", "second"}, optional
        Which signal is searched (ACE default ``"first"``): the trace itself, the backward
        difference ``x[t] - x[t-1]``, or the centred second difference
        ``x[t+1] - 2 x[t] + x[t-1]`` (per frame, not per second, as ACE's ``np.diff``).
    event_height : float, optional
        Minimum peak height (ACE default 5). In the traces' raw units (per frame for the
        derivatives), as in ACE; with ``zscore=True`` in standard deviations of that signal.
    zscore : bool, optional
        Standardise each ROI's signal (mean 0, SD 1) before thresholding, so one height fits
        ROIs of any scale. Not in ACE (default False).
    min_distance_frames : int, optional
        Minimum frames between two events of one ROI (the higher peak wins); 1 (default) only
        requires distinct local maxima, as ACE.

    Returns
    -------
    list of numpy.ndarray
        ``n_rois`` sorted ``intp`` arrays of event frames (ACE returns ``{roi: frames}``; the
        functions of :mod:`.events` accept both).

    Notes
    -----
    Peaks are ``scipy.signal.find_peaks(signal, height=event_height, distance=...)``. The
    derivatives are aligned with the frames: for a step from frame ``k-1`` to ``k`` the first
    derivative peaks at ``k`` (first raised frame) and the second at ``k - 1`` (the corner
    before the rise). Raw ``np.diff`` indices, as ACE uses, are one frame earlier for
    ``"first"`` and ``"second"``.

    References
    ----------
    ACE-neuro, ``MiniscopePostprocessor.find_calcium_events_with_derivatives``.
    """
    import scipy.signal

    if derivative not in DERIVATIVES:
        raise ParameterError(f"derivative must be one of {DERIVATIVES}, got {derivative!r}")
    try:
        height = float(event_height)
    except (TypeError, ValueError):
        raise ParameterError(f"event_height must be a number, got {event_height!r}") from None
    if not math.isfinite(height):
        raise ParameterError(f"event_height must be finite, got {event_height!r}")
    if (
        isinstance(min_distance_frames, bool)
        or not isinstance(min_distance_frames, int | np.integer)
        or min_distance_frames < 1
    ):
        raise ParameterError(
            f"min_distance_frames must be a positive integer, got {min_distance_frames!r}"
        )
    x = to_host(_traces_2d(traces)).astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise ParameterError("traces contain NaN or infinite values; interpolate or drop them")
    d = _derivative(x, derivative)
    if zscore:
        sd = d.std(axis=1, keepdims=True)
        d = (d - d.mean(axis=1, keepdims=True)) / np.where(sd > 0, sd, 1.0)
    out = []
    for row in d:
        peaks, _ = scipy.signal.find_peaks(row, height=height, distance=int(min_distance_frames))
        out.append(peaks.astype(np.intp))
    return out


# --------------------------------------------------------------------------------------------------
# Hilbert phase (ACE)
# --------------------------------------------------------------------------------------------------
def hilbert_phase(
    traces: Any,
    *,
    band_hz: tuple[float | None, float | None] | None = None,
    frame_rate_hz: float | None = None,
    filter_order: int = 2,
) -> Any:
    """Instantaneous phase of each trace from the analytic (Hilbert) signal, radians.

    Parameters
    ----------
    traces : array_like, shape (n_rois, n_frames) or (n_frames,)
        Traces (numpy or cupy); 1-D gives 1-D.
    band_hz : (low, high), optional
        Band-pass first with :func:`~napari_calcium.core.traces.processing.bandpass` (zero-phase
        Butterworth; either end may be None for a high- or low-pass). ACE filters with ``cut=[0.1,
        1.5]`` Hz, order 2. The phase of a broadband trace is hard to interpret; pass a band.
    frame_rate_hz : float, optional
        Needed with `band_hz`.
    filter_order : int, optional
        Butterworth order of the band-pass (ACE ``n=2``).

    Returns
    -------
    array, same shape as `traces`
        ``angle(x_a)`` in ``(-pi, pi]``, where ``x_a = x + i H[x]`` is the analytic signal of
        the (filtered) trace minus its mean; 0 at a cosine's crest, advancing by ``2 pi`` per
        period. float64 (float32 for float32 input).

    Notes
    -----
    The mean is removed before the transform (a DC offset would bias the phase towards 0).
    ``scipy.signal.hilbert`` works with the FFT, which treats the trace as periodic: expect a
    few cycles of error at both ends unless the record holds whole periods.

    References
    ----------
    ACE-neuro, ``MiniscopePostprocessor.compute_miniscope_phase``. Gabor, D. (1946). Theory of
    communication. J. IEE 93(26), 429-441.
    """
    work = _traces_2d(traces)
    was_1d = len(getattr(traces, "shape", np.shape(traces))) == 1
    if band_hz is not None:
        if frame_rate_hz is None:
            raise ParameterError("band_hz needs frame_rate_hz (Hz) to place the band")
        try:
            low, high = band_hz
        except (TypeError, ValueError):
            raise ParameterError(f"band_hz must be a pair (low, high), got {band_hz!r}") from None
        from ..traces.processing import bandpass

        work = bandpass(
            work, frame_rate_hz=frame_rate_hz, low_hz=low, high_hz=high, order=filter_order
        )
    elif frame_rate_hz is not None:
        _positive(frame_rate_hz, "frame_rate_hz")
    xp = array_module(work)
    if not bool(xp.all(xp.isfinite(work))):
        raise ParameterError("traces contain NaN or infinite values; interpolate or drop them")
    centred = work - xp.mean(work, axis=-1, keepdims=True)
    analytic = signal_module(xp).hilbert(centred, axis=-1)
    atan2 = getattr(xp, "atan2", None) or xp.arctan2
    phase = xp.astype(atan2(xp.imag(analytic), xp.real(analytic)), work.dtype)
    return phase[0] if was_1d else phase


# --------------------------------------------------------------------------------------------------
# Multitaper spectrogram (ACE, Thomson)
# --------------------------------------------------------------------------------------------------
class Spectrogram(NamedTuple):
    """Result of :func:`multitaper_spectrogram` (unpacks as ``times_s, freqs_hz, power``)."""

    #: Centre of each window, seconds from the first frame's start, shape (n_windows,).
    times_s: Any
    #: Frequencies, Hz, shape (n_freqs,).
    freqs_hz: Any
    #: One-sided PSD, units**2 / Hz, shape (n_freqs, n_windows) or (n_rois, n_freqs, n_windows).
    power: Any


def multitaper_spectrogram(
    trace: Any,
    frame_rate_hz: float,
    *,
    window_s: float = 30.0,
    step_s: float = 3.0,
    freq_range_hz: tuple[float, float] = (0.0, 15.0),
    time_bandwidth: float = 2.0,
    n_tapers: int | None = None,
    detrend: str | None = "linear",
    nfft: int | None = None,
) -> Spectrogram:
    """Multitaper power spectral density in sliding windows (Thomson 1982; ACE semantics).

    Parameters
    ----------
    trace : array_like, shape (n_frames,) or (n_rois, n_frames)
        Signal, e.g. the mean fluorescence of the movie (ACE); numpy or cupy.
    frame_rate_hz : float
        Sampling rate, Hz (ACE ``frame_rate``).
    window_s, step_s : float, optional
        Window length and step, seconds (ACE ``window_length=30``, ``window_step=3``); rounded
        to whole frames.
    freq_range_hz : (float, float), optional
        Frequencies kept, Hz, inclusive (ACE ``freq_lims=[0, 15]``); the upper end is clipped
        to the Nyquist frequency ``frame_rate_hz / 2``.
    time_bandwidth : float, optional
        Time-half-bandwidth product ``NW`` (ACE ``time_bandwidth=2``); the spectral resolution
        is ``2 NW / window_s`` Hz.
    n_tapers : int, optional
        Number of DPSS tapers ``K``; default ``floor(2 NW) - 1`` (3 for NW = 2).
    detrend : {"linear", "constant", None}, optional
        Removed from each window before tapering (default linear, as the Prerau-lab
        implementation that ACE uses).
    nfft : int, optional
        FFT length, at least the window; default the next power of two.

    Returns
    -------
    Spectrogram
        ``(times_s, freqs_hz, power)``; ``power`` is the one-sided PSD in units**2/Hz,
        ``(n_freqs, n_windows)`` (``(n_rois, n_freqs, n_windows)`` for 2-D input). In dB:
        ``10 * log10(power)`` (ACE's fourth output).

    Notes
    -----
    Each window ``x`` (``N`` frames) is multiplied by the ``K`` unit-energy DPSS tapers
    ``v_k`` (``scipy.signal.windows.dpss(N, NW, K)``); ``S_k(f) = |FFT(v_k x)|^2 / f_s`` and
    ``S = mean_k S_k`` (unity weights), doubled at all but 0 Hz and Nyquist. By Parseval,
    ``sum_f S(f) * df`` with ``df = f_s / nfft`` over the full range is ``sum_k sum_n
    (v_k[n] x[n])^2 / K``, about the window's mean square ``mean(x**2)``.

    References
    ----------
    Thomson, D. J. (1982). Spectrum estimation and harmonic analysis. Proc. IEEE 70(9),
    1055-1096. Prerau, M. J. et al. (2017). Sleep neurophysiological dynamics through the lens
    of multitaper spectral analysis. Physiology 32(1), 60-92. ACE-neuro,
    ``MiniscopePostprocessor.compute_miniscope_spectrogram``.
    """
    from scipy.signal.windows import dpss

    fs = _positive(frame_rate_hz, "frame_rate_hz")
    win = round(_positive(window_s, "window_s") * fs)
    step = round(_positive(step_s, "step_s") * fs)
    nw = _positive(time_bandwidth, "time_bandwidth")
    if step < 1:
        raise ParameterError(f"step_s={step_s!r} is shorter than one frame at {fs:g} Hz")
    if n_tapers is None:
        n_tapers = math.floor(2 * nw) - 1
        if n_tapers < 1:
            raise ParameterError(
                f"time_bandwidth={time_bandwidth!r} gives no taper (K = floor(2 NW) - 1 < 1); "
                "use time_bandwidth >= 1 or set n_tapers"
            )
    elif isinstance(n_tapers, bool) or not isinstance(n_tapers, int | np.integer) or n_tapers < 1:
        raise ParameterError(f"n_tapers must be a positive integer, got {n_tapers!r}")
    if detrend not in ("linear", "constant", None):
        raise ParameterError(f"detrend must be 'linear', 'constant' or None, got {detrend!r}")
    try:
        f_lo, f_hi = (float(v) for v in freq_range_hz)
    except (TypeError, ValueError):
        raise ParameterError(
            f"freq_range_hz must be a pair (low, high) in Hz, got {freq_range_hz!r}"
        ) from None
    f_hi = min(f_hi, fs / 2)
    if not (0 <= f_lo <= f_hi and math.isfinite(f_lo)):
        raise ParameterError(
            f"freq_range_hz={freq_range_hz!r} must satisfy 0 <= low <= high (high is clipped to "
            f"the Nyquist frequency {fs / 2:g} Hz)"
        )
    work = _traces_2d(trace, "trace")
    was_1d = len(getattr(trace, "shape", np.shape(trace))) == 1
    n_frames = int(work.shape[1])
    if win < 2 or win > n_frames:
        raise ParameterError(
            f"window_s={window_s!r} is {win} frames; it needs at least 2 frames and at most the "
            f"trace's {n_frames} frames"
        )
    if nfft is None:
        nfft = 1 << (win - 1).bit_length()
    elif isinstance(nfft, bool) or not isinstance(nfft, int | np.integer) or nfft < win:
        raise ParameterError(f"nfft must be an integer >= the window ({win} frames), got {nfft!r}")
    xp = array_module(work)
    if not bool(xp.all(xp.isfinite(work))):
        raise ParameterError("trace contains NaN or infinite values; interpolate or drop them")
    tapers = xp.asarray(np.atleast_2d(dpss(win, nw, Kmax=int(n_tapers))))  # (K, win)
    starts = np.arange(0, n_frames - win + 1, step)
    freqs = np.fft.rfftfreq(int(nfft), 1.0 / fs)
    keep = np.flatnonzero((freqs >= f_lo - 1e-12) & (freqs <= f_hi + 1e-12))
    one_sided = np.full(freqs.size, 2.0)
    one_sided[0] = 1.0
    if nfft % 2 == 0:
        one_sided[-1] = 1.0
    gain = xp.asarray((one_sided[keep] / (fs * tapers.shape[0]))[:, None])
    keep_x = xp.asarray(keep)
    fft = fft_module(xp)
    if detrend == "linear":  # orthonormal basis of {1, t}: subtract the projection
        t = np.arange(win) - (win - 1) / 2
        basis = xp.asarray(np.stack([np.ones(win) / math.sqrt(win), t / np.linalg.norm(t)]))
    power = xp.zeros((int(work.shape[0]), keep.size, starts.size), dtype=xp.float64)
    block = max(1, 2**22 // (int(nfft) * int(tapers.shape[0])))  # windows per FFT batch
    for r in range(int(work.shape[0])):
        row = xp.astype(work[r], xp.float64)
        for a in range(0, starts.size, block):
            idx = xp.asarray(starts[a : a + block][:, None] + np.arange(win)[None, :])
            seg = row[idx]  # (b, win)
            if detrend == "constant":
                seg = seg - xp.mean(seg, axis=1, keepdims=True)
            elif detrend == "linear":
                seg = seg - (seg @ basis.T) @ basis
            spec = fft.rfft(seg[:, None, :] * tapers[None, :, :], n=int(nfft), axis=-1)
            mag = xp.real(spec) ** 2 + xp.imag(spec) ** 2  # (b, K, n_rfft)
            power[r, :, a : a + block] = xp.sum(mag, axis=1)[:, keep_x].T * gain
    times = (starts + win / 2) / fs
    freqs = freqs[keep]
    if xp is not np:
        times, freqs = xp.asarray(times), xp.asarray(freqs)
    return Spectrogram(times, freqs, power[0] if was_1d else power)
