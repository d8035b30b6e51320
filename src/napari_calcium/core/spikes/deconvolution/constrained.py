"""Noise-constrained OASIS: λ and a constant baseline found from the noise level (foopsi style).

Our own implementation from Friedrich, Zhou & Paninski (2017); the reference code is GPL-3.0 and
was not used. Solves, per trace, the problem of CaImAn's ``constrained_foopsi``:

``min sum_t s_t``  subject to  ``||y - c - b||^2 <= sigma^2 n_frames``, ``s >= 0``,

through its Lagrangian form (OASIS with a penalty λ) with λ, and the baseline ``b``, adjusted
until the residual norm matches the noise.

References
----------
Friedrich, J., Zhou, P. & Paninski, L. (2017). Fast online deconvolution of calcium imaging data.
*PLoS Comput Biol* 13(3), e1005423. https://doi.org/10.1371/journal.pcbi.1005423
Pnevmatikakis, E. A. et al. (2016). Simultaneous denoising, deconvolution, and demixing of calcium
imaging data. *Neuron* 89(2), 285-299.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ....errors import ParameterError, ShapeError
from ..._threads import in_threads
from ._constrained_kernels import _constrained_rows
from .oasis import _as_traces, _per_roi
from .oasis_ar2 import _ar2_params

__all__ = ["ConstrainedDeconvolution", "oasis_constrained", "oasis_constrained_batch"]


@dataclass(frozen=True)
class ConstrainedDeconvolution:
    """Result of :func:`oasis_constrained_batch`.

    Attributes
    ----------
    c : ndarray, shape (n_rois, n_frames)
        Denoised calcium (baseline removed), >= 0; same dtype as the traces (float32 or float64).
    s : ndarray, shape (n_rois, n_frames)
        Inferred activity, >= 0, in the units of the traces.
    baseline : ndarray, shape (n_rois,)
        Constant baseline ``b`` (estimated, or the fixed value given; 0 for ``baseline=None``).
    lam : ndarray, shape (n_rois,)
        The sparsity penalty λ >= 0 that meets the noise constraint.
    rss : ndarray, shape (n_rois,)
        Residual ``||y - c - b||^2`` (``sigma^2 n_frames`` unless λ = 0 already leaves more).
    converged : ndarray of bool, shape (n_rois,)
        Whether the λ/baseline iteration settled (it stops after 60 passes otherwise).
    """

    c: np.ndarray
    s: np.ndarray
    baseline: np.ndarray
    lam: np.ndarray
    rss: np.ndarray
    converged: np.ndarray


def _kinetics(g: Any, order: int, n_rois: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-ROI ``(g1, g2)`` from ``g`` for AR(1) (``g2 = 0``) or AR(2) pairs."""
    if order == 1:
        g1 = _per_roi(g, n_rois, "g", upper=1.0)
        return g1, np.zeros(n_rois)
    if order != 2:
        raise ParameterError(f"order must be 1 or 2; got {order!r}")
    arr = np.asarray(g, dtype=np.float64)
    if arr.shape == (2,):
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] not in (1, n_rois):
        raise ShapeError(
            f"g must be a (g1, g2) pair or have shape (n_rois, 2) = ({n_rois}, 2) for order=2; "
            f"got shape {arr.shape}"
        )
    return _ar2_params(
        arr[:, 0] if arr.shape[0] == n_rois else arr[0, 0],
        arr[:, 1] if arr.shape[0] == n_rois else arr[0, 1],
        n_rois,
    )


def oasis_constrained_batch(
    traces: Any,
    g: Any,
    *,
    sigma: Any,
    order: int = 1,
    baseline: str | float | None = "estimate",
    s_min: Any = 0.0,
) -> ConstrainedDeconvolution:
    """Noise-constrained OASIS deconvolution of many traces, in parallel over ROIs.

    For each trace finds λ >= 0 (and the baseline ``b``) such that the OASIS solution of
    ``min 1/2 ||y - b - c||^2 + λ sum(s)``, ``s >= 0`` has ``||y - b - c||^2 = sigma^2 n_frames``;
    this is the solution of ``min sum(s)`` s.t. ``||y - b - c||^2 <= sigma^2 n_frames``.

    Parameters
    ----------
    traces : array_like, shape (n_rois, n_frames)
        Fluorescence traces (e.g. ΔF/F), one row per ROI. float32 stays float32; other real
        dtypes are computed and returned as float64. Must be finite.
    g : float, array_like (n_rois,), pair (g1, g2) or array_like (n_rois, 2)
        AR kinetics: for ``order=1`` the AR(1) coefficient(s) in ``[0, 1)``; for ``order=2`` the
        ``(g1, g2)`` pair(s), real roots in ``[0, 1)``.
    sigma : float or array_like, shape (n_rois,)
        Noise standard deviation per frame, in the units of ``traces`` (> 0), e.g. from a
        power-spectrum estimate.
    order : {1, 2}, optional
        AR order of the calcium model (default 1).
    baseline : "estimate", float or None, optional
        ``"estimate"`` (default): a constant baseline fitted jointly with λ; a float: that fixed
        baseline is subtracted; ``None``: no baseline (``b = 0``).
    s_min : float or array_like, shape (n_rois,), optional
        Minimum spike size >= 0 (default 0; > 0 makes each inner solve greedy, see
        :func:`~napari_calcium.core.spikes.deconvolution.oasis_ar2.oasis_ar2_batch`).

    Returns
    -------
    ConstrainedDeconvolution
        ``c``, ``s`` (n_rois, n_frames), and per ROI ``baseline``, ``lam``, ``rss``,
        ``converged``.

    Raises
    ------
    ShapeError
        Bad ``traces`` shape or dtype, or a per-ROI parameter of the wrong length.
    ParameterError
        Bad kinetics, ``sigma <= 0``, a negative ``s_min``, an unknown ``baseline`` or ``order``,
        or non-finite traces.

    Notes
    -----
    Each inner solve is the exact AR(2) OASIS (AR(1) as ``g2 = 0``). For its set of spike times
    the solution is affine in λ and b, so the residual after a change ``u`` of λ (with ``b`` tied
    to λ by ``b = mean(y - c)``, the optimal baseline) is affine in ``u`` and its squared norm is
    a quadratic: its root is the next λ. The paper's alternation of λ from the residual and b from
    the mean residual, solved exactly per support; it stops when λ and b no longer change,
    usually after 3-8 solves. If even λ = 0 leaves a residual above ``sigma^2 n_frames``, λ is 0.
    With ``baseline="estimate"`` the first guess of ``b`` is the lowest running mean over about
    one decay time.

    References
    ----------
    Friedrich, J., Zhou, P. & Paninski, L. (2017). Fast online deconvolution of calcium imaging
    data. *PLoS Comput Biol* 13(3), e1005423.
    Pnevmatikakis, E. A. et al. (2016). Simultaneous denoising, deconvolution, and demixing of
    calcium imaging data. *Neuron* 89(2), 285-299.
    """
    y = _as_traces(traces, 2, "traces")
    n_rois = y.shape[0]
    g1, g2 = _kinetics(g, order, n_rois)
    sig = _per_roi(sigma, n_rois, "sigma", upper=None)
    if np.any(sig <= 0):
        raise ParameterError(f"sigma must be > 0 (the noise level); got {sigma!r}")
    smin = _per_roi(s_min, n_rois, "s_min", upper=None)
    if isinstance(baseline, str):
        if baseline != "estimate":
            raise ParameterError(f'baseline must be "estimate", a number or None; got {baseline!r}')
        estimate, bfix = True, np.zeros(n_rois)
    elif baseline is None:
        estimate, bfix = False, np.zeros(n_rois)
    else:
        try:
            b = float(baseline)
        except (TypeError, ValueError):
            raise ParameterError(
                f'baseline must be "estimate", a number or None; got {baseline!r}'
            ) from None
        if not np.isfinite(b):
            raise ParameterError(f"baseline must be finite; got {baseline!r}")
        estimate, bfix = False, np.full(n_rois, b)
    c = np.empty_like(y)
    s = np.empty_like(y)
    b_out = np.empty(n_rois)
    lam = np.empty(n_rois)
    rss = np.empty(n_rois)
    conv = np.zeros(n_rois, dtype=np.bool_)
    bad = np.zeros(n_rois, dtype=np.bool_)
    if n_rois:
        in_threads(
            _constrained_rows,
            (y, g1, g2, sig, estimate, bfix, smin, c, s, b_out, lam, rss, conv, bad),
            n_rois,
            "napari-calcium-oasis-constrained",
        )
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ParameterError(
            f"traces must be finite; rows {rows[:10].tolist()} contain NaN or inf "
            "(interpolate or drop those frames first)"
        )
    return ConstrainedDeconvolution(c, s, b_out, lam, rss, conv)


def oasis_constrained(
    y: Any,
    g: Any,
    *,
    sigma: float,
    order: int = 1,
    baseline: str | float | None = "estimate",
    s_min: float = 0.0,
) -> ConstrainedDeconvolution:
    """Noise-constrained OASIS for one trace (see :func:`oasis_constrained_batch`).

    Parameters
    ----------
    y : array_like, shape (n_frames,)
        One fluorescence trace.
    g : float or pair (g1, g2)
        AR(1) coefficient (``order=1``) or AR(2) pair (``order=2``).
    sigma : float
        Noise standard deviation (> 0), units of ``y``.
    order : {1, 2}, optional
        AR order (default 1).
    baseline : "estimate", float or None, optional
        Baseline handling (default ``"estimate"``).
    s_min : float, optional
        Minimum spike size (default 0).

    Returns
    -------
    ConstrainedDeconvolution
        With ``c``, ``s`` of shape (n_frames,) and 0-d ``baseline``, ``lam``, ``rss``,
        ``converged``.

    References
    ----------
    Friedrich, J., Zhou, P. & Paninski, L. (2017). *PLoS Comput Biol* 13(3), e1005423.
    """
    trace = _as_traces(y, 1, "y")
    if np.ndim(sigma) or np.ndim(s_min) or np.ndim(g) > (0 if order == 1 else 1):
        raise ShapeError("g, sigma and s_min must describe one trace (use the batch function)")
    res = oasis_constrained_batch(
        trace[None, :], g, sigma=sigma, order=order, baseline=baseline, s_min=s_min
    )
    return ConstrainedDeconvolution(
        res.c[0], res.s[0], res.baseline[0], res.lam[0], res.rss[0], res.converged[0]
    )
