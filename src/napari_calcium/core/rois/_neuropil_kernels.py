"""numba kernels of :mod:`napari_calcium.core.rois.neuropil` (CPU only: masks are host objects).

ROI masks live in a host-side ``scipy.sparse`` array, and building them is a few milliseconds of
integer work per field of view, so these kernels have no GPU twin: a cupy caller converts its
movie, never its masks. All kernels are serial ``nogil`` functions compiled once and cached.

* :func:`percentile_cell_pixels` -- exact rank test of each pixel against the ``size x size``
  window order statistic of a non-negative map (scipy's ``percentile_filter`` rule), counting
  zeros with an integral image and only scanning windows where zeros alone do not decide.
* :func:`neuropil_counts` / :func:`neuropil_fill` -- the two passes that size and then fill the
  CSR arrays of the neuropil masks (rectangular or L1-disk surround grown in steps of 5 px).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["neuropil_counts", "neuropil_fill", "percentile_cell_pixels"]

#: how far the surround grows per step (pixels), and the maximum number of steps (suite2p's)
STEP_PX = 5
MAX_STEPS = 100


@njit(cache=True, nogil=True)
def percentile_cell_pixels(padded, zeros_int, size, rank, out):  # pragma: no cover - numba
    """``out[i, j] = lam[i, j] > 0 and lam[i, j] >= (rank-th smallest value of its window)``.

    `padded` is the map padded by ``size // 2`` before and ``size - 1 - size // 2`` after (scipy's
    ``reflect`` mode = numpy's ``symmetric``), `zeros_int` the integral image of ``padded == 0``.
    The ``rank``-th order statistic (0-based) is ``<= x`` exactly when at least ``rank + 1``
    window values are ``<= x``, so the test needs counts only, never a sort.
    """
    ny, nx = out.shape
    half = size // 2
    need = rank + 1
    for i in range(ny):
        for j in range(nx):
            x = padded[i + half, j + half]
            if not x > 0:
                out[i, j] = False
                continue
            cnt = (
                zeros_int[i + size, j + size]
                - zeros_int[i, j + size]
                - zeros_int[i + size, j]
                + zeros_int[i, j]
            )
            if cnt < need:
                for u in range(i, i + size):
                    for v in range(j, j + size):
                        w = padded[u, v]
                        if w > 0 and w <= x:
                            cnt += 1
                    if cnt >= need:
                        break
            out[i, j] = cnt >= need


@njit(cache=True, nogil=True)
def _l1_distance(ys, xs, y0, x0, h, w):  # pragma: no cover - numba
    """City-block distance (4-connected steps) from the ROI pixels, on the grid at (y0, x0).

    Two raster passes are exact for the L1 metric; the grid is a rectangle, so shortest paths
    between its pixels never leave it and clipping at the image edge changes nothing.
    """
    big = h + w + 1
    d = np.empty((h, w), np.int32)
    for i in range(h):
        for j in range(w):
            d[i, j] = big
    for k in range(ys.size):
        d[ys[k] - y0, xs[k] - x0] = 0
    for i in range(h):
        for j in range(w):
            v = d[i, j]
            if i > 0 and d[i - 1, j] + 1 < v:
                v = d[i - 1, j] + 1
            if j > 0 and d[i, j - 1] + 1 < v:
                v = d[i, j - 1] + 1
            d[i, j] = v
    for i in range(h - 1, -1, -1):
        for j in range(w - 1, -1, -1):
            v = d[i, j]
            if i < h - 1 and d[i + 1, j] + 1 < v:
                v = d[i + 1, j] + 1
            if j < w - 1 and d[i, j + 1] + 1 < v:
                v = d[i, j + 1] + 1
            d[i, j] = v
    return d


@njit(cache=True, nogil=True)
def _grid(ys, xs, reach, ny, nx):  # pragma: no cover - numba
    """Bounding box of the ROI grown by `reach` px, clipped: (y0, y1, x0, x1), inclusive.

    Plain loops rather than ``ys.min()``: numba's array reductions cost ~0.7 s of compile time.
    """
    ymin = ymax = ys[0]
    xmin = xmax = xs[0]
    for k in range(1, ys.size):
        ymin = min(ymin, ys[k])
        ymax = max(ymax, ys[k])
        xmin = min(xmin, xs[k])
        xmax = max(xmax, xs[k])
    y0 = max(ymin - reach, 0)
    y1 = min(ymax + reach, ny - 1)
    x0 = max(xmin - reach, 0)
    x1 = min(xmax + reach, nx - 1)
    return y0, y1, x0, x1


@njit(cache=True, nogil=True)
def _box_sum(integral, y0, y1, x0, x1):  # pragma: no cover - numba
    return integral[y1 + 1, x1 + 1] - integral[y0, x1 + 1] - integral[y1 + 1, x0] + integral[y0, x0]


@njit(cache=True, nogil=True)
def _rect_steps(ys, xs, usable, integral, inner, min_pixels):  # pragma: no cover - numba
    """Number of 5-px steps of the rectangle and its usable pixel count outside the ring."""
    ny, nx = usable.shape
    y0, y1, x0, x1 = _grid(ys, xs, inner, ny, nx)
    d = _l1_distance(ys, xs, y0, x0, y1 - y0 + 1, x1 - x0 + 1)
    nring = 0
    for i in range(d.shape[0]):
        for j in range(d.shape[1]):
            if d[i, j] <= inner and usable[y0 + i, x0 + j]:
                nring += 1
    steps = 0
    count = 0
    while steps < MAX_STEPS and count <= min_pixels:
        steps += 1
        b0, b1, c0, c1 = _grid(ys, xs, inner + STEP_PX * steps, ny, nx)
        count = _box_sum(integral, b0, b1, c0, c1) - nring
    return steps, count


@njit(cache=True, nogil=True)
def _disk_steps(ys, xs, usable, inner, min_pixels):  # pragma: no cover - numba
    """Number of 5-px steps of the L1 disk and its usable pixel count outside the ring."""
    ny, nx = usable.shape
    budget = 8
    while True:
        reach = inner + STEP_PX * budget
        y0, y1, x0, x1 = _grid(ys, xs, reach, ny, nx)
        d = _l1_distance(ys, xs, y0, x0, y1 - y0 + 1, x1 - x0 + 1)
        hist = np.zeros(reach + 2, np.int64)
        for i in range(d.shape[0]):
            for j in range(d.shape[1]):
                if usable[y0 + i, x0 + j]:
                    hist[min(d[i, j], reach + 1)] += 1
        inside = 0
        for r in range(inner + 1):
            inside += hist[r]
        count = 0
        r = inner
        for steps in range(1, budget + 1):
            for _ in range(STEP_PX):
                r += 1
                count += hist[r]
            if count > min_pixels:
                return steps, count
        if budget >= MAX_STEPS:
            return budget, count
        budget = min(MAX_STEPS, 2 * budget)


@njit(cache=True, nogil=True)
def _rect_counts(
    indptr, ys_all, xs_all, usable, integral, inner, min_pixels, steps, counts
):  # pragma: no cover - numba
    """:func:`neuropil_counts` with rectangular growth, into `steps` and `counts` (zeroed)."""
    for roi in range(indptr.size - 1):
        lo, hi = indptr[roi], indptr[roi + 1]
        if hi > lo:
            ys, xs = ys_all[lo:hi], xs_all[lo:hi]
            steps[roi], counts[roi] = _rect_steps(ys, xs, usable, integral, inner, min_pixels)


@njit(cache=True, nogil=True)
def _disk_counts(
    indptr, ys_all, xs_all, usable, inner, min_pixels, steps, counts
):  # pragma: no cover - numba
    """:func:`neuropil_counts` with circular (L1 disk) growth, into `steps` and `counts`."""
    for roi in range(indptr.size - 1):
        lo, hi = indptr[roi], indptr[roi + 1]
        if hi > lo:
            ys, xs = ys_all[lo:hi], xs_all[lo:hi]
            steps[roi], counts[roi] = _disk_steps(ys, xs, usable, inner, min_pixels)


def neuropil_counts(indptr, indices, usable, integral, inner, min_pixels, circular):
    """Pass 1: steps and pixel count of every ROI's neuropil mask (0 steps for an empty ROI).

    Two kernels, one per growth rule, so that the default (rectangular) never compiles the
    disk's code: one kernel with a ``circular`` flag compiled both, 1.9 s more (issue 16).
    """
    ys, xs = _pixel_rows_cols(indices, usable.shape[1])
    n = indptr.size - 1
    steps, counts = np.zeros(n, np.int64), np.zeros(n, np.int64)
    if circular:
        _disk_counts(indptr, ys, xs, usable, int(inner), int(min_pixels), steps, counts)
    else:
        _rect_counts(indptr, ys, xs, usable, integral, int(inner), int(min_pixels), steps, counts)
    return steps, counts


def _pixel_rows_cols(indices, nx):
    """Row and column of flat pixel `indices` (int64), computed once for every ROI by numpy."""
    indices = np.asarray(indices, np.int64)
    return indices // nx, indices % nx


def neuropil_fill(indptr, indices, usable, inner, circular, steps, out_indptr, out_indices):
    """Pass 2: write the sorted pixel indices of each neuropil mask into the CSR arrays."""
    ys, xs = _pixel_rows_cols(indices, usable.shape[1])
    args = (indptr, ys, xs, usable, int(inner), bool(circular), steps, out_indptr, out_indices)
    _fill(*args)


@njit(cache=True, nogil=True)
def _fill(
    indptr, ys_all, xs_all, usable, inner, circular, steps, out_indptr, out_indices
):  # pragma: no cover - numba
    """:func:`neuropil_fill` on the pixels' rows and columns."""
    ny, nx = usable.shape
    for roi in range(indptr.size - 1):
        lo, hi = indptr[roi], indptr[roi + 1]
        if hi == lo:
            continue
        ys, xs = ys_all[lo:hi], xs_all[lo:hi]
        outer = inner + STEP_PX * steps[roi]
        y0, y1, x0, x1 = _grid(ys, xs, outer, ny, nx)
        d = _l1_distance(ys, xs, y0, x0, y1 - y0 + 1, x1 - x0 + 1)
        k = out_indptr[roi]
        for i in range(d.shape[0]):
            for j in range(d.shape[1]):
                dist = d[i, j]
                if dist > inner and usable[y0 + i, x0 + j] and (not circular or dist <= outer):
                    out_indices[k] = (y0 + i) * nx + (x0 + j)
                    k += 1
