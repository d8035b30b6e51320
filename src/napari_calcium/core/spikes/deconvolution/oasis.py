"""OASIS: fast non-negative deconvolution of calcium traces with an AR(1) model.

Our own implementation from the paper (Friedrich, Zhou & Paninski 2017); the reference code is
GPL-3.0 and was not used. The calcium ``c`` follows ``c_t = g c_{t-1} + s_t`` with activity
``s_t >= 0`` and ``c_0 = 0`` (so ``s_1 = c_1``, the calcium already present at the first frame).

AR(2) (rise and decay) is not implemented yet.

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
from ._oasis_kernels import _oasis_ar1_rows

__all__ = ["oasis_ar1", "oasis_ar1_batch"]


def _per_roi(value: Any, n_rois: int, name: str, *, upper: float | None) -> np.ndarray:
    """``value`` (scalar or one per ROI) as a float64 ``(n_rois,)`` array, range-checked."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim > 1 or (arr.ndim == 1 and arr.shape[0] != n_rois):
        raise ShapeError(
            f"{name} must be a scalar or have one value per ROI ({n_rois}); got shape {arr.shape}"
        )
    if (
        not np.all(np.isfinite(arr))
        or np.any(arr < 0)
        or (upper is not None and np.any(arr >= upper))
    ):
        bound = f"[0, {upper})" if upper is not None else "[0, inf)"
        raise ParameterError(f"{name} must be finite and in {bound}; got {value!r}")
    return np.ascontiguousarray(np.broadcast_to(arr, (n_rois,)))


def _as_traces(traces: Any, ndim: int, name: str) -> np.ndarray:
    """A C-contiguous float32/float64 view (or copy) of ``traces`` with ``ndim`` dimensions."""
    x = np.asarray(traces)
    if x.dtype.kind not in "fiub":
        raise ShapeError(f"{name} must be a real numeric array; got dtype {x.dtype}")
    if x.ndim != ndim:
        shape = "(n_frames,)" if ndim == 1 else "(n_rois, n_frames)"
        raise ShapeError(f"{name} must be {ndim}-D {shape}; got shape {x.shape}")
    if x.shape[-1] == 0:
        raise ShapeError(f"{name} has no frames; got shape {x.shape}")
    if x.dtype != np.float32 and x.dtype != np.float64:
        x = x.astype(np.float32 if x.dtype.kind == "f" and x.dtype.itemsize < 4 else np.float64)
    return np.ascontiguousarray(x)


def oasis_ar1_batch(
    traces: Any, g: Any, *, lam: Any = 0.0, s_min: Any = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Deconvolve many traces with OASIS for an AR(1) model, in parallel over ROIs.

    For each trace ``y`` (baseline already removed) solves

    ``min_c 1/2 ||y - c||^2 + lam * sum_t s_t``  subject to  ``s_t = c_t - g c_{t-1} >= 0``,
    ``c_0 = 0``,

    exactly by pooling adjacent violators (OASIS). With ``s_min > 0`` a spike must be either 0 or
    at least ``s_min`` (OASIS's minimum spike size, a greedy solution of a non-convex problem).

    Parameters
    ----------
    traces : array_like, shape (n_rois, n_frames)
        Fluorescence traces (ΔF/F or F minus baseline), one row per ROI. float32 stays float32;
        any other real dtype is computed and returned as float64. Must be finite.
    g : float or array_like, shape (n_rois,)
        AR(1) coefficient per frame, ``0 <= g < 1`` (``exp(-1 / (tau_decay_s * frame_rate_hz))``,
        see :func:`~napari_calcium.core.spikes.deconvolution.kinetics.tau_to_ar1`).
    lam : float or array_like, shape (n_rois,), optional
        Sparsity penalty λ >= 0 on the summed activity, in the units of ``traces`` (default 0).
    s_min : float or array_like, shape (n_rois,), optional
        Minimum spike size >= 0 in the units of ``traces`` (default 0: plain non-negativity).
        ``s_1`` (the calcium present at the first frame) is exempt; it is only kept >= 0.

    Returns
    -------
    c : ndarray, shape (n_rois, n_frames)
        Denoised calcium, >= 0.
    s : ndarray, shape (n_rois, n_frames)
        Inferred activity ``c_t - g c_{t-1}``, >= 0 (0 or >= ``s_min`` after the first frame).

    Raises
    ------
    ShapeError
        ``traces`` is not 2-D, has no frames, or ``g``/``lam``/``s_min`` has the wrong length.
    ParameterError
        ``g`` outside ``[0, 1)``, a negative ``lam`` or ``s_min``, or non-finite traces.

    Notes
    -----
    **λ as a shift of the data.** With ``c_0 = 0``,
    ``sum_{t=1}^T s_t = sum_t c_t - g sum_{t=1}^{T-1} c_t = (1 - g) sum_{t<T} c_t + c_T``,
    so the penalty is linear in ``c`` and
    ``1/2 ||y - c||^2 + lam sum_t s_t = 1/2 ||y' - c||^2 + const`` with
    ``y'_t = y_t - lam (1 - g)`` for ``t < T`` and ``y'_T = y_T - lam``. Equivalently, the
    stationarity (KKT) condition ``c - y + lam K^{-T} 1 - K^{-T} mu = 0`` (``K^{-1}`` the
    bidiagonal difference operator ``s = K^{-1} c``, ``mu >= 0`` the multipliers of ``s >= 0``)
    has ``K^{-T} 1 = (1 - g, ..., 1 - g, 1)``. OASIS then solves the λ = 0 problem on ``y'``.

    **Pools.** A run of frames without a spike is a pool with value ``v`` (the calcium at its
    first frame) and ``c = v g^k`` inside; its best value is ``sum_k y'_{t+k} g^k / sum_k g^{2k}``.
    Frames are added one at a time as new pools; while a pool's value breaks the constraint at its
    boundary, ``v_i < g^{l_{i-1}} v_{i-1} + s_min``, it is merged into its predecessor (whose value
    then changes, so the test repeats backwards). The first pool's value is bounded below by 0
    (``c_1 >= 0``). Each frame is merged at most once, so the cost is O(n_frames) per trace.

    References
    ----------
    Friedrich, J., Zhou, P. & Paninski, L. (2017). Fast online deconvolution of calcium imaging
    data. *PLoS Comput Biol* 13(3), e1005423.

    Examples
    --------
    >>> y = np.array([[0.0, 1.0, 0.5, 0.25, 0.125]])
    >>> c, s = oasis_ar1_batch(y, 0.5)
    >>> s.round(3).tolist()
    [[0.0, 1.0, 0.0, 0.0, 0.0]]
    """
    y = _as_traces(traces, 2, "traces")
    n_rois = y.shape[0]
    g_arr = _per_roi(g, n_rois, "g", upper=1.0)
    lam_arr = _per_roi(lam, n_rois, "lam", upper=None)
    smin_arr = _per_roi(s_min, n_rois, "s_min", upper=None)
    c = np.empty_like(y)
    s = np.empty_like(y)
    bad = np.zeros(n_rois, dtype=np.bool_)
    if n_rois:
        in_threads(
            _oasis_ar1_rows,
            (y, g_arr, lam_arr, smin_arr, c, s, bad),
            n_rois,
            "napari-calcium-oasis",
        )
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ParameterError(
            f"traces must be finite; rows {rows[:10].tolist()} contain NaN or inf "
            "(interpolate or drop those frames first)"
        )
    return c, s


def oasis_ar1(
    y: Any, g: float, *, lam: float = 0.0, s_min: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Deconvolve one trace with OASIS for an AR(1) model.

    The single-trace form of :func:`oasis_ar1_batch` (same problem, same compiled kernel).

    Parameters
    ----------
    y : array_like, shape (n_frames,)
        One fluorescence trace with its baseline removed. float32 stays float32, others float64.
    g : float
        AR(1) coefficient, ``0 <= g < 1``.
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
        ``y`` is not 1-D or is empty.
    ParameterError
        A parameter is out of range or ``y`` is not finite.

    References
    ----------
    Friedrich, J., Zhou, P. & Paninski, L. (2017). *PLoS Comput Biol* 13(3), e1005423.

    Examples
    --------
    >>> c, s = oasis_ar1([0.0, 2.0, 1.8, 1.62], 0.9)
    >>> s.round(3).tolist()
    [0.0, 2.0, 0.0, 0.0]
    """
    trace = _as_traces(y, 1, "y")
    if np.ndim(g) or np.ndim(lam) or np.ndim(s_min):
        raise ShapeError("g, lam and s_min must be scalars for one trace (use oasis_ar1_batch)")
    c, s = oasis_ar1_batch(trace[None, :], g, lam=lam, s_min=s_min)
    return c[0], s[0]
