"""OASIS for an AR(2) calcium model (rise and decay), exact, parallel over ROIs.

Our own implementation from the paper (Friedrich, Zhou & Paninski 2017); the reference code is
GPL-3.0 and was not used. The calcium follows ``c_t = g1 c_{t-1} + g2 c_{t-2} + s_t`` with
``s_t >= 0`` and ``c_0 = c_{-1} = 0`` (so ``s_1 = c_1``, the calcium already present at the
first frame, only kept >= 0).

References
----------
Friedrich, J., Zhou, P. & Paninski, L. (2017). Fast online deconvolution of calcium imaging data.
*PLoS Comput Biol* 13(3), e1005423. https://doi.org/10.1371/journal.pcbi.1005423
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ....errors import ParameterError, ShapeError
from ..._threads import in_threads
from ._oasis_ar2_kernels import _oasis_ar2_rows
from .oasis import _as_traces, _per_roi

__all__ = ["oasis_ar2", "oasis_ar2_batch"]


def _check_ar2(g1: np.ndarray, g2: np.ndarray) -> None:
    """Raise ParameterError unless every ``(g1, g2)`` has real roots in ``[0, 1)``."""
    disc = g1 * g1 + 4.0 * g2
    with np.errstate(invalid="ignore"):
        root = np.sqrt(np.maximum(disc, 0.0))
    ok = np.isfinite(g1) & np.isfinite(g2) & (disc >= 0) & (g2 <= 0) & (g1 >= 0)
    ok &= (g1 + root) / 2.0 < 1.0
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        raise ParameterError(
            "g1, g2 must describe a stable, non-oscillating decay (the roots of "
            f"z^2 - g1 z - g2 real and in [0, 1): g1 >= 0, g2 <= 0, g1^2 + 4 g2 >= 0, "
            f"g1 + g2 < 1); got g1={g1[i]!r}, g2={g2[i]!r} (ROI {i})"
        )


def _ar2_params(g1: Any, g2: Any, n_rois: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-ROI ``(g1, g2)`` as float64 ``(n_rois,)`` arrays, validated."""
    out = []
    for name, value in (("g1", g1), ("g2", g2)):
        arr = np.asarray(value, dtype=np.float64)
        if arr.ndim > 1 or (arr.ndim == 1 and arr.shape[0] != n_rois):
            raise ShapeError(
                f"{name} must be a scalar or have one value per ROI ({n_rois}); "
                f"got shape {arr.shape}"
            )
        out.append(np.ascontiguousarray(np.broadcast_to(arr, (n_rois,))))
    _check_ar2(out[0], out[1])
    return out[0], out[1]


def oasis_ar2_batch(
    traces: Any, g1: Any, g2: Any, *, lam: Any = 0.0, s_min: Any = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Deconvolve many traces with OASIS for an AR(2) model, in parallel over ROIs.

    For each trace ``y`` (baseline already removed) solves

    ``min_c 1/2 ||y - c||^2 + lam * sum_t s_t``  subject to
    ``s_t = c_t - g1 c_{t-1} - g2 c_{t-2} >= 0``, ``c_0 = c_{-1} = 0``

    exactly (``s_min = 0``). With ``s_min > 0`` a spike must be 0 or at least ``s_min`` (a greedy
    answer to a non-convex problem, as in the paper).

    Parameters
    ----------
    traces : array_like, shape (n_rois, n_frames)
        Fluorescence traces (ΔF/F or F minus baseline), one row per ROI. float32 stays float32;
        any other real dtype is computed and returned as float64. Must be finite.
    g1, g2 : float or array_like, shape (n_rois,)
        AR(2) coefficients per frame. The roots ``r <= d`` of ``z^2 - g1 z - g2`` must be real
        and in ``[0, 1)`` (``g1 = d + r``, ``g2 = -d r``; see :func:`.kernels.tau_to_ar2`);
        ``g2 = 0`` is AR(1).
    lam : float or array_like, shape (n_rois,), optional
        Sparsity penalty λ >= 0 on the summed activity, in the units of ``traces`` (default 0).
    s_min : float or array_like, shape (n_rois,), optional
        Minimum spike size >= 0 in the units of ``traces`` (default 0). ``s_1`` is exempt.

    Returns
    -------
    c : ndarray, shape (n_rois, n_frames)
        Denoised calcium, >= 0.
    s : ndarray, shape (n_rois, n_frames)
        Inferred activity ``c_t - g1 c_{t-1} - g2 c_{t-2}``, >= 0.

    Raises
    ------
    ShapeError
        ``traces`` is not 2-D or has no frames, or a parameter has the wrong length.
    ParameterError
        ``(g1, g2)`` not a stable non-oscillating AR(2), a negative ``lam`` or ``s_min``, or
        non-finite traces.

    Notes
    -----
    **λ as a shift.** With ``s = D c`` (``D`` the banded difference operator),
    ``lam sum(s) = lam (D^T 1)^T c`` and ``D^T 1 = (1 - g1 - g2, ..., 1 - g1 - g2, 1 - g1, 1)``,
    so the problem is the λ = 0 problem on ``y - lam D^T 1``.

    **Pools.** Between spikes the calcium follows the impulse response ``h_k`` (``h_0 = 1``,
    ``h_1 = g1``, ``h_k = g1 h_{k-1} + g2 h_{k-2}``): a pool starting at ``t`` with value ``v``
    after calcium ``p`` has ``c_{t+k} = v h_k + g2 p h_{k-1}``. The paper's greedy pass adds one
    frame at a time and merges backwards while a pool's spike ``v - g1 c_{t-1} - g2 c_{t-2}`` is
    below ``s_min``, fitting each pool's ``v`` with its predecessor fixed. For AR(2) that is only
    nearly optimal, because a pool's fit also depends on the pools after it. We therefore finish
    with an exact step: for a given set of spike times the least-squares fit is a chain in the
    pools, solved by a scalar backward (Riccati) recursion in O(n_pools), inside a
    Lawson-Hanson active-set loop over spike times warm-started at the greedy answer, which stops
    when the KKT conditions hold (gradient ``K^T (c - y) + lam >= 0`` off the spikes, relative
    tolerance 1e-9). It usually needs one or two O(n_frames) passes.

    References
    ----------
    Friedrich, J., Zhou, P. & Paninski, L. (2017). Fast online deconvolution of calcium imaging
    data. *PLoS Comput Biol* 13(3), e1005423.
    Lawson, C. L. & Hanson, R. J. (1974). *Solving Least Squares Problems*, ch. 23 (NNLS).

    Examples
    --------
    >>> g1, g2 = 1.2, -0.35  # roots 0.7 and 0.5
    >>> y = np.array([[0.0, 1.0, 1.2, 1.09, 0.888]])
    >>> c, s = oasis_ar2_batch(y, g1, g2)
    >>> s.round(3).tolist()
    [[0.0, 1.0, 0.0, 0.0, 0.0]]
    """
    y = _as_traces(traces, 2, "traces")
    n_rois = y.shape[0]
    g1_arr, g2_arr = _ar2_params(g1, g2, n_rois)
    lam_arr = _per_roi(lam, n_rois, "lam", upper=None)
    smin_arr = _per_roi(s_min, n_rois, "s_min", upper=None)
    c = np.empty_like(y)
    s = np.empty_like(y)
    bad = np.zeros(n_rois, dtype=np.bool_)
    if n_rois:
        in_threads(
            _oasis_ar2_rows,
            (y, g1_arr, g2_arr, lam_arr, smin_arr, c, s, bad),
            n_rois,
            "napari-calcium-oasis-ar2",
        )
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ParameterError(
            f"traces must be finite; rows {rows[:10].tolist()} contain NaN or inf "
            "(interpolate or drop those frames first)"
        )
    return c, s


def oasis_ar2(
    y: Any, g1: float, g2: float, *, lam: float = 0.0, s_min: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Deconvolve one trace with OASIS for an AR(2) model.

    The single-trace form of :func:`oasis_ar2_batch` (same problem, same compiled kernel).

    Parameters
    ----------
    y : array_like, shape (n_frames,)
        One fluorescence trace with its baseline removed. float32 stays float32, others float64.
    g1, g2 : float
        AR(2) coefficients (real roots in ``[0, 1)``).
    lam : float, optional
        Sparsity penalty λ >= 0 (default 0).
    s_min : float, optional
        Minimum spike size >= 0 (default 0).

    Returns
    -------
    c, s : ndarray, shape (n_frames,)
        Denoised calcium and inferred activity (both >= 0).

    Raises
    ------
    ShapeError
        ``y`` is not 1-D or is empty, or a parameter is not a scalar.
    ParameterError
        A parameter is out of range or ``y`` is not finite.

    References
    ----------
    Friedrich, J., Zhou, P. & Paninski, L. (2017). *PLoS Comput Biol* 13(3), e1005423.
    """
    trace = _as_traces(y, 1, "y")
    if np.ndim(g1) or np.ndim(g2) or np.ndim(lam) or np.ndim(s_min):
        raise ShapeError(
            "g1, g2, lam and s_min must be scalars for one trace (use oasis_ar2_batch)"
        )
    c, s = oasis_ar2_batch(trace[None, :], g1, g2, lam=lam, s_min=s_min)
    return c[0], s[0]
