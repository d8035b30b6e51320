"""Kernel math for double-exponential deconvolution: kernel, AR(2) coefficients, Lipschitz constant.

The response of the calcium indicator to one unit of activity at frame 0 is modelled as

    h[n] = (exp(-n / (τd·fs)) - exp(-n / (τr·fs))) / peak,    n = 0, 1, 2, ...

(``τr`` rise and ``τd`` decay time constants in seconds, ``fs`` the frame rate in Hz). It is sampled
at the frame times ``t = n / fs`` starting at ``t = 0``, so ``h[0] = 0``: a spike in frame ``k``
first shows in frame ``k + 1``. The conventions (peak normalisation, sampling from ``t = 0``,
``(g1, g2, d, r)``) follow the CaLab / CaTune kernel math, re-derived here.

Because ``d^n`` and ``r^n`` (``d = exp(-1/(τd·fs))``, ``r = exp(-1/(τr·fs))``) are the two
geometric modes of the recursion ``c[t] = g1 c[t-1] + g2 c[t-2] + x[t]`` with ``g1 = d + r`` and
``g2 = -d·r``, the kernel is exactly the impulse response of an AR(2) (IIR) filter,

    H(z) = A (d - r) z^-1 / (1 - g1 z^-1 - g2 z^-2),    A = 1 / peak,

which is how :func:`~napari_calcium.core.spikes.deconvolution.fista.fista_deconvolve` applies it in
O(n).

References
----------
Pnevmatikakis, E. A. et al. (2016). Simultaneous denoising, deconvolution, and demixing of calcium
imaging data. *Neuron* 89(2), 285-299 (AR(2) model of calcium dynamics).
Beck, A. & Teboulle, M. (2009). A fast iterative shrinkage-thresholding algorithm for linear inverse
problems. *SIAM J. Imaging Sci.* 2(1), 183-202 (step size 1/L).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ....errors import ParameterError, ShapeError
from ..._validate import positive as _positive

__all__ = [
    "KERNEL_TAIL",
    "ar2_to_tau",
    "build_kernel",
    "compute_lipschitz",
    "convert_tau",
    "kernel_iir",
    "tau_to_ar2",
]

#: The kernel returned by :func:`build_kernel` is cut after the last frame where it is at least
#: this fraction of its peak.
KERNEL_TAIL = 1e-4

_NORMALIZE = ("peak", "area", "none")


def _check_taus(
    tau_rise_s: Any, tau_decay_s: Any, frame_rate_hz: Any
) -> tuple[float, float, float]:
    tr = _positive(tau_rise_s, "tau_rise_s")
    td = _positive(tau_decay_s, "tau_decay_s")
    fs = _positive(frame_rate_hz, "frame_rate_hz")
    if not td > tr:
        raise ParameterError(
            f"tau_decay_s ({td} s) must be larger than tau_rise_s ({tr} s); a rise as slow as the "
            "decay gives no transient"
        )
    return tr, td, fs


def tau_to_ar2(
    tau_rise_s: float, tau_decay_s: float, frame_rate_hz: float
) -> tuple[float, float, float, float]:
    """AR(2) coefficients of the double-exponential kernel (CaLab's ``tau_to_ar2``).

    Parameters
    ----------
    tau_rise_s, tau_decay_s : float
        Rise and decay time constants in seconds, ``0 < tau_rise_s < tau_decay_s``.
    frame_rate_hz : float
        Frame rate in Hz (> 0).

    Returns
    -------
    g1, g2, d, r : float
        ``d = exp(-1 / (tau_decay_s * frame_rate_hz))`` and ``r = exp(-1 / (tau_rise_s *
        frame_rate_hz))`` are the per-frame decay and rise factors (the roots of the AR(2)
        characteristic polynomial ``z^2 - g1 z - g2``); ``g1 = d + r`` and ``g2 = -d * r``, so that
        ``c[t] = g1 c[t-1] + g2 c[t-2] + s[t]``.

    Raises
    ------
    ParameterError
        For a non-positive or non-finite value, or ``tau_decay_s <= tau_rise_s``.

    Examples
    --------
    >>> g1, g2, d, r = tau_to_ar2(0.05, 0.4, 30.0)
    >>> round(g1, 4), round(g2, 4)
    (1.4335, -0.4724)
    """
    tr, td, fs = _check_taus(tau_rise_s, tau_decay_s, frame_rate_hz)
    d = math.exp(-1.0 / (td * fs))
    r = math.exp(-1.0 / (tr * fs))
    return d + r, -d * r, d, r


def ar2_to_tau(g1: float, g2: float, frame_rate_hz: float) -> tuple[float, float]:
    """Rise and decay time constants of AR(2) coefficients (inverse of :func:`tau_to_ar2`).

    Parameters
    ----------
    g1, g2 : float
        AR(2) coefficients of ``c[t] = g1 c[t-1] + g2 c[t-2] + s[t]``. The roots of
        ``z^2 - g1 z - g2`` must be real, distinct and in ``(0, 1)`` (a stable, non-oscillating
        double exponential).
    frame_rate_hz : float
        Frame rate in Hz (> 0).

    Returns
    -------
    tau_rise_s, tau_decay_s : float
        ``tau = -1 / (frame_rate_hz * ln(root))`` for the smaller (rise) and larger (decay) root.

    Raises
    ------
    ParameterError
        If the roots are complex, equal, or outside ``(0, 1)``.

    Examples
    --------
    >>> g1, g2, _, _ = tau_to_ar2(0.05, 0.4, 30.0)
    >>> tuple(round(t, 6) for t in ar2_to_tau(g1, g2, 30.0))
    (0.05, 0.4)
    """
    fs = _positive(frame_rate_hz, "frame_rate_hz")
    try:
        a, b = float(g1), float(g2)
    except (TypeError, ValueError):
        raise ParameterError(f"g1 and g2 must be numbers; got {g1!r}, {g2!r}") from None
    disc = a * a + 4.0 * b
    if not (math.isfinite(disc) and disc > 0):
        raise ParameterError(
            f"g1={g1!r}, g2={g2!r} give complex or repeated roots (g1^2 + 4 g2 = {disc:.3g}); "
            "they are not the AR(2) coefficients of a double exponential"
        )
    root = math.sqrt(disc)
    d, r = (a + root) / 2.0, (a - root) / 2.0
    if not (0.0 < r < d < 1.0):
        raise ParameterError(
            f"g1={g1!r}, g2={g2!r} have roots {r:.4g} and {d:.4g}; both must be in (0, 1)"
        )
    return -1.0 / (fs * math.log(r)), -1.0 / (fs * math.log(d))


def kernel_iir(
    tau_rise_s: float, tau_decay_s: float, frame_rate_hz: float
) -> tuple[np.ndarray, np.ndarray, float]:
    """The peak-normalised kernel as an IIR filter ``(b, a)`` for ``lfilter``, and its DC gain.

    Parameters
    ----------
    tau_rise_s, tau_decay_s : float
        Rise and decay time constants in seconds, ``0 < tau_rise_s < tau_decay_s``.
    frame_rate_hz : float
        Frame rate in Hz (> 0).

    Returns
    -------
    b : ndarray, shape (2,)
        Numerator ``[0, A (d - r)]`` (``A`` = 1 / unnormalised peak; the leading 0 is the one-frame
        delay, ``h[0] = 0``).
    a : ndarray, shape (3,)
        Denominator ``[1, -g1, -g2]``.
    dc_gain : float
        ``sum_n h[n]`` over the untruncated kernel, ``A (1/(1-d) - 1/(1-r))``.

    Notes
    -----
    ``scipy.signal.lfilter(b, a, s)`` equals the causal convolution of ``s`` with the infinite
    kernel; :func:`build_kernel` samples the same impulse response.
    """
    g1, g2, d, r = tau_to_ar2(tau_rise_s, tau_decay_s, frame_rate_hz)
    amp = 1.0 / _peak_value(d, r)
    b = np.array([0.0, amp * (d - r)])
    a = np.array([1.0, -g1, -g2])
    dc_gain = amp * (1.0 / (1.0 - d) - 1.0 / (1.0 - r))
    return b, a, float(dc_gain)


def _peak_value(d: float, r: float) -> float:
    """Largest sample ``max_n d^n - r^n`` (continuous peak at ``ln(ln r / ln d) / ln(d / r)``)."""
    n_star = math.log(math.log(r) / math.log(d)) / math.log(d / r)
    lo = max(0, math.floor(n_star))
    return max(d**n - r**n for n in (lo, lo + 1))


def build_kernel(
    tau_rise_s: float,
    tau_decay_s: float,
    frame_rate_hz: float,
    *,
    length: int | None = None,
    normalize: str = "peak",
) -> np.ndarray:
    """Double-exponential calcium kernel sampled at the frame times (CaLab's ``build_kernel``).

    Parameters
    ----------
    tau_rise_s, tau_decay_s : float
        Rise and decay time constants in seconds, ``0 < tau_rise_s < tau_decay_s``.
    frame_rate_hz : float
        Frame rate in Hz (> 0).
    length : int, optional
        Number of frames. Default: up to the last frame where the kernel is at least
        :data:`KERNEL_TAIL` (1e-4) of its peak (at least 2 frames).
    normalize : {"peak", "area", "none"}
        ``"peak"`` (default, as CaLab): the largest sample is 1, so activity ``s`` is in units of
        the trace (the peak of the transient it evokes). ``"area"``: the samples sum to 1.
        ``"none"``: ``exp(-t/τd) - exp(-t/τr)`` as is.

    Returns
    -------
    numpy.ndarray, shape (length,), float64
        ``h[n]`` for ``t = n / frame_rate_hz``, ``n = 0 .. length - 1``; ``h[0] = 0``.

    Raises
    ------
    ParameterError
        For bad time constants, rate, `length` or `normalize`.

    Notes
    -----
    CaLab normalises to peak 1 and cuts where the decay envelope falls below 1e-6; we cut at 1e-4
    of the peak (the tail beyond carries < 1e-4·τd·fs of the area). The truncation does not affect
    :func:`~napari_calcium.core.spikes.deconvolution.fista.fista_deconvolve`, which filters with the
    exact infinite kernel (:func:`kernel_iir`).

    Examples
    --------
    >>> h = build_kernel(0.05, 0.4, 30.0)
    >>> float(h[0]), float(h.max())
    (0.0, 1.0)
    """
    tr, td, fs = _check_taus(tau_rise_s, tau_decay_s, frame_rate_hz)
    if normalize not in _NORMALIZE:
        raise ParameterError(f"normalize must be one of {_NORMALIZE}; got {normalize!r}")
    d, r = math.exp(-1.0 / (td * fs)), math.exp(-1.0 / (tr * fs))
    peak = _peak_value(d, r)
    if length is None:
        # h[n] <= d^n / peak < KERNEL_TAIL once n > ln(KERNEL_TAIL * peak) / ln(d)
        n = max(2, math.floor(math.log(KERNEL_TAIL * peak) / math.log(d)) + 2)
    else:
        if isinstance(length, bool) or int(length) != length or length < 2:
            raise ParameterError(f"length must be an integer >= 2 frames; got {length!r}")
        n = int(length)
    k = np.arange(n, dtype=np.float64)
    h = np.exp(k * math.log(d)) - np.exp(k * math.log(r))
    if length is None:
        above = np.nonzero(h >= KERNEL_TAIL * peak)[0]
        h = h[: max(2, int(above[-1]) + 1)]
    if normalize == "peak":
        h /= peak
    elif normalize == "area":
        h /= h.sum()
    return h


def compute_lipschitz(kernel: Any) -> float:
    """Lipschitz constant of the gradient of ``1/2 ||y - K s||^2`` for a causal convolution ``K``.

    Parameters
    ----------
    kernel : array_like, shape (n,)
        1-D kernel (e.g. from :func:`build_kernel`). Finite, not all zero.

    Returns
    -------
    float
        ``L = max_w |H(w)|^2``, the squared peak of the kernel's frequency response (evaluated
        with a zero-padded FFT of length ``>= 8 n``, plus ``(sum |h|)^2`` as a safe cap). This
        bounds ``||K||_2^2``, the largest eigenvalue of ``K^T K``, for the convolution matrix of
        any signal length. For a non-negative kernel ``|H(w)| <= sum h = H(0)``, so
        ``L = (sum h)^2`` exactly (the DC gain squared).

    Raises
    ------
    ShapeError
        If `kernel` is not 1-D or empty.
    ParameterError
        If it has non-finite values or is all zero.

    Notes
    -----
    The convolution matrix of ``n`` frames is a section of the infinite Toeplitz operator whose
    symbol is ``H(w)``; its spectral norm is at most ``sup_w |H(w)|``. CaLab evaluates the same
    quantity with a power-of-two FFT.

    Examples
    --------
    >>> round(compute_lipschitz(np.array([0.0, 1.0, 0.5])), 6)
    2.25
    """
    h = np.asarray(kernel, dtype=np.float64)
    if h.ndim != 1 or h.size == 0:
        raise ShapeError(f"kernel must be a non-empty 1-D array; got shape {h.shape}")
    if not np.all(np.isfinite(h)):
        raise ParameterError("kernel must be finite (no NaN or inf)")
    if not np.any(h):
        raise ParameterError("kernel is all zero; its Lipschitz constant is 0")
    if np.all(h >= 0):
        return float(np.sum(h) ** 2)
    n_fft = 1 << max(3, int(8 * h.size - 1).bit_length())
    peak = float(np.max(np.abs(np.fft.rfft(h, n_fft))))
    # The sampled maximum of |H| can miss the true one by a little; sum |h| never does.
    return float(min(np.sum(np.abs(h)), peak * 1.001) ** 2)


def convert_tau(tau: float, frame_rate_hz: float) -> float:
    """Convert a discrete (per-frame) decay constant to a continuous time constant in seconds.

    CalSciPy's ``event_processing.convert_tau(tau, dt)`` semantics: the "discrete tau" is the
    per-frame decay factor ``g`` of ``c[t] = g c[t-1] + s[t]`` (an AR(1) coefficient), and the
    continuous tau is the ``τ`` of ``exp(-t/τ)`` that decays by ``g`` in one frame. CalSciPy takes
    the time step ``dt``; we take ``frame_rate_hz = 1 / dt``.

    Parameters
    ----------
    tau : float
        Per-frame decay factor ``g``, ``0 < g < 1`` (unitless).
    frame_rate_hz : float
        Frame rate in Hz (> 0).

    Returns
    -------
    float
        ``-1 / (frame_rate_hz * ln(g))`` in seconds (same as
        :func:`~napari_calcium.core.spikes.deconvolution.kinetics.ar1_to_tau`).

    Raises
    ------
    ParameterError
        If ``g`` is not in ``(0, 1)`` (CalSciPy silently returns 0 for ``g <= 0`` and a negative
        or infinite time for ``g >= 1``).

    Examples
    --------
    >>> round(convert_tau(0.92, 30.0), 4)
    0.3998
    """
    fs = _positive(frame_rate_hz, "frame_rate_hz")
    try:
        g = float(tau)
    except (TypeError, ValueError):
        raise ParameterError(f"tau must be a number in (0, 1); got {tau!r}") from None
    if not (0.0 < g < 1.0):
        raise ParameterError(
            f"tau must be a per-frame decay factor in (0, 1); got {tau!r} (a time in seconds needs "
            "no conversion; for frames use tau_s * frame_rate_hz)"
        )
    return -1.0 / (fs * math.log(g))
