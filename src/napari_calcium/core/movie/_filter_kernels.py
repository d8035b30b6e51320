"""Compute kernels of :mod:`napari_calcium.core.movie.filters`: numba on the CPU, array-API twins.

Each kernel is a pair, named side by side, behind one dispatch function:

=====================  ==========================  =====================  ====================
dispatch               numba (numpy blocks)        twin (cupy, others)    algorithm
=====================  ==========================  =====================  ====================
:func:`median_3x3x3`   ``_median_3x3x3_numba``     ``_median_3x3x3_xp``   selection network
:func:`median_3x3`     ``_median_3x3_numba``       ``_median_3x3_xp``     selection network
:func:`separable`      ``_separable_numba``        ``_separable_xp``      1-D passes t, y, x
=====================  ==========================  =====================  ====================

The numba kernel walks rows with the network applied to scalars (vectorised by LLVM across x);
the twin applies *the same network functions* to whole arrays with ``xp.minimum``/``xp.maximum``
and ``xp.take`` (array-API only: it runs on cupy, numpy and ``array_api_strict``). The network
functions below are written once, with the two comparison operations passed in, so the CPU and
GPU paths cannot drift apart; the test suite also feeds them bit-sliced 0-1 inputs to prove the
3x3x3 median exact over all 2**27 orderings (the 0-1 principle for min/max networks).

Boundary handling is reduced to index maps built by the caller: ``tmap[i, k]`` is the block frame
read by output frame ``i`` for tap ``k``, ``ymap``/``xmap`` the source rows/columns of padded
positions, and -1 stands for ``cval`` (mode ``"constant"``, separable filters only).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from .._threads import in_threads

__all__ = ["NUMBA_DTYPES", "median_3x3", "median_3x3x3", "separable"]

#: dtypes the numba kernels are compiled for (lazily, once per dtype, cached on disk).
NUMBA_DTYPES = frozenset(
    ("uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64", "float32", "float64")
)


def _in_threads(kernel: Any, args: tuple, n_items: int) -> None:
    """:func:`._threads.in_threads` with this module's thread names."""
    in_threads(kernel, args, n_items, "napari-calcium-filter")


# --------------------------------------------------------------------------------------------------
# Selection networks, written once for scalars (numba) and arrays (xp): lo/hi = min/max
# --------------------------------------------------------------------------------------------------
def _net_sort3(a, b, c, lo, hi):
    """Sort three values: 3 compare-exchanges."""
    a, b = lo(a, b), hi(a, b)
    b, c = lo(b, c), hi(b, c)
    a, b = lo(a, b), hi(a, b)
    return a, b, c


def _net_median9(u, v, w, lo, hi):
    """Median of a 3x3 window from its three sorted columns ``u, v, w`` (lo, mid, hi each).

    The median of 9 is the median of (largest low, median of mids, smallest high) (Paeth 1990).
    """
    a = hi(hi(u[0], v[0]), w[0])
    b = hi(lo(u[1], v[1]), lo(hi(u[1], v[1]), w[1]))
    c = lo(lo(u[2], v[2]), w[2])
    return hi(lo(a, b), lo(hi(a, b), c))


def _net_sort9(u, v, w, lo, hi):
    """Sort the union of three sorted triples: 9 + 7 compare-exchanges.

    Sorting the triples' ranks across (``sort3(u[s], v[s], w[s])``) leaves a 3x3 tableau sorted
    along rows and columns; 7 more exchanges (found by exhaustive search) finish the sort.
    """
    # (self-contained: numba compiles this function on its own, so it cannot call _net_sort3)
    a0, b0 = lo(u[0], v[0]), hi(u[0], v[0])
    b0, c0 = lo(b0, w[0]), hi(b0, w[0])
    a0, b0 = lo(a0, b0), hi(a0, b0)
    a1, b1 = lo(u[1], v[1]), hi(u[1], v[1])
    b1, c1 = lo(b1, w[1]), hi(b1, w[1])
    a1, b1 = lo(a1, b1), hi(a1, b1)
    a2, b2 = lo(u[2], v[2]), hi(u[2], v[2])
    b2, c2 = lo(b2, w[2]), hi(b2, w[2])
    a2, b2 = lo(a2, b2), hi(a2, b2)
    a1, b0 = lo(a1, b0), hi(a1, b0)
    a2, b1 = lo(a2, b1), hi(a2, b1)
    a2, c0 = lo(a2, c0), hi(a2, c0)
    b0, a2 = lo(b0, a2), hi(b0, a2)
    b1, c0 = lo(b1, c0), hi(b1, c0)
    b2, c1 = lo(b2, c1), hi(b2, c1)
    c0, b2 = lo(c0, b2), hi(c0, b2)
    return a0, a1, b0, a2, b1, c0, b2, c1, c2


def _net_median27(left, mid, right, lo, hi):
    """Median (14th smallest) of 27 values given as three sorted columns of 9.

    Sorting each rank's row ``(left[r], mid[r], right[r])`` keeps the columns sorted; in the
    resulting 9x3 tableau, 7 entries are provably below and 7 above the median, which leaves the
    7th smallest of 13 candidates held in three sorted lists: lows ``l5..l8``, mids ``m2..m6``
    and highs ``h0..h3``. A 4+4 odd-even merge of lows and highs gives ``s``; the answer is
    ``min_i max(s[i-1], m[6-i])``, the k-th element of two sorted lists.
    """
    L, M, R = left, mid, right
    h0 = hi(hi(L[0], M[0]), R[0])
    h1 = hi(hi(L[1], M[1]), R[1])
    p, q = lo(L[2], M[2]), hi(L[2], M[2])
    m2, h2 = hi(p, lo(q, R[2])), hi(q, R[2])
    p, q = lo(L[3], M[3]), hi(L[3], M[3])
    m3, h3 = hi(p, lo(q, R[3])), hi(q, R[3])
    m4 = hi(lo(L[4], M[4]), lo(hi(L[4], M[4]), R[4]))
    p, q = lo(L[5], M[5]), hi(L[5], M[5])
    l5, m5 = lo(p, R[5]), hi(p, lo(q, R[5]))
    p, q = lo(L[6], M[6]), hi(L[6], M[6])
    l6, m6 = lo(p, R[6]), hi(p, lo(q, R[6]))
    l7 = lo(lo(L[7], M[7]), R[7])
    l8 = lo(lo(L[8], M[8]), R[8])
    # odd-even merge of (l5, l6, l7, l8) and (h0, h1, h2, h3); s0 and s7 are never needed
    s1, s2, s3 = l6, l7, l8
    s4, s5, s6 = hi(l5, h0), h1, h2
    s1, s5 = lo(s1, s5), hi(s1, s5)
    s2, s6 = lo(s2, s6), hi(s2, s6)
    s3 = lo(s3, h3)
    s2, s4 = lo(s2, s4), hi(s2, s4)
    s3, s5 = lo(s3, s5), hi(s3, s5)
    s1, s2 = lo(s1, s2), hi(s1, s2)
    s3, s4 = lo(s3, s4), hi(s3, s4)
    s5, s6 = lo(s5, s6), hi(s5, s6)
    return lo(
        lo(lo(hi(s1, m6), hi(s2, m5)), lo(hi(s3, m4), hi(s4, m3))),
        lo(hi(s5, m2), s6),
    )


# --------------------------------------------------------------------------------------------------
# numba kernels (CPU): one thread per contiguous range of output frames
# --------------------------------------------------------------------------------------------------
@njit(inline="always", cache=True)
def _lo(a, b):
    return a if a < b else b


@njit(inline="always", cache=True)
def _hi(a, b):
    return b if a < b else a


_sort3_nb = njit(cache=True)(_net_sort3)
_median9_nb = njit(cache=True)(_net_median9)
_sort9_nb = njit(cache=True)(_net_sort9)
_median27_nb = njit(cache=True)(_net_median27)


@njit(cache=True)
def _sorted_columns(f0, f1, f2, r0, r1, r2, xmap, dst):
    """``dst[:, q]`` = sorted (f0[r0, c], f1[r1, c], f2[r2, c]) for padded column q -> c."""
    nx = f0.shape[1]
    for c in range(nx):
        s = _sort3_nb(f0[r0, c], f1[r1, c], f2[r2, c], _lo, _hi)
        dst[0, c + 1] = s[0]
        dst[1, c + 1] = s[1]
        dst[2, c + 1] = s[2]
    for q in (0, nx + 1):  # the two padded edge columns copy their source column
        for k in range(3):
            dst[k, q] = dst[k, xmap[q] + 1]


@njit(nogil=True, cache=True)
def _median_3x3x3_numba(block, tmap, ymap, xmap, out, start, stop):
    """Output frames [start, stop) (one thread's share)."""
    ny, nx = out.shape[1], out.shape[2]
    ring = np.empty((3, 3, nx + 2), dtype=block.dtype)  # t-sorted triples of 3 padded rows
    col = np.empty((9, nx + 2), dtype=block.dtype)  # sorted (t, y) columns of 9
    for t in range(start, stop):
        a, b, c = block[tmap[t, 0]], block[tmap[t, 1]], block[tmap[t, 2]]
        for p in range(2):
            _sorted_columns(a, b, c, ymap[p], ymap[p], ymap[p], xmap, ring[p])
        for y in range(ny):
            r = ymap[y + 2]
            _sorted_columns(a, b, c, r, r, r, xmap, ring[(y + 2) % 3])
            u, v, w = ring[y % 3], ring[(y + 1) % 3], ring[(y + 2) % 3]
            for q in range(nx + 2):
                s = _sort9_nb(
                    (u[0, q], u[1, q], u[2, q]),
                    (v[0, q], v[1, q], v[2, q]),
                    (w[0, q], w[1, q], w[2, q]),
                    _lo,
                    _hi,
                )
                for k in range(9):
                    col[k, q] = s[k]
            o = out[t, y]
            for x in range(nx):
                o[x] = _median27_nb(
                    (col[0, x], col[1, x], col[2, x], col[3, x], col[4, x],
                     col[5, x], col[6, x], col[7, x], col[8, x]),
                    (col[0, x + 1], col[1, x + 1], col[2, x + 1], col[3, x + 1],
                     col[4, x + 1], col[5, x + 1], col[6, x + 1], col[7, x + 1],
                     col[8, x + 1]),
                    (col[0, x + 2], col[1, x + 2], col[2, x + 2], col[3, x + 2],
                     col[4, x + 2], col[5, x + 2], col[6, x + 2], col[7, x + 2],
                     col[8, x + 2]),
                    _lo,
                    _hi,
                )  # fmt: skip


@njit(nogil=True, cache=True)
def _median_3x3_numba(frames, ymap, xmap, out, start, stop):
    """Output rows [start, stop) counted over (frame, row) pairs (one thread's share)."""
    ny, nx = out.shape[1], out.shape[2]
    col = np.empty((3, nx + 2), dtype=frames.dtype)  # y-sorted columns of one output row
    for item in range(start, stop):
        t, y = item // ny, item % ny
        f = frames[t]
        _sorted_columns(f, f, f, ymap[y], ymap[y + 1], ymap[y + 2], xmap, col)
        o = out[t, y]
        for x in range(nx):
            o[x] = _median9_nb(
                (col[0, x], col[1, x], col[2, x]),
                (col[0, x + 1], col[1, x + 1], col[2, x + 1]),
                (col[0, x + 2], col[1, x + 2], col[2, x + 2]),
                _lo,
                _hi,
            )


@njit(cache=True)
def _row_madd(dst, src, w, first):
    """``dst = w * src`` (first tap) or ``dst += w * src``, in float32; 1-D rows."""
    if first:
        for x in range(dst.shape[0]):
            dst[x] = w * np.float32(src[x])
    else:
        for x in range(dst.shape[0]):
            dst[x] = dst[x] + w * np.float32(src[x])


@njit(cache=True)
def _row_cadd(dst, value, first):
    """``dst = value`` (first tap) or ``dst += value`` (a cval tap, value = w * cval)."""
    for x in range(dst.shape[0]):
        dst[x] = value if first else dst[x] + value


@njit(nogil=True, cache=True)
def _separable_numba(block, tmap, wt, ymap, wy, xmap, wx, cval, out, start, stop):
    """Output frames [start, stop) (one thread's share)."""
    ny, nx = out.shape[1], out.shape[2]
    kx = wx.shape[0]
    x0 = kx // 2  # padded position of source column 0
    tpass = np.empty((ny, nx), dtype=np.float32)  # temporal pass of one frame
    row = np.empty(nx + kx - 1, dtype=np.float32)  # y pass, padded along x
    inner = row[x0 : x0 + nx]
    acc = np.empty(nx, dtype=np.float32)
    for t in range(start, stop):
        for y in range(ny):  # pass 1, along t, read straight from the input dtype
            for k in range(wt.shape[0]):
                f = tmap[t, k]
                if f < 0:
                    _row_cadd(tpass[y], wt[k] * cval, k == 0)
                else:
                    _row_madd(tpass[y], block[f, y], wt[k], k == 0)
        for y in range(ny):  # pass 2 along y into a padded row, pass 3 along x
            for j in range(wy.shape[0]):
                r = ymap[y, j]
                if r < 0:
                    _row_cadd(inner, wy[j] * cval, j == 0)
                else:
                    _row_madd(inner, tpass[r], wy[j], j == 0)
            for q in range(x0):  # padded edges copy their source column (or cval)
                row[q] = cval if xmap[q] < 0 else row[x0 + xmap[q]]
            for q in range(x0 + nx, nx + kx - 1):
                row[q] = cval if xmap[q] < 0 else row[x0 + xmap[q]]
            for i in range(kx):
                _row_madd(acc, row[i : i + nx], wx[i], i == 0)
            o = out[t, y]
            for x in range(nx):
                o[x] = acc[x]


# --------------------------------------------------------------------------------------------------
# Array-API twins (cupy on the GPU; numpy and array_api_strict in the tests)
# --------------------------------------------------------------------------------------------------
def _take(xp: Any, a: Any, index: np.ndarray, axis: int) -> Any:
    return xp.take(a, xp.asarray(np.ascontiguousarray(index, dtype=np.int64)), axis=axis)


def _median_3x3x3_xp(block, tmap, ymap, xmap, xp):
    lo, hi = xp.minimum, xp.maximum
    ny, nx = block.shape[1], block.shape[2]
    padded = [
        _take(xp, _take(xp, _take(xp, block, tmap[:, k], 0), ymap, 1), xmap, 2) for k in range(3)
    ]
    ts = _net_sort3(*padded, lo, hi)  # t-sorted triples, padded (frames, ny + 2, nx + 2)
    rows = [tuple(s[:, d : d + ny, :] for s in ts) for d in range(3)]
    col = _net_sort9(*rows, lo, hi)  # sorted (t, y) columns of 9, (frames, ny, nx + 2)
    cols = [tuple(c[..., d : d + nx] for c in col) for d in range(3)]
    return _net_median27(*cols, lo, hi)


def _median_3x3_xp(frames, ymap, xmap, xp):
    lo, hi = xp.minimum, xp.maximum
    ny, nx = frames.shape[1], frames.shape[2]
    padded = _take(xp, _take(xp, frames, ymap, 1), xmap, 2)
    col = _net_sort3(*(padded[:, d : d + ny, :] for d in range(3)), lo, hi)
    return _net_median9(*(tuple(c[..., d : d + nx] for c in col) for d in range(3)), lo, hi)


def _with_cval(xp: Any, a: Any, index: np.ndarray, axis: int, cval: float) -> tuple[Any, Any]:
    """`a` extended by one slice of `cval` along `axis` when `index` uses -1 (constant mode)."""
    if not np.any(index < 0):
        return a, index
    shape = list(a.shape)
    shape[axis] = 1
    concat = getattr(xp, "concat", None) or xp.concatenate  # (older cupy: concatenate only)
    extended = concat([a, xp.full(tuple(shape), cval, dtype=xp.float32)], axis=axis)
    return extended, np.where(index < 0, a.shape[axis], index)


def _weighted_sum(xp: Any, a: Any, index: np.ndarray, w: np.ndarray, axis: int, cval: float):
    a, index = _with_cval(xp, a, index, axis, cval)
    acc = None
    for k in range(w.shape[0]):
        term = _take(xp, a, index[..., k], axis) * float(w[k])
        acc = term if acc is None else acc + term
    return acc


def _separable_xp(block, tmap, wt, ymap, wy, xmap, wx, cval, xp):
    cval = float(np.float32(cval))
    data = xp.astype(block, xp.float32) if hasattr(xp, "astype") else block.astype(xp.float32)
    tpass = _weighted_sum(xp, data, tmap, wt, 0, cval)
    ypass = _weighted_sum(xp, tpass, ymap, wy, 1, cval)
    nx, kx = block.shape[2], wx.shape[0]
    windows = np.arange(nx)[:, None] + np.arange(kx)[None, :]  # padded positions per output x
    padded, pmap = _with_cval(xp, ypass, np.asarray(xmap), 2, cval)
    return _weighted_sum(xp, padded, pmap[windows], wx, 2, cval)


# --------------------------------------------------------------------------------------------------
# Dispatch: numba for numpy blocks, the twin for every other namespace (or when asked)
# --------------------------------------------------------------------------------------------------
def _use_numba(xp: Any, dtype: Any, kernel: str) -> bool:
    if kernel not in ("auto", "numba", "xp"):
        raise ValueError(f"kernel must be 'auto', 'numba' or 'xp', got {kernel!r}")
    numba_ok = xp is np and np.dtype(dtype).name in NUMBA_DTYPES
    if kernel == "numba" and not numba_ok:
        raise ValueError(f"no numba kernel for {getattr(xp, '__name__', xp)} {dtype} data")
    return numba_ok and kernel != "xp"


def _numpy_out(out: Any, shape: tuple, dtype: Any) -> np.ndarray:
    if out is None:
        return np.empty(shape, dtype=dtype)
    return out


def median_3x3x3(block, tmap, ymap, xmap, *, xp, out=None, kernel="auto"):
    """3x3x3 median of the frames ``tmap`` picks from `block` (no NaN; reflect-like modes).

    Parameters
    ----------
    block : array, shape (n_read, ny, nx)
        Frames read for this block (core plus overlap), any real dtype; NaN is not allowed (the
        caller falls back to scipy for blocks holding NaN).
    tmap : ndarray of int, shape (n_out, 3)
        Block frames of the previous, current and next frame of each output frame.
    ymap, xmap : ndarray of int, shapes (ny + 2,) and (nx + 2,)
        Source row/column of each padded position (position 0 is index -1).
    xp : module
        The block's array namespace.
    out : numpy.ndarray, shape (n_out, ny, nx), optional
        C-contiguous destination of `block`'s dtype (numba path only).
    kernel : {"auto", "numba", "xp"}
        Force one side of the pair (tests); "auto" takes numba for numpy blocks.

    Returns
    -------
    array, shape (n_out, ny, nx)
        The median, in `block`'s dtype and namespace (`out` when it was given and used).
    """
    if _use_numba(xp, block.dtype, kernel):
        out = _numpy_out(out, (tmap.shape[0], *block.shape[1:]), block.dtype)
        args = (np.ascontiguousarray(block), tmap, ymap, xmap, out)
        _in_threads(_median_3x3x3_numba, args, out.shape[0])
        return out
    return _median_3x3x3_xp(block, tmap, ymap, xmap, xp)


def median_3x3(frames, ymap, xmap, *, xp, out=None, kernel="auto"):
    """3x3 spatial median of every frame (see :func:`median_3x3x3` for the arguments)."""
    if _use_numba(xp, frames.dtype, kernel):
        out = _numpy_out(out, tuple(frames.shape), frames.dtype)
        args = (np.ascontiguousarray(frames), ymap, xmap, out)
        _in_threads(_median_3x3_numba, args, out.shape[0] * out.shape[1])
        return out
    return _median_3x3_xp(frames, ymap, xmap, xp)


def separable(block, tmap, wt, ymap, wy, xmap, wx, cval, *, xp, out=None, kernel="auto"):
    """Separable correlation along t, y then x in float32 (gaussian and uniform filters).

    Parameters
    ----------
    block : array, shape (n_read, ny, nx)
        Frames read for this block, any real dtype (read directly, converted per tap).
    tmap : ndarray of int, shape (n_out, kt)
        Block frame of tap k for output frame i (-1: `cval`).
    wt, wy, wx : ndarray of float32, shapes (kt,), (ky,), (kx,)
        Correlation weights along t, y and x (length 1 and weight 1 for an axis left alone).
    ymap : ndarray of int, shape (ny, ky)
        Source row of tap k for output row y (-1: `cval`).
    xmap : ndarray of int, shape (nx + kx - 1,)
        Source column of each padded position; output x uses positions ``x .. x + kx - 1``.
    cval : float
        Value outside the movie for mode "constant".
    xp, out, kernel
        See :func:`median_3x3x3`; `out` is float32 (or any real dtype: cast on store).

    Returns
    -------
    array, shape (n_out, ny, nx)
        float32 (or `out`'s dtype), the taps summed in the same order on both paths.
    """
    if _use_numba(xp, block.dtype, kernel):
        out = _numpy_out(out, (tmap.shape[0], *block.shape[1:]), np.float32)
        block = np.ascontiguousarray(block)
        args = (block, tmap, wt, ymap, wy, xmap, wx, np.float32(cval), out)
        _in_threads(_separable_numba, args, out.shape[0])
        return out
    return _separable_xp(block, tmap, wt, ymap, wy, xmap, wx, cval, xp)
