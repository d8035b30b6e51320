"""Compute kernels of :mod:`napari_calcium.core.traces.processing`: numba on the CPU, xp twin.

=========================  ============================  ===========================
dispatch                   numba (numpy rows)            twin (cupy, array API)
=========================  ============================  ===========================
:func:`perona_malik_rows`  ``_perona_malik_numba``       ``_perona_malik_xp``
=========================  ============================  ===========================

Both evaluate CalSciPy's explicit 1-D Perona-Malik update, for every row ``x`` with its own
conduction scale ``k`` (``k = kappa * (max(x) - min(x))`` of the input row)::

    d[i] = x[i+1] - x[i]                     (i = 0 .. n-2; d[n-1] = 0)
    f[i] = d[i] * exp(-(d[i] / k)**2)        (flux; f[-1] = f[n-1] = 0: no flux across the ends)
    x[i] <- x[i] + gamma * (f[i] - f[i-1])   (all i at once, from the old x)

The numba kernel walks a row once per iteration keeping the old neighbour and the previous flux
in scalars (so it updates in place without a scratch row); the twin does the same arithmetic on
all rows at once with array-API operations (slicing, ``exp``, ``concat``), so it runs on cupy,
numpy and ``array_api_strict``. A row with ``k == 0`` (a constant row, or ``kappa = 0``) is left
unchanged: no conduction (CalSciPy returns NaN there from ``0 / 0``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from .._threads import in_threads

__all__ = ["perona_malik_rows"]


@njit(nogil=True, cache=True, fastmath=False)
def _perona_malik_numba(x, k, iters, g, zero, start, stop):  # pragma: no cover - compiled
    n = x.shape[1]
    for r in range(start, stop):
        kr = k[r]
        if not kr > 0 or n < 2:
            continue
        row = x[r]
        for _ in range(iters):
            f_prev = zero
            old = row[0]
            for i in range(n - 1):
                nxt = row[i + 1]
                d = nxt - old
                t = d / kr
                f = d * np.exp(-(t * t))
                row[i] = old + g * (f - f_prev)
                f_prev = f
                old = nxt
            row[n - 1] = old - g * f_prev


def _in_threads(kernel: Any, args: tuple, n_items: int) -> None:
    """:func:`._threads.in_threads` with this module's thread names."""
    in_threads(kernel, args, n_items, "napari-calcium-traces")


def _perona_malik_xp(xp: Any, x: Any, k: Any, iters: int, gamma: float) -> Any:
    """Array-API twin: the same update on all rows at once; returns the new array."""
    n_rows, n = int(x.shape[0]), int(x.shape[1])
    if n < 2:
        return x
    active = k > 0
    safe_k = xp.where(active, k, xp.ones_like(k))[:, None]
    zero = xp.zeros((n_rows, 1), dtype=x.dtype)
    g = xp.asarray(gamma, dtype=x.dtype)
    concat = getattr(xp, "concat", None) or xp.concatenate  # array API name / older cupy
    for _ in range(iters):
        d = x[:, 1:] - x[:, :-1]
        t = d / safe_k
        f = d * xp.exp(-(t * t))
        step = concat((f, zero), axis=1) - concat((zero, f), axis=1)
        x = xp.where(active[:, None], x + g * step, x)
    return x


def perona_malik_rows(xp: Any, x: Any, k: Any, iters: int, gamma: float) -> Any:
    """Run Perona-Malik on every row of the float array `x` (2-D), in place where possible.

    Parameters
    ----------
    xp : module
        Array namespace of `x` (numpy takes the numba kernel, anything else the twin).
    x : array, shape (n_rows, n_frames), float32 or float64
        Rows to diffuse; a C-contiguous numpy array is updated in place.
    k : array, shape (n_rows,), same dtype
        Absolute conduction scale of each row.
    iters : int
        Number of iterations.
    gamma : float
        Rate of diffusion per iteration.

    Returns
    -------
    array, shape (n_rows, n_frames)
        The diffused rows (`x` itself on the numba path).
    """
    if xp is np and isinstance(x, np.ndarray) and x.flags.c_contiguous:
        scalar = x.dtype.type  # gamma and 0 in the data's precision, as CalSciPy computes
        args = (x, k, int(iters), scalar(gamma), scalar(0.0))
        _in_threads(_perona_malik_numba, args, int(x.shape[0]))
        return x
    return _perona_malik_xp(xp, x, k, int(iters), float(gamma))
