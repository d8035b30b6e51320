"""AR(1) kinetics for deconvolution: τ ↔ AR coefficient and a noise-robust estimate of g.

References
----------
Friedrich, J., Zhou, P. & Paninski, L. (2017). Fast online deconvolution of calcium imaging data.
*PLoS Comput Biol* 13(3), e1005423.
Pnevmatikakis, E. A. et al. (2016). Simultaneous denoising, deconvolution, and demixing of calcium
imaging data. *Neuron* 89(2), 285-299.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ....errors import ParameterError, ShapeError
from ..._validate import positive as _positive

__all__ = ["ar1_to_tau", "estimate_ar1", "tau_to_ar1"]


def tau_to_ar1(tau_decay_s: float, frame_rate_hz: float) -> float:
    """AR(1) coefficient of an exponential decay sampled at ``frame_rate_hz``.

    Parameters
    ----------
    tau_decay_s : float
        Decay time constant in seconds (> 0).
    frame_rate_hz : float
        Frame rate in Hz (> 0).

    Returns
    -------
    float
        ``g = exp(-1 / (tau_decay_s * frame_rate_hz))``, in ``(0, 1)``.

    Examples
    --------
    >>> round(tau_to_ar1(0.4, 30.0), 4)
    0.92
    """
    tau = _positive(tau_decay_s, "tau_decay_s")
    rate = _positive(frame_rate_hz, "frame_rate_hz")
    return float(np.exp(-1.0 / (tau * rate)))


def ar1_to_tau(g: float, frame_rate_hz: float) -> float:
    """Decay time constant in seconds of the AR(1) coefficient ``g`` (inverse of tau_to_ar1).

    Parameters
    ----------
    g : float
        AR(1) coefficient, ``0 < g < 1``.
    frame_rate_hz : float
        Frame rate in Hz (> 0).

    Returns
    -------
    float
        ``tau = -1 / (frame_rate_hz * log(g))`` in seconds.

    Examples
    --------
    >>> round(ar1_to_tau(tau_to_ar1(0.4, 30.0), 30.0), 6)
    0.4
    """
    gv = float(g)
    if not (0.0 < gv < 1.0):
        raise ParameterError(f"g must be in (0, 1); got {g!r}")
    rate = _positive(frame_rate_hz, "frame_rate_hz")
    return float(-1.0 / (rate * np.log(gv)))


def estimate_ar1(traces: Any, *, lags: int = 3) -> Any:
    """Estimate the AR(1) coefficient of each trace from its autocovariance, robust to noise.

    Parameters
    ----------
    traces : array_like, shape (n_frames,) or (n_rois, n_frames)
        Fluorescence traces; the mean of each is removed.
    lags : int, optional
        Number of lag pairs used (default 3: lags 1..4). Needs ``n_frames > lags + 1``.

    Returns
    -------
    float or ndarray, shape (n_rois,)
        ``g`` per trace, clipped to ``[0, 0.9999]`` (a float for a 1-D input).

    Notes
    -----
    For ``y = c + noise`` with ``c`` AR(1) driven by white (Poisson) activity and white noise,
    the autocovariance is ``gamma(k) = A g^k`` for every lag ``k >= 1``: the noise variance only
    enters ``gamma(0)``. Classic Yule-Walker (``g = gamma(1) / gamma(0)``) is therefore biased
    low by the noise; we start at lag 1 instead and fit ``gamma(k + 1) = g gamma(k)`` for
    ``k = 1..lags`` by least squares (the high-order Yule-Walker equations),
    ``g = sum_k gamma(k) gamma(k+1) / sum_k gamma(k)^2``. Slow baseline drift biases ``g`` up:
    detrend first.

    References
    ----------
    Pnevmatikakis, E. A. et al. (2016). *Neuron* 89(2), 285-299 (autocovariance-based estimate).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> s = rng.poisson(0.05, 20000).astype(float)
    >>> from scipy.signal import lfilter
    >>> y = lfilter([1.0], [1.0, -0.9], s) + 0.2 * rng.standard_normal(20000)
    >>> abs(estimate_ar1(y) - 0.9) < 0.02
    True
    """
    x = np.asarray(traces, dtype=np.float64)
    if x.ndim not in (1, 2):
        raise ShapeError(f"traces must be 1-D or 2-D (n_rois, n_frames); got shape {x.shape}")
    if int(lags) != lags or lags < 1:
        raise ParameterError(f"lags must be an integer >= 1; got {lags!r}")
    lags = int(lags)
    rows = np.atleast_2d(x)
    n = rows.shape[1]
    if n <= lags + 1:
        raise ShapeError(f"traces need more than {lags + 1} frames; got {n}")
    if not np.all(np.isfinite(rows)):
        raise ParameterError("traces must be finite (no NaN or inf)")
    d = rows - rows.mean(axis=1, keepdims=True)
    gam = np.stack(
        [np.einsum("ij,ij->i", d[:, k:], d[:, : n - k]) / n for k in range(1, lags + 2)], 1
    )
    num = np.sum(gam[:, :-1] * gam[:, 1:], axis=1)
    den = np.sum(gam[:, :-1] ** 2, axis=1)
    g = np.clip(np.divide(num, den, out=np.zeros_like(num), where=den > 0), 0.0, 0.9999)
    return float(g[0]) if x.ndim == 1 else g
