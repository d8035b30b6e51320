"""Processing of fluorescence traces: polynomial detrend, Perona-Malik, band-pass, smoothing.

Traces are ``(n_rois, n_frames)`` (a single 1-D trace is accepted and returned 1-D); time is in
seconds through ``frame_rate_hz``. Every function works on numpy or cupy input (the backend is
picked from the data); the result keeps a float input's dtype (float32 stays float32) and is
float32 for integer input. ``in_place=True`` writes into a float input and returns it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...errors import ParameterError, ShapeError
from .._backend import array_module, fft_module, ndimage_module, signal_module
from .._validate import frames_within_data
from .._validate import positive as _positive
from ._processing_kernels import perona_malik_rows

__all__ = [
    "SMOOTH_METHODS",
    "bandpass",
    "bandpass_kernel",
    "detrend_polynomial",
    "kernel_band_hz",
    "perona_malik",
    "smooth",
]

#: Methods of :func:`smooth`.
SMOOTH_METHODS = ("gaussian", "boxcar", "savgol")

# CaLab's margins: high-pass at 1 / (2 pi tau_decay 16), low-pass at 4 / (2 pi tau_rise).
_CALAB_MARGIN_HP = 16.0
_CALAB_MARGIN_LP = 4.0


# --------------------------------------------------------------------------------------------------
# Input handling
# --------------------------------------------------------------------------------------------------
def _traces(traces: Any, in_place: bool = False, name: str = "traces") -> tuple[Any, Any, bool]:
    """Validate `traces` and return ``(xp, 2-D working float array, was_1d)``.

    The working array is a copy unless `in_place` (then it is `traces` itself, viewed 2-D).
    """
    if not hasattr(traces, "shape") or not hasattr(traces, "dtype"):
        traces = np.asarray(traces)
    xp = array_module(traces)
    ndim = len(traces.shape)
    if ndim not in (1, 2) or int(traces.shape[-1]) < 1:
        raise ShapeError(
            f"{name} has shape {tuple(traces.shape)}; expected (n_rois, n_frames) or a single "
            "trace (n_frames,) with at least one frame"
        )
    isdtype = getattr(xp, "isdtype", None)  # array API; older cupy has only numpy's dtypes
    if isdtype is not None:
        floating = bool(isdtype(traces.dtype, "real floating"))
    else:
        floating = np.issubdtype(np.dtype(traces.dtype), np.floating)
    if in_place:
        if not floating:
            raise ParameterError(
                f"in_place=True needs floating-point {name}, got dtype {traces.dtype}; "
                "convert first (e.g. traces.astype(np.float32)) or pass in_place=False"
            )
        work = traces
    else:
        work = xp.astype(traces, traces.dtype if floating else xp.float32, copy=True)
    return xp, (work[None, :] if ndim == 1 else work), ndim == 1


def _done(work: Any, was_1d: bool) -> Any:
    return work[0, :] if was_1d else work


# --------------------------------------------------------------------------------------------------
# Polynomial detrend
# --------------------------------------------------------------------------------------------------
def _polynomial_projector(n_frames: int, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Basis ``V (n_frames, order + 1)`` and its pseudo-inverse ``H (order + 1, n_frames)``.

    Legendre polynomials on ``[-1, 1]`` span the same space as ``1, t, ..., t**order`` (so the
    fit is ``np.polyfit``'s) but keep the least-squares problem well conditioned.
    """
    u = np.linspace(-1.0, 1.0, n_frames) if n_frames > 1 else np.zeros(1)
    basis = np.polynomial.legendre.legvander(u, order)
    return basis, np.linalg.pinv(basis)


def detrend_polynomial(
    traces: Any,
    *,
    order: int = 4,
    keep_mean: bool = False,
    in_place: bool = False,
    block_rows: int = 128,
) -> Any:
    """Subtract a least-squares polynomial in time from every trace (CalSciPy semantics).

    Parameters
    ----------
    traces : array_like, shape (n_rois, n_frames) or (n_frames,)
        Fluorescence traces (numpy or cupy).
    order : int, optional
        Polynomial degree (CalSciPy: 4). Must be below ``n_frames``.
    keep_mean : bool, optional
        Add each trace's mean back after subtracting the fit. False (CalSciPy): the whole fit,
        constant term included, is subtracted, so the detrended traces have zero mean.
    in_place : bool, optional
        Write into `traces` (floating point only) and return it.
    block_rows : int, optional
        Rows processed at once (bounds the float64 scratch memory to ``block_rows * n_frames``).

    Returns
    -------
    array, same shape as `traces`
        ``x - fit`` (``+ mean(x)`` with `keep_mean`), in the input's float dtype (float32 for
        integer input).

    Notes
    -----
    With the basis matrix ``V`` (``n_frames x (order+1)``, Legendre polynomials of the frame
    index scaled to ``[-1, 1]``) and its pseudo-inverse ``H = V^+``, the fit of all traces
    ``X`` is ``X H^T V^T``: one pseudo-inverse for the whole batch and two thin matrix products
    in float64, instead of one ``np.polyfit`` per row. The fitted polynomial is the same as
    ``np.polyval(np.polyfit(t, x, order), t)`` (same column space, same least squares).

    References
    ----------
    O'Neil, D. A. CalSciPy (``trace_processing.detrend_polynomial``, fourth order).

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(100.0)
    >>> x = 5 + 0.1 * t + 1e-3 * t**2
    >>> bool(np.abs(detrend_polynomial(x, order=2)).max() < 1e-9)
    True
    """
    if isinstance(order, bool) or not isinstance(order, int | np.integer) or order < 0:
        raise ParameterError(f"order must be a non-negative integer, got {order!r}")
    if isinstance(block_rows, bool) or not isinstance(block_rows, int) or block_rows < 1:
        raise ParameterError(f"block_rows must be a positive integer, got {block_rows!r}")
    xp, work, was_1d = _traces(traces, in_place)
    n_rows, n = int(work.shape[0]), int(work.shape[1])
    if order >= n:
        raise ParameterError(
            f"order={order} needs more than {order} frames to fit, but the traces have {n}; "
            "use a lower order"
        )
    basis, pinv = _polynomial_projector(n, int(order))
    v_t = xp.asarray(basis.T.copy())  # (k, n)
    h_t = xp.asarray(pinv.T.copy())  # (n, k)
    for a in range(0, n_rows, block_rows):
        b = min(a + block_rows, n_rows)
        block = xp.astype(work[a:b, :], xp.float64)
        mean = xp.mean(block, axis=1, keepdims=True) if keep_mean else None
        block -= (block @ h_t) @ v_t
        if mean is not None:
            block += mean
        work[a:b, :] = xp.astype(block, work.dtype)
    return _done(work, was_1d)


# --------------------------------------------------------------------------------------------------
# Perona-Malik
# --------------------------------------------------------------------------------------------------
def perona_malik(
    traces: Any,
    *,
    iters: int = 25,
    kappa: float = 0.15,
    gamma: float = 0.25,
    in_place: bool = False,
) -> Any:
    """Edge-preserving smoothing by 1-D Perona-Malik diffusion (CalSciPy semantics).

    Parameters
    ----------
    traces : array_like, shape (n_rois, n_frames) or (n_frames,)
        Traces (numpy or cupy). Computed in the input's float precision (float32 for integers).
    iters : int, optional
        Number of explicit diffusion steps (CalSciPy: 25).
    kappa : float, optional
        Conduction threshold as a fraction of each trace's dynamic range, ``0 <= kappa <= 1``
        (CalSciPy: 0.15); the absolute threshold is ``k = kappa * (max(x) - min(x))`` of the
        input trace, fixed over the iterations.
    gamma : float, optional
        Step size per iteration, ``0 <= gamma <= 1`` (CalSciPy: 0.25). The scheme is stable and
        preserves the mean for ``gamma <= 0.5``.
    in_place : bool, optional
        Write into `traces` (floating point only) and return it.

    Returns
    -------
    array, same shape and float dtype as `traces`
        The smoothed traces.

    Notes
    -----
    With ``d_i = x_{i+1} - x_i`` (``d`` is 0 past the last frame) and the flux
    ``f_i = d_i g(d_i)``, ``g(d) = exp(-(d / k)^2)`` (Perona & Malik's first conduction
    function), one iteration is ``x_i <- x_i + gamma (f_i - f_{i-1})`` with no flux across the
    ends (``f_{-1} = f_{n-1} = 0``), exactly CalSciPy's ``perona_malik_diffusion`` (without its
    optional Gaussian pre-smoothing of the derivative). Small steps (noise) diffuse; steps larger
    than about ``k`` (transients) barely conduct and keep their shape. A trace with ``k = 0``
    (constant, or ``kappa = 0``) is returned unchanged, where CalSciPy returns NaN (``0 / 0``).
    On the CPU a numba kernel updates each row in place, rows split across threads.

    References
    ----------
    Perona, P. & Malik, J. (1990). Scale-space and edge detection using anisotropic diffusion.
    IEEE TPAMI 12(7), 629-639. O'Neil, D. A. CalSciPy (``perona_malik_diffusion``).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.r_[np.zeros(50), np.ones(50)] + 0.01 * np.random.default_rng(0).normal(size=100)
    >>> y = perona_malik(x, iters=25, kappa=0.15, gamma=0.25)
    >>> bool(np.std(y[:45]) < np.std(x[:45]) and y[60] > 0.9)
    True
    """
    if isinstance(iters, bool) or not isinstance(iters, int | np.integer) or iters < 1:
        raise ParameterError(f"iters must be an integer >= 1, got {iters!r}")
    for name, value in (("kappa", kappa), ("gamma", gamma)):
        if not 0.0 <= _positive(value, name, allow_zero=True) <= 1.0:
            raise ParameterError(f"{name} must satisfy 0 <= {name} <= 1, got {value!r}")
    xp, work, was_1d = _traces(traces, in_place)
    k = xp.astype((xp.max(work, axis=1) - xp.min(work, axis=1)) * float(kappa), work.dtype)
    out = perona_malik_rows(xp, work, k, int(iters), float(gamma))
    if out is not work:
        work[...] = out
    return _done(work, was_1d)


# --------------------------------------------------------------------------------------------------
# Band-pass filters
# --------------------------------------------------------------------------------------------------
def bandpass(
    traces: Any,
    *,
    frame_rate_hz: float,
    low_hz: float | None = None,
    high_hz: float | None = None,
    order: int = 4,
) -> Any:
    """Zero-phase Butterworth band-pass (or high-/low-pass) filter along time.

    Parameters
    ----------
    traces : array_like, shape (n_rois, n_frames) or (n_frames,)
        Traces (numpy or cupy).
    frame_rate_hz : float
        Sampling rate of the traces in Hz.
    low_hz, high_hz : float or None
        Lower and upper cut-off (-3 dB of each pass, -6 dB after the forward-backward pass) in
        Hz, ``0 < low_hz < high_hz < frame_rate_hz / 2``. Only `low_hz`: high-pass; only
        `high_hz`: low-pass; at least one is required.
    order : int, optional
        Butterworth order of the single pass (the zero-phase result has twice the roll-off).

    Returns
    -------
    array, same shape as `traces`
        Filtered traces, in the input's float dtype (float32 for integer input).

    Notes
    -----
    Second-order sections from ``scipy.signal.butter(order, ..., output="sos", fs=...)`` run
    forward and backward (``sosfiltfilt``, odd padding), so events are not shifted in time;
    the magnitude response is ``|H(f)|^2``. The traces need more than ``3 * (2 * n_sections +
    1)`` frames (the default padding). On the GPU the same sections run in
    ``cupyx.scipy.signal.sosfiltfilt``.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(2000) / 100.0
    >>> x = np.sin(2 * np.pi * 2 * t) + np.sin(2 * np.pi * 30 * t)
    >>> y = bandpass(x, frame_rate_hz=100.0, low_hz=1.0, high_hz=5.0)
    >>> bool(np.abs(y[500:1500] - np.sin(2 * np.pi * 2 * t[500:1500])).max() < 0.05)
    True
    """
    import scipy.signal

    fs = _positive(frame_rate_hz, "frame_rate_hz")
    if isinstance(order, bool) or not isinstance(order, int | np.integer) or order < 1:
        raise ParameterError(f"order must be an integer >= 1, got {order!r}")
    nyquist = fs / 2
    if low_hz is None and high_hz is None:
        raise ParameterError("give low_hz (high-pass), high_hz (low-pass) or both (band-pass)")
    for name, value in (("low_hz", low_hz), ("high_hz", high_hz)):
        if value is not None and not 0 < _positive(value, name) < nyquist:
            raise ParameterError(
                f"{name}={value!r} must lie strictly between 0 and the Nyquist frequency "
                f"{nyquist:g} Hz (frame_rate_hz / 2)"
            )
    if low_hz is not None and high_hz is not None:
        if not low_hz < high_hz:
            raise ParameterError(f"low_hz={low_hz!r} must be below high_hz={high_hz!r}")
        sos = scipy.signal.butter(order, [low_hz, high_hz], "bandpass", output="sos", fs=fs)
    elif low_hz is not None:
        sos = scipy.signal.butter(order, low_hz, "highpass", output="sos", fs=fs)
    else:
        sos = scipy.signal.butter(order, high_hz, "lowpass", output="sos", fs=fs)
    xp, work, was_1d = _traces(traces)
    padlen = 3 * (2 * sos.shape[0] + 1)
    if int(work.shape[1]) <= padlen:
        raise ShapeError(
            f"traces have {int(work.shape[1])} frames; a zero-phase Butterworth filter of order "
            f"{order} needs more than {padlen}; use a lower order or longer traces"
        )
    signal = signal_module(xp)
    filtered = signal.sosfiltfilt(xp.asarray(sos), work, axis=-1)
    return _done(xp.astype(filtered, work.dtype), was_1d)


def kernel_band_hz(tau_rise_s: float, tau_decay_s: float, frame_rate_hz: float) -> tuple:
    """CaLab's pass band from the calcium kernel's time constants.

    Parameters
    ----------
    tau_rise_s, tau_decay_s : float
        Rise and decay time constants of the indicator kernel in seconds.
    frame_rate_hz : float
        Sampling rate in Hz.

    Returns
    -------
    tuple of float
        ``(f_hp, f_lp)`` in Hz: ``f_hp = 1 / (2 pi tau_decay 16)`` and
        ``f_lp = min(4 / (2 pi tau_rise), frame_rate_hz / 2)``.

    Examples
    --------
    >>> [round(f, 4) for f in kernel_band_hz(0.02, 0.4, 100.0)]
    [0.0249, 31.831]
    """
    rise = _positive(tau_rise_s, "tau_rise_s")
    decay = _positive(tau_decay_s, "tau_decay_s")
    fs = _positive(frame_rate_hz, "frame_rate_hz")
    f_hp = 1.0 / (2.0 * math.pi * decay * _CALAB_MARGIN_HP)
    f_lp = min(_CALAB_MARGIN_LP / (2.0 * math.pi * rise), fs / 2.0)
    return f_hp, f_lp


def bandpass_kernel(
    traces: Any, *, frame_rate_hz: float, tau_rise_s: float, tau_decay_s: float
) -> Any:
    """CaLab/CaTune's FFT band-pass, with the band derived from the kernel time constants.

    Parameters
    ----------
    traces : array_like, shape (n_rois, n_frames) or (n_frames,)
        Traces (numpy or cupy), at least 8 frames.
    frame_rate_hz : float
        Sampling rate in Hz.
    tau_rise_s, tau_decay_s : float
        Rise and decay time constants of the indicator kernel in seconds (as in CaLab's
        ``bandpass_filter(trace, tau_rise, tau_decay, fs)``).

    Returns
    -------
    array, same shape as `traces`
        Filtered traces (zero mean: the DC gain is 0), in the input's float dtype.

    Raises
    ------
    ParameterError
        If the band is empty (``f_hp >= f_lp``), where CaLab silently returns the input.
    ShapeError
        For fewer than 8 frames (CaLab returns the input unchanged there).

    Notes
    -----
    With ``(f_hp, f_lp)`` from :func:`kernel_band_hz` and half-widths ``w_hp = f_hp / 2``,
    ``w_lp = f_lp / 2``, the gain at the rFFT frequencies ``f = j frame_rate_hz / n`` is 0 below
    ``f_hp - w_hp``, rises as ``(1 - cos(pi t)) / 2`` over ``[f_hp - w_hp, f_hp + w_hp)``, is 1
    up to ``f_lp - w_lp``, falls as ``(1 + cos(pi t)) / 2`` over ``[f_lp - w_lp, f_lp + w_lp)``
    and is 0 above (``t`` the position within the taper, 0 to 1). The traces are transformed
    with ``rfft``, multiplied by the gain and transformed back (zero phase, circular ends).

    References
    ----------
    CaLab / CaTune (``calab.bandpass_filter``; ``catune-solver/src/filter.rs``).

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(3000) / 30.0
    >>> x = 3.0 + np.sin(2 * np.pi * 1.0 * t)
    >>> y = bandpass_kernel(x, frame_rate_hz=30.0, tau_rise_s=0.1, tau_decay_s=0.6)
    >>> bool(np.abs(y - np.sin(2 * np.pi * 1.0 * t)).max() < 1e-6)
    True
    """
    f_hp, f_lp = kernel_band_hz(tau_rise_s, tau_decay_s, frame_rate_hz)
    if f_hp >= f_lp:
        raise ParameterError(
            f"the kernel band is empty: high-pass {f_hp:.4g} Hz >= low-pass {f_lp:.4g} Hz "
            f"(tau_rise_s={tau_rise_s!r}, tau_decay_s={tau_decay_s!r}); check the time constants"
        )
    xp, work, was_1d = _traces(traces)
    n = int(work.shape[1])
    if n < 8:
        raise ShapeError(f"traces have {n} frames; the kernel band-pass needs at least 8")
    f = np.arange(n // 2 + 1) * (float(frame_rate_hz) / n)
    w_hp, w_lp = f_hp / 2, f_lp / 2
    rise = 0.5 * (1 - np.cos(np.pi * (f - (f_hp - w_hp)) / (2 * w_hp)))
    fall = 0.5 * (1 + np.cos(np.pi * (f - (f_lp - w_lp)) / (2 * w_lp)))
    gain = np.select(
        [f < f_hp - w_hp, f < f_hp + w_hp, f < f_lp - w_lp, f < f_lp + w_lp],
        [0.0, rise, 1.0, fall],
        default=0.0,
    )
    fft = fft_module(xp)
    spectrum = fft.rfft(xp.astype(work, xp.float64), axis=-1) * xp.asarray(gain)
    filtered = fft.irfft(spectrum, n=n, axis=-1)
    return _done(xp.astype(filtered, work.dtype), was_1d)


# --------------------------------------------------------------------------------------------------
# Smoothing
# --------------------------------------------------------------------------------------------------
def smooth(
    traces: Any,
    *,
    frame_rate_hz: float,
    method: str = "gaussian",
    sigma_s: float | None = None,
    window_s: float | None = None,
    polyorder: int = 2,
    mode: str = "nearest",
) -> Any:
    """Smooth traces along time with a Gaussian, a boxcar or a Savitzky-Golay filter.

    Parameters
    ----------
    traces : array_like, shape (n_rois, n_frames) or (n_frames,)
        Traces (numpy or cupy).
    frame_rate_hz : float
        Sampling rate in Hz (converts the widths in seconds into frames).
    method : {"gaussian", "boxcar", "savgol"}
        ``gaussian``: kernel of standard deviation `sigma_s` (truncated at 4 sigma);
        ``boxcar``: moving average over `window_s`; ``savgol``: local polynomial of degree
        `polyorder` fitted over `window_s`.
    sigma_s : float, optional
        Gaussian standard deviation in seconds (``method="gaussian"`` only; required there).
    window_s : float, optional
        Window length in seconds for ``boxcar`` and ``savgol`` (required there). It is rounded
        to an odd number of frames (at least 1; for savgol at least ``polyorder + 1``).
    polyorder : int, optional
        Savitzky-Golay polynomial degree.
    mode : str, optional
        How the ends are extended: a ``scipy.ndimage`` mode (``"nearest"``, ``"reflect"``,
        ``"mirror"``, ``"constant"``, ``"wrap"``) for gaussian/boxcar; for savgol, scipy's
        ``"interp"`` or one of ``"mirror"``, ``"nearest"``, ``"constant"``, ``"wrap"``.

    Returns
    -------
    array, same shape as `traces`
        Smoothed traces in the input's float dtype (float32 for integer input).

    Notes
    -----
    The widths in frames are ``sigma = sigma_s * frame_rate_hz`` and
    ``w = 2 floor(window_s * frame_rate_hz / 2) + 1`` (an even count goes up by one). The
    filters are ``ndimage.gaussian_filter1d``, ``ndimage.uniform_filter1d`` and
    ``signal.savgol_filter`` of scipy, or of cupyx for cupy input.

    References
    ----------
    Savitzky, A. & Golay, M. J. E. (1964). Smoothing and differentiation of data by simplified
    least squares procedures. Analytical Chemistry 36(8), 1627-1639.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.r_[np.zeros(10), np.ones(10)]
    >>> y = smooth(x, frame_rate_hz=10.0, method="boxcar", window_s=0.3)
    >>> [round(float(v), 3) for v in y[8:12]]
    [0.0, 0.333, 0.667, 1.0]
    """
    fs = _positive(frame_rate_hz, "frame_rate_hz")
    if method not in SMOOTH_METHODS:
        raise ParameterError(f"method must be one of {SMOOTH_METHODS}, got {method!r}")
    width_name, width = ("sigma_s", sigma_s) if method == "gaussian" else ("window_s", window_s)
    other_name, other = ("window_s", window_s) if method == "gaussian" else ("sigma_s", sigma_s)
    if width is None:
        raise ParameterError(f"method={method!r} needs {width_name} (seconds)")
    if other is not None:
        raise ParameterError(f"method={method!r} takes {width_name}, not {other_name}")
    width = _positive(width, width_name)
    xp, work, was_1d = _traces(traces)
    frames_within_data(
        width * fs * (4 if method == "gaussian" else 1), work.shape[-1], width_name, width
    )
    if method == "gaussian":
        result = ndimage_module(xp).gaussian_filter1d(work, width * fs, axis=-1, mode=mode)
        return _done(xp.astype(result, work.dtype), was_1d)
    frames = 2 * math.floor(width * fs / 2 + 1e-9) + 1
    if method == "boxcar":
        result = ndimage_module(xp).uniform_filter1d(work, frames, axis=-1, mode=mode)
        return _done(xp.astype(result, work.dtype), was_1d)
    if isinstance(polyorder, bool) or not isinstance(polyorder, int) or polyorder < 0:
        raise ParameterError(f"polyorder must be a non-negative integer, got {polyorder!r}")
    if frames <= polyorder:
        frames = polyorder + 1 + (polyorder % 2 == 1)  # the smallest odd window that fits
    if mode == "interp" and frames > int(work.shape[1]):
        raise ShapeError(
            f"traces have {int(work.shape[1])} frames, fewer than the savgol window of {frames} "
            f"frames (window_s={window_s!r}); use a shorter window or another mode"
        )
    result = signal_module(xp).savgol_filter(work, frames, polyorder, axis=-1, mode=mode)
    return _done(xp.astype(result, work.dtype), was_1d)
